"""Charm config -> a validated, frozen ``Settings`` object (no I/O but `openssl` checking
tls-*-blob).

Every problem names the option and why, never the value: values may be secrets.
All problems are collected so that the operator sees them at once.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from charms.layer.docker_registry.config import tls
from charms.layer.docker_registry.errors import ConfigError

MIB = 1024 * 1024
GIB = 1024 * MIB
LOG_LEVELS = ("error", "warn", "info", "debug")
S3_STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "NONE")
S3_OBJECT_ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
S3_LOG_LEVELS = (
    "off",
    "debug",
    "debugwithsigning",
    "debugwithhttpbody",
    "debugwithrequestretries",
    "debugwithrequesterrors",
    "debugwitheventstreambody",
)
# A docker image reference: [host[:port]/]path[:tag][@digest], lower-case path; never a
# leading '-' (docker would read the reference as an option).
_IMAGE_RE = re.compile(
    r"^(?:[a-zA-Z0-9][a-zA-Z0-9.-]*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")  # tls-*-path file names
_CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # config and actions
# What htpasswd and the registry both take as a user name: no ':' (the htpasswd separator), no
# leading '-' (htpasswd would read an option), no spaces or control characters.
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$")
MAX_PASSWORD = 255  # htpasswd refuses longer ones
# The only directories a tls-*-path may name a file in: the charm's own.
TLS_PATH_DIRS = ("/etc/docker/registry", "/etc/docker-registry")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_container_name(text: str) -> bool:
    """A docker container name of at most 63 characters: ``registry-name`` and the ``name``
    parameter of the start and stop actions both take exactly this."""
    return bool(_CONTAINER_NAME_RE.match(text))


def is_host(text: str) -> bool:
    """An IPv4/IPv6 literal (IPv6 with or without brackets) or an RFC 1123 host name: nothing
    a path or a daemon.json entry derived from it could escape with (no '.', '..', '_',
    spaces or non-ASCII letters)."""
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        ipaddress.ip_address(literal)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_HOST_LABEL.match(label) for label in name.split("."))


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
class FilesystemStorage:
    kind: str = "filesystem"


@dataclass(frozen=True)
class S3Storage:
    region: str
    bucket: str
    accesskey: str = ""
    secretkey: str = field(default="", repr=False)
    regionendpoint: str = ""
    forcepathstyle: bool = False
    encrypt: bool = False
    keyid: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    chunksize: int = 10485760
    multipartcopychunksize: int = 33554432
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 33554432
    rootdirectory: str = ""
    storageclass: str = "STANDARD"
    useragent: str = ""
    usedualstack: bool = False
    accelerate: bool = False
    objectacl: str = "private"
    loglevel: str = "off"
    kind: str = "s3"


@dataclass(frozen=True)
class SwiftStorage:
    authurl: str
    username: str
    password: str = field(repr=False)
    container: str
    region: str = ""
    tenant: str = ""
    domain: str = ""
    kind: str = "swift"


@dataclass(frozen=True)
class PullThroughCache:
    remoteurl: str
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class UpstreamCache:
    """One pull-through cache beside the push registry (the ``caches`` option).

    host: what clients ask for (``docker.io``, ``registry.local:5000``), lower case;
    url: where the cache fetches from; port: where it listens on the unit."""

    host: str
    url: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)


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


class Reader:
    """Typed access to raw config values that records problems instead of raising."""

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self.problems: list[tuple[str, str]] = []

    def fail(self, option: str, why: str) -> None:
        self.problems.append((option, why))

    def text(self, option: str, default: str = "") -> str:
        value = self.config.get(option, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(option, "must be a string")
            return default
        return value.strip()

    def flag(self, option: str, default: bool) -> bool:
        value = self.config.get(option, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(option, "must be a boolean")
            return default
        return value

    def number(self, option: str, default: int, low: int, high: int) -> int:
        value = self.config.get(option, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(option, "must be an integer")
            return default
        if not low <= value <= high:
            self.fail(option, f"must be between {low} and {high}")
            return default
        return value

    def choice(
        self,
        option: str,
        default: str,
        choices: tuple[str, ...],
        fold: Callable[[str], str] = str.lower,
    ) -> str:
        value = self.text(option, default)
        folded = fold(value)
        if folded not in choices:
            self.fail(option, "must be one of " + ", ".join(choices))
            return default
        return folded

    def single_line(self, option: str, default: str = "") -> str:
        value = self.text(option, default)
        if "\n" in value or "\r" in value:
            self.fail(option, "must be a single line")
            return default
        return value

    def url(self, option: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.single_line(option)
        if not value:
            return ""
        why = url_problem(value, schemes)  # never quotes the value (it may hold credentials)
        if why:
            self.fail(option, why)
            return ""
        return value

    def base64_pem(self, option: str) -> str:
        value = self.text(option)
        if not value:
            return ""
        try:
            decoded = base64.b64decode("".join(value.split()), validate=True).decode()
        except (binascii.Error, ValueError, UnicodeDecodeError):
            self.fail(option, "is not valid base64")
            return ""
        if not tls.has_pem(decoded):
            self.fail(option, "does not decode to PEM data")
            return ""
        return decoded

    def path(self, option: str, default: str) -> str:
        value = self.single_line(option, default) or default
        if not value.startswith("/") or value.endswith("/"):
            self.fail(option, "must be an absolute file path")
            return default
        if "/../" in value + "/" or "/./" in value + "/" or "//" in value:
            self.fail(option, "must be a normalised absolute path")
            return default
        if value.rsplit("/", 1)[0] not in TLS_PATH_DIRS:
            self.fail(option, "must name a file directly in " + " or ".join(TLS_PATH_DIRS))
            return default
        if not _FILE_NAME_RE.match(value.rsplit("/", 1)[1]):
            # ':' and ',' would end docker's --volume value; a leading '.' or '-' hides the
            # file or reads as an option
            self.fail(option, "must be a file name of letters, digits, '.', '_' and '-'")
            return default
        return value


def url_problem(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str:
    """Why ``value`` is not an acceptable URL, or "" when it is."""
    if any(c.isspace() for c in value):
        return "must be a URL without spaces"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in schemes:
        return "must be a URL starting with " + " or ".join(f"{s}://" for s in schemes)
    if not parts.hostname:
        return "must be a URL with a host name"
    return ""


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


def _s3(r: Reader) -> S3Storage | None:
    region = r.single_line("storage-s3-region")
    bucket = r.single_line("storage-s3-bucket")
    accesskey = r.single_line("storage-s3-accesskey")
    secretkey = r.single_line("storage-s3-secretkey")
    endpoint = r.url("storage-s3-regionendpoint")
    keyid = r.single_line("storage-s3-keyid")
    rootdirectory = r.single_line("storage-s3-rootdirectory")
    useragent = r.single_line("storage-s3-useragent")
    chunk = r.number("storage-s3-chunksize", 10485760, 5 * MIB, 5 * GIB)
    copy_chunk = r.number("storage-s3-multipartcopychunksize", 33554432, 5 * MIB, 5 * GIB)
    copy_conc = r.number("storage-s3-multipartcopymaxconcurrency", 100, 1, 10000)
    copy_threshold = r.number("storage-s3-multipartcopythresholdsize", 33554432, 0, 5 * GIB)
    storageclass = r.choice("storage-s3-storageclass", "STANDARD", S3_STORAGE_CLASSES, str.upper)
    objectacl = r.choice("storage-s3-objectacl", "private", S3_OBJECT_ACLS)
    loglevel = r.choice("storage-s3-loglevel", "off", S3_LOG_LEVELS)
    flags = {
        name: r.flag(f"storage-s3-{name}", default)
        for name, default in (
            ("forcepathstyle", False),
            ("encrypt", False),
            ("secure", True),
            ("skip-verify", False),
            ("skip-v4-auth", True),
            ("usedualstack", False),
            ("accelerate", False),
        )
    }
    given = {
        "storage-s3-accesskey": accesskey,
        "storage-s3-secretkey": secretkey,
        "storage-s3-regionendpoint": endpoint,
        "storage-s3-keyid": keyid,
        "storage-s3-rootdirectory": rootdirectory,
    }
    if not region and not bucket:
        stray = [opt for opt, value in given.items() if value]
        if stray:
            r.fail(stray[0], "S3 storage also needs storage-s3-region and storage-s3-bucket")
        return None
    if not region or not bucket:
        r.fail(
            "storage-s3-bucket" if region else "storage-s3-region",
            "S3 storage needs both storage-s3-region and storage-s3-bucket",
        )
        return None
    if bool(accesskey) != bool(secretkey):
        r.fail(
            "storage-s3-secretkey" if accesskey else "storage-s3-accesskey",
            "storage-s3-accesskey and storage-s3-secretkey go together",
        )
        return None
    # v2 signing is refused by the registry for AWS itself; there v4 is the only choice.
    aws_endpoint = not endpoint or "amazonaws.com" in endpoint
    return S3Storage(
        region=region,
        bucket=bucket,
        accesskey=accesskey,
        secretkey=secretkey,
        regionendpoint=endpoint,
        forcepathstyle=flags["forcepathstyle"],
        encrypt=flags["encrypt"],
        keyid=keyid,
        secure=flags["secure"],
        skipverify=flags["skip-verify"],
        v4auth=aws_endpoint or not flags["skip-v4-auth"],
        chunksize=chunk,
        multipartcopychunksize=copy_chunk,
        multipartcopymaxconcurrency=copy_conc,
        multipartcopythresholdsize=copy_threshold,
        rootdirectory=rootdirectory,
        storageclass=storageclass,
        useragent=useragent,
        usedualstack=flags["usedualstack"],
        accelerate=flags["accelerate"],
        objectacl=objectacl,
        loglevel=loglevel,
    )


def _swift(r: Reader) -> SwiftStorage | None:
    authurl = r.url("storage-swift-authurl")
    values = {
        name: r.single_line(f"storage-swift-{name}", default)
        for name, default in (
            ("username", ""),
            ("password", ""),
            ("container", "docker-registry"),
            ("region", ""),
            ("tenant", ""),
            ("domain", ""),
        )
    }
    if not authurl:
        return None
    for name in ("username", "password", "container"):
        if not values[name]:
            r.fail(f"storage-swift-{name}", "is required with storage-swift-authurl")
            return None
    return SwiftStorage(authurl=authurl, **values)


def _cache(r: Reader) -> PullThroughCache | None:
    remoteurl = r.url("cache-remoteurl")
    username = r.single_line("cache-username")
    password = r.single_line("cache-password")
    if bool(username) != bool(password):
        r.fail(
            "cache-password" if username else "cache-username",
            "cache-username and cache-password go together",
        )
        return None
    if not remoteurl:
        if username and not r.config.get("cache-remoteurl"):
            r.fail("cache-username", "is only used with cache-remoteurl")
        return None
    return PullThroughCache(remoteurl=remoteurl, username=username, password=password)


# Caches without ``,port=N`` listen on a port derived from their host alone, so adding or
# removing another cache never moves one that clients already use.
DERIVED_PORT_BASE, DERIVED_PORT_SPAN = 5100, 900
_CACHE_PORT_RE = re.compile(r"^port=([0-9]{1,5})$")


def derived_cache_port(host: str) -> int:
    """The port a cache of ``host`` listens on unless pinned: 5100-5999, from the host name."""
    return DERIVED_PORT_BASE + zlib.crc32(host.encode()) % DERIVED_PORT_SPAN


def _upstream_host(text: str) -> str:
    """``host[:port]`` as containerd names a registry, lower case; "" when it is not one."""
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        return ""
    hostname = parts.hostname or ""
    if parts.netloc != text or text.endswith(":") or port == 0 or "@" in text:
        return ""
    if not is_host(hostname) or hostname.endswith("."):
        return ""
    return text.lower()


def _cache_entry(r: Reader, number: int, entry: str) -> tuple[str, str, int] | None:
    """``<host>=<url>[,port=<n>]`` -> (host, url, port); problems name the entry by number
    (a URL may carry what should not be shown) and the host once it is a valid one."""
    where = f"entry {number}"
    host_text, sep, rest = entry.partition("=")
    host = _upstream_host(host_text)
    if not sep or not host:
        r.fail("caches", f"{where} must be <host>=<url>[,port=<n>] with a registry host name")
        return None
    url, _, pinned = rest.partition(",")
    problem = url_problem(url)
    if not problem and (urlsplit(url).username or urlsplit(url).password):
        problem = "must not contain credentials (use caches-credentials)"
    if not problem and (urlsplit(url).query or urlsplit(url).fragment):
        problem = "must not have a query or fragment"
    if problem:
        r.fail("caches", f"the URL of {host} {problem}")
        return None
    port = derived_cache_port(host)
    if pinned:
        match = _CACHE_PORT_RE.match(pinned)
        if not match or not 1 <= int(match.group(1)) <= 65535:
            r.fail("caches", f"{host}: what follows the URL must be ,port=<1-65535>")
            return None
        port = int(match.group(1))
    return host, url.rstrip("/"), port


def _cache_credentials(r: Reader, hosts: set[str]) -> dict[str, tuple[str, str]]:
    """caches-credentials: a JSON object, host -> {"username": ..., "password": ...}."""
    text = r.text("caches-credentials")
    if not text:
        return {}
    shape = 'must be a JSON object {"<host>": {"username": "...", "password": "..."}}'
    try:
        value = json.loads(text)
    except ValueError:
        r.fail("caches-credentials", shape)
        return {}
    if not isinstance(value, dict):
        r.fail("caches-credentials", shape)
        return {}
    found: dict[str, tuple[str, str]] = {}
    for number, (host, creds) in enumerate(value.items(), start=1):
        where = f"entry {number}"
        if not isinstance(creds, dict) or set(creds) != {"username", "password"}:
            r.fail("caches-credentials", f"{where} {shape}")
            continue
        user, password = creds["username"], creds["password"]
        if not all(isinstance(v, str) and v and v.isprintable() for v in (user, password)):
            r.fail("caches-credentials", f"{where}: username and password must be non-empty text")
            continue
        key = str(host).lower()
        if key not in hosts:
            r.fail("caches-credentials", f"{where} names a host that is not in caches")
            continue
        found[key] = (user, password)
    return found


def _caches(r: Reader, registry_port: int, debug_port: int) -> tuple[UpstreamCache, ...]:
    """The ``caches`` option: whitespace-separated ``<host>=<url>[,port=<n>]`` entries."""
    entries = r.text("caches").split()
    parsed: list[tuple[str, str, int]] = []
    for number, entry in enumerate(entries, start=1):
        one = _cache_entry(r, number, entry)
        if one:
            parsed.append(one)
    hosts: set[str] = set()
    ports = {registry_port: "registry-port", debug_port: "debug-port"}
    for host, _, port in parsed:
        if host in hosts:
            r.fail("caches", f"{host} is listed twice")
        elif port in ports:
            r.fail("caches", f"{host}: port {port} is taken by {ports[port]} (pin one: ,port=<n>)")
        hosts.add(host)
        ports.setdefault(port, host)
    credentials = _cache_credentials(r, hosts)
    return tuple(
        UpstreamCache(host, url, port, *credentials.get(host, ("", "")))
        for host, url, port in parsed
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


def parse(config: Mapping[str, Any]) -> Settings:
    """Validate the whole config. Raises ConfigError listing every problem."""
    r = Reader(config)
    image = r.single_line("registry-image", "registry:2")
    if not _IMAGE_RE.match(image):
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
    swift = _swift(r)
    s3 = _s3(r)
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
        cache=_cache(r),
        tls_blobs=_tls(r),
        tls_paths=_tls_paths(r),
        tls_client_auth=r.flag("tls-client-auth", False),
        caches=_caches(r, port, debug_port),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings
