"""End to end: every registry action, driven through jubilant against the real registry (TLS
from the real easyrsa charm, basic auth, delete enabled), with a second registry as the
"upstream" source of images. Tests whose images or files are on the test host (where the local
model's units share the host's Docker engine) are local-only."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import jubilant
import pytest

from tests.support import containerd as private_containerd
from tests.support.s3 import docker_bridge_gateway

APP = "docker-registry"
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "act-" + secrets.token_urlsafe(12)
HOST_IMAGES = "the image is in the test host's Docker engine, which the local model's units share"
# (and the images the later tests list and delete come from them)
SOURCES_ON_HOST = "the source registries run in the test host's Docker engine"


@dataclass
class Registry:
    juju: jubilant.Juju
    unit: str
    netloc: str

    @property
    def ready(self) -> str:
        return f"Ready at {self.netloc} (https)."


@pytest.fixture(scope="module")
def upstream(upstream_registry):
    """A plain registry (no auth, http) on loopback and the bridge gateway with 3 images."""
    images = [(f"e2e-act-{uuid.uuid4().hex[:6]}:{n}", f"cdk/img{n}:1.{n}") for n in range(3)]
    up = upstream_registry("e2e-src", images, loopback=True)
    return up.loopback_netloc, up.refs


@pytest.fixture(scope="module")
def registry(juju, charm_dir, registry_image_tar, helpers):
    helpers.deploy_registry(
        juju,
        charm_dir,
        registry_image_tar,
        APP,
        {
            "auth-basic-password": PASSWORD,
            "storage-delete": True,
        },
    )
    helpers.deploy_ca(juju)
    juju.integrate(f"{APP}:cert-provider", "easyrsa:client")
    unit = helpers.unit_of(juju, APP)
    reg = Registry(juju, unit, f"{helpers.unit_address(juju, unit)}:5000")
    helpers.wait_for_unit(juju, unit, "active", reg.ready)
    return reg


def run(registry: Registry, action: str, **params) -> jubilant.Task:
    """The action's task, whether it completed or failed (jubilant raises on a failed one)."""
    try:
        return registry.juju.run(registry.unit, action, params)
    except jubilant.TaskError as exc:
        return exc.task


@pytest.mark.local_only(HOST_IMAGES)
def test_push_a_local_image_logs_in_and_tags_by_netloc(registry, upstream):
    _, refs = upstream
    result = run(registry, "push", image=refs[0], pull=False)
    assert result.status == "completed", result
    repo = refs[0].split(":")[0]
    assert result.results["raw"] == f"pushed {registry.netloc}/{repo}:0"
    assert result.results["digest"].startswith("sha256:")


@pytest.mark.local_only(SOURCES_ON_HOST)
def test_push_pulls_from_a_source_registry_and_drops_its_host(registry, upstream):
    source, _ = upstream
    result = run(registry, "push", image=f"{source}/cdk/img1:1.1")
    assert result.status == "completed", result
    assert result.results["tag"] == f"{registry.netloc}/cdk/img1:1.1"


@pytest.mark.local_only(SOURCES_ON_HOST)
def test_mirror_copies_the_rest_when_one_fails(registry, upstream):
    source = upstream[0].replace("127.0.0.1", docker_bridge_gateway())
    images = f"{source}/cdk/img0:1.0\n# a comment\n\n{source}/cdk/missing:9 {source}/cdk/img2:1.2"
    result = run(registry, "mirror", images=images, concurrency=3, **{"src-tls-verify": False})
    assert result.status == "failed"
    assert "1 of 3 image(s) failed" in result.message
    assert "cdk/missing:9" in result.message
    summary = json.loads(result.results["results"])
    assert sorted(r["target"] for r in summary if r["ok"]) == [
        f"{registry.netloc}/cdk/img0:1.0",
        f"{registry.netloc}/cdk/img2:1.2",
    ]


@pytest.mark.local_only(SOURCES_ON_HOST)
def test_images_lists_the_registry_not_the_local_cache(registry, upstream):
    result = run(registry, "images")
    assert result.status == "completed", result
    listing = json.loads(result.results["repositories"])
    assert listing["cdk/img0"] == ["1.0"] and listing["cdk/img2"] == ["1.2"]
    filtered = json.loads(run(registry, "images", repository="cdk/img1").results["repositories"])
    assert filtered == {"cdk/img1": ["1.1"]}


