"""Test charms the local model builds on demand (tests/charms/<name>, with the real layers).

A remote-application fake whose class names a ``CHARM`` runs that charm's real hooks for its
units (so what crosses the relation is read and written by the upstream interface layers),
then its own Python for the workload (real containerd/docker/haproxy) from what the charm
wrote. Built charms are cached in LOCALJUJU_BUILD (default build/) and rebuilt when their
source is newer.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

from .model import REPO_ROOT, ModelError

SOURCES = REPO_ROOT / "tests" / "charms"


def build_dir() -> Path:
    return Path(os.environ.get("LOCALJUJU_BUILD", REPO_ROOT / "build"))


def _newest(path: Path) -> float:
    return max((p.stat().st_mtime for p in path.rglob("*") if p.is_file()), default=0.0)


def test_charm(name: str) -> Path:
    """The built test charm ``name`` (built now when missing or older than its source)."""
    source, out = SOURCES / name, build_dir()
    built = out / name
    if not (source / "metadata.yaml").exists():
        raise ModelError(f"no test charm {name!r} under {SOURCES}")
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (built / "metadata.yaml").exists() and _newest(built) >= _newest(source):
            return built
        proc = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "build-charm.sh"), str(out), str(source)],
            capture_output=True,
            text=True,
            env={**os.environ, "WHEELHOUSE": "host"},
        )
        if proc.returncode != 0:
            raise ModelError(f"building test charm {name} failed:\n{proc.stdout}{proc.stderr}")
    return built
