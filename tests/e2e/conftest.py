"""e2e fixtures: the built charm's real hooks in a model, driven through Juju's own test client.

`juju` (module scope) is a `jubilant.Juju`: by default bound to a fresh local model (the local
model's CLI, tools/localjuju/juju, against the real Docker engine); with `--model NAME`, bound
to that model on a real Juju controller, where the charm deployed is the packed
docker-registry*.charm (`--charm`) and easyrsa comes from Charmhub. Tests marked
`local_only(reason)` need the local model's sandbox (unit files on the host, fault injection,
the Python API) and are skipped on a real controller. `model` is the local model's Python
controller behind `juju` (it makes and destroys the model directory); tests use `juju`.

Session: build the charm once (scripts/build-charm.sh build) and the real easyrsa charm
(`easyrsa_charm`, tests/support/charms.py), ensure dockerd answers (scripts/dockerd.sh start),
build the offline registry image tarball when the script exists.
Module: a fresh model directory; afterwards the model is destroyed the Juju way and any
container whose name ends with one of the model's unit suffixes (`-<app>-<n>`) is removed.
On a real controller the module's applications are removed from the model instead.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jubilant
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.charms import (  # noqa: E402
    EASYRSA_LAYER,
    EASYRSA_RESOURCE,
    build_charm,
    easyrsa_charm,  # noqa: F401 (a fixture)
)
from tests.support.images import make_test_image, registry_image_ref  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.s3 import docker_bridge_gateway  # noqa: E402
from tools.localjuju.model import Model, unit_dirname  # noqa: E402
from tools.localjuju.runner import Controller  # noqa: E402

BUILD = Path(os.environ.get("E2E_BUILD_DIR", ROOT / "build"))
REGISTRY_IMAGE = "docker-registry-charm/registry:2.8.2"
LOCAL_JUJU = ROOT / "tools" / "localjuju" / "juju"
EASYRSA_CHANNEL = "latest/stable"  # (a real controller) the CA deployed from Charmhub


def pytest_addoption(parser):
    group = parser.getgroup("e2e")
    group.addoption(
        "--model",
        help="run against this model of a real Juju controller (jubilant.Juju(model=NAME)) "
        "instead of a fresh local model per module",
    )
    group.addoption(
        "--charm",
        help="with --model: the packed charm to deploy (default: the newest "
        "docker-registry*.charm in the repository or the build directory)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "local_only(reason): needs the local model's sandbox; skipped with --model",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--model"):
        return
    for item in items:
        marker = item.get_closest_marker("local_only")
        if marker:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"local model only: {reason}"))


def real_model(config) -> str | None:
    return config.getoption("--model")


def _run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, **kw)


@pytest.fixture(scope="session")
def charm_dir(request) -> Path:
    """The built charm: its directory for the local model, the packed .charm with --model."""
    if real_model(request.config):
        return packed_charm(request.config)
    if os.environ.get("E2E_SKIP_BUILD") and (BUILD / "docker-registry").exists():
        return BUILD / "docker-registry"
    proc = _run(["bash", "scripts/build-charm.sh", str(BUILD)])
    if proc.returncode != 0:
        pytest.fail(f"charm build failed:\n{proc.stdout}\n{proc.stderr}")
    return BUILD / "docker-registry"


def packed_charm(config) -> Path:
    given = config.getoption("--charm")
    if given:
        return Path(given).resolve()
    found = sorted(
        [*ROOT.glob("docker-registry*.charm"), *BUILD.glob("docker-registry*.charm")],
        key=lambda p: p.stat().st_mtime,
    )
    if not found:
        pytest.exit("--model needs a packed charm: run `charmcraft pack` or pass --charm PATH")
    return found[-1].resolve()


@pytest.fixture(scope="session")
def dockerd(request) -> None:
    if real_model(request.config):
        return  # the units' machines run their own engine
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
def model(request, tmp_path_factory):
    """The module's local model (its Python controller); `juju` drives the same model."""
    if real_model(request.config):
        pytest.skip("local model only: drives the local model's Python API")
    request.getfixturevalue("charm_dir")
    request.getfixturevalue("dockerd")
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


@pytest.fixture(scope="module")
def juju(request) -> Iterator[jubilant.Juju]:
    """Juju's own client bound to the module's model: the local model (the `model` fixture's
    directory, through tools/localjuju/juju), or with --model the real controller's model,
    from which the applications this module deployed are removed afterwards."""
    name = real_model(request.config)
    if not name:
        ctl = request.getfixturevalue("model")
        yield jubilant.Juju(model=str(ctl.model.root), cli_binary=LOCAL_JUJU)
        return
    juju = jubilant.Juju(model=name, wait_timeout=20 * 60)
    before = set(juju.status().apps)
    yield juju
    added = sorted(set(juju.status().apps) - before)
    if added:
        juju.remove_application(*added, destroy_storage=True, force=True)
        juju.wait(lambda status: not set(status.apps) & set(added), timeout=10 * 60)


def is_local(juju: jubilant.Juju) -> bool:
    return juju.cli_binary == str(LOCAL_JUJU)


@functools.cache
def _built_easyrsa() -> Path:
    return build_charm("easyrsa", EASYRSA_LAYER)


def unit_of(juju: jubilant.Juju, app: str, index: int = 0) -> str:
    """The app's ``index``-th unit (by number): /0 in a fresh model, but a real model that
    had the application before numbers its units on from there."""
    units = sorted(juju.status().get_units(app), key=lambda u: int(u.split("/")[1]))
    return units[index]


