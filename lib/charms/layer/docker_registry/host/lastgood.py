"""The last good state's files: private copies of what a registry that answered mounted, kept in
its config dir, put back when a new config does not start.
"""

from __future__ import annotations

from charms.layer.docker_registry.host import files, paths
from charms.layer.docker_registry.pipeline.render import PRIVATE, Desired
from charms.layer.docker_registry.pipeline.runspec import ContainerRun, HostFile

LAST_GOOD = ".last-good"  # in a registry's config dir: private copies of its last good files
LAST_GOOD_DIR = f"{paths.CONFIG_DIR}/{LAST_GOOD}"


def _backup_name(path: str) -> str:
    return path.strip("/").replace("/", "__")


def remember(host: paths.Host, desired: Desired, run: ContainerRun, url: str) -> dict:
    """Keep what just answered as the last good state."""
    backup = host.path(f"{desired.config_dir}/{LAST_GOOD}")
    files.ensure_dir(backup, 0o700)
    kept: list[tuple[str, int]] = []
    for f in desired.files:
        files.write_if_changed(backup / _backup_name(f.path), f.content, PRIVATE)
        kept.append((f.path, f.mode))
    wanted = {_backup_name(path) for path, _ in kept}
    for stale in backup.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return {"run": run.as_record(), "files": kept, "url": url}


def restore(host: paths.Host, config_dir: str, last_good: dict, managed: list[str]) -> list[str]:
    """Put the last good files back (removing what only the new config had)."""
    backup = host.path(f"{config_dir}/{LAST_GOOD}")
    restored = [
        HostFile(path, (backup / _backup_name(path)).read_text(), mode)
        for path, mode in last_good["files"]
    ]
    files.sync(host, restored, managed)
    return [f.path for f in restored]
