"""The doors into one pipeline per hook: gather, decide, apply, record.

``reconcile`` is the pipeline. It runs in every hook once the engine is installed, and again
in the same hook only when an interface layer changes one of the flags it watches after it ran
(the tls-certificates layer sets ``cert-provider.server.certs.available`` in the very hook the
certificate arrives) and then only if what it gathered differs. So whatever a hook brings (a
certificate, a proxy address, a peer, a client) takes effect in that hook.

The status is decided once, at the end of every hook, from what the last run found.
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from charmhelpers.core import hookenv, unitdata
from charmhelpers.fetch import apt_install, apt_update
from charms.reactive import (
    clear_flag,
    endpoint_from_name,
    hook,
    is_flag_set,
    set_flag,
    toggle_flag,
    when,
    when_any,
    when_not,
)

from charms.layer.docker_registry import (
    actions,
    auth,
    clients,
    engine,
    files,
    nrpe,
    paths,
    proxy,
    render,
    settings,
    status,
    trust,
    workload,
)
from charms.layer.docker_registry import (
    tls as tls_lib,
)
from charms.layer.docker_registry.errors import (
    ConfigError,
    InstallError,
    RegistryCharmError,
    RelationDataError,
)

KV_MANAGED_FILES = "docker-registry.managed-files"
KV_IMAGE_DIGEST = "docker-registry.resource-digest"
KV_RUN = actions.RUN_KEY  # render.ContainerRun record of what runs
KV_ENDPOINT = clients.ENDPOINT_KEY
KV_TRUST = "docker-registry.docker-trust"
KV_LOCAL_SECRET = "docker-registry.http-secret"  # noqa: S105 - a key name, not a secret
KV_LAST_GOOD = "docker-registry.last-good"  # run arguments and files that last answered
KV_FAILED = "docker-registry.failed-config"  # the new config that was rolled back

INSTALLED = "docker-registry.installed"
STOPPED = actions.STOPPED_FLAG
REMOVED = "docker-registry.removed"
CONFIGURED = actions.CONFIGURED_FLAG
# Flags other layers set during dispatch that change what the pipeline decides.
WATCHED = (
    INSTALLED,
    "cert-provider.available",
    "cert-provider.ca.available",
    "cert-provider.ca.changed",
    "cert-provider.server.certs.available",
    "cert-provider.server.certs.changed",
    "cert-provider.client.cert.available",
    "website.available",
)

_install_report = status.Report()
_last: dict = {"inputs": None, "report": None}  # the pipeline's last run in this hook


def report_status() -> None:
    report = _last["report"] if _install_report.empty() and _last["report"] else _install_report
    hookenv.status_set(*status.decide(report))
    if report.ready_at:  # what actions that restart the registry report again
        unitdata.kv().set(status.SERVING_KEY, report.as_record())


hookenv.atexit(report_status)


def _apt(packages: list[str]) -> None:
    apt_update(fatal=True)
    apt_install(packages, fatal=True)


@hook("upgrade-charm")
def recheck_install() -> None:
    clear_flag(INSTALLED)


@when_not(INSTALLED, REMOVED)
def install() -> None:
    hookenv.status_set("maintenance", "Installing the Docker engine.")
    try:
        engine.ensure_engine(_apt)
        engine.ensure_tools(_apt)
    except RegistryCharmError as exc:
        _install_report.block(str(exc) + ".")
        return
    set_flag(INSTALLED)


@when(INSTALLED)
@when_not(REMOVED)
@when_any(*WATCHED)  # always true here: it names the flags whose change re-runs the pipeline
def reconcile() -> None:
    inputs = gather()
    if inputs == _last["inputs"]:
        return  # a watched flag changed, but nothing this pipeline reads did
    _last["inputs"] = inputs
    _last["report"] = report = status.Report()
    try:
        config = settings.parse(inputs.config)
    except ConfigError as exc:
        # the running registry, its clients and the proxy keep the last good config
        report.block(f"Invalid charm config: {exc.summary()}")
        return
    except InstallError as exc:  # openssl, which checks tls-*-blob, is gone
        report.block(str(exc) + ".")
        return
    try:
        apply(config, inputs, report)
    except OSError as exc:  # a full disk, a directory where a file should be, ...
        what = exc.filename or "a file"
        report.block(f"Cannot write {what}: {exc.strerror or exc}.")


@hook("stop")
def remove_container() -> None:
    """The unit is going away: remove its container (the stored images stay on disk)."""
    from charms.layer.docker_registry import container

    set_flag(REMOVED)
    try:
        name = settings.parse(hookenv.config()).registry_name
    except (ConfigError, InstallError):
        name = "registry"
    name = paths.current().container_name(name)
    try:
        if container.inspect(name):
            container.stop(name)
            container.remove(name)
    except RegistryCharmError as exc:
        hookenv.log(f"could not remove {name}: {exc}", hookenv.WARNING)
    _install_report.busy("Stopped.")


# --- gather: everything the pipeline reads, read once ---------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What one run of the pipeline reads from Juju (compared between runs in one hook)."""

    config: dict
    address: str
    public_address: str
    hostname: str
    leader: bool
    stopped: bool
    tls_joined: bool
    issued: dict  # common name -> (cert, key) as cert-provider sent them
    ca: str
    chain: str
    client_cert: tuple
    proxies: list[str]
    peers: dict[str, str]
    clients: bool
    nrpe: list[str]


