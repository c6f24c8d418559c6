"""Flag glue for the docker-registry charm: gate, call the lib, set/clear flags.

Every hook ends in ``update_status``, the one place the workload status is decided.
"""

from __future__ import annotations

import functools
import secrets
import socket
from pathlib import Path

from charmhelpers.core import hookenv, unitdata
from charmhelpers.fetch import apt_install, apt_update
from charms.reactive import (
    clear_flag,
    endpoint_from_flag,
    endpoint_from_name,
    hook,
    is_flag_set,
    set_flag,
    toggle_flag,
    when,
    when_not,
)

from charms.layer.docker_registry import (
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

REPORT = status.Report()
KV_MANAGED_FILES = "docker-registry.managed-files"
KV_IMAGE_DIGEST = "docker-registry.resource-digest"
KV_RUN_ARGV = "docker-registry.run-argv"
KV_ENDPOINT = clients.ENDPOINT_KEY
KV_TRUST = "docker-registry.docker-trust"
KV_LOCAL_SECRET = "docker-registry.http-secret"  # noqa: S105 - a key name, not a secret


def update_status() -> None:
    state, message = status.decide(REPORT)
    hookenv.status_set(state, message)


hookenv.atexit(update_status)


def _apt(packages: list[str]) -> None:
    apt_update(fatal=True)
    apt_install(packages, fatal=True)


@hook("upgrade-charm")
def recheck_install() -> None:
    clear_flag("docker-registry.installed")


@when_not("docker-registry.installed", "docker-registry.removed")
def install() -> None:
    hookenv.status_set("maintenance", "Installing the Docker engine.")
    try:
        engine.ensure_engine(_apt)
        engine.ensure_tools(_apt)
    except RegistryCharmError as exc:
        REPORT.block(str(exc) + ".")
        return
    set_flag("docker-registry.installed")


def _resource() -> Path | None:
    try:
        path = hookenv.resource_get("registry-image")
    except Exception:  # noqa: BLE001 - older Juju raises when resources are unsupported
        path = None
    if path and Path(path).is_file() and Path(path).stat().st_size > 0:
        return Path(path)
    return None


def _http_secret() -> str:
    """One secret for every unit (uploads that hop between units behind a proxy)."""
    shared = hookenv.leader_get("http-secret")
    if not shared and hookenv.is_leader():
        shared = secrets.token_urlsafe(32)
        hookenv.leader_set({"http-secret": shared})
    if shared:
        return shared
    kv = unitdata.kv()
    local = kv.get(KV_LOCAL_SECRET) or secrets.token_urlsafe(32)
    kv.set(KV_LOCAL_SECRET, local)
    return local


def _proxy_addresses() -> list[str]:
    """The public addresses haproxy units wrote on ``website``; anything else blocks."""
    website = endpoint_from_flag("website.available")
    addresses = website.proxy_addresses() if website else []
    bad = [a for a in addresses if not clients.is_host(a)]
    if bad:
        REPORT.block(f"The proxy sent an invalid public-address on website: {bad[0][:64]!r}.")
    return [a for a in addresses if a not in bad]


def _certificate_names(config: settings.Settings) -> tuple[str, list[str]]:
    return clients.certificate_names(
        config,
        addresses=[hookenv.unit_private_ip(), hookenv.unit_public_ip()],
        hostname=socket.gethostname(),
        proxies=_proxy_addresses(),
    )


def _relation_tls(config: settings.Settings) -> render.TlsMaterial | None:
    """The certificate cert-provider issued for our current common name.

    Raises RelationDataError when it cannot be served (key does not match, expired, not from
    the CA): the running registry keeps its last good certificate."""
    provider = endpoint_from_flag("cert-provider.server.certs.available")
    if not provider:
        return None
    cn, _ = _certificate_names(config)
    issued = provider.server_certs_map.get(cn)
    if issued is None:
        return None
    # only the PEM blocks: easyrsa puts an `openssl x509 -text` dump before each certificate
    ca = tls_lib.pem_text(provider.get_ca())
    cert, key = tls_lib.pem_text(issued.cert), tls_lib.private_key_pem(issued.key)
    why = tls_lib.server_pair_problem(
        cert=cert, key=key, ca=ca + tls_lib.pem_text(provider.get_chain())
    )
    if why:
        raise RelationDataError(f"cert-provider sent an unusable server certificate: {why}.")
    return render.TlsMaterial(cert=cert, key=key, ca=ca, source="relation")


def _tls(config: settings.Settings) -> render.TlsMaterial | None:
    """TLS by config (tls-*-blob) wins over the cert-provider relation."""
    if config.tls_blobs:
        blobs = config.tls_blobs
        return render.TlsMaterial(cert=blobs.cert, key=blobs.key, ca=blobs.ca, source="config")
    material = _relation_tls(config)
    if material is None and is_flag_set("cert-provider.available"):
        REPORT.wait("Waiting for a server certificate from cert-provider.")
    return material


def _client_identity(
    config: settings.Settings, tls: render.TlsMaterial | None
) -> tuple[str, str] | None:
    """Mutual TLS: the certificate this unit's own tools (actions, nrpe check, local docker)
    present to the registry: cert-provider's shared client certificate, when the CA in use
    issued it. None (with a status note saying why) when there is no usable one."""
    if not (config.tls_client_auth and tls and tls.ca):
        return None
    provider = endpoint_from_flag("cert-provider.available")
    cert, key = provider.get_client_cert() if provider else (None, None)
    why = (
        tls_lib.client_pair_problem(cert=cert, key=key, ca=tls.ca)
        if cert and key
        else "cert-provider gave none"
    )
    if why:
        REPORT.notes.append(
            f"Note: no client certificate for this unit ({why}): "
            "actions and the nrpe check cannot pass tls-client-auth."
        )
        return None
    return tls_lib.pem_text(cert), tls_lib.private_key_pem(key)


def _proxy_netloc(config: settings.Settings) -> str:
    """The proxy's address with its port when haproxy fronts us ("" otherwise)."""
    addresses = _proxy_addresses()
    return proxy.proxy_netloc(addresses[0], config.registry_port) if addresses else ""


def _netloc(config: settings.Settings) -> str:
    return clients.netloc(
        config, ingress_address=hookenv.unit_private_ip(), proxy_netloc=_proxy_netloc(config)
    )


def _registry_units() -> dict[str, str]:
    """Every unit of the application (this one included) -> its address."""
    units = {unit: address for unit, address, _ in endpoint_from_name("peer").units()}
    units.setdefault(hookenv.local_unit(), hookenv.unit_private_ip())
    return units


@functools.cache
def _load_settings() -> settings.Settings | None:
    """The config, parsed and checked once per hook (it cannot change within one)."""
    try:
        return settings.parse(hookenv.config())
    except ConfigError as exc:
        REPORT.block(f"Invalid charm config: {exc.summary()}")
        return None
    except InstallError as exc:  # openssl, which checks tls-*-blob, is gone
        REPORT.block(str(exc) + ".")
        return None


def _sync_ports(wanted: set[str]) -> None:
    opened = {p.upper() for p in hookenv.opened_ports()}
    for port in opened - wanted:
        number, _, proto = port.partition("/")
        hookenv.close_port(int(number), proto or "TCP")
    for port in wanted - opened:
        number, _, proto = port.partition("/")
        hookenv.open_port(int(number), proto)


@when("docker-registry.installed")
@when_not("docker-registry.removed")
def configure() -> None:
    config = _load_settings()
    if config is None:
        return  # the running registry keeps its last good config
    host = paths.current()
    kv = unitdata.kv()
    try:
        digest = engine.ensure_image(
            config.registry_image, _resource(), kv.get(KV_IMAGE_DIGEST, "")
        )
        kv.set(KV_IMAGE_DIGEST, digest)
        tls = _tls(config)
        htpasswd = ""
        if config.basic_auth:
            htpasswd = auth.htpasswd_line(
                config.basic_auth.user,
                config.basic_auth.password,
                host.path(render.HTPASSWD_FILE),
            )
        address = hookenv.unit_private_ip()
        desired = render.desired(
            config,
            host=host,
            unit_address=address,
            tls=tls,
            http_secret=_http_secret(),
            htpasswd=htpasswd,
            realm=hookenv.service_name(),
        )
        outcome, managed = workload.apply(
            desired,
            host=host,
            unit_address=address,
            managed_files=kv.get(KV_MANAGED_FILES, []),
            allow_start=not is_flag_set("docker-registry.stopped"),
            announce=lambda current: hookenv.status_set(
                "maintenance",
                "Reconfiguring the registry." if current else "Configuring the registry.",
            ),
        )
    except RegistryCharmError as exc:
        REPORT.block(str(exc))
        clear_flag("docker-registry.configured")
        return
    kv.set(KV_MANAGED_FILES, managed)
    kv.set(KV_RUN_ARGV, outcome.run_argv)
    if outcome.action != "unchanged":
        hookenv.log(f"registry container {desired.run.name}: {outcome.action}")
    ports = {f"{config.registry_port}/TCP"}
    if config.prometheus_metrics:
        ports.add(f"{config.debug_port}/TCP")
    _sync_ports(ports)
    toggle_flag("docker-registry.tls.available", tls is not None)
    toggle_flag("docker-registry.auth.configured", config.auth is not None)
    if outcome.action == "stopped-by-operator":
        REPORT.block(f"{desired.run.name} container is stopped.")
        clear_flag("docker-registry.configured")
        return
    if not outcome.answering:
        REPORT.wait(f"Waiting for the registry to answer at {outcome.probe_url}/v2/.")
        clear_flag("docker-registry.configured")
        return
    set_flag("docker-registry.configured")
    REPORT.ready_at = _netloc(config)
    REPORT.scheme = desired.scheme
    REPORT.proxied = bool(_proxy_netloc(config))
    if REPORT.proxied and config.storage.kind == "filesystem" and len(_registry_units()) > 1:
        REPORT.block(
            "Units do not share data (filesystem storage behind a proxy): "
            "use storage-s3-* or storage-swift-*."
        )
    if tls and not tls_lib.covers(tls.cert, clients.netloc_host(REPORT.ready_at)):
        REPORT.notes.append(
            f"Warning: the certificate does not cover {clients.netloc_host(REPORT.ready_at)}."
        )
    if config.cache and config.cache.username:
        REPORT.notes.append("Note: registry 2.8 does not send cache-username upstream.")
    identity = _client_identity(config, tls)
    _update_nrpe(config, host, desired.scheme, address, tls, identity)
    kv.set(
        KV_TRUST,
        trust.trust(
            host,
            netloc=REPORT.ready_at,
            ca=tls.ca if tls else "",
            previous=kv.get(KV_TRUST),
            client=identity,
        ),
    )
    client_cert, client_key = trust.client_files(host, REPORT.ready_at) if identity else ("", "")
    kv.set(
        KV_ENDPOINT,
        clients.Endpoint(
            netloc=REPORT.ready_at,
            url=f"{desired.scheme}://{REPORT.ready_at}",
            local_url=outcome.probe_url,
            ca_file=str(host.path(config.tls_paths.ca)) if tls and tls.ca else "",
            client_cert_file=str(client_cert),
            client_key_file=str(client_key),
        ).as_dict(),
    )


@when("cert-provider.available")
@when_not("docker-registry.removed")
def request_certificate() -> None:
    config = _load_settings()
    if config is None:
        return
    cn, sans = _certificate_names(config)
    endpoint_from_flag("cert-provider.available").request_server_cert(cn, sans)


@when("docker-registry.configured", "endpoint.docker-registry.joined")
def publish_to_clients() -> None:
    config = _load_settings()
    if config is None:
        return
    try:
        tls = _tls(config)
    except RegistryCharmError:
        return  # configure blocked on it; clients keep what they have
    registry = endpoint_from_flag("endpoint.docker-registry.joined")
    data = clients.client_data(
        config,
        netloc=_netloc(config),
        scheme="https" if tls else "http",
        tls_ca=tls.ca if tls else "",
    )
    registry.set_registry_data(
        netloc=data.registry_netloc,
        url=data.registry_url,
        basic_user=data.basic_user,
        basic_password=data.basic_password,
        tls_ca=data.tls_ca,
    )


@when("docker-registry.installed")
@when_not("docker-registry.removed")
def publish_to_peers() -> None:
    config = _load_settings()
    if config is not None:
        endpoint_from_name("peer").publish(hookenv.unit_private_ip(), config.registry_port)


@when("website.available", "docker-registry.configured")
def publish_to_proxy() -> None:
    """The leader speaks for the application: one service, every unit a server."""
    website = endpoint_from_flag("website.available")
    config = _load_settings()
    if config is None or not hookenv.is_leader():
        website.withdraw()
        return
    services = proxy.services(
        _registry_units(),
        config.registry_port,
        tls=is_flag_set("docker-registry.tls.available"),
        client_auth=config.tls_client_auth,
    )
    address = hookenv.unit_private_ip()
    website.publish_services(services, socket.gethostname(), address, config.registry_port)


def _update_nrpe(
    config: settings.Settings, host, scheme: str, address: str, tls, identity
) -> None:
    """nrpe-external-master: a check of /v2/ over the scheme actually served, logging in with
    the charm's basic-auth credentials (from a nagios-only file) and presenting the unit's
    client certificate when the registry requires one."""
    rids = hookenv.relation_ids("nrpe-external-master")
    if not rids:
        return
    ca_file = str(host.path(config.tls_paths.ca)) if tls and tls.ca else ""
    basic = config.basic_auth
    credentials = (basic.user, basic.password) if basic else None
    check = nrpe.check_definition(
        scheme,
        address,
        config.registry_port,
        ca_file=ca_file,
        credentials_file=str(host.path(nrpe.CREDENTIALS_PATH)) if credentials else "",
        client_pair=nrpe.client_files(host) if identity else None,
    )
    nrpe.install(host, credentials, client=identity)
    path, content = nrpe.nrpe_command_file(check)
    files.write_if_changed(host.path(path), content, 0o644)
    for rid in rids:
        hookenv.relation_set(rid, {"monitors": nrpe.monitors(check)})


@hook("stop")
def remove_container() -> None:
    """The unit is going away: remove its container (the stored images stay on disk)."""
    from charms.layer.docker_registry import container

    set_flag("docker-registry.removed")
    config = _load_settings()
    name = paths.current().container_name(config.registry_name if config else "registry")
    try:
        if container.inspect(name):
            container.stop(name)
            container.remove(name)
    except RegistryCharmError as exc:
        hookenv.log(f"could not remove {name}: {exc}", hookenv.WARNING)
    REPORT.busy("Stopped.")
