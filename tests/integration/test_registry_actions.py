"""The registry actions' functions against real registries (no Docker Hub):

- "upstream": a plain registry container (http, no auth), the source of images;
- "target": the charm's own registry, rendered and run by the charm's workload functions, with
  TLS from real certificates, htpasswd basic auth and storage-delete.

- "rocks": a plain registry standing in for rocks.canonical.com (CK-shaped names under cdk/),
  read through mirror's source rewrite and by scripts/ck-images-archive.sh.

The action bodies (content.push/mirror/import_images/images/rmi/garbage_collect) run with hook
tools replaced by recorders, a real unit kv and real reactive flags; everything else is real.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from charmhelpers.core import hookenv, unitdata
from charms.reactive import clear_flag, set_flag

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.actions import content, copies
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import auth, container, paths, workload
from charms.layer.docker_registry.images import registry_api, transfer
from charms.layer.docker_registry.pipeline import clients, layout, render
from tests.support import certs
from tests.support.config import charm_defaults
from tests.support.images import ensure_engine, make_test_image, registry_image_ref
from tests.support.net import free_port

PASSWORD = "Act10ns-Secret!"
RUN = uuid.uuid4().hex[:6]


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def engine():
    ensure_engine()
    assert container.image_id(registry_image_ref()), "run `make image` first"


@pytest.fixture(scope="module")
def upstream(engine):
    """A plain registry (http, no auth) holding three small distinct images."""
    port = free_port()
    name = f"it-upstream-{RUN}"
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000", registry_image_ref())
    netloc = f"127.0.0.1:{port}"
    assert workload.wait_answering(f"http://{netloc}", 20)
    images = []
    for path in ("cdk/pause:3.9", "cdk/coredns/coredns:1.11", "team/tool:2"):
        local = f"it-src-{RUN}/{path.replace('/', '-')}"
        make_test_image(local, payload_bytes=64 * 1024, seed=f"{RUN}{path}")
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"docker-daemon:{local}",
                f"docker://{netloc}/{path}",
            ],
            check=True,
            capture_output=True,
        )
        docker("rmi", local)
        images.append(f"{netloc}/{path}")
    yield netloc, images
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def target(engine, tmp_path_factory):
    """The charm's registry: TLS (real CA) + basic auth + storage-delete, as a hook runs it."""
    tmp = tmp_path_factory.mktemp("target")
    host = paths.Host(sandbox=str(tmp / "root"), unit_name=f"it-{RUN}/0")
    config = charm_defaults() | {
        "registry-image": registry_image_ref(),
        "registry-port": free_port(),
        "auth-basic-password": PASSWORD,
        "storage-delete": True,
    }
    s = settings.parse(config)
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "localhost", ["localhost", "127.0.0.1"])
    tls = render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert)
    htpasswd = auth.htpasswd_line("admin", PASSWORD, host.path(layout.HTPASSWD_FILE))
    desired = render.desired(
        s,
        host=host,
        unit_address="127.0.0.1",
        tls=tls,
        http_secret="it-secret",
        htpasswd=htpasswd,
        realm="docker-registry",
    )
    outcome, _ = workload.apply(
        desired,
        image_id=container.image_id(desired.run.image),
        host=host,
        managed_files=[],
        allow_start=True,
    )
    assert outcome.answering
    netloc = f"127.0.0.1:{s.registry_port}"
    endpoint = clients.Endpoint(
        netloc=netloc,
        url=f"https://{netloc}",
        local_url=outcome.probe_url,
        ca_file=str(host.path(s.tls_paths.ca)),
    )
    yield {
        "config": config,
        "endpoint": endpoint,
        "run": outcome.run,
        "name": desired.run.name,
        "storage": host.path(paths.STORAGE_DIR),
    }
    subprocess.run(["docker", "rm", "-f", desired.run.name], capture_output=True, check=False)


class Hook:
    def __init__(self, config):
        self.config = dict(config)
        self.results: list[dict] = []
        self.failures: list[str] = []
        self.logs: list[str] = []
        self.statuses: list[tuple[str, str]] = []

    def result(self) -> dict:
        merged: dict = {}
        for r in self.results:
            merged |= r
        return merged