def gather() -> Inputs:
    provider = endpoint_from_name("cert-provider")
    tls_joined = is_flag_set("endpoint.cert-provider.joined")
    issued = {}
    if tls_joined:
        issued = {c.common_name: (c.cert, c.key) for c in provider.server_certs}
    client_cert = provider.get_client_cert() if tls_joined else (None, None)
    return Inputs(
        config=dict(hookenv.config()),
        address=hookenv.unit_private_ip(),
        public_address=hookenv.unit_public_ip(),
        hostname=socket.gethostname(),
        leader=hookenv.is_leader(),
        stopped=is_flag_set(STOPPED),
        tls_joined=tls_joined,
        issued=issued,
        ca=(provider.get_ca() or "") if tls_joined else "",
        chain=(provider.get_chain() or "") if tls_joined else "",
        client_cert=tuple(client_cert),
        proxies=_proxy_public_addresses(),
        peers=_peer_addresses(),
        clients=bool(endpoint_from_name("docker-registry").relations),
        nrpe=hookenv.relation_ids("nrpe-external-master"),
    )


def _proxy_public_addresses() -> list[str]:
    """What each haproxy unit wrote back on ``website`` (raw ``public-address``)."""
    found: list[str] = []
    for unit in endpoint_from_name("website").all_joined_units:
        address = unit.received_raw["public-address"]
        if address and address not in found:
            found.append(address)
    return found


def _peer_addresses() -> dict[str, str]:
    """Every unit of the application (this one included) -> its address.

    The peer relation (``peer-discovery``, as in the reference charm) carries no data of its
    own: Juju's ``ingress-address`` (or ``private-address``) of each unit is the address, and
    the registry port is application config, the same on every unit."""
    units = {hookenv.local_unit(): hookenv.unit_private_ip()}
    for rid in hookenv.relation_ids("peer"):
        for unit in hookenv.related_units(rid):
            data = hookenv.relation_get(unit=unit, rid=rid) or {}
            address = data.get("ingress-address") or data.get("private-address") or ""
            if clients.is_host(address.strip("[]")):
                units[unit] = address.strip("[]")
            else:
                hookenv.log(f"peer {unit} has no usable address; left out of the proxy")
    return units


# --- decide (pure) ---------------------------------------------------------------------------


def _proxy_addresses(inputs: Inputs, report: status.Report) -> list[str]:
    bad = [a for a in inputs.proxies if not clients.is_host(a)]
    if bad:
        report.block(f"The proxy sent an invalid public-address on website: {bad[0][:64]!r}.")
    return [a for a in inputs.proxies if a not in bad]


