"""e2e fixtures: the built charm's real hooks in the local model against the real Docker engine.

Session: build the charm once (scripts/build-charm.sh build), ensure dockerd answers
(scripts/dockerd.sh start), build the offline registry image tarball when the script exists.
Module: a fresh model directory; afterwards the model is destroyed the Juju way and any
container whose name ends with one of the model's unit suffixes (`-<app>-<n>`) is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.localjuju.model import Model, unit_dirname  # noqa: E402
from tests.localjuju.runner import Controller  # noqa: E402

BUILD = Path(os.environ.get("E2E_BUILD_DIR", ROOT / "build"))
REGISTRY_IMAGE = "docker-registry-charm/registry:2.8.2"


def _run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, **kw)


@pytest.fixture(scope="session")
def charm_dir() -> Path:
    if os.environ.get("E2E_SKIP_BUILD") and (BUILD / "docker-registry").exists():
        return BUILD / "docker-registry"
    proc = _run(["bash", "scripts/build-charm.sh", str(BUILD)])
    if proc.returncode != 0:
        pytest.fail(f"charm build failed:\n{proc.stdout}\n{proc.stderr}")
    return BUILD / "docker-registry"


@pytest.fixture(scope="session")
def dockerd() -> None:
    script = ROOT / "scripts" / "dockerd.sh"
    if script.exists():
        proc = _run(["bash", str(script), "start"])
        if proc.returncode != 0:
            pytest.fail(f"dockerd did not start:\n{proc.stdout}\n{proc.stderr}")
    elif _run(["docker", "info"]).returncode != 0:
        pytest.skip("no Docker engine answering and no scripts/dockerd.sh")


@pytest.fixture(scope="session")
def registry_image_tar(dockerd) -> Path:
    script = ROOT / "scripts" / "build-registry-image.sh"
    if not script.exists():
        pytest.skip("scripts/build-registry-image.sh does not exist yet")
    out = BUILD / "images"
    proc = _run(["bash", str(script), str(out)])
    tar = out / "registry-image.tar"
    if proc.returncode != 0 or not tar.exists():
        pytest.fail(f"registry image build failed:\n{proc.stdout}\n{proc.stderr}")
    return tar


@pytest.fixture(scope="module")
def model(request, tmp_path_factory, charm_dir, dockerd):
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "model"
    ctl = Controller(Model(root, python=os.environ.get("DOCKER_REGISTRY_PY", sys.executable)))
    yield ctl
    suffixes = set()
    if ctl.model.exists():
        suffixes = {"-" + unit_dirname(u) for u in ctl.model.read()["units"]}
        try:
            ctl.destroy()
        except Exception as exc:  # keep cleaning up
            print(f"destroy failed: {exc}", file=sys.stderr)
    names = _run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    doomed = [n for n in names if any(n.endswith(s) for s in suffixes)]
    if doomed:
        _run(["docker", "rm", "-f", *doomed])


def wait_for_status(
    ctl: Controller, unit: str, status: str, message: str | None = None, timeout=300
):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        app = unit.split("/")[0]
        last = ctl.status()["applications"][app]["units"][unit]["workload-status"]
        if last["current"] == status and (message is None or last["message"] == message):
            return last
        if last["current"] == "error":
            break
        ctl.update_status()
        time.sleep(2)
    log = ctl.model.root / "debug.log"
    tail = "\n".join(log.read_text().splitlines()[-60:]) if log.exists() else ""
    pytest.fail(f"{unit}: wanted {status} {message!r}, last {json.dumps(last)}\n{tail}")


def http_get(url: str, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


class Helpers:
    wait_for_status = staticmethod(wait_for_status)
    http_get = staticmethod(http_get)
    registry_image = REGISTRY_IMAGE


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
