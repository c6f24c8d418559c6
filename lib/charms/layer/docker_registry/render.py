"""Settings -> what should exist on the host: files and the container's run arguments (pure)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from charms.layer.docker_registry import paths
from charms.layer.docker_registry.settings import S3Storage, Settings, SwiftStorage

TEMPLATES_DIR = Path(__file__).resolve().parents[4] / "templates"
CONTAINER_PORT = 5000
CONTAINER_DEBUG_PORT = 5001
CONFIG_FILE = f"{paths.CONFIG_DIR}/config.yml"
HTPASSWD_FILE = f"{paths.CONFIG_DIR}/htpasswd"
TOKEN_BUNDLE_FILE = f"{paths.CONFIG_DIR}/token-bundle.pem"
ENV_FILE = f"{paths.CONFIG_DIR}/registry.env"
HASH_LABEL = "docker-registry.config-hash"
PRIVATE, PUBLIC = 0o600, 0o644


@dataclass(frozen=True)
class TlsMaterial:
    """The server certificate in use, from config (tls-*-blob) or from cert-provider."""

    cert: str
    key: str = field(repr=False)
    ca: str = ""
    source: str = "config"


@dataclass(frozen=True)
class HostFile:
    path: str  # absolute path as the registry sees it (also the container mount target)
    content: str = field(repr=False)
    mode: int = PRIVATE
    mount: bool = True


@dataclass(frozen=True)
class RunSpec:
    name: str
    image: str
    ports: tuple[tuple[str, int, int], ...]  # (bind address or "", host port, container port)
    mounts: tuple[tuple[str, str], ...]  # (host path, container path), read-only unless storage
    env_file: str = ""
    storage_mount: tuple[str, str] | None = None

    def volumes(self) -> list[str]:
        """``--volume`` values: config files read-only, the storage directory writable."""
        out = [f"{host_path}:{container_path}:ro" for host_path, container_path in self.mounts]
        if self.storage_mount:
            out.append(f"{self.storage_mount[0]}:{self.storage_mount[1]}")
        return out

    def argv(self, labels: dict[str, str]) -> list[str]:
        """`docker run` arguments; labels carry the config hash."""
        argv = ["run", "--detach", "--name", self.name, "--restart", "unless-stopped"]
        for key, value in sorted(labels.items()):
            argv += ["--label", f"{key}={value}"]
        for bind, host_port, container_port in self.ports:
            prefix = f"{bind}:" if bind else ""
            if ":" in bind:  # IPv6 literal
                prefix = f"[{bind}]:"
            argv += ["--publish", f"{prefix}{host_port}:{container_port}"]
        for volume in self.volumes():
            argv += ["--volume", volume]
        if self.env_file:
            argv += ["--env-file", self.env_file]
        return [*argv, self.image]

    def as_record(self) -> dict:
        """JSON-safe form for the unit kv (holds no secret: they live in mounted files)."""
        return {
            "name": self.name,
            "image": self.image,
            "ports": [list(p) for p in self.ports],
            "mounts": [list(m) for m in self.mounts],
            "env_file": self.env_file,
            "storage_mount": list(self.storage_mount) if self.storage_mount else None,
        }

    @classmethod
    def from_record(cls, record: dict) -> RunSpec:
        storage = record.get("storage_mount")
        return cls(
            name=record["name"],
            image=record["image"],
            ports=tuple((str(b), int(h), int(c)) for b, h, c in record.get("ports", [])),
            mounts=tuple((str(h), str(c)) for h, c in record.get("mounts", [])),
            env_file=record.get("env_file", ""),
            storage_mount=(str(storage[0]), str(storage[1])) if storage else None,
        )


@dataclass(frozen=True)
class ContainerRun:
    """A run spec and the config hash its container's label carries: what the charm ran."""

    spec: RunSpec
    config_hash: str

    def argv(self) -> list[str]:
        return self.spec.argv({HASH_LABEL: self.config_hash})

    def as_record(self) -> dict:
        return {"spec": self.spec.as_record(), "hash": self.config_hash}

    @classmethod
    def from_record(cls, record: dict | None) -> ContainerRun | None:
        """None for no record, or one in a form this charm revision does not know."""
        try:
            return cls(RunSpec.from_record(record["spec"]), str(record["hash"]))  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Desired:
    config_yaml: str = field(repr=False)
    files: tuple[HostFile, ...]
    run: RunSpec
    scheme: str

    def config_hash(self, image_id: str) -> str:
        """Changes whenever anything the running registry depends on changes."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.run.argv({}), sort_keys=True).encode())
        digest.update(image_id.encode())
        for f in sorted(self.files, key=lambda f: f.path):
            digest.update(f"\0{f.path}\0{f.mode:o}\0".encode())
            digest.update(f.content.encode())
        return digest.hexdigest()[:32]


def _storage_params(storage: S3Storage | SwiftStorage) -> dict:
    if isinstance(storage, SwiftStorage):
        swift = {
            "authurl": storage.authurl,
            "username": storage.username,
            "password": storage.password,
            "container": storage.container,
            "region": storage.region,
            "tenant": storage.tenant,
        }
        if storage.domain:
            swift["domain"] = storage.domain
        return swift
    params: dict[str, str | int | bool] = {
        "region": storage.region,
        "bucket": storage.bucket,
    }
    if storage.accesskey:
        params |= {"accesskey": storage.accesskey, "secretkey": storage.secretkey}
    if storage.regionendpoint:
        params["regionendpoint"] = storage.regionendpoint
    params |= {
        "encrypt": storage.encrypt,
        "secure": storage.secure,
        "skipverify": storage.skipverify,
        "v4auth": storage.v4auth,
        "chunksize": storage.chunksize,
        "multipartcopychunksize": storage.multipartcopychunksize,
        "multipartcopymaxconcurrency": storage.multipartcopymaxconcurrency,
        "multipartcopythresholdsize": storage.multipartcopythresholdsize,
        "storageclass": storage.storageclass,
        "objectacl": storage.objectacl,
        # read by registry 3.x, ignored by 2.8
        "forcepathstyle": storage.forcepathstyle,
        "usedualstack": storage.usedualstack,
        "accelerate": storage.accelerate,
        "loglevel": storage.loglevel,
    }
    if storage.encrypt and storage.keyid:
        params["keyid"] = storage.keyid
    if storage.rootdirectory:
        params["rootdirectory"] = storage.rootdirectory
    if storage.useragent:
        params["useragent"] = storage.useragent
    return params


def config_context(
    settings: Settings, *, tls: TlsMaterial | None, http_secret: str, realm: str
) -> dict:
    """Plain values for templates/config.yml.j2."""
    storage: dict = {"kind": settings.storage.kind}
    if isinstance(settings.storage, (S3Storage, SwiftStorage)):
        storage["params"] = _storage_params(settings.storage)
    else:
        storage["rootdirectory"] = paths.CONTAINER_STORAGE_DIR
    auth = None
    if settings.basic_auth:
        auth = {"kind": "htpasswd", "realm": realm, "path": HTPASSWD_FILE}
    elif settings.token_auth:
        token = settings.token_auth
        auth = {
            "kind": "token",
            "realm": token.realm,
            "service": token.service,
            "issuer": token.issuer,
            "rootcertbundle": TOKEN_BUNDLE_FILE,
        }
    tls_ctx = None
    if tls:
        tls_ctx = {
            "certificate": settings.tls_paths.cert,
            "key": settings.tls_paths.key,
            "clientcas": [settings.tls_paths.ca] if settings.tls_client_auth and tls.ca else [],
        }
    proxy = None
    if settings.cache:
        proxy = {
            "remoteurl": settings.cache.remoteurl,
            "username": settings.cache.username,
            "password": settings.cache.password,
        }
    debug = None
    if settings.prometheus_metrics:
        debug = {"addr": f":{CONTAINER_DEBUG_PORT}", "prometheus": True}
    return {
        "log_level": settings.log_level,
        "storage": storage,
        "storage_cache": settings.storage_cache,
        "storage_delete": settings.storage_delete,
        "storage_redirect_disable": settings.storage_redirect_disable,
        "storage_read_only": settings.storage_read_only,
        "http_addr": f":{CONTAINER_PORT}",
        "http_host": settings.http_host.url if settings.http_host else "",
        "http_secret": http_secret,
        "tls": tls_ctx,
        "debug": debug,
        "auth": auth,
        "proxy": proxy,
    }


def render_config(context: dict, templates_dir: Path = TEMPLATES_DIR) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - YAML, every value goes through tojson
    )
    return env.get_template("config.yml.j2").render(**context)


def _env_file(settings: Settings) -> str:
    lines = []
    for name, value in (
        ("HTTP_PROXY", settings.http_proxy),
        ("HTTPS_PROXY", settings.https_proxy),
    ):
        if value:
            lines += [f"{name}={value}", f"{name.lower()}={value}"]
    return "".join(f"{line}\n" for line in lines)


def desired(
    settings: Settings,
    *,
    host: paths.Host,
    unit_address: str,
    tls: TlsMaterial | None,
    http_secret: str,
    htpasswd: str,
    realm: str,
    templates_dir: Path = TEMPLATES_DIR,
) -> Desired:
    """Everything the registry needs: files to write and how to run the container.

    ``htpasswd`` is the already-hashed htpasswd line(s), "" without basic auth.
    """
    config = render_config(
        config_context(settings, tls=tls, http_secret=http_secret, realm=realm), templates_dir
    )
    files = [HostFile(CONFIG_FILE, config)]
    if settings.basic_auth:
        files.append(HostFile(HTPASSWD_FILE, htpasswd))
    if settings.token_auth:
        files.append(HostFile(TOKEN_BUNDLE_FILE, settings.token_auth.root_certs, PUBLIC))
    if tls:
        files.append(HostFile(settings.tls_paths.cert, tls.cert, PUBLIC))
        files.append(HostFile(settings.tls_paths.key, tls.key, PRIVATE))
        if tls.ca:
            files.append(HostFile(settings.tls_paths.ca, tls.ca, PUBLIC))
    env = _env_file(settings)
    if env:
        files.append(HostFile(ENV_FILE, env, PRIVATE, mount=False))
    bind = host.publish_address(unit_address)
    ports = [(bind, settings.registry_port, CONTAINER_PORT)]
    if settings.prometheus_metrics:
        # the debug listener also serves pprof and expvar, without auth: only on the unit's
        # own address (where its scraper reaches it), never on every address
        ports.append((bind or unit_address, settings.debug_port, CONTAINER_DEBUG_PORT))
    storage_mount = None
    if settings.storage.kind == "filesystem":
        storage_mount = (str(host.path(paths.STORAGE_DIR)), paths.CONTAINER_STORAGE_DIR)
    run = RunSpec(
        name=host.container_name(settings.registry_name),
        image=settings.registry_image,
        ports=tuple(ports),
        mounts=tuple((str(host.path(f.path)), f.path) for f in files if f.mount),
        env_file=str(host.path(ENV_FILE)) if env else "",
        storage_mount=storage_mount,
    )
    return Desired(
        config_yaml=config,
        files=tuple(files),
        run=run,
        scheme="https" if tls else "http",
    )
