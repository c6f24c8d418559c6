"""What a hook leaves for actions and for the next hook: reactive flags and unit kv records.

Every flag and key is named here, and the records actions read go through typed functions,
so a hook and an action cannot disagree on a name or a shape. Hooks write them (the handlers
and ``pipeline.apply``); actions only read them, except that the stop and start actions set
and clear ``STOPPED_FLAG``. No record holds a secret, but ``LOCAL_SECRET``: the http.secret of
a unit that has no shared one yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from charmhelpers.core import unitdata

from charms.layer.docker_registry.pipeline import clients, runspec, status

# -- flags --------------------------------------------------------------------------------------
STOPPED_FLAG = "docker-registry.stopped"  # set by the stop action, cleared by start
CONFIGURED_FLAG = "docker-registry.configured"  # the registry answered in the last hook

# -- what actions read --------------------------------------------------------------------------
RUN = "docker-registry.run"  # runspec.ContainerRun: what the last hook ran (start, GC)
ENDPOINT = "docker-registry.endpoint"  # clients.Endpoint: where actions reach the registry
SERVING = "docker-registry.serving-status"  # status.Report facts of the last hook that served
CACHES = "docker-registry.caches"  # upstream host -> that cache's run, files, URL, last good
CREDENTIALS = "docker-registry.credentials-keys"  # the accepted secret: URI and key names

# -- what only the next hook reads --------------------------------------------------------------
MANAGED_FILES = "docker-registry.managed-files"  # the files the charm wrote (and may remove)
IMAGE_DIGEST = "docker-registry.resource-digest"  # the registry-image resource last loaded
TRUST = "docker-registry.docker-trust"  # what this unit's docker was told to trust
LOCAL_SECRET = "docker-registry.http-secret"  # noqa: S105 - a key name, not a secret
LAST_GOOD = "docker-registry.last-good"  # run spec and files that last answered
FAILED = "docker-registry.failed-config"  # the new config that was rolled back
GOOD_OPTIONS = "docker-registry.last-good-options"  # option -> keyed digest of its value
PORTS = "docker-registry.opened-ports"  # what the last hook opened
TURN_WAIT = "docker-registry.rolling-wait"  # rolling.Waited: whom this unit waits for
TURN_TOLD = "docker-registry.rolling-told"  # what this unit last told its peers
REPLICATED = "docker-registry.replicated"  # {"from": unit, "tags": {repo: {tag: digest}}}
DATASTORE = "docker-registry.datastore"  # datastore.Record: the volume the registry last ran on
REPLICA_PUBLISHED = "docker-registry.replica-published"  # what this unit last told its peers


@dataclass(frozen=True)
class Recorded:
    """What earlier hooks left for this one, read once a run (``juju.gather``). What a run
    records, it writes as it goes (right after the step it records). Not here: REPLICATED,
    which a backup's sync reads and writes itself, and what actions read."""

    run: dict | None = None
    managed_files: tuple[str, ...] = ()
    last_good: dict | None = None
    failed: dict | None = None
    good_options: dict = field(default_factory=dict)
    image_digest: str = ""
    turn_wait: dict | None = None
    turn_told: dict | None = None
    trust: dict | None = None
    local_secret: str = field(default="", repr=False)
    ports: tuple[str, ...] | None = None
    caches: dict = field(default_factory=dict)
    datastore: dict | None = None
    replica_published: dict | None = None


def read() -> Recorded:
    kv = unitdata.kv()

    def get(key: str, default: Any = None) -> Any:
        value = kv.get(key)
        return default if value is None else value

    ports = opened_ports()
    return Recorded(
        run=get(RUN),
        managed_files=tuple(get(MANAGED_FILES, ())),
        last_good=get(LAST_GOOD),
        failed=get(FAILED),
        good_options=get(GOOD_OPTIONS, {}),
        image_digest=get(IMAGE_DIGEST, ""),
        turn_wait=get(TURN_WAIT),
        turn_told=get(TURN_TOLD),
        trust=get(TRUST),
        local_secret=get(LOCAL_SECRET, ""),
        ports=None if ports is None else tuple(ports),
        caches=caches(),
        datastore=get(DATASTORE),
        replica_published=get(REPLICA_PUBLISHED),
    )


def container_run() -> runspec.ContainerRun | None:
    return runspec.ContainerRun.from_record(unitdata.kv().get(RUN))


def save_container_run(run: runspec.ContainerRun) -> None:
    unitdata.kv().set(RUN, run.as_record())


def endpoint() -> clients.Endpoint | None:
    return clients.Endpoint.from_dict(unitdata.kv().get(ENDPOINT))


def save_endpoint(where: clients.Endpoint) -> None:
    unitdata.kv().set(ENDPOINT, where.as_dict())


def serving() -> status.Report | None:
    return status.Report.from_record(unitdata.kv().get(SERVING))


def save_serving(report: status.Report) -> None:
    unitdata.kv().set(SERVING, report.as_record())


def caches() -> dict[str, dict]:
    return unitdata.kv().get(CACHES) or {}


def opened_ports() -> list[str] | None:
    """What the last hook opened ("5000/TCP"; None before any hook recorded it)."""
    ports = unitdata.kv().get(PORTS)
    return list(ports) if isinstance(ports, list) else None


def credentials_keys() -> dict | None:
    """The secret the last hook accepted: its URI and the names of the keys it supplied."""
    record = unitdata.kv().get(CREDENTIALS)
    return record if isinstance(record, dict) else None


def save_credentials_keys(record: dict | None) -> None:
    if record is None:
        unitdata.kv().unset(CREDENTIALS)
    else:
        unitdata.kv().set(CREDENTIALS, record)
