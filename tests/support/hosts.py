"""Host seams for integration tests that run the registry as production does in one respect
(ports, log driver) while keeping its files and name apart from anything else on the machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from charms.layer.docker_registry.host import paths


@dataclass(frozen=True)
class ProductionApart(paths.Host):
    """Production's host seam (sandbox unset), but files under ``root`` and the container name
    suffixed with ``suffix``; a test overrides what else it keeps apart."""

    root: str = ""
    suffix: str = ""

    def path(self, absolute: str) -> Path:
        return Path(self.root) / absolute.lstrip("/")

    def container_name(self, configured: str) -> str:
        return f"{configured}-{self.suffix}"
