"""e2e fixtures: the built charm's real hooks in the local model against the real Docker engine.

Session: build the charm once (scripts/build-charm.sh build) and the real easyrsa charm
(`easyrsa_charm`, tests/support/charms.py), ensure dockerd answers (scripts/dockerd.sh start),
build the offline registry image tarball when the script exists.
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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.charms import deploy_easyrsa, easyrsa_charm  # noqa: E402,F401 (a fixture)
from tests.support.images import make_test_image, registry_image_ref  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.s3 import docker_bridge_gateway  # noqa: E402
from tools.localjuju.model import Model, unit_dirname  # noqa: E402
from tools.localjuju.runner import Controller  # noqa: E402

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


@dataclass
class Upstream:
    """A plain registry container (http, no auth) and the local test images pushed to it."""

    name: str
    port: int
    gateway: str
    refs: list[str] = field(default_factory=list)

    @property
    def loopback_netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def gateway_netloc(self) -> str:
        """host:port on the docker bridge gateway (what the charm's registry container reaches)."""
        return f"{self.gateway}:{self.port}"


@pytest.fixture(scope="module")
def upstream_registry(dockerd) -> Callable[..., Upstream]:
    """Factory: ``start(prefix, images, loopback=...)`` runs a plain registry published on the
    docker bridge gateway (and on 127.0.0.1 when ``loopback``), then, for each
    ``(ref, repository:tag)`` of ``images``, builds the test image ``ref`` and pushes it there
    with skopeo (retried while the registry starts; through loopback when published there).
    Containers and images are removed when the module ends."""
    started: list[Upstream] = []

    def start(prefix: str, images: list[tuple[str, str]], *, loopback: bool) -> Upstream:
        port, gateway = free_port(), docker_bridge_gateway()
        up = Upstream(name=f"{prefix}-{uuid.uuid4().hex[:6]}", port=port, gateway=gateway)
        publish = ["-p", f"{up.loopback_netloc}:5000"] if loopback else []
        publish += ["-p", f"{up.gateway_netloc}:5000"]
        subprocess.run(
            ["docker", "run", "-d", "--name", up.name, *publish, registry_image_ref()],
            check=True,
            capture_output=True,
        )
        started.append(up)
        push_to = up.loopback_netloc if loopback else up.gateway_netloc
        for ref, dest in images:
            make_test_image(ref, seed=ref)
            up.refs.append(ref)
            for _ in range(50):
                copy = subprocess.run(
                    [
                        "skopeo",
                        "copy",
                        "--dest-tls-verify=false",
                        f"docker-daemon:{ref}",
                        f"docker://{push_to}/{dest}",
                    ],
                    capture_output=True,
                    text=True,
                )
                if copy.returncode == 0:
                    break
            assert copy.returncode == 0, copy.stderr
        return up

    yield start
    for up in started:
        subprocess.run(["docker", "rm", "-f", up.name], capture_output=True)
        subprocess.run(["docker", "rmi", *up.refs], capture_output=True)


def wait_for_status(
    ctl: Controller, unit: str, status: str, message: str | None = None, timeout=30
):
    """The unit's workload status once the model has settled, waiting without firing any hook.

    Juju fires no hook just because a test waits (update-status comes every 5 minutes): what
    a user would see right after a command is what the hooks that command caused left. Every
    verb of the local model settles before it returns, so this only waits for the status to
    be read; ``timeout`` bounds that, not the hooks."""
    deadline = time.time() + timeout
    app = unit.split("/")[0]
    while True:
        last = ctl.status()["applications"][app]["units"][unit]["workload-status"]
        if last["current"] == status and (message is None or last["message"] == message):
            return last
        if last["current"] == "error" or time.time() > deadline:
            break
        time.sleep(1)
    log = ctl.model.root / "debug.log"
    tail = "\n".join(log.read_text().splitlines()[-60:]) if log.exists() else ""
    pytest.fail(f"{unit}: wanted {status} {message!r}, last {json.dumps(last)}\n{tail}")


def hooks_run(ctl: Controller, since: int = 0) -> list[str]:
    """``unit: hook`` for every hook the model ran, from line ``since`` of its debug log
    (``len(hooks_run(ctl))`` marks where a scenario starts)."""
    log = ctl.model.root / "debug.log"
    lines = log.read_text().splitlines() if log.exists() else []
    hooks = []
    for line in lines:
        unit, _, rest = line.partition(": ")
        words = rest.split()
        if len(words) == 5 and words[2] == "running" and words[4] == "hook":
            hooks.append(f"{unit}: {words[3]}")
    return hooks[since:]


def http_get(url: str, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def easyrsa_client_pair(ctl: Controller, ca_app: str = "easyrsa") -> tuple[str, str]:
    """(cert, key) of the client certificate the CA's leader hands every requirer
    (`client.cert` / `client.key` on the tls-certificates relation; easyrsa's cert starts with
    an `openssl x509 -text` dump, which PEM readers skip)."""
    state = ctl.model.read()
    leader = state["applications"][ca_app]["leader"]
    for rel in state["relations"].values():
        if rel["interface"] == "tls-certificates" and leader in rel["unit_data"]:
            data = rel["unit_data"][leader]
            if data.get("client.cert") and data.get("client.key"):
                return data["client.cert"], data["client.key"]
    raise AssertionError(f"{ca_app} has published no client certificate")


class Helpers:
    wait_for_status = staticmethod(wait_for_status)
    hooks_run = staticmethod(hooks_run)
    http_get = staticmethod(http_get)
    deploy_easyrsa = staticmethod(deploy_easyrsa)
    easyrsa_client_pair = staticmethod(easyrsa_client_pair)
    registry_image = REGISTRY_IMAGE


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
