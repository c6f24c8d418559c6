"""End to end: every registry action through the local model against the real
registry (TLS from the real easyrsa charm, basic auth, delete enabled), with a second local
registry as the "upstream" source of images."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.s3 import docker_bridge_gateway

APP = "docker-registry"
UNIT = f"{APP}/0"
NETLOC = "127.0.0.2:5000"
ROOT = Path(__file__).resolve().parents[2]
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


# --- Charmed Kubernetes' images: mirror (through a host rewrite) and import land them where
# the cluster pulls, and a real containerd configured as charm-containerd does pulls them ----

CK_MIRRORED = {
    "pause:3.9": "cdk/pause:3.9",
    "coredns/coredns:v1.11.1": "cdk/coredns/coredns:v1.11.1",
}
CK_IMPORTED = {"metrics-server/metrics-server:v0.7.0": "cdk/metrics-server/metrics-server:v0.7.0"}


@pytest.fixture(scope="module")
def rocks(upstream_registry):
    """A stand-in for rocks.canonical.com: CK's images under their rocks names (cdk/...)."""
    images = [
        (f"e2e-ck-{uuid.uuid4().hex[:6]}:{n}", rocks_path)
        for n, rocks_path in enumerate([*CK_MIRRORED.values(), *CK_IMPORTED.values()])
    ]
    return upstream_registry("e2e-rocks", images, loopback=True).loopback_netloc


def rocks_digest(rocks: str, rocks_path: str) -> str:
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
         f"docker://{rocks}/{rocks_path}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return inspect.stdout.strip()


def ck_list(tmp_path: Path, images: dict[str, str]) -> Path:
    """A per-release list as CK publishes it (container-images/vX.Y.Z.txt)."""
    listing = tmp_path / "v1.35.3.txt"
    listing.write_text("".join(f"rocks.canonical.com/{p}\n" for p in images.values()))
    return listing


def test_mirror_lands_ck_images_where_the_cluster_pulls(registry, rocks, tmp_path):
    result = run(
        registry,
        "mirror",
        file=str(ck_list(tmp_path, CK_MIRRORED)),
        source=f"rocks.canonical.com={rocks}",  # a site's internal mirror of rocks
        **{"src-tls-verify": False},
    )
    assert result["status"] == "completed", result
    out = result["results"]
    assert (out["copied"], out["failed"], out["image-registry"]) == ("2", "0", NETLOC)
    assert out["juju-config"] == f"juju config kubernetes-control-plane image-registry={NETLOC}"
    for dest in CK_MIRRORED:
        assert f"{NETLOC}/{dest}" in out["raw"], out["raw"]


def test_import_lands_an_archive_made_by_the_ck_script(registry, rocks, tmp_path):
    archive = tmp_path / "ck-images.tar"
    make = subprocess.run(
        ["bash", "scripts/ck-images-archive.sh", str(ck_list(tmp_path, CK_IMPORTED)), "1.35.3",
         str(archive)],
        cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "SOURCE": f"rocks.canonical.com={rocks}", "SRC_TLS_VERIFY": "false"},
    )  # fmt: skip
    assert make.returncode == 0, make.stdout + make.stderr
    result = run(registry, "import", path=str(archive))
    assert result["status"] == "completed", result
    assert (result["results"]["copied"], result["results"]["image-registry"]) == ("1", NETLOC)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    """A private containerd (its own root, state and socket; no CRI), driven with ctr."""
    base = tmp_path_factory.mktemp("containerd")
    config, sock = base / "config.toml", base / "containerd.sock"
    config.write_text('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    with open(base / "containerd.log", "w") as log:
        daemon = subprocess.Popen(
            ["containerd", "--config", str(config), "--root", str(base / "root"),
             "--state", str(base / "state"), "--address", str(sock)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        assert sock.exists(), (base / "containerd.log").read_text()[-2000:]
        yield lambda *args: subprocess.run(
            ["ctr", "--address", str(sock), *args], capture_output=True, text=True, timeout=120
        )
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


def test_containerd_configured_from_the_relation_pulls_the_ck_images(registry, rocks, containerd):
    """containerd as charm-containerd configures it from the docker-registry relation: the
    registry by netloc over https, the relation's CA, basic auth (the containerd fake turns
    what the upstream requires code read into containerd's hosts format). ctr accepts the
    credentials only as --user on its command line: a limitation of this test's client."""
    registry.deploy("fake:containerd", "containerd")
    registry.integrate(APP, "containerd")
    client = registry.model.root / "clients" / NETLOC / "containerd"
    hosts, credentials = client / "hosts", (client / "credentials").read_text()
    assert 'server = "https://' in (hosts / NETLOC / "hosts.toml").read_text()
    for dest, rocks_path in {**CK_MIRRORED, **CK_IMPORTED}.items():
        ref = f"{NETLOC}/{dest}"
        pull = containerd("images", "pull", "--hosts-dir", str(hosts), "--user", credentials, ref)
        assert pull.returncode == 0, pull.stderr[-2000:]
        listed = containerd("images", "ls").stdout.splitlines()
        digest = next(line.split()[2] for line in listed if line.split()[0] == ref)
        if dest in CK_MIRRORED:  # a registry-to-registry copy keeps the digest
            assert digest == rocks_digest(rocks, rocks_path)
    denied = containerd("images", "pull", "--hosts-dir", str(hosts), f"{NETLOC}/pause:3.9")
    assert denied.returncode != 0  # no credentials, no image
