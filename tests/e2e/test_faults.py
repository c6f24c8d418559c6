"""Faults survived, end to end: one deployment, the faults in sequence as an operator meets them.

Each case ends with every image pushed before it pullable with the same digest (skopeo, at the
address the unit's status publishes), and fires only the hooks Juju would fire:
- the registry process dies: docker's restart policy (unless-stopped) brings it back, no hook;
- the container is killed (`docker kill`, which docker counts as a manual stop) or removed out
  of band: Juju fires no hook for that, the next update-status (every 5 minutes) restores it;
- a hook is killed between stopping the old container (set aside under another name) and
  starting the new one: the unit is in error, Juju retries the hook (automatically, or `juju
  resolve`), and the retry gives the old container its name back, then applies the change;
- the filesystem holding the config files is full: blocked naming the file, the old set of files
  stays whole, the registry serves on; the update-status after space is freed applies the change;
- dockerd restarted (marked ``restarts_dockerd``: it restarts the host's shared engine; last).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import jubilant
import pytest

from tests.support.images import make_test_image
from tests.support.net import free_port
from tools.localjuju import machine
from tools.localjuju.model import Model

# faults are armed in the unit's sandbox and the container is the test host's engine's
pytestmark = pytest.mark.local_only("faults are armed in the local model's unit sandboxes")

APP = "docker-registry"
UNIT = f"{APP}/0"
CONTAINER = f"registry-{APP}-0"
REPO = "faults/img"
PUSHED: dict[str, str] = {}  # tag -> manifest digest, every image pushed so far
PUBLISHED: dict[str, str] = {}
ROOT = Path(__file__).resolve().parents[2]
BACK_WITHIN = 30  # seconds an operator would give a registry to come back


def unit_status(juju: jubilant.Juju) -> tuple[str, str]:
    status = juju.status().get_units(APP)[UNIT].workload_status
    return status.current, status.message


def local_model(juju: jubilant.Juju) -> Model:
    """The local model behind ``juju`` (where faults are armed and unit files live)."""
    assert juju.model is not None
    return Model(Path(juju.model))


def published_netloc(model) -> str:
    """host:port the unit last published in its status ("Ready at HOST:PORT (http)."); a
    blocked unit names its problem instead, and clients keep what they were told."""
    match = re.fullmatch(r"Ready at (\S+) \(http\)\.", unit_status(model)[1])
    if match:
        PUBLISHED["netloc"] = match.group(1)
    return PUBLISHED["netloc"]


def inspect(fmt: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", fmt, CONTAINER], capture_output=True, text=True
    ).stdout.strip()


def answers(netloc: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{netloc}/v2/", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_answering(netloc: str, timeout: float = BACK_WITHIN) -> float:
    """Seconds until /v2/ answers (fails after ``timeout``); fires no hook."""
    started = time.monotonic()
    while not answers(netloc):
        assert time.monotonic() - started < timeout, f"{netloc} not answering in {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - started


def skopeo_copy(*args: str) -> None:
    copy = subprocess.run(
        ["skopeo", "copy", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert copy.returncode == 0, copy.stderr


def push(model, tag: str) -> None:
    ref = f"e2e-faults-{uuid.uuid4().hex[:6]}:{tag}"
    make_test_image(ref, seed=ref)
    try:
        to = f"docker://{published_netloc(model)}/{REPO}:{tag}"
        skopeo_copy("--dest-tls-verify=false", f"docker-daemon:{ref}", to)
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)
    PUSHED[tag] = pulled_digest(model, tag)


def pulled_digest(model, tag: str) -> str:
    """Pull the image (skopeo checks every blob's digest) and return its manifest's digest."""
    with tempfile.TemporaryDirectory(prefix="e2e-faults-") as target:
        source = f"docker://{published_netloc(model)}/{REPO}:{tag}"
        skopeo_copy("--src-tls-verify=false", source, f"dir:{target}")
        manifest = (Path(target) / "manifest.json").read_bytes()
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def assert_every_image_pullable(model) -> None:
    assert PUSHED
    assert {tag: pulled_digest(model, tag) for tag in PUSHED} == PUSHED


def config_files(model) -> list[str]:
    """``sha256sum`` lines of the unit's config directory, as enter.sh lists them."""
    directory = local_model(model).sandbox_dir(UNIT) / "etc/docker/registry"
    listing = subprocess.run(
        "find . -type f -exec sha256sum {} + | sort",
        shell=True,
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return listing.splitlines()


@pytest.fixture(scope="module")
def deployed(juju, charm_dir, registry_image_tar, helpers):
    # a port of its own: other modules (and other models on this host) use 5000
    helpers.deploy_registry(
        juju, charm_dir, registry_image_tar, APP, {"registry-port": free_port()}
    )
    helpers.wait_for_unit(juju, UNIT, "active")
    push(juju, "before-faults")
    return juju


def test_registry_process_dies_and_docker_restarts_it_without_a_hook(deployed, helpers):
    since, restarts = len(helpers.hooks_ran(deployed)), int(inspect("{{.RestartCount}}"))
    os.kill(int(inspect("{{.State.Pid}}")), signal.SIGKILL)
    wait_answering(published_netloc(deployed))
    assert int(inspect("{{.RestartCount}}")) == restarts + 1  # the restart policy, not a hook
    assert helpers.hooks_ran(deployed)[since:] == []
    assert_every_image_pullable(deployed)
    push(deployed, "after-process-killed")


def test_container_killed_out_of_band_is_started_by_the_next_update_status(deployed, helpers):
    before = inspect("{{.Id}}")
    subprocess.run(["docker", "kill", CONTAINER], check=True, capture_output=True)
    time.sleep(2)
    assert inspect("{{.State.Running}}") == "false"  # docker counts `kill` as a manual stop
    helpers.fire_update_status(deployed, UNIT)  # what Juju fires next (every 5 minutes)
    helpers.wait_for_unit(deployed, UNIT, "active")
    wait_answering(published_netloc(deployed))
    assert inspect("{{.Id}}") == before  # started again, same container
    assert_every_image_pullable(deployed)
    push(deployed, "after-docker-kill")


def test_container_removed_out_of_band_is_recreated_by_the_next_update_status(deployed, helpers):
    subprocess.run(["docker", "rm", "-f", CONTAINER], check=True, capture_output=True)
    helpers.fire_update_status(deployed, UNIT)
    helpers.wait_for_unit(deployed, UNIT, "active")
    assert inspect("{{.State.Running}}") == "true"
    wait_answering(published_netloc(deployed))
    assert_every_image_pullable(deployed)  # the storage outlives the container
    push(deployed, "after-docker-rm")


def test_hook_killed_between_stop_and_run_is_retried_and_restores_service(deployed, helpers):
    aside = f"{CONTAINER}.last-good"  # where the old container waits while the new one starts
    fault = machine.arm_fault(local_model(deployed).unit_dir(UNIT), "kill-hook-after-stop", aside)
    deployed.config(APP, {"log-level": "debug"})  # a change that recreates the container
    assert not fault.exists()  # it fired
    assert unit_status(deployed) == ("error", "hook failed: config-changed")
    assert inspect("{{.Id}}") == ""  # what the operator sees: the unit errored, no registry
    deployed.cli("resolved", UNIT)  # Juju retries a failed hook (automatically, or `juju resolve`)
    helpers.wait_for_unit(deployed, UNIT, "active")
    wait_answering(published_netloc(deployed))
    assert_every_image_pullable(deployed)
    assert subprocess.run(["docker", "inspect", aside], capture_output=True).returncode != 0
    push(deployed, "after-hook-killed")


def test_full_config_filesystem_blocks_naming_it_and_the_registry_serves_on(deployed, helpers):
    before_files, before_id = config_files(deployed), inspect("{{.Id}}")
    fault = machine.arm_fault(local_model(deployed).unit_dir(UNIT), "full-config-dir")
    try:
        deployed.config(APP, {"log-level": "warn"})
        config = local_model(deployed).sandbox_dir(UNIT) / "etc/docker/registry/config.yml"
        assert unit_status(deployed) == (
            "blocked",
            f"Cannot write {config}: No space left on device.",
        )
        # inside the full filesystem, the hook left the old set of files whole, no temp file
        after = (fault.parent / "config-dir.after").read_text().splitlines()
        assert after == before_files
        assert inspect("{{.Id}}") == before_id  # not recreated: serves the last good config
        assert_every_image_pullable(deployed)
    finally:
        fault.unlink()  # space freed
    helpers.fire_update_status(deployed, UNIT)  # the next hook Juju fires applies the change
    helpers.wait_for_unit(deployed, UNIT, "active")
    assert inspect("{{.Id}}") != before_id
    wait_answering(published_netloc(deployed))
    assert_every_image_pullable(deployed)
    push(deployed, "after-full-disk")


@pytest.mark.restarts_dockerd
def test_dockerd_restarted_brings_the_registry_back_without_a_hook(deployed, helpers):
    """RESTARTS THE HOST'S (shared) DOCKERD, through scripts/dockerd.sh restart."""
    since = len(helpers.hooks_ran(deployed))
    restart = subprocess.run(
        ["bash", str(ROOT / "scripts/dockerd.sh"), "restart"], capture_output=True, text=True
    )
    assert restart.returncode == 0, restart.stdout + restart.stderr
    wait_answering(published_netloc(deployed))  # the restart policy, unless-stopped
    assert helpers.hooks_ran(deployed)[since:] == []
    assert_every_image_pullable(deployed)
    assert json.loads(inspect("{{json .State.Running}}") or "false")