@pytest.fixture
def hook(monkeypatch, tmp_path, target):
    """A ready unit: endpoint and run arguments in a real kv, configured flag set."""
    h = Hook(target["config"])
    monkeypatch.setenv(paths.SANDBOX_ENV, str(tmp_path / "unit"))  # reports, import scratch
    monkeypatch.setenv("UNIT_STATE_DB", str(tmp_path / "unit-state.db"))
    monkeypatch.setattr(unitdata, "_KV", None)
    monkeypatch.setattr(hookenv, "action_set", h.results.append)
    monkeypatch.setattr(hookenv, "action_fail", h.failures.append)
    monkeypatch.setattr(hookenv, "log", lambda msg, level=None: h.logs.append(msg))
    monkeypatch.setattr(hookenv, "config", lambda key=None: h.config)
    monkeypatch.setattr(hookenv, "status_set", lambda s, m, **kw: h.statuses.append((s, m)))
    monkeypatch.setattr(hookenv, "unit_private_ip", lambda: "127.0.0.1")
    monkeypatch.setattr(hookenv, "service_name", lambda: "docker-registry")
    monkeypatch.setattr(actions, "action_log", h.logs.append)
    unitdata.kv().set(records.ENDPOINT, target["endpoint"].as_dict())
    unitdata.kv().set(records.RUN, target["run"].as_record())
    set_flag(records.CONFIGURED_FLAG)

    def call(body, params):
        monkeypatch.setattr(hookenv, "action_get", lambda key=None: params)
        h.results.clear()
        h.failures.clear()
        actions.run(body)
        return h

    h.call = call
    yield h
    unitdata._KV = None


def api(target) -> registry_api.Registry:
    e = target["endpoint"]
    return registry_api.Registry(e.url, "admin", PASSWORD, e.ca_file)


def upstream_api(netloc) -> registry_api.Registry:
    return registry_api.Registry(f"http://{netloc}")


def test_push_local_image_over_tls_with_auth(hook, target):
    # GIVEN an image only in the local docker
    local = f"it-push-{RUN}/app:1"
    make_test_image(local, seed=f"{RUN}push")
    try:
        # WHEN pushed with pull=false and the default tag
        h = hook.call(content.push, {"image": local, "pull": False})
        # THEN it is in the registry under <netloc>/<path>, with the digest reported
        netloc = target["endpoint"].netloc
        assert h.failures == []
        result = h.result()
        assert result["raw"] == f"pushed {netloc}/it-push-{RUN}/app:1"
        assert result["outcome"] == "success"
        assert api(target).digest(f"it-push-{RUN}/app", "1") == result["digest"]
        # AND the password appears in no result or log
        assert PASSWORD not in json.dumps([h.results, h.logs, h.failures])
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True, check=False)


def test_push_pulls_from_a_registry_with_a_port_and_drops_its_host(hook, target, upstream):
    _, images = upstream
    source = images[2]  # 127.0.0.1:PORT/team/tool:2
    h = hook.call(content.push, {"image": source})
    assert h.failures == []
    assert h.result()["tag"] == f"{target['endpoint'].netloc}/team/tool:2"
    assert "2" in api(target).tags("team/tool")
    subprocess.run(["docker", "rmi", source], capture_output=True, check=False)


def test_push_with_an_explicit_tag_elsewhere_is_refused(hook):
    h = hook.call(content.push, {"image": "busybox:1", "tag": "other.example:5000/x:1"})
    assert h.failures and "must start with this registry's address" in h.failures[0]


def test_mirror_copies_the_rest_when_one_image_fails(hook, target, upstream):
    netloc, images = upstream
    bad = f"{netloc}/does/not-exist:1"
    listing = "\n".join(["# images", images[0], "", bad, f"{images[1]}  # dns"])
    h = hook.call(copies.mirror, {"images": listing, "concurrency": 3, "src-tls-verify": False})
    # THEN the action fails naming only the bad image, with per-image results set
    assert h.failures == [f"1 of 3 image(s) failed: {bad}"]
    results = json.loads(h.result()["results"])
    assert [r["ok"] for r in results] == [True, False, True]
    progress = [line for line in h.logs if line.startswith("[")]
    assert sorted(line.split("]")[0] for line in progress) == ["[1/3", "[2/3", "[3/3"]
    # AND the good ones are in the registry under the same paths, with the same digests
    up, down = upstream_api(netloc), api(target)
    for path, tag in (("cdk/pause", "3.9"), ("cdk/coredns/coredns", "1.11")):
        assert down.digest(path, tag) == up.digest(path, tag)
    assert results[0]["digest"] == up.digest("cdk/pause", "3.9")


def test_mirror_from_a_file(hook, target, upstream, tmp_path):
    _, images = upstream
    listing = tmp_path / "container-images.txt"
    listing.write_text(f"# Charmed Kubernetes\n{images[2]}\n")
    h = hook.call(copies.mirror, {"file": str(listing), "src-tls-verify": False})
    assert h.failures == []
    # the push test before put the same image there: skipped, else copied
    assert int(h.result()["copied"]) + int(h.result()["skipped"]) == 1


