"""End to end: the built charm's real hooks in the local model, real Docker engine.

One deployment per module; the tests run in order and build on each other like an operator's
session: deploy, no-op hooks, a real change, a bad value, stop/start, upgrade, scale down.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.support import certs
from tests.support.images import make_test_image

APP = "docker-registry"
UNIT = f"{APP}/0"
CONTAINER = f"registry-{APP}-0"
URL = "http://127.0.0.2:5000"
READY = "Ready at 127.0.0.2:5000 (http)."


def starts(name: str, since: float) -> int:
    """How many times the container called ``name`` started since ``since`` (docker events)."""
    out = subprocess.run(
        [
            "docker",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{time.time():.3f}",
            "--filter",
            f"container={name}",
            "--filter",
            "event=start",
            "--format",
            "{{.ID}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return len(out.split())


def tags(repo: str, base: str = URL) -> list[str]:
    with urllib.request.urlopen(f"{base}/v2/{repo}/tags/list", timeout=10) as resp:
        return json.load(resp)["tags"]


def unit_status(model, unit=UNIT) -> dict:
    app = unit.split("/")[0]
    return model.status()["applications"][app]["units"][unit]["workload-status"]


def container_id(name=CONTAINER) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def deployed(model, charm_dir, registry_image_tar, helpers):
    model.deploy(
        str(charm_dir),
        APP,
        config={"registry-image": helpers.registry_image},
        resources={"registry-image": str(registry_image_tar)},
    )
    helpers.wait_for_status(model, UNIT, "active", READY)
    ref = f"e2e-core-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, seed=ref)
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"docker-daemon:{ref}",
            "docker://127.0.0.2:5000/e2e/keep:1",
        ],
        check=True,
        capture_output=True,
    )
    yield model
    subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)


def test_deploy_answers_and_serves_pushed_images(deployed):
    assert tags("e2e/keep") == ["1"]
    status = deployed.status()["applications"][APP]["units"][UNIT]
    assert "5000/tcp" in status["open-ports"]


def test_noop_hooks_touch_nothing(deployed):
    before, since = container_id(), time.time()
    deployed.update_status()
    deployed.update_status()
    deployed.config_set(APP, {"log-level": "info"})  # the default again: no change
    assert starts(CONTAINER, since) == 0
    assert container_id() == before
    assert unit_status(deployed)["message"] == READY


def test_a_real_change_restarts_exactly_once(deployed, helpers):
    since = time.time()
    deployed.config_set(APP, {"log-level": "debug", "storage-delete": True})
    helpers.wait_for_status(deployed, UNIT, "active", READY)
    assert starts(CONTAINER, since) == 1
    assert tags("e2e/keep") == ["1"]


def test_invalid_config_blocks_and_the_registry_keeps_serving(deployed):
    before, since = container_id(), time.time()
    deployed.config_set(APP, {"registry-port": 0, "storage-cache": "redis"})
    status = unit_status(deployed)
    assert status["current"] == "blocked"
    assert status["message"].startswith("Invalid charm config: ")
    assert "registry-port: must be between 1 and 65535" in status["message"]
    assert "storage-cache: must be one of inmemory, disabled" in status["message"]
    assert tags("e2e/keep") == ["1"]  # still serving its images on the last good config
    assert (container_id(), starts(CONTAINER, since)) == (before, 0)
    deployed.config_set(APP, reset=["registry-port", "storage-cache"])
    assert unit_status(deployed)["message"] == READY
    assert starts(CONTAINER, since) == 0


def test_stop_and_start_actions(deployed, helpers):
    result = deployed.run_action(UNIT, "stop")
    assert result["status"] == "completed", result
    assert result["results"]["outcome"] == "success"
    assert container_id() == ""  # removed (remove=true by default)
    deployed.update_status()  # hooks leave it stopped
    assert unit_status(deployed) == {
        **unit_status(deployed),
        "current": "blocked",
        "message": f"{CONTAINER} container is stopped.",
    }
    assert container_id() == ""
    result = deployed.run_action(UNIT, "start")
    assert result["status"] == "completed", result
    helpers.wait_for_status(deployed, UNIT, "active", READY)
    assert tags("e2e/keep") == ["1"]
    since = time.time()
    deployed.update_status()
    assert starts(CONTAINER, since) == 0  # the start action re-created it with its label


def test_bad_action_params_fail_cleanly(deployed):
    result = deployed.run_action(UNIT, "stop", {"name": "no such; rm -rf /"})
    assert result["status"] == "failed"
    assert result["message"] == "name: not a valid container name"
    assert "Traceback" not in result.get("stdout", "")


def test_upgrade_charm_keeps_images_config_and_container(deployed, charm_dir):
    before, since = container_id(), time.time()
    deployed.upgrade_charm(APP, str(charm_dir))
    assert unit_status(deployed)["message"] == READY
    assert tags("e2e/keep") == ["1"]
    assert (container_id(), starts(CONTAINER, since)) == (before, 0)


def test_token_auth_and_never_basic_and_token_together(deployed, helpers):
    ca, _, _ = certs.make_ca("token-issuer")
    token = {
        "auth-token-realm": "https://auth.example.com/token",
        "auth-token-service": "registry",
        "auth-token-issuer": "issuer",
        "auth-token-root-certs": base64.b64encode(ca.cert.encode()).decode(),
    }
    deployed.config_set(APP, token)
    helpers.wait_for_status(deployed, UNIT, "active", READY)  # 401 counts as answering
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{URL}/v2/", timeout=10)
    assert refused.value.code == 401
    assert refused.value.headers["Www-Authenticate"] == (
        'Bearer realm="https://auth.example.com/token",service="registry"'
    )
    bundle = deployed.model.sandbox_dir(UNIT) / "etc/docker/registry/token-bundle.pem"
    assert bundle.read_text() == ca.cert
    # both kinds at once would make a registry that refuses to start: blocked instead
    before = container_id()
    deployed.config_set(APP, {"auth-basic-password": "also-basic"})
    status = unit_status(deployed)
    assert status["current"] == "blocked"
    assert (
        "auth-basic-password: basic and token auth (auth-token-*) cannot both be set"
        in (status["message"])
    )
    assert "also-basic" not in status["message"]
    assert container_id() == before  # still serving with token auth
    deployed.config_set(APP, reset=[*token, "auth-basic-password"])
    helpers.wait_for_status(deployed, UNIT, "active", READY)
    assert not bundle.exists()
    assert tags("e2e/keep") == ["1"]


def test_second_unit_then_remove_unit_cleans_up(deployed, helpers):
    deployed.add_unit(APP)
    helpers.wait_for_status(deployed, f"{APP}/1", "active", "Ready at 127.0.0.3:5000 (http).")
    assert container_id(f"registry-{APP}-1")
    deployed.remove_unit(f"{APP}/1")
    assert container_id(f"registry-{APP}-1") == ""
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("http://127.0.0.3:5000/v2/", timeout=3)
    assert tags("e2e/keep") == ["1"]  # the other unit is untouched
