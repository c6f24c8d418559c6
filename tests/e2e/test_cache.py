"""Pull-through cache end to end: the charm's registry caches a second local registry."""

from __future__ import annotations

import socket
import subprocess
import uuid

import pytest

from tests.support.images import make_test_image, registry_image_ref
from tests.support.s3 import docker_bridge_gateway

APP = "docker-registry"
UNIT = f"{APP}/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def upstream(dockerd):
    """A plain registry on the docker bridge gateway, holding one image."""
    gateway, port = docker_bridge_gateway(), free_port()
    name = f"e2e-upstream-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"{gateway}:{port}:5000",
            registry_image_ref(),
        ],
        check=True,
        capture_output=True,
    )
    ref = f"e2e-cache-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, seed=ref)
    for _ in range(50):
        copy = subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"docker-daemon:{ref}",
                f"docker://{gateway}:{port}/library/cached:1",
            ],
            capture_output=True,
            text=True,
        )
        if copy.returncode == 0:
            break
    assert copy.returncode == 0, copy.stderr
    yield f"http://{gateway}:{port}"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    subprocess.run(["docker", "rmi", ref], capture_output=True)


def test_pull_through_cache(model, charm_dir, registry_image_tar, helpers, upstream):
    model.deploy(
        str(charm_dir),
        APP,
        config={"registry-image": helpers.registry_image, "cache-remoteurl": upstream},
        resources={"registry-image": str(registry_image_tar)},
    )
    helpers.wait_for_status(model, UNIT, "active", "Ready at 127.0.0.2:5000 (http).")
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "docker://127.0.0.2:5000/library/cached:1"],
        capture_output=True,
        text=True,
    )
    assert inspect.returncode == 0, inspect.stderr  # fetched from upstream through the cache
    # 2.8 sends no credentials upstream: said in the status, not silently ignored
    model.config_set(APP, {"cache-username": "u", "cache-password": "p4ss-word"})
    helpers.wait_for_status(
        model,
        UNIT,
        "active",
        "Ready at 127.0.0.2:5000 (http). Note: registry 2.8 does not send cache-username "
        "upstream.",
    )
