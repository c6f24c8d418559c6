"""End to end: the built charm's real hooks, driven through jubilant (the local model with the
real Docker engine, or a real controller with --model).

One deployment per module; the tests run in order and build on each other like an operator's
session: deploy, no-op hooks, a real change, a bad value, stop/start, upgrade, scale down.
Docker is asked on the unit's machine (`juju exec`), the registry over HTTP at the unit's
address, files the charm wrote through `juju exec` too.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import jubilant
import pytest

from tests.support import certs
from tests.support.images import make_test_image

APP = "docker-registry"


@dataclass
class Deployed:
    juju: jubilant.Juju
    unit: str
    address: str
    helpers: type

    @property
    def url(self) -> str:
        return f"http://{self.address}:5000"

    @property
    def ready(self) -> str:
        return f"Ready at {self.address}:5000 (http)."

    @property
    def container(self) -> str:
        return container_of(self.unit)


def container_of(unit: str) -> str:
    return "registry-" + unit.replace("/", "-")


def starts(d: Deployed, since: float, unit: str | None = None) -> int:
    """How many times the unit's registry container started since ``since`` (docker events)."""
    unit = unit or d.unit
    out = docker(d, unit, "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                 "--filter", f"container={container_of(unit)}", "--filter", "event=start",
                 "--format", "{{.ID}}")  # fmt: skip
    return len(out.split())


def docker(d: Deployed, unit: str, *args: str) -> str:
    return d.helpers.docker_on(d.juju, unit, *args)


def container_id(d: Deployed, unit: str | None = None) -> str:
    unit = unit or d.unit
    return docker(d, unit, "inspect", "--format", "{{.Id}}", container_of(unit)).strip()


def tags(d: Deployed, repo: str) -> list[str]:
    with urllib.request.urlopen(f"{d.url}/v2/{repo}/tags/list", timeout=10) as resp:
        return json.load(resp)["tags"]


def workload(d: Deployed, unit: str | None = None) -> jubilant.statustypes.StatusInfo:
    unit = unit or d.unit
    return d.juju.status().get_units(APP)[unit].workload_status


@pytest.fixture(scope="module")
def deployed(juju, charm_dir, registry_image_tar, helpers):
    unit = helpers.deploy_registry(juju, charm_dir, registry_image_tar, APP)
    d = Deployed(juju, unit, helpers.unit_address(juju, unit), helpers)
    helpers.wait_for_unit(juju, unit, "active", d.ready)
    ref = f"e2e-core-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, seed=ref)
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"docker-daemon:{ref}",
            f"docker://{d.address}:5000/e2e/keep:1",
        ],
        check=True,
        capture_output=True,
    )
    yield d
    subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)


def test_deploy_answers_and_serves_pushed_images(deployed):
    assert tags(deployed, "e2e/keep") == ["1"]
    assert "5000/tcp" in deployed.juju.status().get_units(APP)[deployed.unit].open_ports


def test_noop_hooks_touch_nothing(deployed, helpers):
    before, since = container_id(deployed), time.time()
    ran = len(helpers.hooks_ran(deployed.juju))
    helpers.fire_update_status(deployed.juju, deployed.unit)
    helpers.fire_update_status(deployed.juju, deployed.unit)
    # a real config-changed whose option has no effect here (Swift's container, Swift unused)
    deployed.juju.config(APP, {"storage-swift-container": "unused-here"})
    helpers.wait_for_unit(deployed.juju, deployed.unit, "active", deployed.ready)
    hooks = [h.split(": ", 1)[1] for h in helpers.hooks_ran(deployed.juju)[ran:]]
    assert hooks.count("config-changed") == 1, hooks
    assert starts(deployed, since) == 0
    assert container_id(deployed) == before
    deployed.juju.config(APP, reset=["storage-swift-container"])


def test_a_real_change_restarts_exactly_once(deployed, helpers):
    since = time.time()
    deployed.juju.config(APP, {"log-level": "debug", "storage-delete": True})
    helpers.wait_for_unit(deployed.juju, deployed.unit, "active", deployed.ready)
    assert starts(deployed, since) == 1
    assert tags(deployed, "e2e/keep") == ["1"]


