"""End to end: every registry action through the local model against the real
registry (TLS from the real easyrsa charm, basic auth, delete enabled), with a second local
registry as the "upstream" source of images."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest

from tests.support.s3 import docker_bridge_gateway

APP = "docker-registry"
UNIT = f"{APP}/0"
NETLOC = "127.0.0.2:5000"
PASSWORD = "act-" + secrets.token_urlsafe(12)


@pytest.fixture(scope="module")
def upstream(upstream_registry):
    """A plain registry (no auth, http) on loopback and the bridge gateway with 3 images."""
    images = [(f"e2e-act-{uuid.uuid4().hex[:6]}:{n}", f"cdk/img{n}:1.{n}") for n in range(3)]
    up = upstream_registry("e2e-src", images, loopback=True)
    return up.loopback_netloc, up.refs


@pytest.fixture(scope="module")
def registry(model, charm_dir, registry_image_tar, helpers, easyrsa_charm):
    model.deploy(
        str(charm_dir),
        APP,
        config={
            "registry-image": helpers.registry_image,
            "auth-basic-password": PASSWORD,
            "storage-delete": True,
        },
        resources={"registry-image": str(registry_image_tar)},
    )
    helpers.deploy_easyrsa(model, easyrsa_charm)
    model.integrate(f"{APP}:cert-provider", "easyrsa:client")
    helpers.wait_for_status(model, UNIT, "active", f"Ready at {NETLOC} (https).")
    return model


def run(model, action, **params):
    return model.run_action(UNIT, action, params)


def test_push_a_local_image_logs_in_and_tags_by_netloc(registry, upstream):
    _, refs = upstream
    result = run(registry, "push", image=refs[0], pull=False)
    assert result["status"] == "completed", result
    repo = refs[0].split(":")[0]
    assert result["results"]["raw"] == f"pushed {NETLOC}/{repo}:0"
    assert result["results"]["digest"].startswith("sha256:")


def test_push_pulls_from_a_source_registry_and_drops_its_host(registry, upstream):
    source, _ = upstream
    result = run(registry, "push", image=f"{source}/cdk/img1:1.1")
    assert result["status"] == "completed", result
    assert result["results"]["tag"] == f"{NETLOC}/cdk/img1:1.1"


def test_mirror_copies_the_rest_when_one_fails(registry, upstream):
    source = upstream[0].replace("127.0.0.1", docker_bridge_gateway())
    images = f"{source}/cdk/img0:1.0\n# a comment\n\n{source}/cdk/missing:9 {source}/cdk/img2:1.2"
    result = run(registry, "mirror", images=images, concurrency=3, **{"src-tls-verify": False})
    assert result["status"] == "failed"
    assert "1 of 3 image(s) failed" in result["message"]
    assert "cdk/missing:9" in result["message"]
    summary = json.loads(result["results"]["results"])
    assert sorted(r["target"] for r in summary if r["ok"]) == [
        f"{NETLOC}/cdk/img0:1.0",
        f"{NETLOC}/cdk/img2:1.2",
    ]


def test_images_lists_the_registry_not_the_local_cache(registry, upstream):
    result = run(registry, "images")
    assert result["status"] == "completed", result
    listing = json.loads(result["results"]["repositories"])
    assert listing["cdk/img0"] == ["1.0"] and listing["cdk/img2"] == ["1.2"]
    filtered = json.loads(
        run(registry, "images", repository="cdk/img1")["results"]["repositories"]
    )
    assert filtered == {"cdk/img1": ["1.1"]}


def test_rmi_deletes_by_digest_then_garbage_collect_reclaims(registry):
    result = run(registry, "rmi", image="cdk/img2:1.2")
    assert result["status"] == "completed", result
    assert result["results"]["removed-tags"] == "1.2"
    listing = json.loads(run(registry, "images")["results"]["repositories"])
    assert "1.2" not in listing.get("cdk/img2", [])
    gc = run(registry, "garbage-collect")
    assert gc["status"] == "completed", gc
    assert int(gc["results"]["reclaimed-bytes"]) > 0
    assert float(gc["results"]["not-writable-seconds"]) > 0
    status = registry.status()["applications"][APP]["units"][UNIT]["workload-status"]
    assert status["message"] == f"Ready at {NETLOC} (https)."
    listing = json.loads(run(registry, "images")["results"]["repositories"])
    assert listing["cdk/img0"] == ["1.0"]  # everything else is intact


def test_bad_parameters_fail_clearly(registry):
    for action, params, expected in (
        ("push", {"image": ""}, "image"),
        ("push", {"image": "Not A Ref!"}, "image"),
        ("rmi", {"image": "cdk/img0"}, "image"),
        ("mirror", {}, "images"),
        ("mirror", {"images": "cdk/img0:1.0", "concurrency": 0}, "concurrency"),
    ):
        result = run(registry, action, **params)
        assert result["status"] == "failed", (action, params, result)
        assert expected in result["message"], (action, result["message"])
        assert "Traceback" not in result.get("stdout", "")
        assert PASSWORD not in json.dumps(result)


def test_rmi_without_storage_delete_says_how_to_enable_it(registry, helpers):
    registry.config_set(APP, {"storage-delete": False})
    helpers.wait_for_status(registry, UNIT, "active", f"Ready at {NETLOC} (https).")
    result = run(registry, "rmi", image="cdk/img0:1.0")
    assert result["status"] == "failed"
    assert "storage-delete=true" in result["message"]


def test_actions_refuse_when_the_registry_is_not_ready(registry):
    assert run(registry, "stop")["status"] == "completed"
    result = run(registry, "images")
    assert result["status"] == "failed"
    assert result["message"].startswith("the registry is not ready")
    assert run(registry, "start")["status"] == "completed"
