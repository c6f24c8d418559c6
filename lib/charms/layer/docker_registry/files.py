"""Host files: written atomically with their mode set before any byte lands, only on change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from charms.layer.docker_registry.paths import Host
from charms.layer.docker_registry.render import HostFile


def write_if_changed(path: Path, content: str, mode: int) -> bool:
    """Atomically replace ``path`` when its content or mode differ; True when written."""
    data = content.encode()
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def sync(host: Host, files: Iterable[HostFile], previously: Iterable[str]) -> tuple[list, list]:
    """Write ``files`` and remove the ones the charm wrote before that are no longer wanted.

    Returns (written paths, removed paths) as registry-side absolute paths.
    """
    files = list(files)
    written = [f.path for f in files if write_if_changed(host.path(f.path), f.content, f.mode)]
    wanted = {f.path for f in files}
    removed = []
    for stale in sorted(set(previously) - wanted):
        target = host.path(stale)
        if target.is_file():
            target.unlink()
            removed.append(stale)
    return written, removed


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