def test_images_lists_repositories_and_tags_from_the_api(hook, target, upstream, tmp_path):
    _, images = upstream
    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(images) + "\n")
    h = hook.call(copies.mirror, {"file": str(listing), "src-tls-verify": False})
    assert h.failures == []
    h = hook.call(content.images, {})
    assert h.failures == []
    listing = json.loads(h.result()["repositories"])
    assert listing["cdk/pause"] == ["3.9"]
    assert listing["cdk/coredns/coredns"] == ["1.11"]
    assert "cdk/pause" in h.result()["raw"]
    # filters: prefix and pattern
    h = hook.call(content.images, {"repository": "cdk"})
    assert sorted(json.loads(h.result()["repositories"])) == ["cdk/coredns/coredns", "cdk/pause"]
    h = hook.call(content.images, {"repository": "*/coredns"})
    assert sorted(json.loads(h.result()["repositories"])) == ["cdk/coredns/coredns"]


def test_a_blocked_unit_whose_registry_answers_still_runs_actions_and_says_it_is_blocked(
    hook, target, monkeypatch
):
    # GIVEN the cert-provider sent a certificate whose key does not match: the unit is blocked
    # (the configured flag cleared) while the last good registry keeps serving
    clear_flag(records.CONFIGURED_FLAG)
    why = "cert-provider: the certificate does not match its key."
    monkeypatch.setattr(hookenv, "status_get", lambda: ("blocked", why))
    # WHEN an action runs THEN it works against the registry that answers, and says why the
    # unit is blocked
    h = hook.call(content.images, {})
    assert h.failures == []
    assert h.result()["unit-blocked"] == why


def test_catalog_pagination_follows_the_link_header(target, upstream):
    netloc, _ = upstream
    assert upstream_api(netloc).catalog(page_size=1) == sorted(
        ["cdk/coredns/coredns", "cdk/pause", "team/tool"]
    )