def test_invalid_config_blocks_and_the_registry_keeps_serving(deployed, helpers):
    juju, unit = deployed.juju, deployed.unit
    before, since = container_id(deployed), time.time()
    juju.config(APP, {"registry-port": 0, "storage-cache": "redis"})
    status = helpers.wait_for_unit(juju, unit, "blocked").workload_status
    assert status.message.startswith("Invalid charm config: ")
    assert "registry-port: must be between 1 and 65535" in status.message
    assert "storage-cache: must be one of inmemory, disabled" in status.message
    assert tags(deployed, "e2e/keep") == ["1"]  # still serving its images on the last good config
    assert (container_id(deployed), starts(deployed, since)) == (before, 0)
    juju.config(APP, reset=["registry-port", "storage-cache"])
    helpers.wait_for_unit(juju, unit, "active", deployed.ready)
    assert starts(deployed, since) == 0


def test_stop_and_start_actions(deployed, helpers):
    juju, unit = deployed.juju, deployed.unit
    task = juju.run(unit, "stop")
    assert task.results["outcome"] == "success"
    assert container_id(deployed) == ""  # removed (remove=true by default)
    helpers.fire_update_status(juju, unit)  # hooks leave it stopped
    helpers.wait_for_unit(juju, unit, "blocked", f"{deployed.container} container is stopped.")
    assert container_id(deployed) == ""
    juju.run(unit, "start")
    helpers.wait_for_unit(juju, unit, "active", deployed.ready)
    assert tags(deployed, "e2e/keep") == ["1"]
    since = time.time()
    helpers.fire_update_status(juju, unit)
    assert starts(deployed, since) == 0  # the start action re-created it with its label


def test_bad_action_params_fail_cleanly(deployed):
    with pytest.raises(jubilant.TaskError) as failed:
        deployed.juju.run(deployed.unit, "stop", {"name": "no such; rm -rf /"})
    task = failed.value.task
    assert task.status == "failed"
    assert task.message == "name: not a valid container name"
    assert "Traceback" not in task.stdout + task.stderr


def test_upgrade_charm_keeps_images_config_and_container(deployed, charm_dir, helpers):
    before, since = container_id(deployed), time.time()
    deployed.juju.refresh(APP, path=charm_dir)
    helpers.wait_for_unit(deployed.juju, deployed.unit, "active", deployed.ready)
    assert tags(deployed, "e2e/keep") == ["1"]
    assert (container_id(deployed), starts(deployed, since)) == (before, 0)


def test_token_auth_and_never_basic_and_token_together(deployed, helpers):
    juju, unit = deployed.juju, deployed.unit
    ca, _, _ = certs.make_ca("token-issuer")
    token = {
        "auth-token-realm": "https://auth.example.com/token",
        "auth-token-service": "registry",
        "auth-token-issuer": "issuer",
        "auth-token-root-certs": base64.b64encode(ca.cert.encode()).decode(),
    }
    juju.config(APP, token)
    helpers.wait_for_unit(juju, unit, "active", deployed.ready)  # 401 counts as answering
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{deployed.url}/v2/", timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["Www-Authenticate"] == (
        'Bearer realm="https://auth.example.com/token",service="registry"'
    )
    bundle = "/etc/docker/registry/token-bundle.pem"
    assert helpers.unit_file(juju, unit, bundle) == ca.cert
    # both kinds at once would make a registry that refuses to start: blocked instead
    before = container_id(deployed)
    juju.config(APP, {"auth-basic-password": "also-basic"})
    status = helpers.wait_for_unit(juju, unit, "blocked").workload_status
    assert (
        "auth-basic-password: basic and token auth (auth-token-*) cannot both be set"
        in status.message
    )
    assert "also-basic" not in status.message
    assert container_id(deployed) == before  # still serving with token auth
    juju.config(APP, reset=[*token, "auth-basic-password"])
    helpers.wait_for_unit(juju, unit, "active", deployed.ready)
    assert helpers.unit_file(juju, unit, bundle) is None
    assert tags(deployed, "e2e/keep") == ["1"]


def test_second_unit_then_remove_unit_cleans_up(deployed, helpers):
    juju = deployed.juju
    juju.add_unit(APP)
    second = helpers.unit_of(juju, APP, 1)
    address = helpers.unit_address(juju, second)
    helpers.wait_for_unit(juju, second, "active", f"Ready at {address}:5000 (http).")
    assert container_id(deployed, second)
    juju.remove_unit(second)
    juju.wait(lambda status: second not in status.get_units(APP), timeout=10 * 60)
    assert (
        container_id(deployed)
        and not docker(
            deployed, deployed.unit, "ps", "-aq", "--filter", f"name=^{container_of(second)}$"
        ).strip()
    )
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{address}:5000/v2/", timeout=3)
    assert tags(deployed, "e2e/keep") == ["1"]  # the other unit is untouched
