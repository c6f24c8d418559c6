"""The pipeline's one Juju boundary.

``gather`` reads every hook tool a run of the pipeline needs, once, into ``Inputs``: config,
addresses, leadership and leader data, the shared http secret, relation data (through the
upstream interface layers' endpoints), the storage, the resource, the charm's own identity.
The functions after it are every hook-tool write the pipeline makes: logs, the status while it
applies, what each relation is told, peer and leader data, ports, the shared secret. No other
pipeline module calls a hook tool or an interface endpoint: they take what ``gather`` read and
hand what they decided back here. (Flags and the unit kv, the charm's own records, are not
hook tools: ``records`` holds those.)

Asking Juju costs a process per hook tool, so ``gather`` asks only for what this unit's
relations make relevant: the public address only for a certificate request, the peers only
behind a proxy, the nrpe relation only once the nrpe layer saw it, opened-ports only when the
charm has no record of what it opened, the resource only when the image needs it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from charmhelpers.core import hookenv
from charms.reactive import endpoint_from_name, is_flag_set

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import credentials
from charms.layer.docker_registry.host import paths
from charms.layer.docker_registry.pipeline import clients, cos, datastore, replicas, rolling
from charms.layer.docker_registry.pipeline.plan import Inputs, LeaderData

HTTP_SECRET_ID = "http-secret-id"  # noqa: S105 - leader data: the URI of the Juju secret
HTTP_SECRET_KEY = "http-secret"  # noqa: S105 - that secret's key
LEGACY_HTTP_SECRET = "http-secret"  # noqa: S105 - leader data of earlier revisions: the value
WARNING = hookenv.WARNING
ERROR = hookenv.ERROR


# --- gather: every read ----------------------------------------------------------------------


def gather() -> Inputs:
    """What one run of the pipeline needs from Juju."""
    provider = endpoint_from_name("cert-provider")
    website = endpoint_from_name("website")
    tls_joined = is_flag_set("endpoint.cert-provider.joined")
    issued = {}
    if tls_joined:
        issued = {c.common_name: (c.cert, c.key) for c in provider.server_certs}
    client_cert = provider.get_client_cert() if tls_joined else (None, None)
    nrpe = is_flag_set("nrpe-external-master.available")
    config = dict(hookenv.config())
    unit, hook = hookenv.local_unit(), hookenv.hook_name()
    peers, turns, replica, peer_relations = (
        _peers(unit) if website.relations else ({}, {}, None, ())
    )
    # (cleared in the hook its last unit departs: the listener goes back to what config says)
    collector = is_flag_set("endpoint.cos-agent.joined")
    recorded = records.read()
    return Inputs(
        config=config,
        address=hookenv.unit_private_ip(),
        public_address=hookenv.unit_public_ip() if tls_joined else "",
        hostname=socket.gethostname(),
        leader=hookenv.is_leader(),
        stopped=is_flag_set(records.STOPPED_FLAG),
        tls_joined=tls_joined,
        issued=issued,
        ca=(provider.get_ca() or "") if tls_joined else "",
        chain=(provider.get_chain() or "") if tls_joined else "",
        client_cert=tuple(client_cert),
        proxies=_proxy_public_addresses(website),
        peers=peers,
        replica=replica,
        clients=bool(endpoint_from_name("docker-registry").relations),
        requests_pending=is_flag_set("endpoint.docker-registry.requests-pending"),
        nrpe=hookenv.relation_ids("nrpe-external-master") if nrpe else [],
        # the latest revision: Juju then tells this unit of the next one (secret-changed)
        secret=credentials.with_record(
            credentials.read(config.get(credentials.OPTION), refresh=True),
            records.credentials_keys(),
        ),
        served_https=_served_https(),
        collector=collector,
        datastore=observe_store(hook),
        turns=turns,
        unit=unit,
        application=hookenv.application_name(),
        hook=hook,
        # (rolling changes, which only units behind a proxy with peers take, are keyed by it)
        charm_build=_charm_build() if len(peers) > 1 else "",
        leader_data=_leader_data(),
        peer_relations=peer_relations,
        opened_ports=_opened_ports(recorded),
        resource=_resource,
        charm_dir=hookenv.charm_dir() or "",
        charm_name=hookenv.charm_name() if collector else "",
        recorded=recorded,
        now=time.time(),
    )


@hookenv.cached
def _served_https() -> bool:
    """Whether clients were told https before this hook (the endpoint record of the last
    serving hook, read once a hook: what this hook's own apply records does not count)."""
    endpoint = records.endpoint()
    return bool(endpoint and endpoint.url.startswith("https://"))


def _peers(
    unit: str,
) -> tuple[dict[str, str], dict[str, dict], replicas.Peers, tuple[str, ...]]:
    """One pass over the peer relation: every unit of the application (this one included) ->
    its address (Juju's ``ingress-address``, else ``private-address``); every other unit ->
    what it reported of rolling changes and of replication; and the relation's ids."""
    units = {unit: hookenv.unit_private_ip()}
    turns, urls, in_sync = {}, {}, {}
    relations = tuple(hookenv.relation_ids("peer"))
    for rid in relations:
        for peer in hookenv.related_units(rid):
            data = hookenv.relation_get(unit=peer, rid=rid) or {}
            turns[peer] = {k: str(data.get(k) or "") for k in (rolling.TOKEN, rolling.STATE)}
            if data.get(replicas.URL_KEY):
                urls[peer] = data[replicas.URL_KEY]
            if data.get(replicas.IN_SYNC_KEY):
                in_sync[peer] = data[replicas.IN_SYNC_KEY]
            address = (data.get("ingress-address") or data.get("private-address") or "").strip()
            if clients.is_host(address.strip("[]")):
                units[peer] = address.strip("[]")
            else:
                log(f"peer {peer} has no usable address; left out of the proxy")
    replica = replicas.Peers(
        recorded=hookenv.leader_get(replicas.PRIMARY_KEY) or "", urls=urls, in_sync_with=in_sync
    )
    return units, turns, replica, relations


def _proxy_public_addresses(website: Any) -> list[str]:  # the http layer's Endpoint
    """What each haproxy unit wrote back on ``website`` (raw ``public-address``), in order."""
    found: list[str] = []
    for proxy_unit in website.all_joined_units:
        address = proxy_unit.received_raw["public-address"]
        if address and address not in found:
            found.append(address)
    return found


def _leader_data() -> LeaderData:
    """The http secret every unit shares: the URI of the Juju secret holding it (read through
    secret-get), or the value an earlier revision kept in leader data."""
    uri = hookenv.leader_get(HTTP_SECRET_ID) or ""
    value = credentials.read_owned(uri, HTTP_SECRET_KEY) if uri else ""
    return LeaderData(
        http_secret_id=uri,
        http_secret=value,
        legacy_http_secret=hookenv.leader_get(LEGACY_HTTP_SECRET) or "",
    )


def observe_store(hook: str) -> datastore.Observed:
    """The registry-data store as Juju tells it (two hook tools when one is attached), and
    the volume's fill level."""
    try:
        attached = tuple(hookenv.storage_list(datastore.STORE) or ())
        location = str(hookenv.storage_get("location", attached[0]) or "") if attached else ""
    except (subprocess.CalledProcessError, OSError) as exc:
        failed = getattr(exc, "cmd", None) or ["a storage hook tool"]
        return datastore.Observed(error=f"{failed[0]} failed")
    storage_id = os.environ.get("JUJU_STORAGE_ID", "")
    return datastore.observe(paths.current(), hook, storage_id, attached, location)


def _charm_build() -> str:
    """This charm revision (a digest of the build manifest, which lists every file's hash): an
    upgrade is a change the units take in turns too."""
    manifest = Path(hookenv.charm_dir() or ".") / ".build.manifest"
    try:
        return hashlib.sha256(manifest.read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def _opened_ports(recorded: records.Recorded) -> frozenset[str] | None:
    """Only this charm opens the unit's ports, so its record stands for opened-ports; Juju is
    asked only when there is none (the first hook of this revision)."""
    if recorded.ports is not None:
        return None
    return frozenset(p.upper() for p in hookenv.opened_ports())


def _resource() -> Path | None:
    """The registry-image resource, asked for only when the image needs it (resource-get
    may download it)."""
    try:
        path = hookenv.resource_get("registry-image")
    except Exception:  # noqa: BLE001 - older Juju raises when resources are unsupported
        path = None
    if path and Path(path).is_file() and Path(path).stat().st_size > 0:
        return Path(path)
    return None


# --- every write -------------------------------------------------------------------------------


def log(message: str, level: str | None = None) -> None:
    hookenv.log(message, level)


def announce(message: str) -> None:
    """The status while the pipeline changes the registry (the hook's own status comes at
    its end, from the status ladder)."""
    hookenv.status_set("maintenance", message)


def set_status(state: str, message: str) -> None:
    hookenv.status_set(state, message)


def request_cert(common_name: str, sans: list[str]) -> None:
    endpoint_from_name("cert-provider").request_server_cert(common_name, sans)


def tell_peers(relations: tuple[str, ...], data: Mapping[str, str]) -> None:
    """This unit's own data on the peer relation (every write fires peer-relation-changed on
    every other unit: callers write only what changed)."""
    for rid in relations:
        hookenv.relation_set(rid, dict(data))


def set_leader(data: Mapping[str, str | None]) -> None:
    hookenv.leader_set(dict(data))


def share_http_secret(value: str) -> str:
    """The leader puts the http secret in a Juju secret the application owns and its URI in
    leader data (leader-set takes values as command-line arguments: never the value itself);
    the URI, "" when secret-add failed."""
    uri = credentials.add_owned(
        {HTTP_SECRET_KEY: value}, "the http.secret every docker-registry unit shares"
    )
    if uri:
        set_leader({HTTP_SECRET_ID: uri, LEGACY_HTTP_SECRET: None})
    return uri


def set_ports(close: frozenset[str], open_: frozenset[str]) -> None:
    """Ports as "5000/TCP"."""
    for port in sorted(close):
        number, _, proto = port.partition("/")
        hookenv.close_port(int(number), proto or "TCP")
    for port in sorted(open_):
        number, _, proto = port.partition("/")
        hookenv.open_port(int(number), proto or "TCP")


def tell_nrpe(relations: list[str], monitors: str) -> None:
    for rid in relations:
        hookenv.relation_set(rid, {"monitors": monitors})


def tell_clients(data: clients.ClientData, acknowledge: bool) -> None:
    """docker-registry, through the interface layer: netloc, URL, credentials and CA to every
    client; pending image requests acknowledged (the registry serves what is pushed to it)."""
    registry = endpoint_from_name("docker-registry")
    if not registry.relations:
        return
    registry.set_registry_config(
        data.registry_netloc,
        registry_url=data.registry_url,
        basic_user=data.basic_user,
        basic_password=data.basic_password,
        tls_ca=data.tls_ca,
    )
    if acknowledge:
        registry.mark_completed()


def tell_proxy(services: str | None, port: int, address: str, hostname: str) -> None:
    """website, through the http interface layer: the leader's services (``services`` None:
    a unit that is not the leader offers no port, so haproxy makes no default service of it)."""
    website = endpoint_from_name("website")
    if not website.relations:
        return
    if services is None:
        website.set_remote(hostname=None, port=None, services=None)
        return
    website.configure(port, address, hostname)
    website.set_remote(services=services)


def tell_collector(debug_port: int, inputs: Inputs) -> None:
    """cos-agent: the scrape job of localhost:<debug-port>/metrics, the alert rules and the
    dashboards (through the cos_agent interface layer)."""
    cos.publish(
        endpoint_from_name("cos-agent"),
        debug_port=debug_port,
        charm_dir=Path(inputs.charm_dir),
        topology=cos.topology(inputs.application, inputs.unit, inputs.charm_name),
    )
