"""Charm config -> a validated, frozen ``Settings`` object (no I/O but `openssl` checking
tls-*-blob).

Every problem names the option and why, never the value: values may be secrets.
All problems are collected so that the operator sees them at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from charms.layer.docker_registry.config import tls
from charms.layer.docker_registry.config.reader import (
    IMAGE_RE,
    Reader,
    is_container_name,
    is_host,
    url_problem,
)
from charms.layer.docker_registry.config.storage import (
    FilesystemStorage,
    S3Storage,
    SwiftStorage,
    parse_s3,
    parse_swift,
)
from charms.layer.docker_registry.config.upstreams import (
    PullThroughCache,
    UpstreamCache,
    parse_cache,
    parse_caches,
)
from charms.layer.docker_registry.errors import ConfigError

LOG_LEVELS = ("error", "warn", "info", "debug")
# What htpasswd and the registry both take as a user name: no ':' (the htpasswd separator), no
# leading '-' (htpasswd would read an option), no spaces or control characters.
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$")
MAX_PASSWORD = 255  # htpasswd refuses longer ones


@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class TokenAuth:
    realm: str
    service: str
    issuer: str
    root_certs: str = field(repr=False)  # PEM bundle


@dataclass(frozen=True)
class TlsBlobs:
    """PEM material given by config (tls-*-blob), already base64-decoded."""

    cert: str
    key: str = field(repr=False)
    ca: str = ""


@dataclass(frozen=True)
class TlsPaths:
    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class HttpHost:
    url: str  # as configured, normalised
    scheme: str
    netloc: str  # host[:port], IPv6 bracketed
    hostname: str
    path: str


@dataclass(frozen=True)
class Settings:
    registry_image: str
    registry_name: str
    registry_port: int
    debug_port: int
    prometheus_metrics: bool
    log_level: str
    http_host: HttpHost | None
    http_proxy: str = field(repr=False)
    https_proxy: str = field(repr=False)
    storage_cache: bool
    storage_delete: bool
    storage_redirect_disable: bool
    storage_read_only: bool
    storage: FilesystemStorage | S3Storage | SwiftStorage
    auth: BasicAuth | TokenAuth | None
    cache: PullThroughCache | None
    tls_blobs: TlsBlobs | None
    tls_paths: TlsPaths
    tls_client_auth: bool
    caches: tuple[UpstreamCache, ...] = ()

    @property
    def basic_auth(self) -> BasicAuth | None:
        return self.auth if isinstance(self.auth, BasicAuth) else None

    @property
    def token_auth(self) -> TokenAuth | None:
        return self.auth if isinstance(self.auth, TokenAuth) else None

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every secret the config holds (to scrub from anything the registry says)."""
        values = [
            self.basic_auth.password if self.basic_auth else "",
            self.cache.password if self.cache else "",
            getattr(self.storage, "secretkey", ""),
            getattr(self.storage, "password", ""),
            self.tls_blobs.key if self.tls_blobs else "",
            *(c.password for c in self.caches),
        ]
        return tuple(v for v in values if v)


def parse_http_host(value: str) -> tuple[HttpHost | None, str]:
    """Parse the http-host option; returns (host, problem)."""
    if not value:
        return None, ""
    problem = url_problem(value)
    if problem:
        return None, problem
    parts = urlsplit(value)
    if parts.username or parts.password:
        return None, "must not contain credentials"
    if parts.query or parts.fragment:
        return None, "must not have a query or fragment"
    path = parts.path or "/"
    if not path.endswith("/"):
        return None, 'a path must end with "/"'
    hostname = parts.hostname or ""
    if not is_host(hostname):
        return None, "must name a host by an IP address or a DNS name (letters, digits, '-')"
    host = f"[{hostname}]" if ":" in hostname else hostname
    netloc = f"{host}:{parts.port}" if parts.port else host
    url = f"{parts.scheme}://{netloc}{path}"
    return HttpHost(url=url, scheme=parts.scheme, netloc=netloc, hostname=hostname, path=path), ""


def _basic_auth(r: Reader, user: str, password: str) -> BasicAuth | None:
    if not password.isprintable():
        r.fail("auth-basic-password", "must be a single line of printable characters")
    elif len(password) > MAX_PASSWORD:
        r.fail("auth-basic-password", f"must be at most {MAX_PASSWORD} characters")
    elif not _USER_RE.match(user):
        r.fail(
            "auth-basic-user",
            "must be 1-64 of letters, digits and _ . @ + - (not starting with . @ + -)",
        )
    else:
        return BasicAuth(user=user, password=password)
    return None