def _tls(
    config: settings.Settings, inputs: Inputs, common_name: str, report: status.Report
) -> render.TlsMaterial | None:
    """TLS by config (tls-*-blob) wins over the cert-provider relation; from the relation, the
    certificate issued for this unit's common name.

    Raises RelationDataError when cert-provider's one cannot be served (key does not match,
    expired, not from the CA): the running registry keeps its last good certificate."""
    if config.tls_blobs:
        blobs = config.tls_blobs
        return render.TlsMaterial(cert=blobs.cert, key=blobs.key, ca=blobs.ca, source="config")
    if not inputs.tls_joined:
        return None
    cert, key = inputs.issued.get(common_name, (None, None))
    if not (cert and key):
        report.wait("Waiting for a server certificate from cert-provider.")
        # a certificate in flight (new common name): keep serving https with one issued
        # before, never fall back to http while the CA relation exists
        cert, key = next(iter(inputs.issued.values()), (None, None))
    if not (cert and key):
        return None
    cert, key = tls_lib.pem_text(cert), tls_lib.private_key_pem(key)
    ca, chain = tls_lib.pem_text(inputs.ca), tls_lib.pem_text(inputs.chain)
    why = tls_lib.server_pair_problem(cert=cert, key=key, ca=ca + chain)
    if why:
        raise RelationDataError(f"cert-provider sent an unusable server certificate: {why}.")
    return render.TlsMaterial(cert=cert, key=key, ca=ca, source="relation")


def _client_identity(
    config: settings.Settings, inputs: Inputs, tls: render.TlsMaterial | None, report
) -> tuple[str, str] | None:
    """Mutual TLS: the certificate this unit's own tools (actions, nrpe check, local docker)
    present to the registry: cert-provider's shared client certificate, when the CA in use
    issued it. None (with a status note saying why) when there is no usable one."""
    if not (config.tls_client_auth and tls and tls.ca):
        return None
    cert, key = inputs.client_cert
    cert, key = tls_lib.pem_text(cert), tls_lib.private_key_pem(key)
    why = (
        tls_lib.client_pair_problem(cert=cert, key=key, ca=tls.ca)
        if cert and key
        else "cert-provider gave none"
    )
    if why:
        report.notes.append(
            f"Note: no client certificate for this unit ({why}): "
            "actions and the nrpe check cannot pass tls-client-auth."
        )
        return None
    return cert, key


# --- apply and record --------------------------------------------------------------------------


def _resource() -> Path | None:
    try:
        path = hookenv.resource_get("registry-image")
    except Exception:  # noqa: BLE001 - older Juju raises when resources are unsupported
        path = None
    if path and Path(path).is_file() and Path(path).stat().st_size > 0:
        return Path(path)
    return None


def _http_secret(leader: bool) -> str:
    """One secret for every unit (uploads that hop between units behind a proxy)."""
    shared = hookenv.leader_get("http-secret")
    if not shared and leader:
        shared = secrets.token_urlsafe(32)
        hookenv.leader_set({"http-secret": shared})
    if shared:
        return shared
    kv = unitdata.kv()
    local = kv.get(KV_LOCAL_SECRET) or secrets.token_urlsafe(32)
    kv.set(KV_LOCAL_SECRET, local)
    return local


def _sync_ports(wanted: set[str]) -> None:
    opened = {p.upper() for p in hookenv.opened_ports()}
    for port in opened - wanted:
        number, _, proto = port.partition("/")
        hookenv.close_port(int(number), proto or "TCP")
    for port in wanted - opened:
        number, _, proto = port.partition("/")
        hookenv.open_port(int(number), proto)


