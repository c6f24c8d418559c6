"""Pull-through cache end to end: the charm's registry caches a second registry, driven
through jubilant. Local model only: the upstream registry runs in the test host's Docker
engine, on its bridge gateway, which the local model's registry containers reach."""

from __future__ import annotations

import subprocess
import uuid

import pytest

APP = "docker-registry"

pytestmark = pytest.mark.local_only("the upstream registry runs in the test host's Docker engine")


@pytest.fixture(scope="module")
def upstream(upstream_registry):
    """A plain registry on the docker bridge gateway, holding one image."""
    ref = f"e2e-cache-{uuid.uuid4().hex[:6]}:1"
    up = upstream_registry("e2e-upstream", [(ref, "library/cached:1")], loopback=False)
    return f"http://{up.gateway_netloc}"


def test_pull_through_cache(juju, charm_dir, registry_image_tar, helpers, upstream):
    unit = helpers.deploy_registry(
        juju, charm_dir, registry_image_tar, APP, {"cache-remoteurl": upstream}
    )
    netloc = f"{helpers.unit_address(juju, unit)}:5000"
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (http).")
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{netloc}/library/cached:1"],
        capture_output=True,
        text=True,
    )
    assert inspect.returncode == 0, inspect.stderr  # fetched from upstream through the cache
    # 2.8 sends no credentials upstream: said in the status, not silently ignored
    juju.config(APP, {"cache-username": "u", "cache-password": "p4ss-word"})
    helpers.wait_for_unit(
        juju,
        unit,
        "active",
        f"Ready at {netloc} (http). Note: registry 2.8 does not send cache-username upstream.",
    )
