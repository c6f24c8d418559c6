"""Fixtures for the build tests: the built charm and the bases' Python interpreters."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def built_charm(tmp_path_factory) -> Path:
    """The built charm: BUILT_CHARM (what `make build-test` passes: build/all-bases/docker-registry
    from `make charm-all-bases`), else built here with WHEELHOUSE=all-bases as that target does."""
    given = os.environ.get("BUILT_CHARM")
    if given:
        charm = Path(given)
        assert (charm / "metadata.yaml").is_file(), f"BUILT_CHARM={given} is not a built charm"
        return charm
    out = tmp_path_factory.mktemp("charm-build")
    env = dict(
        os.environ, WHEELHOUSE="all-bases", WHEELHOUSE_CACHE=str(ROOT / "build/wheel-cache")
    )
    if not (ROOT / ".venv/bin/charm-build").exists():
        env["VENV"] = sys.prefix  # charm-build from the venv running the tests
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/build-charm.sh"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"build-charm.sh failed:\n{proc.stdout[-3000:]}{proc.stderr}"
    return out / "docker-registry"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path.parent.parent.name))


def pyenv_roots() -> list[Path]:
    roots = [os.environ.get("PYENV_ROOT")]
    if shutil.which("pyenv"):
        proc = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        roots.append(proc.stdout.strip())
    roots.append(str(Path.home() / ".pyenv"))
    return [Path(r) for r in dict.fromkeys(r for r in roots if r)]


def find_python(version: str) -> Path | None:
    """The newest pyenv CPython `version` (e.g. "3.10") interpreter, or None."""
    for root in pyenv_roots():
        found = sorted(
            (root / "versions").glob(f"{version}.*/bin/python{version}"), key=_version_key
        )
        found = [p for p in found if re.fullmatch(r"\d+\.\d+\.\d+", p.parent.parent.name)]
        if found:
            return found[-1]
    return None
