"""Settings -> what should exist on the host: files and the container's run arguments (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from charms.layer.docker_registry.config.settings import Settings, TlsPaths
from charms.layer.docker_registry.config.storage import S3Storage, SwiftStorage
from charms.layer.docker_registry.config.upstreams import UpstreamCache
from charms.layer.docker_registry.host import paths

TEMPLATES_DIR = Path(__file__).resolve().parents[5] / "templates"
CONTAINER_PORT = 5000
CONTAINER_DEBUG_PORT = 5001
CONFIG_FILE = f"{paths.CONFIG_DIR}/config.yml"
HTPASSWD_FILE = f"{paths.CONFIG_DIR}/htpasswd"
TOKEN_BUNDLE_FILE = f"{paths.CONFIG_DIR}/token-bundle.pem"
ENV_FILE = f"{paths.CONFIG_DIR}/registry.env"
HASH_LABEL = "docker-registry.config-hash"
PRIVATE, PUBLIC = 0o600, 0o644
CACHES_DIR = "caches"  # under the config dir, the storage directory and an S3/Swift prefix


def cache_slug(host: str) -> str:
    """A cache's name in paths, prefixes and container names: ``registry.local:5000`` ->
    ``registry.local_5000`` (':' would end a docker volume's host path)."""
    return re.sub(r"[^a-z0-9.-]+", "_", host.lower()).strip("_")


@dataclass(frozen=True)
class Layout:
    """Where one registry container keeps its files and data, what it is called and where it
    listens: the push registry, or one pull-through cache (its own directory in each)."""

    config_dir: str
    name: str  # the configured container name (paths.Host adds the unit in the local model)
    port: int
    tls: TlsPaths
    storage_prefix: str = ""  # under the push registry's storage root ("" = that root)
    port_option: str = "registry-port"
    name_option: str = "registry-name"  # what a name taken by another container names

    @property
    def config_file(self) -> str:
        return f"{self.config_dir}/config.yml"

    @property
    def htpasswd_file(self) -> str:
        return f"{self.config_dir}/htpasswd"

    @property
    def token_bundle_file(self) -> str:
        return f"{self.config_dir}/token-bundle.pem"

    @property
    def env_file(self) -> str:
        return f"{self.config_dir}/registry.env"


def registry_layout(settings: Settings) -> Layout:
    return Layout(
        paths.CONFIG_DIR, settings.registry_name, settings.registry_port, settings.tls_paths
    )


def cache_layout(settings: Settings, cache: UpstreamCache) -> Layout:
    """A cache's own files (copies of the push registry's TLS and auth material, so that its
    rollback never touches the push registry's), storage and container."""
    slug = cache_slug(cache.host)
    config_dir = f"{paths.CONFIG_DIR}/{CACHES_DIR}/{slug}"
    tls = TlsPaths(
        ca=f"{config_dir}/ca.crt",
        cert=f"{config_dir}/registry.crt",
        key=f"{config_dir}/registry.key",
    )
    return Layout(
        config_dir,
        f"{settings.registry_name}-cache-{slug}",
        cache.port,
        tls,
        storage_prefix=f"{CACHES_DIR}/{slug}",
        port_option=f"caches ({cache.host}) port",
        name_option=f"caches ({cache.host})",
    )


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
    option: str = ""  # the option that names its path ("" for the charm's own file names)


# The image's own entrypoint and command (upstream registry:2 and the image this project
# builds alike): ENTRYPOINT ["/entrypoint.sh"], CMD ["/etc/docker/registry/config.yml"].
IMAGE_ENTRYPOINT, IMAGE_CMD = "/entrypoint.sh", CONFIG_FILE
# Exports each NAME=value line of the env file as it is (no shell evaluation of the value),
# then runs the image's entrypoint with the container's arguments.
_SOURCE_ENV = (
    'while IFS= read -r line; do case "$line" in *=*) export "$line" ;; esac; done < {path}; '
    f'exec {IMAGE_ENTRYPOINT} "$@"'
)


def with_env_file(env_file: str, command: list[str]) -> tuple[list[str], list[str]]:
    """(`docker run` options, arguments after the image) that run ``command`` (the image's
    default command when empty) with the variables of the host's ``env_file`` ("" for none)
    in its environment. Registry 2.8 reads its egress proxy (credentials and all) only from
    its environment: the file is mounted read-only and read by the container's own shell, so
    the values are in no process argument and not in the container's config (`docker
    inspect`), where `--env`/`--env-file` would put them."""
    if not env_file:
        return [], command
    script = _SOURCE_ENV.format(path=ENV_FILE)
    options = ["--volume", f"{env_file}:{ENV_FILE}:ro", "--entrypoint", "/bin/sh"]
    return options, ["-c", script, "sh", *(command or [IMAGE_CMD])]


@dataclass(frozen=True)
class RunSpec:
    name: str
    image: str
    ports: tuple[tuple[str, int, int], ...]  # (bind address or "", host port, container port)
    mounts: tuple[tuple[str, str], ...]  # (host path, container path), read-only unless storage
    env_file: str = ""
    storage_mount: tuple[str, str] | None = None
    log_driver: str = ""  # "" = the engine's default; journald: tagged with the container name

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
        options, command = with_env_file(self.env_file, [])
        argv += options
        if self.log_driver:
            argv += ["--log-driver", self.log_driver, "--log-opt", f"tag={self.name}"]
        return [*argv, self.image, *command]

    def as_record(self) -> dict:
        """JSON-safe form for the unit kv (holds no secret: they live in mounted files)."""
        return {
            "name": self.name,
            "image": self.image,
            "ports": [list(p) for p in self.ports],
            "mounts": [list(m) for m in self.mounts],
            "env_file": self.env_file,
            "storage_mount": list(self.storage_mount) if self.storage_mount else None,
            "log_driver": self.log_driver,
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
            log_driver=str(record.get("log_driver", "")),
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
    config_dir: str = paths.CONFIG_DIR  # holds the files and the last good copies
    port_option: str = "registry-port"  # what a port conflict names
    name_option: str = "registry-name"  # what a name another container holds names

    def config_hash(self, image_id: str) -> str:
        """Changes whenever anything the running registry depends on changes."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.run.argv({}), sort_keys=True).encode())
        digest.update(image_id.encode())
        for f in sorted(self.files, key=lambda f: f.path):
            digest.update(f"\0{f.path}\0{f.mode:o}\0".encode())
            digest.update(f.content.encode())
        return digest.hexdigest()[:32]


def _storage_params(storage: S3Storage | SwiftStorage, prefix: str = "") -> dict:
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
        if prefix:
            swift["prefix"] = prefix
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
    rootdirectory = storage.rootdirectory
    if prefix:
        rootdirectory = "/".join(p for p in (rootdirectory.rstrip("/"), prefix) if p)
    if rootdirectory:
        params["rootdirectory"] = rootdirectory
    if storage.useragent:
        params["useragent"] = storage.useragent
    return params


# The registry's own storage health check (health.storagedriver): while it fails, the registry
# answers 503 to every request, whatever the auth; the hook reads that as "storage down".
# (seconds between checks, failed checks in a row that make it fail)
FILESYSTEM_HEALTH = (10, 3)  # the image's default: a local disk
# object storage: a verdict soon enough for the hook to wait for it (storage_health), and one
# failed request (after the S3/Swift client's own retries) tolerated
OBJECT_STORAGE_HEALTH = (5, 2)


def storage_health(kind: str) -> tuple[int, int]:
    """(interval in seconds, threshold) of the storage health check for a storage kind."""
    return FILESYSTEM_HEALTH if kind == "filesystem" else OBJECT_STORAGE_HEALTH


def metrics_listener(settings: Settings, collector: bool) -> bool:
    """The debug listener (/metrics) runs when prometheus-metrics asks for it or while a COS
    collector is related."""
    return settings.prometheus_metrics or collector


def config_context(
    settings: Settings,
    *,
    tls: TlsMaterial | None,
    http_secret: str,
    realm: str,
    cache: UpstreamCache | None = None,
    offline: bool = False,
    collector: bool = False,
) -> dict:
    """Plain values for templates/config.yml.j2: the push registry's, or with ``cache`` one
    pull-through cache's. ``offline``: the cache's upstream cannot be reached, so it serves
    what it holds as a read-only registry (a 2.8 proxy does not start without its upstream).
    ``collector``: a COS collector is related, so the metrics listener is on."""
    layout = cache_layout(settings, cache) if cache else registry_layout(settings)
    storage: dict = {"kind": settings.storage.kind}
    if isinstance(settings.storage, (S3Storage, SwiftStorage)):
        storage["params"] = _storage_params(settings.storage, layout.storage_prefix)
    else:
        storage["rootdirectory"] = paths.CONTAINER_STORAGE_DIR
    auth = None
    if settings.basic_auth:
        auth = {"kind": "htpasswd", "realm": realm, "path": layout.htpasswd_file}
    elif settings.token_auth:
        token = settings.token_auth
        auth = {
            "kind": "token",
            "realm": token.realm,
            "service": token.service,
            "issuer": token.issuer,
            "rootcertbundle": layout.token_bundle_file,
        }
    tls_ctx = None
    if tls:
        tls_ctx = {
            "certificate": layout.tls.cert,
            "key": layout.tls.key,
            "clientcas": [layout.tls.ca] if settings.tls_client_auth and tls.ca else [],
        }
    proxy = None
    if cache and not offline:
        proxy = {"remoteurl": cache.url, "username": cache.username, "password": cache.password}
    elif settings.cache and not cache:
        proxy = {
            "remoteurl": settings.cache.remoteurl,
            "username": settings.cache.username,
            "password": settings.cache.password,
        }
    debug = None
    if metrics_listener(settings, collector) and not cache:
        debug = {"addr": f":{CONTAINER_DEBUG_PORT}", "prometheus": True}
    http_host = settings.http_host.url if settings.http_host and not cache else ""
    interval, threshold = storage_health(settings.storage.kind)
    return {
        "log_level": settings.log_level,
        "storage": storage,
        "storage_cache": settings.storage_cache,
        # a cache's content is the upstream's: expiry and emptying it delete, clients cannot
        "storage_delete": settings.storage_delete or bool(cache),
        "storage_redirect_disable": settings.storage_redirect_disable,
        "storage_read_only": offline if cache else settings.storage_read_only,
        "http_addr": f":{CONTAINER_PORT}",
        "http_host": http_host,
        "http_secret": http_secret,
        "tls": tls_ctx,
        "debug": debug,
        "auth": auth,
        "proxy": proxy,
        "storage_health": {"interval": interval, "threshold": threshold},
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
    cache: UpstreamCache | None = None,
    offline: bool = False,
    collector: bool = False,
) -> Desired:
    """Everything the registry (or, with ``cache``, that pull-through cache) needs: files to
    write and how to run the container.

    ``htpasswd`` is the already-hashed htpasswd line(s), "" without basic auth.
    """
    layout = cache_layout(settings, cache) if cache else registry_layout(settings)
    context = config_context(
        settings,
        tls=tls,
        http_secret=http_secret,
        realm=realm,
        cache=cache,
        offline=offline,
        collector=collector,
    )
    config = render_config(context, templates_dir)
    files = [HostFile(layout.config_file, config)]
    if settings.basic_auth:
        files.append(HostFile(layout.htpasswd_file, htpasswd))
    if settings.token_auth:
        files.append(HostFile(layout.token_bundle_file, settings.token_auth.root_certs, PUBLIC))
    if tls:
        # the push registry's TLS files are where tls-*-path say; a cache's are its own
        def option(name: str) -> str:
            return "" if cache else name

        files.append(HostFile(layout.tls.cert, tls.cert, PUBLIC, option=option("tls-cert-path")))
        files.append(HostFile(layout.tls.key, tls.key, PRIVATE, option=option("tls-key-path")))
        if tls.ca:
            files.append(HostFile(layout.tls.ca, tls.ca, PUBLIC, option=option("tls-ca-path")))
    env = _env_file(settings)
    if env:
        files.append(HostFile(layout.env_file, env, PRIVATE, mount=False))
    bind = host.publish_address(unit_address)
    ports = [(bind, layout.port, CONTAINER_PORT)]
    if metrics_listener(settings, collector) and not cache:
        # registry 2.8 serves /metrics only on its debug listener, beside pprof and expvar and
        # without auth: on the loopback only, where the COS collector on this machine scrapes
        ports.append(
            (host.loopback_address(unit_address), settings.debug_port, CONTAINER_DEBUG_PORT)
        )
    storage_mount = None
    if settings.storage.kind == "filesystem":
        storage_dir = "/".join(p for p in (paths.STORAGE_DIR, layout.storage_prefix) if p)
        storage_mount = (str(host.path(storage_dir)), paths.CONTAINER_STORAGE_DIR)
    run = RunSpec(
        name=host.container_name(layout.name),
        image=settings.registry_image,
        ports=tuple(ports),
        # every file where its config names it; the config itself where the image reads it
        mounts=tuple(
            (str(host.path(f.path)), CONFIG_FILE if f.path == layout.config_file else f.path)
            for f in files
            if f.mount
        ),
        env_file=str(host.path(layout.env_file)) if env else "",
        storage_mount=storage_mount,
        log_driver=host.log_driver(),
    )
    return Desired(
        config_yaml=config,
        files=tuple(files),
        run=run,
        scheme="https" if tls else "http",
        config_dir=layout.config_dir,
        port_option=layout.port_option,
        name_option=layout.name_option,
    )
