"""THE seam for host paths, container names and the published address.

Production leaves ``DOCKER_REGISTRY_SANDBOX`` unset: paths are the real host paths,
the container keeps its configured name and ports are published on every address.
The local model (tools/localjuju) sets it per unit so several units share one host:
host paths live under that directory, the container name gets the unit as suffix and
ports are published on the unit's own address (also what stands for the unit's loopback).
Nothing else knows about it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SANDBOX_ENV = "DOCKER_REGISTRY_SANDBOX"
CONFIG_DIR = "/etc/docker/registry"  # same path inside the container
STORAGE_DIR = "/srv/registry"  # host side of the filesystem storage
CONTAINER_STORAGE_DIR = "/var/lib/registry"
DOCKER_CERTS_DIR = "/etc/docker/certs.d"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"


@dataclass(frozen=True)
class Host:
    sandbox: str = ""  # "" in production
    unit_name: str = ""

    def path(self, absolute: str) -> Path:
        """Where the host file for ``absolute`` lives."""
        if not self.sandbox:
            return Path(absolute)
        return Path(self.sandbox) / absolute.lstrip("/")

    def container_name(self, configured: str) -> str:
        if not self.sandbox:
            return configured
        return f"{configured}-{self.unit_name.replace('/', '-')}"

    def publish_address(self, unit_address: str) -> str:
        """Address ports are published on ("" = every address)."""
        return unit_address if self.sandbox else ""

    def log_driver(self) -> str:
        """The registry's log goes to journald, where COS collectors (and journalctl) read it;
        the local model's host may run no journald, so its units keep docker's default."""
        return "" if self.sandbox else "journald"

    def loopback_address(self, unit_address: str) -> str:
        """Address a listener only this machine may reach is published on: the loopback (the
        local model's units share one host, so each one's own address stands for its
        loopback)."""
        return unit_address if self.sandbox else "127.0.0.1"


def current() -> Host:
    return Host(
        sandbox=os.environ.get(SANDBOX_ENV, ""),
        unit_name=os.environ.get("JUJU_UNIT_NAME", ""),
    )
