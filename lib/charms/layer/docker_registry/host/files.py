"""Host files: written atomically with their mode set before any byte lands, only on change."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from charms.layer.docker_registry.host.paths import Host
from charms.layer.docker_registry.pipeline.runspec import HostFile


def _unchanged(path: Path, data: bytes, mode: int) -> bool:
    try:
        return path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode
    except FileNotFoundError:
        return False


def _stage(path: Path, data: bytes, mode: int) -> str:
    """A complete temporary copy next to ``path`` (mode set before any byte lands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:  # a full disk: name the file, which write() errors do not
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _replace_together(changes: list[tuple[Path, bytes, int]]) -> None:
    """Stage every (path, data, mode) complete, then move each into place: a failure while
    staging (a full disk) leaves every old file as it was; no temporary file is left behind."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data, mode in changes:
            staged.append((_stage(path, data, mode), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)


def write_if_changed(path: Path, content: str, mode: int) -> bool:
    """Atomically replace ``path`` when its content or mode differ; True when written."""
    data = content.encode()
    if _unchanged(path, data, mode):
        return False
    _replace_together([(path, data, mode)])
    return True


def sync(host: Host, files: Iterable[HostFile], previously: Iterable[str]) -> tuple[list, list]:
    """Write ``files`` and remove the ones the charm wrote before that are no longer wanted.

    All or nothing: every changed file is staged complete before the first one replaces its
    old version, so a full filesystem leaves the old set in place (never half of the new one).
    Returns (written paths, removed paths) as registry-side absolute paths.
    """
    files = list(files)
    pending = [(f.path, (host.path(f.path), f.content.encode(), f.mode)) for f in files]
    changed = [(name, change) for name, change in pending if not _unchanged(*change)]
    _replace_together([change for _, change in changed])
    written = [name for name, _ in changed]
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