@pytest.mark.local_only(SOURCES_ON_HOST)
def test_rmi_deletes_by_digest_then_garbage_collect_reclaims(registry):
    result = run(registry, "rmi", image="cdk/img2:1.2")
    assert result.status == "completed", result
    assert result.results["removed-tags"] == "1.2"
    listing = json.loads(run(registry, "images").results["repositories"])
    assert "1.2" not in listing.get("cdk/img2", [])
    gc = run(registry, "garbage-collect")
    assert gc.status == "completed", gc
    assert int(gc.results["reclaimed-bytes"]) > 0
    assert float(gc.results["not-writable-seconds"]) > 0
    status = registry.juju.status().get_units(APP)[registry.unit].workload_status
    assert status.message == registry.ready
    listing = json.loads(run(registry, "images").results["repositories"])
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
        assert result.status == "failed", (action, params, result)
        assert expected in result.message, (action, result.message)
        assert "Traceback" not in result.stdout + result.stderr
        assert PASSWORD not in str(result)


def test_rmi_without_storage_delete_says_how_to_enable_it(registry, helpers):
    registry.juju.config(APP, {"storage-delete": False})
    helpers.wait_for_unit(registry.juju, registry.unit, "active", registry.ready)
    result = run(registry, "rmi", image="cdk/img0:1.0")
    assert result.status == "failed"
    assert "storage-delete=true" in result.message


def test_actions_refuse_when_the_registry_is_not_ready(registry):
    assert run(registry, "stop").status == "completed"
    result = run(registry, "images")
    assert result.status == "failed"
    assert result.message.startswith("the registry is not ready")
    assert run(registry, "start").status == "completed"


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


@pytest.mark.local_only(SOURCES_ON_HOST)
def test_mirror_lands_ck_images_where_the_cluster_pulls(registry, rocks, tmp_path):
    result = run(
        registry,
        "mirror",
        file=str(ck_list(tmp_path, CK_MIRRORED)),
        source=f"rocks.canonical.com={rocks}",  # a site's internal mirror of rocks
        **{"src-tls-verify": False},
    )
    assert result.status == "completed", result
    out = result.results
    assert (out["copied"], out["failed"], out["image-registry"]) == ("2", "0", registry.netloc)
    control_plane = "juju config kubernetes-control-plane"
    assert out["juju-config"] == f"{control_plane} image-registry={registry.netloc}"
    for dest in CK_MIRRORED:
        assert f"{registry.netloc}/{dest}" in out["raw"], out["raw"]


@pytest.mark.local_only("the archive is a file on the test host")
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
    assert result.status == "completed", result
    assert (result.results["copied"], result.results["image-registry"]) == ("1", registry.netloc)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    """A private containerd (its own root, state and socket; no CRI), driven with ctr."""
    with private_containerd.running(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon


@pytest.mark.local_only("the containerd fake writes the client's configuration on the test host")
def test_containerd_configured_from_the_relation_pulls_the_ck_images(registry, rocks, containerd):
    """containerd as charm-containerd configures it from the docker-registry relation: the
    registry by netloc over https, the relation's CA, basic auth (the containerd fake turns
    what the upstream requires code read into containerd's hosts format). ctr accepts the
    credentials only as --user on its command line: a limitation of this test's client."""
    registry.juju.deploy("fake:containerd", "containerd")
    registry.juju.integrate(APP, "containerd")
    assert registry.juju.model is not None
    client = Path(registry.juju.model) / "clients" / registry.netloc / "containerd"
    hosts, credentials = client / "hosts", (client / "credentials").read_text()
    assert 'server = "https://' in (hosts / registry.netloc / "hosts.toml").read_text()
    for dest, rocks_path in {**CK_MIRRORED, **CK_IMPORTED}.items():
        ref = f"{registry.netloc}/{dest}"
        pull = containerd.ctr(
            "images", "pull", "--hosts-dir", str(hosts), "--user", credentials, ref
        )
        assert pull.returncode == 0, pull.stderr[-2000:]
        digest = containerd.digest(ref)
        if dest in CK_MIRRORED:  # a registry-to-registry copy keeps the digest
            assert digest == rocks_digest(rocks, rocks_path)
    denied = containerd.ctr(
        "images", "pull", "--hosts-dir", str(hosts), f"{registry.netloc}/pause:3.9"
    )
    assert denied.returncode != 0  # no credentials, no image