def deploy_ca(juju: jubilant.Juju, app: str = "easyrsa", num_units: int = 1) -> str:
    """The real easyrsa charm: built from the layer cache (with its resource) for the local
    model, from Charmhub on a real controller."""
    if is_local(juju):
        charm = _built_easyrsa()
        juju.deploy(charm, app, resources={"easyrsa": str(EASYRSA_RESOURCE)}, num_units=num_units)
    else:
        juju.deploy("easyrsa", app, channel=EASYRSA_CHANNEL, num_units=num_units)
    return app


def deploy_registry(
    juju: jubilant.Juju,
    charm_dir: Path,
    image_tar: Path,
    app: str,
    config: dict | None = None,
    **deploy: Any,
) -> str:
    """Deploy the charm as ``app`` with the registry image built here (option and resource);
    its first unit."""
    juju.deploy(
        charm_dir,
        app,
        config={"registry-image": REGISTRY_IMAGE, **(config or {})},
        resources={"registry-image": str(image_tar)},
        **deploy,
    )
    return unit_of(juju, app)


def unit_address(juju: jubilant.Juju, unit: str) -> str:
    return juju.status().get_units(unit.split("/")[0])[unit].public_address


def wait_for_unit(
    juju: jubilant.Juju, unit: str, current: str, message: str | None = None, timeout=None
) -> jubilant.statustypes.UnitStatus:
    """The unit's status once it is ``current`` (and ``message``); fails at once on error.

    The local model settles every verb before it returns, so its first status is what an
    operator would see; on a real controller hooks run after the command returns, so the
    status must hold for three polls in a row (jubilant's default)."""
    app = unit.split("/")[0]

    def ready(status):
        ws = status.get_units(app).get(unit)
        return (
            bool(ws)
            and ws.workload_status.current == current
            and (message is None or ws.workload_status.message == message)
        )

    def failed(status):
        ws = status.get_units(app).get(unit)
        return bool(ws) and ws.workload_status.current == "error"

    status = juju.wait(
        ready,
        error=failed,
        delay=0.5 if is_local(juju) else 3,
        successes=1 if is_local(juju) else 3,
        timeout=timeout or (60 if is_local(juju) else juju.wait_timeout),
    )
    return status.get_units(app)[unit]


def unit_file(juju: jubilant.Juju, unit: str, path: str) -> str | None:
    """A file the charm wrote on its unit (through `juju exec`, so on a real machine too: the
    local model's hooks write under $DOCKER_REGISTRY_SANDBOX, unset on a real machine); None
    when there is no such file."""
    try:
        return juju.exec(f'cat "${{DOCKER_REGISTRY_SANDBOX:-}}{path}"', unit=unit).stdout
    except jubilant.TaskError:
        return None


def fire_update_status(juju: jubilant.Juju, unit: str) -> None:
    """update-status on ``unit`` now, as Juju's timer fires it every 5 minutes: the local
    model's own verb, or on a real controller the hook run in the unit's hook context."""
    if is_local(juju):
        juju.cli("update-status", unit)
    else:
        juju.exec("hooks/update-status", unit=unit)


def docker_on(juju: jubilant.Juju, unit: str, *args: str) -> str:
    """`docker ARGS` on the unit's machine (the local model's units share the host's engine);
    its stdout, or "" when it fails (e.g. inspecting a container that is gone)."""
    try:
        return juju.exec("docker", *args, unit=unit).stdout
    except jubilant.TaskError:
        return ""


def hooks_ran(juju: jubilant.Juju) -> list[str]:
    """``unit: hook`` for every hook the model ran, from its debug log: the local model logs
    "app/0: <time> INFO running <hook> hook", Juju `unit-app-0: <time> INFO
    juju.worker.uniter.operation ran "<hook>" hook ...`."""
    out = juju.cli("debug-log", "--replay", "--no-tail", "--level", "INFO")
    hooks = []
    for line in out.splitlines():
        unit, _, rest = line.partition(": ")
        words = rest.split()
        if len(words) == 5 and words[2] == "running" and words[4] == "hook":
            hooks.append(f"{unit}: {words[3]}")
        elif len(words) > 5 and words[3] == "ran" and words[5] == "hook":
            name = unit.removeprefix("unit-").rsplit("-", 1)
            hooks.append(f"{name[0]}/{name[1]}: {words[4].strip(chr(34))}")
    return hooks


def easyrsa_client_pair_of(juju: jubilant.Juju, unit: str) -> tuple[str, str]:
    """(cert, key) of the client certificate the CA's leader hands ``unit`` (`client.cert` /
    `client.key` on the tls-certificates relation, read with `juju show-unit`)."""
    for rel in juju.show_unit(unit).relation_info:
        for data in (u.data for u in rel.related_units.values()):
            if data.get("client.cert") and data.get("client.key"):
                return data["client.cert"], data["client.key"]
    raise AssertionError(f"no CA has published a client certificate to {unit}")


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


def http_get(url: str, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


class Helpers:
    wait_for_unit = staticmethod(wait_for_unit)
    unit_address = staticmethod(unit_address)
    unit_of = staticmethod(unit_of)
    unit_file = staticmethod(unit_file)
    hooks_ran = staticmethod(hooks_ran)
    fire_update_status = staticmethod(fire_update_status)
    docker_on = staticmethod(docker_on)
    deploy_ca = staticmethod(deploy_ca)
    deploy_registry = staticmethod(deploy_registry)
    easyrsa_client_pair_of = staticmethod(easyrsa_client_pair_of)
    is_local = staticmethod(is_local)
    http_get = staticmethod(http_get)
    registry_image = REGISTRY_IMAGE


@pytest.fixture(scope="session")
def helpers() -> type[Helpers]:
    return Helpers