def test_rmi_deletes_by_digest_with_the_tags_that_shared_it_then_gc_reclaims(
    hook, target, tmp_path
):
    e = target["endpoint"]
    t = transfer.Target(e.netloc, True, e.ca_file, "admin", PASSWORD)
    big = f"it-rmi-{RUN}/big:1"
    keep = f"it-rmi-{RUN}/keep:1"
    make_test_image(big, payload_bytes=3 * 1024 * 1024, seed=f"{RUN}big")
    make_test_image(keep, payload_bytes=1024, seed=f"{RUN}keep")
    repo = f"rmi-{RUN}/app"
    try:
        transfer.push(big, t, tag=f"{e.netloc}/{repo}:1", pull=False)
        transfer.push(big, t, tag=f"{e.netloc}/{repo}:also", pull=False)
        kept = transfer.push(keep, t, tag=f"{e.netloc}/{repo}:2", pull=False)
    finally:
        subprocess.run(["docker", "rmi", big, keep], capture_output=True, check=False)
    reg = api(target)
    # WHEN tag 1 is deleted
    h = hook.call(content.rmi, {"image": f"{repo}:1"})
    # THEN its digest went with both tags pointing at it; the other tag stays
    assert h.failures == []
    assert h.result()["removed-tags"] == "1,also"
    assert h.result()["other-tags"] == "also"
    assert reg.digest(repo, "1") is None
    assert reg.digest(repo, "also") is None
    assert reg.digest(repo, "2") == kept.digest
    # a second delete says it is not there
    h = hook.call(content.rmi, {"image": f"{repo}:1"})
    assert h.failures == [f"{repo}:1 is not in the registry"]

    # WHEN garbage collection runs THEN the 3 MiB layer is reclaimed and the registry serves
    h = hook.call(content.garbage_collect, {"dry-run": True})
    assert h.failures == [] and h.result()["reclaimed-bytes"] == "0"
    assert int(h.result()["blobs-eligible"]) >= 1
    before = container.inspect(target["name"]).started_at
    h = hook.call(content.garbage_collect, {})
    assert h.failures == []
    result = h.result()
    assert int(result["reclaimed-bytes"]) > 3 * 1024 * 1024
    assert float(result["not-writable-seconds"]) > 0
    state = container.inspect(target["name"])
    assert state.running and state.started_at != before  # it was stopped and restarted
    assert reg.digest(repo, "2") == kept.digest
    # and the remaining image still pulls whole (no stale cache: skopeo checks every digest)
    with transfer.skopeo_auth(t) as a:
        out = subprocess.run(
            [
                "skopeo",
                "copy",
                *a.src_args(),
                f"docker://{e.netloc}/{repo}:2",
                f"dir:{tmp_path / 'pulled'}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert out.returncode == 0, out.stderr


def test_gc_restarts_the_registry_even_when_gc_fails(hook, target, monkeypatch):
    from charms.layer.docker_registry.actions import gc

    real_argv = gc.GcPlan.argv
    monkeypatch.setattr(
        gc.GcPlan, "argv", lambda self, **kw: [*real_argv(self, **kw)[:-1], "/no/such.yml"]
    )
    h = hook.call(content.garbage_collect, {})
    assert h.failures and h.failures[0].startswith("garbage-collect failed")
    assert "the registry was restarted" in h.failures[0]
    assert container.inspect(target["name"]).running
    api(target).ping()


def test_no_temporary_credentials_are_left_behind(target):
    e = target["endpoint"]
    t = transfer.Target(e.netloc, True, e.ca_file, "admin", PASSWORD)
    with transfer.skopeo_auth(t) as a:
        directory = Path(a.authfile).parent
        assert oct(os.stat(a.authfile).st_mode & 0o777) == "0o600"
        assert oct(os.stat(directory).st_mode & 0o777) == "0o700"
    assert not directory.exists()


# ---------------------------------------------------------------- CK lists, air-gapped import

ROCKS_IMAGES = ("cdk/pause:3.9", "cdk/coredns/coredns:1.11.1", "cdk/addon-resizer-amd64:1.8.9")
# container-images.txt's shape; only the v1.35 static line and its newest patch exist upstream,
# so a copy of any other line's image would fail
ROCKS = "rocks.canonical.com/cdk"
CK_LIST = f"""\
ci-static: {ROCKS}/sonobuoy:v0.57.1
v1.34-static: {ROCKS}/pause:3.8
v1.35-static: {ROCKS}/pause:3.9 {ROCKS}/addon-resizer-{{{{ arch }}}}:1.8.9
v1.35.10-upstream: {ROCKS}/coredns/coredns{{{{ multiarch_workaround }}}}:1.11.1
v1.35.9-upstream: {ROCKS}/coredns/coredns:1.11.0
"""


@pytest.fixture(scope="module")
def rocks(engine):
    """A plain registry (http, no auth) in place of rocks.canonical.com, names under cdk/."""
    port = free_port()
    name = f"it-rocks-{RUN}"
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000", registry_image_ref())
    netloc = f"127.0.0.1:{port}"
    assert workload.wait_answering(f"http://{netloc}", 20)
    for path in ROCKS_IMAGES:
        local = f"it-rocks-{RUN}/{path.replace('/', '-')}"
        make_test_image(local, payload_bytes=32 * 1024, seed=f"{RUN}rocks{path}")
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                f"docker-daemon:{local}",
                f"docker://{netloc}/{path}",
            ],
            check=True,
            capture_output=True,
        )
        docker("rmi", local)
    yield netloc
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def _progress(h, since: int) -> list[str]:
    return [line for line in h.logs[since:] if line.startswith("[")]


def test_mirror_of_container_images_txt_lands_where_ck_pulls_and_a_rerun_skips(
    hook, target, rocks, tmp_path
):
    listing = tmp_path / "container-images.txt"
    listing.write_text(CK_LIST)
    params = {
        "file": str(listing),
        "release": "1.35",
        "arch": "amd64",
        "source": f"rocks.canonical.com={rocks}",
        "src-tls-verify": False,
    }
    h = hook.call(copies.mirror, params)
    assert h.failures == []
    result = h.result()
    netloc = target["endpoint"].netloc
    assert result["list"] == "container-images.txt (v1.35-static, v1.35.10-upstream)"
    assert (result["copied"], result["skipped"]) == ("3", "0")
    assert result["juju-config"] == f"juju config kubernetes-control-plane image-registry={netloc}"
    # <netloc>/<path>: rocks' cdk/ dropped, with the upstream digests
    up, down = upstream_api(rocks), api(target)
    for path, tag in (
        ("pause", "3.9"),
        ("coredns/coredns", "1.11.1"),
        ("addon-resizer-amd64", "1.8.9"),
    ):
        assert down.digest(path, tag) == up.digest(f"cdk/{path}", tag), path
    report = json.loads(Path(result["report"]).read_text())
    assert sorted(r["target"] for r in report["images"]) == [
        f"{netloc}/addon-resizer-amd64:1.8.9",
        f"{netloc}/coredns/coredns:1.11.1",
        f"{netloc}/pause:3.9",
    ]
    # WHEN it runs again THEN nothing is copied: the same digests are there
    since = len(h.logs)
    h = hook.call(copies.mirror, params)
    assert h.failures == []
    assert (h.result()["copied"], h.result()["skipped"]) == ("0", "3")
    assert all(
        "already in the registry with the same digest" in line for line in _progress(h, since)
    )
    assert PASSWORD not in json.dumps([h.results, h.logs, report])


