"""Charms the tests deploy in the local model, built with the real layers (scripts/build-charm.sh).

- the docker-registry charm itself (this repository)
- the real easyrsa charm (LAYER_CACHE/charms/easyrsa, with its resource
  LAYER_CACHE/resources/easyrsa-3.0.9.tgz), the CA of the e2e tests and the demo
- the local model's dummy charm (tools/localjuju/tests/dummy_charm)

Each is built at most once per test session (session fixtures: `easyrsa_charm` below,
imported by the conftests; `dummy` in tools/localjuju/tests/conftest.py).
With E2E_SKIP_BUILD set, an existing build is reused as it is.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("E2E_BUILD_DIR", ROOT / "build"))
LAYER_CACHE = Path(os.environ.get("LAYER_CACHE", ROOT.parent / "shared" / "layers"))
EASYRSA_LAYER = LAYER_CACHE / "charms" / "easyrsa"
EASYRSA_RESOURCE = LAYER_CACHE / "resources" / "easyrsa-3.0.9.tgz"
DUMMY_LAYER = ROOT / "tools" / "localjuju" / "tests" / "dummy_charm"


class BuildError(Exception):
    pass


def build_charm(name: str, layer_dir: Path | None = None, build_dir: Path = BUILD) -> Path:
    """``build_dir/<name>``, built from ``layer_dir`` (default: this repository)."""
    built = build_dir / name
    if os.environ.get("E2E_SKIP_BUILD") and (built / "metadata.yaml").exists():
        return built
    argv = ["bash", str(ROOT / "scripts" / "build-charm.sh"), str(build_dir)]
    if layer_dir is not None:
        argv.append(str(layer_dir))
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not (built / "metadata.yaml").exists():
        raise BuildError(f"building {name} failed:\n{proc.stdout}\n{proc.stderr}")
    return built


def deploy_easyrsa(ctl, charm: Path, app: str = "easyrsa", num_units: int = 1) -> str:
    """`juju deploy easyrsa --resource easyrsa=easyrsa-3.0.9.tgz` in the local model."""
    return ctl.deploy(
        str(charm), app, resources={"easyrsa": str(EASYRSA_RESOURCE)}, num_units=num_units
    )


@pytest.fixture(scope="session")
def easyrsa_charm() -> Path:
    """The real easyrsa charm, built once per session."""
    if not EASYRSA_RESOURCE.is_file():
        pytest.fail(f"no easyrsa resource at {EASYRSA_RESOURCE} (set LAYER_CACHE)")
    try:
        return build_charm("easyrsa", EASYRSA_LAYER)
    except BuildError as exc:
        pytest.fail(str(exc))
