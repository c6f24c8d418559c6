"""Pull-through cache end to end: the charm's registry caches a second local registry."""

from __future__ import annotations

import subprocess
import uuid

import pytest

APP = "docker-registry"
UNIT = f"{APP}/0"


@pytest.fixture(scope="module")
def upstream(upstream_registry):
    """A plain registry on the docker bridge gateway, holding one image."""
    ref = f"e2e-cache-{uuid.uuid4().hex[:6]}:1"
    up = upstream_registry("e2e-upstream", [(ref, "library/cached:1")], loopback=False)
    return f"http://{up.gateway_netloc}"


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