def test_mirror_dry_run_copies_nothing(hook, target, rocks):
    h = hook.call(
        copies.mirror,
        {
            "images": "rocks.canonical.com/cdk/pause:3.9",
            "source": f"rocks.canonical.com={rocks}",
            "prefix": "dry",
            "dry-run": True,
        },
    )
    assert h.failures == [] and h.result()["planned"] == "1"
    assert api(target).digest("dry/pause", "3.9") is None


def test_import_of_a_docker_save_archive_with_two_images(hook, target, tmp_path):
    names = [
        "registry.k8s.io/pause:3.10",
        "rocks.canonical.com/cdk/metrics-server/metrics-server:v0.7.0",
    ]
    ids = [make_test_image(n, payload_bytes=16 * 1024, seed=f"{RUN}save{n}") for n in names]
    archive = tmp_path / "saved.tar"
    try:
        docker("save", "-o", str(archive), *names)
    finally:
        subprocess.run(["docker", "rmi", *names], capture_output=True, check=False)
    h = hook.call(copies.import_images, {"path": str(archive)})
    assert h.failures == []
    assert h.result()["copied"] == "2"
    down = api(target)
    e = target["endpoint"]
    for (path, tag), image_id in zip(
        (("pause", "3.10"), ("metrics-server/metrics-server", "v0.7.0")), ids, strict=True
    ):
        assert down.digest(path, tag), path
        # docker save keeps no registry manifest: the image ID (config digest) is what is kept
        with transfer.skopeo_auth(
            transfer.Target(e.netloc, True, e.ca_file, "admin", PASSWORD)
        ) as a:
            raw = subprocess.run(
                [
                    "skopeo",
                    "inspect",
                    "--raw",
                    "--cert-dir",
                    a.cert_dir,
                    "--authfile",
                    a.authfile,
                    f"docker://{e.netloc}/{path}:{tag}",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        assert json.loads(raw)["config"]["digest"] == image_id
    # a second import finds the same image IDs there
    h = hook.call(copies.import_images, {"path": str(archive)})
    assert (h.result()["copied"], h.result()["skipped"]) == ("0", "2")


def test_the_archive_tool_and_import_keep_the_digests(hook, target, rocks, tmp_path):
    """The connected side: scripts/ck-images-archive.sh makes an oci-archive from the list;
    the air-gapped side: import pushes it, OCI digests kept, under prefix=airgap."""
    listing = tmp_path / "container-images.txt"
    listing.write_text(CK_LIST)
    archive = tmp_path / "ck-1.35-amd64.tar"
    env = os.environ | {"SOURCE": f"rocks.canonical.com={rocks}", "SRC_TLS_VERIFY": "false"}
    script = Path(__file__).resolve().parents[2] / "scripts" / "ck-images-archive.sh"
    out = subprocess.run(
        ["bash", str(script), str(listing), "1.35", str(archive), "amd64"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "wrote" in out.stdout and not (tmp_path / "ck-1.35-amd64.tar.layout").exists()
    h = hook.call(copies.import_images, {"path": str(archive), "prefix": "airgap"})
    assert h.failures == []
    result = h.result()
    assert (result["copied"], result["digests-kept"]) == ("3", "3 of 3")
    assert result["image-registry"] == f"{target['endpoint'].netloc}/airgap"
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))
    names = {
        m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
        for m in index["manifests"]
    }
    down = api(target)
    assert down.digest("airgap/pause", "3.9") == names["rocks.canonical.com/cdk/pause:3.9"]
    assert (
        down.digest("airgap/coredns/coredns", "1.11.1")
        == (names["rocks.canonical.com/cdk/coredns/coredns:1.11.1"])
    )
    # the extracted layout is gone; a re-run skips all three
    scratch = paths.Host(sandbox=os.environ.get(paths.SANDBOX_ENV, "")).path(copies.IMPORT_DIR)
    assert not scratch.exists() or not list(scratch.iterdir())
    h = hook.call(copies.import_images, {"path": str(archive), "prefix": "airgap"})
    assert h.result()["skipped"] == "3"