def _auth(r: Reader) -> BasicAuth | TokenAuth | None:
    user = r.single_line("auth-basic-user", "admin")
    password = r.text("auth-basic-password")
    token_options = ("auth-token-realm", "auth-token-service", "auth-token-issuer")
    token_values = {opt: r.single_line(opt) for opt in token_options}
    root_certs = r.base64_pem("auth-token-root-certs")
    token_given = [o for o, v in token_values.items() if v] + (
        ["auth-token-root-certs"] if r.config.get("auth-token-root-certs") else []
    )
    basic = _basic_auth(r, user, password) if password else None
    if not token_given:
        return basic
    if password:
        r.fail("auth-basic-password", "basic and token auth (auth-token-*) cannot both be set")
        return None
    missing = [o for o in (*token_options, "auth-token-root-certs") if o not in token_given]
    if missing:
        r.fail(
            missing[0], "token auth needs all of auth-token-realm, -service, -issuer, -root-certs"
        )
        return None
    realm_problem = url_problem(token_values["auth-token-realm"])
    if realm_problem:
        r.fail("auth-token-realm", realm_problem)
        return None
    if not root_certs:  # base64_pem already recorded why
        return None
    root_certs = tls.pem_text(root_certs)  # the bundle file gets the PEM blocks alone
    if not root_certs:
        r.fail("auth-token-root-certs", "contains no PEM certificate")
        return None
    return TokenAuth(
        realm=token_values["auth-token-realm"],
        service=token_values["auth-token-service"],
        issuer=token_values["auth-token-issuer"],
        root_certs=root_certs,
    )


def _tls(r: Reader) -> TlsBlobs | None:
    ca = r.base64_pem("tls-ca-blob")
    cert = r.base64_pem("tls-cert-blob")
    key = r.base64_pem("tls-key-blob")
    if not (r.config.get("tls-cert-blob") or r.config.get("tls-key-blob")):
        if r.config.get("tls-ca-blob"):
            r.fail("tls-ca-blob", "needs tls-cert-blob and tls-key-blob too")
        return None
    if not r.config.get("tls-cert-blob") or not r.config.get("tls-key-blob"):
        missing = "tls-key-blob" if r.config.get("tls-cert-blob") else "tls-cert-blob"
        r.fail(missing, "tls-cert-blob and tls-key-blob go together")
        return None
    if not cert or not key:  # decoding problems already recorded
        return None
    if r.config.get("tls-ca-blob") and not tls.pem_text(ca):
        r.fail("tls-ca-blob", "contains no PEM certificate")
        return None
    problem = tls.blob_problem(cert=cert, key=key, ca=ca)
    if problem:
        r.fail(*problem)
        return None
    # what is written out and handed on: the PEM blocks, not text around them
    return TlsBlobs(cert=tls.pem_text(cert), key=tls.private_key_pem(key), ca=tls.pem_text(ca))


def _tls_paths(r: Reader) -> TlsPaths:
    paths = TlsPaths(
        ca=r.path("tls-ca-path", "/etc/docker/registry/ca.crt"),
        cert=r.path("tls-cert-path", "/etc/docker/registry/registry.crt"),
        key=r.path("tls-key-path", "/etc/docker/registry/registry.key"),
    )
    reserved = {
        "/etc/docker/registry/config.yml",
        "/etc/docker/registry/htpasswd",
        "/etc/docker/registry/token-bundle.pem",
        "/etc/docker/registry/registry.env",
    }
    seen: set[str] = set()
    for option, value in (
        ("tls-ca-path", paths.ca),
        ("tls-cert-path", paths.cert),
        ("tls-key-path", paths.key),
    ):
        if value in seen:
            r.fail(option, "must differ from the other tls-*-path options")
        elif value in reserved or value.startswith(("/var/lib/registry/", "/proc/", "/sys/")):
            r.fail(option, "is a path the charm uses for something else")
        seen.add(value)
    return paths


def registry_name_or_default(raw: Mapping[str, Any]) -> str:
    """``registry-name`` under a config that does not parse: its value when that is a valid
    container name, else the default (the container a registry of that config ran as)."""
    name = str(raw.get("registry-name") or "registry")
    return name if is_container_name(name) else "registry"


def parse(config: Mapping[str, Any]) -> Settings:
    """Validate the whole config. Raises ConfigError listing every problem."""
    r = Reader(config)
    image = r.single_line("registry-image", "registry:2")
    if not IMAGE_RE.match(image):
        r.fail("registry-image", "is not a valid image reference")
    name = r.single_line("registry-name", "registry")
    if not is_container_name(name):
        r.fail("registry-name", "must be a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    port = r.number("registry-port", 5000, 1, 65535)
    debug_port = r.number("debug-port", 5001, 1, 65535)
    metrics = r.flag("prometheus-metrics", False)
    if metrics and port == debug_port:
        r.fail("debug-port", "must differ from registry-port")
    http_host, problem = parse_http_host(r.single_line("http-host"))
    if problem:
        r.fail("http-host", problem)
    storage_cache = r.choice("storage-cache", "inmemory", ("inmemory", "disabled"))
    swift = parse_swift(r)
    s3 = parse_s3(r)
    settings = Settings(
        registry_image=image,
        registry_name=name,
        registry_port=port,
        debug_port=debug_port,
        prometheus_metrics=metrics,
        log_level=r.choice("log-level", "info", LOG_LEVELS),
        http_host=http_host,
        http_proxy=r.url("registry-http-proxy"),
        https_proxy=r.url("registry-https-proxy"),
        storage_cache=storage_cache == "inmemory",
        storage_delete=r.flag("storage-delete", False),
        storage_redirect_disable=r.flag("storage-redirect-disable", True),
        storage_read_only=r.flag("storage-read-only", False),
        storage=swift or s3 or FilesystemStorage(),
        auth=_auth(r),
        cache=parse_cache(r),
        tls_blobs=_tls(r),
        tls_paths=_tls_paths(r),
        tls_client_auth=r.flag("tls-client-auth", False),
        caches=parse_caches(r, port, debug_port),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings
