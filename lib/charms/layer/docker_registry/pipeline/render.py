"""Settings -> what should exist on the host: files and the container's run arguments (pure)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from charms.layer.docker_registry.config.settings import Settings
from charms.layer.docker_registry.config.storage import S3Storage, SwiftStorage
from charms.layer.docker_registry.config.upstreams import UpstreamCache
from charms.layer.docker_registry.host import paths
from charms.layer.docker_registry.pipeline.layout import Layout, cache_layout, registry_layout
from charms.layer.docker_registry.pipeline.runspec import (
    CONFIG_FILE,
    PRIVATE,
    PUBLIC,
    HostFile,
    RunSpec,
)

TEMPLATES_DIR = Path(__file__).resolve().parents[5] / "templates"
CONTAINER_PORT = 5000
CONTAINER_DEBUG_PORT = 5001


@dataclass(frozen=True)
class TlsMaterial:
    """The server certificate in use, from config (tls-*-blob) or from cert-provider."""

    cert: str
    key: str = field(repr=False)
    ca: str = ""
    source: str = "config"


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
    auth = _auth_context(settings, realm, layout)
    tls_ctx = None
    if tls:
        tls_ctx = {
            "certificate": layout.tls.cert,
            "key": layout.tls.key,
            "clientcas": [layout.tls.ca] if settings.tls_client_auth and tls.ca else [],
        }
    proxy = _proxy_context(settings, cache, offline)
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


def _auth_context(settings: Settings, realm: str, layout: Layout) -> dict | None:
    if settings.basic_auth:
        return {"kind": "htpasswd", "realm": realm, "path": layout.htpasswd_file}
    if settings.token_auth:
        token = settings.token_auth
        return {
            "kind": "token",
            "realm": token.realm,
            "service": token.service,
            "issuer": token.issuer,
            "rootcertbundle": layout.token_bundle_file,
        }
    return None


def _proxy_context(settings: Settings, cache: UpstreamCache | None, offline: bool) -> dict | None:
    """A cache's upstream (none while it is offline: a 2.8 proxy does not start without it),
    or the reference's single-cache options for the push registry."""
    if cache:
        if offline:
            return None
        return {"remoteurl": cache.url, "username": cache.username, "password": cache.password}
    if settings.cache:
        return {
            "remoteurl": settings.cache.remoteurl,
            "username": settings.cache.username,
            "password": settings.cache.password,
        }
    return None


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
    files = _files(settings, layout, config, htpasswd, tls, cache)
    debug_port = settings.debug_port if metrics_listener(settings, collector) and not cache else 0
    env = _env_file(settings)
    if env:
        files.append(HostFile(layout.env_file, env, PRIVATE, mount=False))
    run = _run_spec(
        settings, layout, host, unit_address, files, env_file=bool(env), debug=debug_port
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


def _files(
    settings: Settings,
    layout: Layout,
    config: str,
    htpasswd: str,
    tls: TlsMaterial | None,
    cache: UpstreamCache | None,
) -> list[HostFile]:
    """The files the registry mounts: its config, htpasswd, token bundle and TLS files."""
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
    return files


def _run_spec(
    settings: Settings,
    layout: Layout,
    host: paths.Host,
    unit_address: str,
    files: list[HostFile],
    *,
    env_file: bool,
    debug: int,
) -> RunSpec:
    """How the container runs: ports (``debug``: the debug listener's host port, 0 for none),
    mounts, the env file, storage and log driver."""
    bind = host.publish_address(unit_address)
    ports = [(bind, layout.port, CONTAINER_PORT)]
    if debug:
        # registry 2.8 serves /metrics only on its debug listener, beside pprof and expvar and
        # without auth: on the loopback only, where the COS collector on this machine scrapes
        ports.append((host.loopback_address(unit_address), debug, CONTAINER_DEBUG_PORT))
    storage_mount = None
    if settings.storage.kind == "filesystem":
        storage_dir = "/".join(p for p in (paths.STORAGE_DIR, layout.storage_prefix) if p)
        storage_mount = (str(host.path(storage_dir)), paths.CONTAINER_STORAGE_DIR)
    return RunSpec(
        name=host.container_name(layout.name),
        image=settings.registry_image,
        ports=tuple(ports),
        # every file where its config names it; the config itself where the image reads it
        mounts=tuple(
            (str(host.path(f.path)), CONFIG_FILE if f.path == layout.config_file else f.path)
            for f in files
            if f.mount
        ),
        env_file=str(host.path(layout.env_file)) if env_file else "",
        storage_mount=storage_mount,
        log_driver=host.log_driver(),
    )