def apply(config: settings.Settings, inputs: Inputs, report: status.Report) -> None:
    host, kv = paths.current(), unitdata.kv()
    proxies = _proxy_addresses(inputs, report)
    proxy_netloc = proxy.proxy_netloc(proxies[0], config.registry_port) if proxies else ""
    netloc = clients.netloc(config, ingress_address=inputs.address, proxy_netloc=proxy_netloc)
    common_name, sans = clients.certificate_names(
        config,
        addresses=[inputs.address, inputs.public_address],
        hostname=inputs.hostname,
        proxies=proxies,
    )
    if inputs.tls_joined and not config.tls_blobs:
        endpoint_from_name("cert-provider").request_server_cert(common_name, sans)
    ran = _run_registry(config, inputs, report, host, common_name)
    if ran is None:
        return
    desired, outcome, tls = ran
    if not _serving(config, desired, outcome, report):
        return
    report.ready_at, report.scheme, report.proxied = netloc, desired.scheme, bool(proxy_netloc)
    _status_notes(config, inputs, tls, netloc, report)
    identity = _client_identity(config, inputs, tls, report)
    ca_file = str(host.path(config.tls_paths.ca)) if tls and tls.ca else ""
    if not (tls is None and inputs.tls_joined and not config.tls_blobs):
        # (while TLS is expected but not there yet, clients and the proxy are not told http)
        _publish_to_clients(config, netloc, desired.scheme, tls)
        _publish_to_proxy(config, inputs, tls is not None)
    _update_nrpe(config, inputs, host, desired.scheme, ca_file, identity)
    trusted = trust.trust(
        host, netloc=netloc, ca=tls.ca if tls else "", previous=kv.get(KV_TRUST), client=identity
    )
    if trusted.get("reload_failed"):
        report.notes.append("Warning: dockerd did not reload daemon.json (insecure-registries).")
    kv.set(KV_TRUST, trusted)
    client_cert, client_key = trust.client_files(host, netloc) if identity else ("", "")
    kv.set(
        KV_ENDPOINT,
        clients.Endpoint(
            netloc=netloc,
            url=f"{desired.scheme}://{netloc}",
            local_url=outcome.probe_url,
            ca_file=ca_file,
            client_cert_file=str(client_cert),
            client_key_file=str(client_key),
        ).as_dict(),
    )


def _run_registry(config, inputs: Inputs, report, host, common_name: str):
    """Image, TLS material, files and container: (desired, outcome, tls), or None (blocked)."""
    kv = unitdata.kv()
    try:
        digest = engine.ensure_image(
            config.registry_image, _resource(), kv.get(KV_IMAGE_DIGEST, "")
        )
        kv.set(KV_IMAGE_DIGEST, digest)
        tls = _tls(config, inputs, common_name, report)
        if config.tls_client_auth and not (tls and tls.ca) and not report.waiting:
            report.block(
                "tls-client-auth needs a CA to verify clients: "
                "set tls-ca-blob (with tls-cert-blob and tls-key-blob) or relate cert-provider."
            )
            return None
        htpasswd = ""
        if config.basic_auth:
            htpasswd = auth.htpasswd_line(
                config.basic_auth.user,
                config.basic_auth.password,
                host.path(render.HTPASSWD_FILE),
            )
        desired = render.desired(
            config,
            host=host,
            unit_address=inputs.address,
            tls=tls,
            http_secret=_http_secret(inputs.leader),
            htpasswd=htpasswd,
            realm=hookenv.service_name(),
        )
        outcome, managed = workload.apply(
            desired,
            host=host,
            managed_files=kv.get(KV_MANAGED_FILES, []),
            allow_start=not inputs.stopped,
            announce=lambda current: hookenv.status_set(
                "maintenance",
                "Reconfiguring the registry." if current else "Configuring the registry.",
            ),
            last_good=kv.get(KV_LAST_GOOD),
            failed=kv.get(KV_FAILED),
            secrets=config.secret_values,
        )
    except RegistryCharmError as exc:
        report.block(str(exc))
        clear_flag(CONFIGURED)
        return None
    kv.set(KV_MANAGED_FILES, managed)
    kv.set(KV_RUN, outcome.run.as_record())
    kv.set(KV_LAST_GOOD, outcome.last_good)
    kv.set(KV_FAILED, outcome.failed)
    if outcome.action != "unchanged":
        hookenv.log(f"registry container {desired.run.name}: {outcome.action}")
    return desired, outcome, tls


