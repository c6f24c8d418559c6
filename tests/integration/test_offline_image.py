"""The offline-built registry image (scripts/build-registry-image.sh) behaves like registry:2:
it serves /v2/ and a test image can be pushed to it and pulled back with skopeo."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.images import (
    ensure_engine,
    make_test_image,
    payload_for,
    registry_image_ref,
    registry_image_tar,
)
from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

BUILD_DIR = REPO_ROOT / "build"


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def _get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _wait_v2(base: str, timeout: float = 15.0) -> tuple[int, dict, bytes]:
    deadline = time.monotonic() + timeout
    last: Exception | tuple | None = None
    while time.monotonic() < deadline:
        try:
            last = _get(base + "/v2/")
            if last[0] == 200:
                return last
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"{base}/v2/ never answered 200: {last!r}")


@pytest.fixture(scope="module")
def registry_image() -> str:
    ensure_engine()
    ref = registry_image_ref()
    if (
        subprocess.run(
            ["docker", "image", "inspect", ref], check=False, capture_output=True
        ).returncode
        != 0
    ):
        tar = registry_image_tar(BUILD_DIR)
        if tar.exists():
            _run("docker", "load", "-i", str(tar))
        else:
            subprocess.run(
                ["bash", str(REPO_ROOT / "scripts" / "build-registry-image.sh"), str(tar.parent)],
                check=True,
            )
    return ref


@pytest.fixture
def registry(registry_image: str):
    name = f"dr-it-offline-{uuid.uuid4().hex[:10]}"
    port = free_port()
    _run("docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000", registry_image)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_v2(base)
        yield base, port
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], check=False, capture_output=True)


def test_image_metadata_matches_upstream(registry_image: str) -> None:
    cfg = json.loads(
        _run("docker", "image", "inspect", "-f", "{{json .Config}}", registry_image).stdout
    )
    assert cfg["Entrypoint"] == ["/entrypoint.sh"]
    assert cfg["Cmd"] == ["/etc/docker/registry/config.yml"]
    assert "5000/tcp" in cfg["ExposedPorts"]
    assert "/var/lib/registry" in cfg["Volumes"]


def test_serves_v2(registry) -> None:
    base, _ = registry
    status, headers, body = _get(base + "/v2/")
    assert status == 200
    assert headers.get("Docker-Distribution-Api-Version") == "registry/2.0"
    assert json.loads(body) == {}


def test_garbage_collect_subcommand(registry_image: str) -> None:
    out = _run("docker", "run", "--rm", registry_image, "garbage-collect", "--help").stdout
    assert "garbage-collect" in out


def test_push_and_pull_with_skopeo(registry, tmp_path: Path) -> None:
    base, port = registry
    uid = uuid.uuid4().hex[:10]
    src = f"dr-it-src-{uid}:1"
    pulled = f"dr-it-pulled-{uid}:1"
    repo = f"it/offline-{uid}"
    try:
        image_id = make_test_image(src, payload_bytes=8192, seed=uid)
        assert image_id.startswith("sha256:")
        _run(
            "skopeo", "copy", "--quiet", "--dest-tls-verify=false",
            f"docker-daemon:{src}", f"docker://127.0.0.1:{port}/{repo}:1",
        )  # fmt: skip
        status, _, body = _get(f"{base}/v2/{repo}/tags/list")
        assert status == 200
        assert json.loads(body)["tags"] == ["1"]

        _run(
            "skopeo", "copy", "--quiet", "--src-tls-verify=false",
            f"docker://127.0.0.1:{port}/{repo}:1", f"docker-daemon:{pulled}",
        )  # fmt: skip
        payload = subprocess.run(
            ["docker", "run", "--rm", pulled, "/bin/busybox", "cat", "/payload.bin"],
            check=True,
            capture_output=True,
        ).stdout
        assert payload == payload_for(8192, uid)
    finally:
        subprocess.run(["docker", "rmi", "-f", src, pulled], check=False, capture_output=True)


def test_test_images_differ_by_seed() -> None:
    ensure_engine()
    uid = uuid.uuid4().hex[:10]
    a, b = f"dr-it-a-{uid}:1", f"dr-it-b-{uid}:1"
    try:
        assert make_test_image(a, seed="a" + uid) != make_test_image(b, seed="b" + uid)
    finally:
        subprocess.run(["docker", "rmi", "-f", a, b], check=False, capture_output=True)
