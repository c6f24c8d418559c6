"""Replicating the primary on filesystem storage behind a proxy, in every hook: from what
leader data and the peer relation say (``juju.gather``), sync a backup from the primary (the
registry API lists and deletes, skopeo copies, as the mirror action does), tell the peers
where this unit's registry answers and whom its last sync matched, and on the leader record
the primary. What to copy, delete and whom to make primary is decided in ``replicas``.

The backup reaches the primary at the URL the primary publishes on the peer relation, with
the basic-auth credentials every unit shares (in skopeo's 0600 authfile and the API client's
header, never argv) and the CA this unit's registry serves with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from charmhelpers.core import unitdata

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import paths, trust
from charms.layer.docker_registry.images import registry_api, transfer
from charms.layer.docker_registry.pipeline import clients, juju, replicas, status
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan

SYNC_BUDGET = 180.0  # seconds of copying in one hook; what is left waits for the next one
CONCURRENCY = 4


@dataclass(frozen=True)
class Access:
    """How this unit reads a registry of the application: credentials and TLS files."""

    user: str
    password: str
    ca_file: str
    client_pair: tuple[str, str] | None


def step(
    config: settings.Settings, inputs: Inputs, plan: Plan, host: paths.Host, report: status.Report
) -> str | None:
    """Replicate when the units must: returns the primary haproxy should send traffic to
    (None: the proxy's own rule applies)."""
    if config.token_auth or not replicas.replicates(
        config.storage.kind, plan.proxied, bool(config.cache)
    ):
        return None  # (token auth: the backups have no token to read the primary with)
    peers = inputs.replica or replicas.Peers()
    own = inputs.unit
    scheme = "https" if plan.tls else "http"
    own_url = f"{scheme}://{clients.bracket(inputs.address)}:{config.registry_port}"
    primary = replicas.current_primary(peers.recorded, inputs.peers)
    outcome, waiting = None, ""
    if not primary:
        waiting = "backup, waiting for the leader to name a new primary"
    elif primary != own and not peers.urls.get(primary):
        waiting = f"backup, waiting for {primary} to publish its address"
    elif primary != own:
        outcome = _sync_guarded(primary, peers.urls[primary], own_url, _access(config, plan, host))
    published = inputs.recorded.replica_published or {}
    in_sync_with = _in_sync_with(primary, own, outcome, published)
    _publish(inputs.peer_relations, own_url, in_sync_with, published)
    if inputs.leader:
        chosen = _record_primary(peers, own, in_sync_with, inputs.peers)
        if chosen != primary:  # this unit took over, or follows another from the next hook
            outcome = None
            waiting = "" if chosen == own else f"backup of {chosen} from the next hook"
            primary = chosen
    if len(inputs.peers) > 1:  # (a lone unit is what it always was: no role to show)
        report.role = replicas.describe(primary, outcome, waiting)
    return primary or None


def _sync_guarded(
    primary: str, source_url: str, own_url: str, access: Access
) -> replicas.SyncOutcome:
    """A sync that cannot fail the hook: the registry serves on whatever the sync met."""
    try:
        return sync(primary, source_url, own_url, access)
    except Exception as exc:  # noqa: BLE001 - never a traceback for the serving unit
        juju.log(f"replica: sync from {primary} failed: {type(exc).__name__}", juju.ERROR)
        return replicas.SyncOutcome(stuck=f"unexpected {type(exc).__name__}; see juju debug-log")


def _in_sync_with(
    primary: str, own: str, outcome: replicas.SyncOutcome | None, published: dict
) -> str:
    """The primary this unit holds everything of, as its peers are told."""
    if primary == own:
        return own
    if not primary or (outcome is not None and outcome.error):
        # the primary left or does not answer (its machine gone: the case leadership moves
        # for): this unit still holds what its last sync matched
        return str(published.get(replicas.IN_SYNC_KEY, ""))
    return primary if outcome is not None and outcome.in_sync else ""


def _record_primary(
    peers: replicas.Peers, own: str, own_in_sync_with: str, units: dict[str, str]
) -> str:
    """The leader: the primary per the rule, recorded in leader data when it changes."""
    in_sync = {u for u, p in peers.in_sync_with.items() if p == peers.recorded}
    if own_in_sync_with and own_in_sync_with == peers.recorded:
        in_sync.add(own)
    chosen = replicas.choose_primary(peers.recorded, own, units, in_sync)
    if chosen != peers.recorded:
        juju.log(f"primary: {peers.recorded or '(none)'} -> {chosen}")
        juju.set_leader({replicas.PRIMARY_KEY: chosen})
    return chosen


def _access(config: settings.Settings, plan: Plan, host: paths.Host) -> Access:
    basic = config.basic_auth
    ca_file = str(host.path(config.tls_paths.ca)) if plan.tls and plan.tls.ca else ""
    pair = None
    if plan.identity:
        cert, key = trust.client_files(host, plan.netloc)
        pair = (str(cert), str(key))
    return Access(basic.user if basic else "", basic.password if basic else "", ca_file, pair)


def _publish(relations: tuple[str, ...], own_url: str, in_sync_with: str, published: dict) -> None:
    """This unit's URL and sync state in its peer data, written only when they change (each
    write fires peer-relation-changed on every other unit)."""
    wanted = {replicas.URL_KEY: own_url, replicas.IN_SYNC_KEY: in_sync_with}
    if published == wanted:
        return
    juju.tell_peers(relations, wanted)
    unitdata.kv().set(records.REPLICA_PUBLISHED, wanted)


def inventory(api: registry_api.Registry) -> dict[str, dict[str, str]]:
    """repository -> tag -> manifest digest, of every tag the registry lists."""
    found: dict[str, dict[str, str]] = {}
    for repo in api.catalog():
        tags = {tag: digest for tag, digest in api.tag_digests(repo).items() if digest}
        if tags:
            found[repo] = tags
    return found


def sync(
    primary: str,
    source_url: str,
    own_url: str,
    access: Access,
    budget: float = SYNC_BUDGET,
    clock: Callable[[], float] = time.monotonic,
) -> replicas.SyncOutcome:
    """Make this unit's registry hold what ``primary``'s holds: copy what is missing or
    differs, delete what the primary deleted; the record of what matched is kept for the
    next sync's deletions (the sync's own record, read and written by it)."""
    kv = unitdata.kv()
    record = kv.get(records.REPLICATED) or {}
    replicated = record.get("tags", {}) if record.get("from") == primary else {}
    source = _api(source_url, access)
    local = _api(own_url, access)
    try:
        try:
            theirs = inventory(source)
        except registry_api.RegistryApiError as exc:
            return replicas.SyncOutcome(error=_short(str(exc)))
        ours = inventory(local)
        planned = replicas.plan_sync(theirs, ours, replicated)
        errors = _copy(planned.copies, source_url, own_url, access, budget, clock)
        errors += _delete(planned.deletes, local)
        ours = inventory(local)
    except RegistryCharmError as exc:
        return replicas.SyncOutcome(stuck=_short(str(exc)))
    finally:
        source.close()
        local.close()
    kv.set(records.REPLICATED, {"from": primary, "tags": replicas.matched(theirs, ours)})
    after = replicas.plan_sync(theirs, ours, replicated)
    return replicas.SyncOutcome(
        behind=after.behind, foreign=after.foreign, last_error=errors[0] if errors else ""
    )


def _api(url: str, access: Access) -> registry_api.Registry:
    return registry_api.Registry(
        url,
        access.user,
        access.password,
        access.ca_file,
        check_hostname=False,  # a peer by its address: the chain is still verified
        client_pair=access.client_pair,
    )


def _copy(
    copies: tuple[replicas.Copy, ...],
    source_url: str,
    own_url: str,
    access: Access,
    budget: float,
    clock: Callable[[], float],
) -> list[str]:
    """skopeo copies primary -> here, by the primary's digest (every platform, digests kept),
    ``CONCURRENCY`` at a time, until ``budget`` seconds have gone; the reasons of failures."""
    if not copies:
        return []
    source, own = urlsplit(source_url), urlsplit(own_url)
    extra = ("--all", "--preserve-digests") if transfer.supports_preserve_digests() else ("--all",)
    items = [
        transfer.Item(
            source=f"{c.repository}:{c.tag}",
            dest=f"{own.netloc}/{c.repository}:{c.tag}",
            read=f"docker://{source.netloc}/{c.repository}@{c.digest}",
            extra=extra,
        )
        for c in copies
    ]
    target = _target(own, access)
    env = transfer.proxy_env(own.netloc)
    env["NO_PROXY"] = env["no_proxy"] = f"{env['NO_PROXY']},{source.hostname},{source.netloc}"
    errors: list[str] = []
    started = clock()
    with transfer.skopeo_auth(_target(source, access)) as from_primary:
        for start in range(0, len(items), CONCURRENCY * 2):
            if clock() - started > budget:
                break
            batch = items[start : start + CONCURRENCY * 2]
            transfer.run_copies(
                batch,
                target,
                concurrency=CONCURRENCY,
                src_args=from_primary.src_args(),
                env=env,
                log=juju.log,
            )
            errors += [i.reason for i in batch if i.status == "failed"]
    return errors


def _target(url: SplitResult, access: Access) -> transfer.Target:
    return transfer.Target(
        netloc=url.netloc,
        tls=url.scheme == "https",
        ca_file=access.ca_file,
        user=access.user,
        password=access.password,
        client_pair=access.client_pair,
    )


def _delete(deletes: tuple[replicas.Copy, ...], local: registry_api.Registry) -> list[str]:
    """Each manifest the primary no longer has, once (by digest: its tags go with it)."""
    errors: list[str] = []
    done: set[tuple[str, str]] = set()
    for gone in deletes:
        if (gone.repository, gone.digest) in done:
            continue
        done.add((gone.repository, gone.digest))
        try:
            local.delete_manifest(gone.repository, gone.digest)
            juju.log(f"replica: deleted {gone.repository}@{gone.digest}")
        except RegistryCharmError as exc:
            errors.append(_short(str(exc)))
    return errors


def _short(text: str) -> str:
    return text.rstrip(".")[:200]