def _serving(config, desired, outcome: workload.Outcome, report: status.Report) -> bool:
    """Whether the new config serves; otherwise the status says why."""
    toggle_flag(CONFIGURED, outcome.answering)
    if outcome.problem:
        # the last good registry serves on; clients and the proxy keep what they were told
        report.block(outcome.problem + "; serving the last good config.")
        return False
    ports = {f"{config.registry_port}/TCP"}
    if config.prometheus_metrics:
        ports.add(f"{config.debug_port}/TCP")
    _sync_ports(ports)
    if outcome.action == "stopped-by-operator":
        report.blocked += status.stopped(desired.run.name).blocked
        return False
    if not outcome.answering:
        report.wait(f"Waiting for the registry to answer at {outcome.probe_url}/v2/.")
        return False
    return True


def _status_notes(config, inputs: Inputs, tls, netloc: str, report: status.Report) -> None:
    if report.proxied and config.storage.kind == "filesystem" and len(inputs.peers) > 1:
        report.block(
            "Units do not share data (filesystem storage behind a proxy): "
            "use storage-s3-* or storage-swift-*."
        )
    host = clients.netloc_host(netloc)
    if tls and not tls_lib.covers(tls.cert, host):
        report.notes.append(f"Warning: the certificate does not cover {host}.")
    if config.cache and config.cache.username:
        report.notes.append("Note: registry 2.8 does not send cache-username upstream.")


def _publish_to_clients(config: settings.Settings, netloc: str, scheme: str, tls) -> None:
    """docker-registry: netloc, URL, credentials and CA to every client (containerd, docker).
    Image requests from clients are acknowledged: the registry serves what is pushed to it."""
    registry = endpoint_from_name("docker-registry")
    if not registry.relations:
        return
    data = clients.client_data(config, netloc=netloc, scheme=scheme, tls_ca=tls.ca if tls else "")
    registry.set_registry_config(
        data.registry_netloc,
        registry_url=data.registry_url,
        basic_user=data.basic_user,
        basic_password=data.basic_password,
        tls_ca=data.tls_ca,
    )
    if is_flag_set("endpoint.docker-registry.requests-pending"):
        registry.mark_completed()


def _publish_to_proxy(config: settings.Settings, inputs: Inputs, tls: bool) -> None:
    """website: the leader speaks for the application, one service with every unit a server;
    the other units offer no port, so haproxy does not make a default service of them."""
    website = endpoint_from_name("website")
    if not website.relations:
        return
    if not inputs.leader:
        website.set_remote(hostname=None, port=None, services=None)
        return
    services = proxy.services(
        inputs.peers, config.registry_port, tls=tls, client_auth=config.tls_client_auth
    )
    website.configure(config.registry_port, inputs.address, inputs.hostname)
    website.set_remote(services=proxy.services_yaml(services))


def _update_nrpe(config, inputs: Inputs, host, scheme: str, ca_file: str, identity) -> None:
    """nrpe-external-master: a check of /v2/ over the scheme actually served, logging in with
    the charm's basic-auth credentials (from a nagios-only file) and presenting the unit's
    client certificate when the registry requires one."""
    if not inputs.nrpe:
        return
    basic = config.basic_auth
    credentials = (basic.user, basic.password) if basic else None
    check = nrpe.check_definition(
        scheme,
        inputs.address,
        config.registry_port,
        ca_file=ca_file,
        credentials_file=str(host.path(nrpe.CREDENTIALS_PATH)) if credentials else "",
        client_pair=nrpe.client_files(host) if identity else None,
    )
    nrpe.install(host, credentials, client=identity)
    path, content = nrpe.nrpe_command_file(check)
    files.write_if_changed(host.path(path), content, 0o644)
    for rid in inputs.nrpe:
        hookenv.relation_set(rid, {"monitors": nrpe.monitors(check)})
