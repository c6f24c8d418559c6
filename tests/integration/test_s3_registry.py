"""S3 storage for real: the charm's rendered config, the registry container, moto_server.

Networking: moto binds the Docker bridge gateway (172.17.0.1 usually), an address of the host
that the registry container reaches over its normal bridge network; the registry keeps its
usual `--publish` (no `--network host`, which would put every registry on the host's :5000).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
import uuid

import pytest
import yaml

from charms.layer.docker_registry import clients, container, paths, render, settings, workload
from tests.support.config import charm_defaults
from tests.support.images import ensure_engine, make_test_image, registry_image_ref
from tests.support.net import free_port
from tests.support.s3 import docker_bridge_gateway, moto_s3

BUCKET = "registry-it"
SECRET = "shared-http-secret"

pytestmark = pytest.mark.engine


def run(*argv: str) -> str:
    return subprocess.run(list(argv), check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def engine():
    ensure_engine()
    assert container.image_id(registry_image_ref()), "run `make image` first"


@pytest.fixture
def s3(engine):
    with moto_s3(host=docker_bridge_gateway()) as endpoint:
        endpoint.create_bucket(BUCKET)
        yield endpoint


@pytest.fixture
def units(engine, tmp_path):
    """Start sandboxed registry units on 127.0.0.1 from the charm's own rendering."""
    defaults = charm_defaults()
    names: list[str] = []

    def start(overrides: dict) -> tuple[str, str]:
        host = paths.Host(
            sandbox=str(tmp_path / f"u{len(names)}"), unit_name=f"s3-{uuid.uuid4().hex[:8]}/0"
        )
        port = free_port()
        config = defaults | {"registry-image": registry_image_ref(), "registry-port": port}
        desired = render.desired(
            settings.parse(config | overrides),
            host=host,
            unit_address="127.0.0.1",
            tls=None,
            http_secret=SECRET,
            htpasswd="",
            realm="docker-registry",
        )
        names.append(desired.run.name)
        outcome, _ = workload.apply(
            desired,
            image_id=container.image_id(desired.run.image),
            host=host,
            managed_files=[],
            allow_start=True,
        )
        assert outcome.answering, outcome
        return desired.run.name, f"127.0.0.1:{port}"

    yield start
    for name in names:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def s3_options(s3) -> dict:
    return s3.charm_options(BUCKET) | {
        "storage-s3-rootdirectory": "/charm",
        "storage-delete": True,
    }


def test_moto_helper_starts_creates_buckets_and_stops():
    with moto_s3() as s3:
        assert s3.url.startswith("http://127.0.0.1:")
        s3.create_bucket("one")
        s3.create_bucket("two")
        assert sorted(s3.buckets()) == ["one", "two"]
        assert s3.keys("one") == []
        url = s3.url
    with pytest.raises(OSError):
        s3.buckets()  # stopped
    assert url


def test_sigv2_requests_reach_s3_whatever_their_signature():
    # the registry signs with v2 by default (storage-s3-skip-v4-auth=true); unpatched moto
    # answers 500 when a v2 signature holds exactly four "/" (tests/support/moto_server.py)
    with moto_s3() as s3:
        s3.create_bucket("sigv2")
        for signature in ("c2lnbmF0dXJl", "a/b/c/d/e=", "a/b/c/d=="):
            req = urllib.request.Request(
                f"{s3.url}/sigv2/key",
                data=b"x",
                method="PUT",
                headers={"Authorization": f"AWS {s3.access_key}:{signature}"},
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200, signature
        assert s3.keys("sigv2") == ["key"]


def test_registry_stores_images_in_s3_and_serves_them_back(s3, units, tmp_path):
    name, netloc = units(s3_options(s3))
    # the charm's config really is the s3 driver pointed at moto
    rendered = yaml.safe_load(
        (tmp_path / "u0" / render.CONFIG_FILE.lstrip("/")).read_text()
    )  # written by workload.apply under the sandbox
    assert rendered["storage"]["s3"]["regionendpoint"] == s3.url
    assert rendered["storage"]["s3"]["secure"] is False
    # no AWS_CA_BUNDLE reaches the registry process (with one, its S3 client fails on moto)
    env = json.loads(run("docker", "inspect", "--format", "{{json .Config.Env}}", name))
    assert not any(e.startswith("AWS_CA_BUNDLE=") for e in env)

    ref = f"s3-it-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, payload_bytes=3 * 1024 * 1024, seed=ref)
    try:
        run(
            "skopeo",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"docker-daemon:{ref}",
            f"docker://{netloc}/s3/test:1",
        )
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)

    # the objects are in the bucket, under the configured root directory
    keys = s3.keys(BUCKET)
    assert "charm/docker/registry/v2/repositories/s3/test/_manifests/tags/1/current/link" in keys
    blobs = [k for k in keys if k.startswith("charm/docker/registry/v2/blobs/") and "/data" in k]
    assert len(blobs) >= 2  # layer + config (+ manifest)
    for key in blobs:  # every stored blob is content-addressed: its bytes hash to its name
        digest = key.split("/")[-2]
        assert hashlib.sha256(s3.get(BUCKET, key)).hexdigest() == digest

    # served back: pull to a directory, digests verified by skopeo, same manifest digest
    pulled = tmp_path / "pulled"
    run(
        "skopeo",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        f"docker://{netloc}/s3/test:1",
        f"dir:{pulled}",
    )
    manifest = json.loads((pulled / "manifest.json").read_text())
    layer = manifest["layers"][0]["digest"].split(":")[1]
    assert hashlib.sha256((pulled / layer).read_bytes()).hexdigest() == layer
    inspected = json.loads(
        run("skopeo", "inspect", "--tls-verify=false", f"docker://{netloc}/s3/test:1")
    )
    link = s3.get(
        BUCKET, "charm/docker/registry/v2/repositories/s3/test/_manifests/tags/1/current/link"
    )
    assert inspected["Digest"] == link.decode()

    # a second unit on the same bucket (and http secret) serves the same image: shared storage
    _, netloc2 = units(s3_options(s3))
    inspected2 = json.loads(
        run("skopeo", "inspect", "--tls-verify=false", f"docker://{netloc2}/s3/test:1")
    )
    assert inspected2["Digest"] == inspected["Digest"]


def test_the_catalog_tells_an_unreachable_s3_from_a_reachable_one(engine, units):
    # GIVEN a registry on S3 WHEN the S3 endpoint goes away THEN /v2/ still answers (it never
    # touches storage) but the storage probe the status relies on says it is not reachable
    with moto_s3(host=docker_bridge_gateway()) as s3:
        s3.create_bucket(BUCKET)
        _name, netloc = units(s3_options(s3))
        assert clients.storage_answers(f"http://{netloc}") is True
    assert clients.probe(f"http://{netloc}")
    assert clients.storage_answers(f"http://{netloc}") is False
