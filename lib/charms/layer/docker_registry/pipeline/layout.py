"""Where the push registry and each pull-through cache keep their files, storage and container
name: one Layout each, so two never share a path, a port or a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from charms.layer.docker_registry.config.settings import Settings, TlsPaths
from charms.layer.docker_registry.config.upstreams import UpstreamCache
from charms.layer.docker_registry.host import paths

HTPASSWD_FILE = f"{paths.CONFIG_DIR}/htpasswd"
TOKEN_BUNDLE_FILE = f"{paths.CONFIG_DIR}/token-bundle.pem"
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
