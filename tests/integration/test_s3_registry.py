"""S3 storage for real: the charm's rendered config, the registry container, moto_server.

Networking: moto binds the Docker bridge gateway (172.17.0.1 usually), an address of the host
that the registry container reaches over its normal bridge network; the registry keeps its
usual `--publish` (no `--network host`, which would put every registry on the host's :5000).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from charms.layer.docker_registry.actions import gc
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import container, paths, workload
from charms.layer.docker_registry.pipeline import apply as applying
from charms.layer.docker_registry.pipeline import clients, render, runspec
from tests.support.certs import make_ca, make_client_cert, make_server_cert
from tests.support.config import charm_defaults
from tests.support.http_proxy import auth_proxy
from tests.support.images import ensure_engine, make_test_image, registry_image_ref
from tests.support.net import free_port, get_status
from tests.support.s3 import docker_bridge_gateway, http_request, moto_s3, sigv2_headers

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
    """Start sandboxed registry units on 127.0.0.1 from the charm's own rendering; each one's
    parsed config and apply outcome are kept in ``start.started`` (by container name)."""
    defaults = charm_defaults()
    names: list[str] = []

    def start(overrides: dict, tls: render.TlsMaterial | None = None) -> tuple[str, str]:
        host = paths.Host(
            sandbox=str(tmp_path / f"u{len(names)}"), unit_name=f"s3-{uuid.uuid4().hex[:8]}/0"
        )
        port = free_port()
        config = defaults | {"registry-image": registry_image_ref(), "registry-port": port}
        parsed = settings.parse(config | overrides)
        desired = render.desired(
            parsed,
            host=host,
            unit_address="127.0.0.1",
            tls=tls,
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
        start.started[desired.run.name] = (parsed, outcome)
        return desired.run.name, f"127.0.0.1:{port}"

    start.started = {}
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


def test_moto_checks_both_signature_versions():
    # GIVEN moto as the tests start it (one IAM user, every request's signature checked)
    with moto_s3() as s3:
        s3.create_bucket("signed")

        def put(key: str, headers: dict) -> int:
            return http_request("PUT", f"{s3.url}/signed/{key}", b"x", headers)[0]

        # THEN a request signed with the user's secret key is served, in either version ...
        url = f"{s3.url}/signed/v2"
        assert put("v2", sigv2_headers("PUT", url, s3.access_key, s3.secret_key)) == 200
        assert s3.request("PUT", "/signed/v4", b"x")[0] == 200
        # ... and one signed with another secret key, or unsigned, is refused
        url = f"{s3.url}/signed/wrong-v2"
        assert put("wrong-v2", sigv2_headers("PUT", url, s3.access_key, "wrong-secret")) == 403
        assert s3.request("PUT", "/signed/wrong-v4", b"x", secret_key="wrong-secret")[0] == 403
        # a made-up v2 signature holding four "/" is S3's to refuse (unpatched moto: a 500 for
        # want of a backend, see tests/support/moto_server.py)
        for signature in ("c2lnbmF0dXJl", "a/b/c/d/e=", "a/b/c/d=="):
            assert put("made-up", {"Authorization": f"AWS {s3.access_key}:{signature}"}) == 403
        assert sorted(s3.keys("signed")) == ["v2", "v4"]


@pytest.mark.parametrize("skip_v4_auth", [True, False], ids=["sigv2", "sigv4"])
def test_a_wrong_secret_key_is_refused_by_s3(s3, units, skip_v4_auth):
    # GIVEN a registry configured with the right access key but a wrong secret key
    name, netloc = units(
        s3_options(s3)
        | {"storage-s3-secretkey": "not-the-secret", "storage-s3-skip-v4-auth": skip_v4_auth}
    )
    ref = f"s3-wrong-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, seed=ref)
    # WHEN an image is pushed THEN the push fails and nothing reaches the bucket
    try:
        push = subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--retry-times=0",
                f"docker-daemon:{ref}",
                f"docker://{netloc}/s3/wrong:1",
            ],
            capture_output=True,
            text=True,
        )
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)
    assert push.returncode != 0
    assert s3.keys(BUCKET) == []
    # AND S3 said why: the signature (v2 or v4, as configured) did not match
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
    assert "SignatureDoesNotMatch" in logs.stdout + logs.stderr


def test_registry_stores_images_in_s3_and_serves_them_back(s3, units, tmp_path):
    name, netloc = units(s3_options(s3))
    # the charm's config really is the s3 driver pointed at moto
    rendered = yaml.safe_load(
        (tmp_path / "u0" / runspec.CONFIG_FILE.lstrip("/")).read_text()
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

    # a second unit on the same bucket (and http secret) serves the same image: shared storage,
    # read with SigV4 where the first unit wrote with SigV2 (the default off AWS)
    assert rendered["storage"]["s3"]["v4auth"] is False
    _, netloc2 = units(s3_options(s3) | {"storage-s3-skip-v4-auth": False})
    v4 = yaml.safe_load((tmp_path / "u1" / runspec.CONFIG_FILE.lstrip("/")).read_text())
    assert v4["storage"]["s3"]["v4auth"] is True
    inspected2 = json.loads(
        run("skopeo", "inspect", "--tls-verify=false", f"docker://{netloc2}/s3/test:1")
    )
    assert inspected2["Digest"] == inspected["Digest"]

    # garbage collection reaches the same bucket: the stored image is marked, none is lost
    gc_run = units.started[name][1].run
    output = container.docker(*gc.plan(gc_run).argv(dry_run=True), timeout=120)
    assert re.search(r"\b[1-9]\d* blobs marked", output), output[-500:]


def test_the_catalog_tells_an_unreachable_s3_from_a_reachable_one(engine, units):
    # GIVEN a registry on S3 WHEN the S3 endpoint goes away THEN /v2/ still answers (it never
    # touches storage) but the storage probe the status relies on says it is not reachable
    with moto_s3(host=docker_bridge_gateway()) as s3:
        s3.create_bucket(BUCKET)
        _name, netloc = units(s3_options(s3))
        assert clients.storage_answers(f"http://{netloc}") is True
    assert clients.probe(f"http://{netloc}")
    assert clients.storage_answers(f"http://{netloc}") is False


def test_the_egress_proxy_credentials_are_used_and_shown_nowhere(s3, units):
    # GIVEN an egress proxy that asks for credentials, and a registry on S3 whose
    # registry-http-proxy option holds them
    password = f"proxy-{uuid.uuid4().hex}"
    with auth_proxy(docker_bridge_gateway(), "egress", password) as proxy:
        name, netloc = units(s3_options(s3) | {"registry-http-proxy": proxy.url_with_credentials})
        # WHEN the registry lists its repositories THEN it reached S3 through the proxy, with
        # the credentials (the proxy refuses a request without them)
        assert clients.storage_answers(f"http://{netloc}") is True, s3.log_tail()
        assert any(url.startswith(f"{s3.url}/{BUCKET}") for url in proxy.forwarded())
        assert all(authorized for _method, _url, authorized in proxy.requests)
    # AND the credentials are in neither the container's config and state (`docker inspect`:
    # environment, arguments, mounts) nor any process's arguments on this host
    inspected = run("docker", "inspect", name)
    assert password not in inspected
    assert "registry.env" in inspected  # the file they are read from, mounted read-only
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            assert password.encode() not in cmdline.read_bytes(), cmdline


def storage_verdicts(units, name: str, client_pair=None, until: str = "") -> str:
    """What the hook's storage check says of unit ``name``: asked again (as the next hooks
    would) while it says something other than ``until``, for up to 30 s."""
    config, outcome = units.started[name]
    deadline = time.monotonic() + 30
    while True:
        said = applying.storage_unreachable(config, outcome, client_pair)
        if said == until or time.monotonic() > deadline:
            return said
        time.sleep(1)


STORAGE_DOWN = "storage-s3-*: the registry cannot reach its storage backend."


def test_with_token_auth_ready_only_while_the_storage_health_check_passes(engine, units):
    # GIVEN a registry with token auth on S3: the charm holds no token, so cannot list the
    # catalog; the registry's own storage health check answers for the storage
    ca, _, _ = make_ca("token-issuer")
    token = {
        "auth-token-realm": "https://auth.example.com/token",
        "auth-token-service": "registry",
        "auth-token-issuer": "issuer",
        "auth-token-root-certs": base64.b64encode(ca.cert.encode()).decode(),
    }
    gateway = docker_bridge_gateway()
    with moto_s3(host=gateway) as s3:
        s3.create_bucket(BUCKET)
        name, netloc = units(s3_options(s3) | token)
        # and one whose new S3 endpoint refuses connections (/v2/ answers all the same)
        dead = {"storage-s3-regionendpoint": f"http://{gateway}:{free_port(gateway)}"}
        dead_name, dead_netloc = units(s3_options(s3) | token | dead)
        assert get_status(f"http://{netloc}/v2/_catalog") == 401
        assert get_status(f"http://{dead_netloc}/v2/") == 401
        # WHEN the hook asks, right after the start THEN it waits for the registry's first
        # verdict: Ready where the storage answers, blocked naming the options where it does
        # not (never the endpoint)
        assert storage_verdicts(units, name) == ""
        config, outcome = units.started[dead_name]
        assert applying.storage_unreachable(config, outcome) == STORAGE_DOWN
    # WHEN the storage goes away THEN the registry answers 503 to everything: blocked
    assert storage_verdicts(units, name, until=STORAGE_DOWN) == STORAGE_DOWN
    assert get_status(f"http://{netloc}/v2/") == 503


def test_with_mutual_tls_the_catalog_is_asked_with_the_units_client_certificate(
    engine, units, tmp_path
):
    # GIVEN a registry on S3 that requires client certificates, and the unit's own one
    ca, ca_key, ca_cert = make_ca()
    server = make_server_cert(ca_key, ca_cert, "127.0.0.1", ["127.0.0.1"])
    client = make_client_cert(ca_key, ca_cert)
    pair = (tmp_path / "client.cert", tmp_path / "client.key")
    pair[0].write_text(client.cert)
    pair[1].write_text(client.key)
    client_pair = (str(pair[0]), str(pair[1]))
    tls = render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert)
    with moto_s3(host=docker_bridge_gateway()) as s3:
        s3.create_bucket(BUCKET)
        name, _ = units(s3_options(s3) | {"tls-client-auth": True}, tls=tls)
        # THEN with the certificate the storage is seen to answer; without, nothing is claimed
        assert storage_verdicts(units, name, client_pair) == ""
        _config, outcome = units.started[name]
        assert clients.storage_answers(outcome.probe_url) is None
    # WHEN the storage goes away THEN the catalog fails at once: blocked
    assert storage_verdicts(units, name, client_pair, until=STORAGE_DOWN) == STORAGE_DOWN
