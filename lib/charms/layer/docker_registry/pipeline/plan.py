"""Decide, from everything a hook gathered, what this unit should look like (no side effects).

The hook's pipeline is gather (``juju.gather`` reads Juju once into ``Inputs``), decide
(``decide`` here: TLS source, netloc, scheme, certificate names, ports, whether clients and
the proxy are told, status facts; then ``work.decide``), apply (workload, files, relations)
and record (kv).
Certificates are checked with the openssl tool, which reads them from stdin and writes
nothing: the decisions stay free of side effects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import tls as tls_lib
from charms.layer.docker_registry.config.credentials import SecretRead
from charms.layer.docker_registry.config.settings import Settings
from charms.layer.docker_registry.errors import ConfigError
from charms.layer.docker_registry.pipeline import clients, proxy, status
from charms.layer.docker_registry.pipeline.datastore import Observed
from charms.layer.docker_registry.pipeline.render import TlsMaterial
from charms.layer.docker_registry.pipeline.replicas import Peers


@dataclass(frozen=True)
class LeaderData:
    """The http secret every unit shares, as leader data points to it."""

    http_secret_id: str = ""  # the URI of the Juju secret holding it
    http_secret: str = field(default="", repr=False)  # that secret's value (secret-get)
    legacy_http_secret: str = field(default="", repr=False)  # an earlier revision's value


def _no_resource() -> Path | None:
    return None


@dataclass(frozen=True)
class Inputs:
    """What one run of the pipeline reads from Juju (``juju.gather``; compared between runs
    in one hook)."""

    config: dict
    address: str
    public_address: str  # "" unless a certificate is requested (it is one of its names)
    hostname: str
    leader: bool
    stopped: bool
    tls_joined: bool
    issued: dict  # common name -> (cert, key) as cert-provider sent them
    ca: str
    chain: str
    client_cert: tuple
    proxies: list[str]  # each haproxy unit's public-address, as sent
    peers: dict[str, str]  # every unit (this one too) -> its address; {} without a proxy
    clients: bool
    nrpe: list[str]
    served_https: bool = False  # what the last serving hook told clients was https
    collector: bool = False  # a COS collector is related over cos-agent
    secret: SecretRead | None = None  # what the credentials option names, read in this hook
    datastore: Observed = field(default_factory=Observed)  # the registry-data store
    turns: dict = field(default_factory=dict)  # peer -> its rolling-* data (with the proxy)
    replica: Peers | None = None  # leader data and peer data of replication (with a proxy)
    requests_pending: bool = False  # a client asked for images (docker-registry)
    unit: str = ""
    application: str = ""  # also the realm of token auth
    hook: str = ""
    charm_build: str = ""  # a digest of this charm revision's build manifest
    charm_dir: str = ""
    charm_name: str = ""  # (read only while a COS collector is related)
    leader_data: LeaderData = field(default_factory=LeaderData)
    peer_relations: tuple[str, ...] = ()  # the peer relation's id (with a proxy)
    # what Juju has open: read only when the charm has no record of what it opened
    opened_ports: frozenset[str] | None = field(default=None, compare=False)
    # the registry-image resource's path, asked for only when the image needs it
    resource: Callable[[], Path | None] = field(default=_no_resource, compare=False)
    # what earlier hooks recorded, and the time (a second run in one hook reads its own
    # records: they are not what tells whether anything changed)
    recorded: records.Recorded = field(default_factory=records.Recorded, compare=False)
    now: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Plan:
    """What this unit should serve and tell, and the status facts known before applying."""

    netloc: str  # what clients dial: http-host, else the proxy, else this unit
    proxied: bool
    common_name: str
    sans: list[str]
    request_cert: bool  # ask cert-provider for (common_name, sans)
    tls: TlsMaterial | None
    identity: tuple[str, str] | None  # the client certificate this unit's own tools present
    ports: frozenset[str]  # what Juju should have open ("5000/TCP")
    tell_peers: bool  # False while TLS is expected but not here: nobody is told http
    problem: str = ""  # why the registry must not be (re)configured now: blocks
    report: status.Report = field(default_factory=status.Report)  # facts, whatever happens
    when_serving: status.Report = field(default_factory=status.Report)  # facts once serving


def decide(config: Settings, inputs: Inputs) -> Plan:
    report, when_serving = status.Report(), status.Report()
    proxies = _valid_proxies(inputs, report)
    proxy_netloc = proxy.proxy_netloc(proxies[0], config.registry_port) if proxies else ""
    netloc = clients.netloc(config, ingress_address=inputs.address, proxy_netloc=proxy_netloc)
    own = [c.host for c in config.caches if c.host == netloc.lower()]
    if own:
        raise ConfigError([("caches", f"{own[0]} is this registry's own address")])
    common_name, sans = clients.certificate_names(
        config,
        addresses=[inputs.address, inputs.public_address],
        hostname=inputs.hostname,
        proxies=proxies,
    )
    problem = ""
    try:
        tls = _tls(config, inputs, common_name, report)
    except ValueError as exc:
        tls, problem = None, str(exc)
    if not problem and config.tls_client_auth and not (tls and tls.ca) and not report.waiting:
        problem = (
            "tls-client-auth needs a CA to verify clients: "
            "set tls-ca-blob (with tls-cert-blob and tls-key-blob) or relate cert-provider."
        )
    if (
        not problem
        and tls is None
        and not inputs.tls_joined  # (a certificate in flight: clients are not told http)
        and inputs.served_https
        and (config.basic_auth or config.token_auth)
    ):
        problem = _tls_gone(config)
    _serving_facts(config, inputs, tls, netloc, bool(proxy_netloc), when_serving)
    if inputs.collector and config.debug_port == config.registry_port:
        raise ConfigError(
            [("debug-port", "must differ from registry-port while cos-agent is related")]
        )
    # the debug listener is on the loopback only: its port is never opened
    ports = {f"{config.registry_port}/TCP"}
    ports |= {f"{cache.port}/TCP" for cache in config.caches}
    return Plan(
        netloc=netloc,
        proxied=bool(proxy_netloc),
        common_name=common_name,
        sans=sans,
        request_cert=inputs.tls_joined and not config.tls_blobs,
        tls=tls,
        identity=_client_identity(config, inputs, tls, when_serving),
        ports=frozenset(ports),
        tell_peers=not (tls is None and inputs.tls_joined and not config.tls_blobs),
        problem=problem,
        report=report,
        when_serving=when_serving,
    )


def _tls_gone(config: Settings) -> str:
    """TLS went away (cert-provider removed, its certificate gone) under a registry with auth:
    its clients would be told plain http and send their credentials in clear. The running
    registry keeps its last certificate until the operator decides."""
    auth = "auth-basic-password" if config.basic_auth else "auth-token-*"
    return (
        f"TLS is gone while {auth} is set; still serving https with the last certificate: "
        "relate cert-provider or set tls-cert-blob and tls-key-blob, "
        f"or unset {auth} to serve plain http."
    )


def _valid_proxies(inputs: Inputs, report: status.Report) -> list[str]:
    bad = [a for a in inputs.proxies if not clients.is_host(a)]
    if bad:
        report.block(f"The proxy sent an invalid public-address on website: {bad[0][:64]!r}.")
    return [a for a in inputs.proxies if a not in bad]


def _tls(
    config: Settings, inputs: Inputs, common_name: str, report: status.Report
) -> TlsMaterial | None:
    """TLS by config (tls-*-blob) wins over the cert-provider relation; from the relation, the
    certificate issued for this unit's common name.

    Raises ValueError when cert-provider's one cannot be served (key does not match, expired,
    not from the CA): the running registry keeps its last good certificate."""
    if config.tls_blobs:
        blobs = config.tls_blobs
        return TlsMaterial(cert=blobs.cert, key=blobs.key, ca=blobs.ca, source="config")
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
        raise ValueError(f"cert-provider sent an unusable server certificate: {why}.")
    return TlsMaterial(cert=cert, key=key, ca=ca, source="relation")


def _client_identity(
    config: Settings, inputs: Inputs, tls: TlsMaterial | None, when_serving: status.Report
) -> tuple[str, str] | None:
    """Mutual TLS: cert-provider's shared client certificate, when the CA in use issued it.
    None (with a status note saying why) when there is no usable one."""
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
        when_serving.notes.append(
            f"Note: no client certificate for this unit ({why}): "
            "actions and the nrpe check cannot pass tls-client-auth."
        )
        return None
    return cert, key


def _serving_facts(
    config: Settings,
    inputs: Inputs,
    tls: TlsMaterial | None,
    netloc: str,
    proxied: bool,
    when: status.Report,
) -> None:
    """What the status says of a registry that serves: where, how, and what is wrong."""
    when.ready_at, when.scheme, when.proxied = netloc, "https" if tls else "http", proxied
    filesystem = config.storage.kind == "filesystem"
    if proxied and filesystem and len(inputs.peers) > 1 and config.token_auth:
        # a backup would need a token to read the primary with: it has none
        when.block(
            "Units do not share data (filesystem storage behind a proxy with auth-token-*: "
            "backups cannot read the primary): use storage-s3-* or storage-swift-*."
        )
    host = clients.netloc_host(netloc)
    if tls and not tls_lib.covers(tls.cert, host):
        when.notes.append(f"Warning: the certificate does not cover {host}.")
    if config.cache and config.cache.username:
        when.notes.append("Note: registry 2.8 does not send cache-username upstream.")
