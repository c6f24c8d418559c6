"""Registry actions (push, mirror, images, rmi, garbage-collect): parameter checks, readiness,
failures without tracebacks or secrets; transfer/registry_api/gc faked where they touch the
outside. Hook tools are recorders, the kv is a real SQLite file, flags are real."""

from __future__ import annotations

import json

import pytest
from charmhelpers.core import hookenv, unitdata
from charms.reactive import set_flag

from charms.layer.docker_registry import actions, clients, gc, registry_api, transfer

SECRET = "act-s3cr3t"
ENDPOINT = clients.Endpoint(
    netloc="10.0.0.1:5000",
    url="https://10.0.0.1:5000",
    local_url="https://127.0.0.1:5000",
    ca_file="/etc/docker/registry/ca.crt",
)
RUN_ARGV = [
    "run",
    "--detach",
    "--name",
    "registry",
    "--restart",
    "unless-stopped",
    "--label",
    "docker-registry.config-hash=abc",
    "--publish",
    "5000:5000",
    "--volume",
    "/etc/docker/registry/config.yml:/etc/docker/registry/config.yml:ro",
    "--volume",
    "/srv/registry:/var/lib/registry",
    "--env-file",
    "/etc/docker/registry/registry.env",
    "registry:2",
]


class Hook:
    def __init__(self, config):
        self.params: dict = {}
        self.config = config
        self.results: list[dict] = []
        self.failures: list[str] = []
        self.logs: list[str] = []
        self.statuses: list[tuple[str, str]] = []

    def result(self) -> dict:
        out: dict = {}
        for r in self.results:
            out |= r
        return out

    def everything(self) -> str:
        return json.dumps([self.results, self.failures, self.logs, self.statuses])


@pytest.fixture
def hook(monkeypatch, tmp_path, defaults):
    h = Hook(dict(defaults) | {"auth-basic-password": SECRET, "storage-delete": True})
    monkeypatch.setenv("UNIT_STATE_DB", str(tmp_path / "unit-state.db"))
    monkeypatch.setattr(unitdata, "_KV", None)
    monkeypatch.setattr(hookenv, "action_get", lambda key=None: h.params)
    monkeypatch.setattr(hookenv, "action_set", h.results.append)
    monkeypatch.setattr(hookenv, "action_fail", h.failures.append)
    monkeypatch.setattr(hookenv, "log", lambda msg, level=None: h.logs.append(msg))
    monkeypatch.setattr(hookenv, "config", lambda key=None: h.config)
    monkeypatch.setattr(hookenv, "status_set", lambda s, m, **kw: h.statuses.append((s, m)))
    monkeypatch.setattr(hookenv, "status_get", lambda: ("waiting", "Waiting for the registry."))
    monkeypatch.setattr(hookenv, "service_name", lambda: "docker-registry")
    monkeypatch.setattr(hookenv, "unit_private_ip", lambda: "10.0.0.1")
    h.peers = []
    monkeypatch.setattr(hookenv, "relation_ids", lambda name=None: ["peer:1"])
    monkeypatch.setattr(hookenv, "related_units", lambda rid=None: list(h.peers))
    monkeypatch.setattr(actions, "_action_log", h.logs.append)
    yield h
    unitdata._KV = None


@pytest.fixture
def ready(hook):
    unitdata.kv().set(clients.ENDPOINT_KEY, ENDPOINT.as_dict())
    unitdata.kv().set(actions.RUN_ARGV_KEY, RUN_ARGV)
    set_flag(actions.CONFIGURED_FLAG)
    return hook


def run(hook, body, **params):
    hook.params = params
    actions.run(body)
    return hook


# ---------------------------------------------------------------- readiness


@pytest.mark.parametrize(
    ("body", "params"),
    [
        (actions.push, {"image": "nginx:1"}),
        (actions.mirror, {"images": "nginx:1"}),
        (actions.images, {}),
        (actions.rmi, {"image": "nginx:1"}),
        (actions.garbage_collect, {}),
    ],
)
def test_every_action_fails_clearly_when_the_registry_is_not_ready(hook, body, params):
    run(hook, body, **params)
    assert hook.failures == ["the registry is not ready: Waiting for the registry."]


def test_an_endpoint_without_the_configured_flag_is_not_ready(hook):
    unitdata.kv().set(clients.ENDPOINT_KEY, ENDPOINT.as_dict())
    run(hook, actions.images)
    assert hook.failures[0].startswith("the registry is not ready")


# ---------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("body", "params", "message"),
    [
        (actions.push, {}, "image: required"),
        (actions.push, {"image": "  "}, "image: required"),
        (actions.push, {"image": 3}, "image: must be a string"),
        (actions.push, {"image": "Bad/Name"}, "image: Bad/Name: bad repository path"),
        (actions.push, {"image": "nginx:1", "pull": "yes"}, "pull: must be a boolean"),
        (actions.push, {"image": "nginx:1", "tag": "a b"}, "tag: not an image reference"),
        (actions.mirror, {}, "give images (a list) or file (a path on the unit)"),
        (actions.mirror, {"images": "# only\n\n"}, "no images in the list"),
        (actions.mirror, {"images": "ok:1 BAD:1"}, "not image references: BAD:1"),
        (actions.mirror, {"file": "relative.txt"}, "file: must be an absolute path"),
        (actions.mirror, {"file": "/no/such/file"}, "file: cannot read /no/such/file"),
        (actions.mirror, {"images": "a:1", "concurrency": 0}, "concurrency: must be between"),
        (actions.mirror, {"images": "a:1", "concurrency": True}, "concurrency: must be an int"),
        (actions.mirror, {"images": "a:1", "src-tls-verify": 1}, "src-tls-verify: must be a b"),
        (actions.images, {"options": "--digests"}, "options: apply to the local docker"),
        (actions.images, {"repository": "Bad Repo"}, "repository: a repository name"),
        (actions.images, {"local": True, "options": "--rm -rf"}, "options: '--rm' is not allow"),
        (actions.rmi, {}, "image: required"),
        (actions.rmi, {"image": "nginx"}, "image: give repository:tag or repository@sha256"),
        (actions.rmi, {"image": "other:5000/x:1"}, "image: other:5000 is not this registry"),
        (actions.rmi, {"image": "x:1", "options": "-f"}, "options: apply to the local docker"),
        (actions.rmi, {"image": "x:1", "local": True, "options": "--all"}, "options: '--all'"),
        (actions.garbage_collect, {"dry-run": "no"}, "dry-run: must be a boolean"),
        (actions.garbage_collect, {"delete-untagged": 1}, "delete-untagged: must be a boolean"),
    ],
)
def test_bad_params_fail_with_a_clear_message(ready, body, params, message):
    run(ready, body, **params)
    assert len(ready.failures) == 1
    assert ready.failures[0].startswith(message), ready.failures[0]
    assert "unexpected" not in ready.failures[0]


def test_rmi_without_storage_delete_says_how_to_enable_it(ready):
    ready.config["storage-delete"] = False
    run(ready, actions.rmi, image="team/app:1")
    assert ready.failures == [
        "deleting from the registry needs storage-delete=true "
        "(juju config docker-registry storage-delete=true)"
    ]


def test_token_auth_is_refused_clearly(ready, monkeypatch):
    monkeypatch.setattr(
        actions.settings,
        "parse",
        lambda config: type(
            "S", (), {"token_auth": object(), "basic_auth": None, "storage_delete": True}
        )(),
    )
    run(ready, actions.images)
    assert ready.failures[0].startswith("the registry uses token auth")


def test_invalid_config_is_reported_without_values(ready):
    ready.config["registry-port"] = -1
    run(ready, actions.images)
    assert ready.failures[0].startswith("invalid charm config: registry-port")


# ---------------------------------------------------------------- push


def test_push_reports_tag_and_digest_and_passes_credentials_in_target(ready, monkeypatch):
    seen = {}

    def push(image, target, *, tag="", pull=True):
        seen.update(image=image, target=target, tag=tag, pull=pull)
        return transfer.PushResult(f"{target.netloc}/nginx:1", "sha256:" + "d" * 64)

    monkeypatch.setattr(transfer, "push", push)
    run(ready, actions.push, image="nginx:1")
    assert ready.result() == {
        "outcome": "success",
        "raw": "pushed 10.0.0.1:5000/nginx:1",
        "tag": "10.0.0.1:5000/nginx:1",
        "digest": "sha256:" + "d" * 64,
    }
    target = seen["target"]
    assert (target.netloc, target.tls, target.ca_file, target.user) == (
        "10.0.0.1:5000",
        True,
        ENDPOINT.ca_file,
        "admin",
    )
    assert target.password == SECRET and SECRET not in repr(target)
    assert seen["pull"] is True


def test_push_failure_is_an_action_failure_without_the_secret(ready, monkeypatch):
    def push(*args, **kwargs):
        raise transfer.TransferError("unauthorized: authentication required")

    monkeypatch.setattr(transfer, "push", push)
    run(ready, actions.push, image="nginx:1", pull=False)
    assert ready.failures == ["unauthorized: authentication required"]
    assert SECRET not in ready.everything()


# ---------------------------------------------------------------- mirror


def test_mirror_sets_per_image_results_then_fails_naming_the_failed(ready, monkeypatch, tmp_path):
    listing = tmp_path / "images.txt"
    listing.write_text("# list\nb/c:2\n\nmissing/x:1  # gone\n")

    def mirror(images, target, *, concurrency, src_tls_verify, all_platforms, log):
        out = []
        for image in images:
            ok = "missing" not in image
            r = transfer.MirrorResult(image, f"{target.netloc}/{image}", ok, "", "" if ok else "x")
            log(r.line())
            out.append(r)
        return out

    monkeypatch.setattr(transfer, "mirror", mirror)
    run(ready, actions.mirror, images="a:1", file=str(listing), concurrency=2)
    assert ready.failures == ["1 of 3 image(s) failed: missing/x:1"]
    result = ready.result()
    assert (result["copied"], result["failed"], result["outcome"]) == ("2", "1", "failure")
    assert [r["source"] for r in json.loads(result["results"])] == ["a:1", "b/c:2", "missing/x:1"]
    assert ready.logs[0].startswith("mirroring 3 image(s) to 10.0.0.1:5000")
    assert len(ready.logs) == 4


def test_mirror_all_ok_succeeds(ready, monkeypatch):
    monkeypatch.setattr(
        transfer,
        "mirror",
        lambda images, target, **kw: [transfer.MirrorResult(i, i, True, "d") for i in images],
    )
    run(ready, actions.mirror, images="a:1\nb:2")
    assert ready.failures == []
    assert ready.result()["outcome"] == "success"


# ---------------------------------------------------------------- images / rmi


class FakeApi:
    def __init__(self, *args, check_hostname=True, **kwargs):
        self.url = args[0]
        self.fail_ping = FakeApi.unreachable and self.url == ENDPOINT.url
        self.deleted: list[tuple[str, str]] = []
        FakeApi.instances.append(self)

    instances: list = []
    unreachable = False
    tags = {"1": "sha256:" + "a" * 64, "also": "sha256:" + "a" * 64, "2": "sha256:" + "b" * 64}

    def ping(self):
        if self.fail_ping:
            raise registry_api.RegistryApiError("no answer", 0)

    def list_images(self, repository=""):
        data = {"cdk/pause": ["3.9"], "team/app": ["1", "2"]}
        return {r: t for r, t in data.items() if registry_api.matches(r, repository)}

    def digest(self, repo, ref):
        if ref.startswith("sha256:"):
            return ref if ref in FakeApi.tags.values() else None
        return FakeApi.tags.get(ref)

    def tag_digests(self, repo):
        return dict(FakeApi.tags)

    def delete_manifest(self, repo, digest):
        self.deleted.append((repo, digest))
        FakeApi.tags = {t: d for t, d in FakeApi.tags.items() if d != digest}

    def close(self):
        pass


@pytest.fixture
def api(monkeypatch):
    FakeApi.instances = []
    FakeApi.unreachable = False
    FakeApi.tags = {
        "1": "sha256:" + "a" * 64,
        "also": "sha256:" + "a" * 64,
        "2": "sha256:" + "b" * 64,
    }
    monkeypatch.setattr(registry_api, "Registry", FakeApi)
    return FakeApi


def test_images_lists_json_and_text(ready, api):
    run(ready, actions.images, repository="10.0.0.1:5000/team")
    result = ready.result()
    assert json.loads(result["repositories"]) == {"team/app": ["1", "2"]}
    assert (result["count"], result["tags"]) == ("1", "2")
    assert result["raw"] == "team/app  1, 2"


def test_images_falls_back_to_the_local_url_when_the_public_one_does_not_answer(ready, api):
    api.unreachable = True
    run(ready, actions.images)
    assert [a.url for a in api.instances] == [ENDPOINT.url, ENDPOINT.local_url]
    assert ready.failures == []


def test_images_local_runs_docker_images_with_allowed_options(ready, monkeypatch):
    calls = []
    monkeypatch.setattr(actions.container, "docker", lambda *a, **k: calls.append(a) or "LIST\n")
    run(
        ready,
        actions.images,
        local=True,
        options="--digests --filter dangling=false",
        repository="nginx",
    )
    assert calls == [("images", "--digests", "--filter", "dangling=false", "nginx")]
    assert ready.result() == {"outcome": "success", "raw": "LIST"}


def test_rmi_deletes_by_digest_and_reports_the_other_tags(ready, api):
    run(ready, actions.rmi, image="10.0.0.1:5000/team/app:1")
    assert ready.failures == []
    assert api.instances[-1].deleted == [("team/app", "sha256:" + "a" * 64)]
    result = ready.result()
    assert result["removed-tags"] == "1,also"
    assert result["other-tags"] == "also"
    assert "run garbage-collect" in result["raw"]


def test_rmi_of_an_unknown_tag(ready, api):
    run(ready, actions.rmi, image="team/app:9")
    assert ready.failures == ["team/app:9 is not in the registry"]


def test_rmi_with_a_tag_and_a_different_digest_is_refused(ready, api):
    run(ready, actions.rmi, image=f"team/app:1@sha256:{'b' * 64}")
    assert ready.failures == [f"team/app:1 does not point at sha256:{'b' * 64}"]
    assert api.instances[-1].deleted == []


def test_rmi_local_runs_docker_rmi(ready, monkeypatch):
    calls = []
    monkeypatch.setattr(actions.container, "docker", lambda *a, **k: calls.append(a) or "Untagged")
    run(ready, actions.rmi, image="nginx:1", local=True, options="--force")
    assert calls == [("rmi", "--force", "nginx:1")]


# ---------------------------------------------------------------- garbage-collect


def test_plan_from_the_saved_run_arguments():
    plan = gc.plan_from_run_argv(RUN_ARGV)
    assert plan == gc.GcPlan(
        name="registry",
        image="registry:2",
        volumes=(
            "/etc/docker/registry/config.yml:/etc/docker/registry/config.yml:ro",
            "/srv/registry:/var/lib/registry",
        ),
        env_file="/etc/docker/registry/registry.env",
        storage_dir="/srv/registry",
    )
    assert plan.argv(delete_untagged=True) == [
        "run",
        "--rm",
        "--network",
        "none",
        "--volume",
        "/etc/docker/registry/config.yml:/etc/docker/registry/config.yml:ro",
        "--volume",
        "/srv/registry:/var/lib/registry",
        "--env-file",
        "/etc/docker/registry/registry.env",
        "registry:2",
        "garbage-collect",
        "--delete-untagged",
        "/etc/docker/registry/config.yml",
    ]
    with pytest.raises(gc.GcError, match="run a hook first"):
        gc.plan_from_run_argv([])


class FakeDocker:
    def __init__(self, fail_gc=False):
        self.calls: list[tuple] = []
        self.fail_gc = fail_gc
        self.running = True

    def inspect(self, name):
        return type("S", (), {"running": self.running})()

    def stop(self, name, timeout=10):
        self.calls.append(("stop", name))
        self.running = False

    def start(self, name):
        self.calls.append(("start", name))
        self.running = True

    def docker(self, *args, timeout=0):
        self.calls.append(("docker", args[-3]))
        if self.fail_gc:
            raise gc.DockerError("docker run failed: boom")
        return "3 blobs marked, 2 blobs and 1 manifests eligible for deletion\n"


@pytest.fixture
def fake_docker(monkeypatch, tmp_path):
    fake = FakeDocker()
    for name in ("inspect", "stop", "start", "docker"):
        monkeypatch.setattr(gc.container, name, getattr(fake, name))
    monkeypatch.setattr(gc.workload, "wait_answering", lambda url, timeout: True)
    monkeypatch.setattr(actions, "_report_ready", lambda name: fake.calls.append(("ready", name)))
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / "blob").write_bytes(b"x" * 1000)
    argv = [a.replace("/srv/registry", str(storage)) for a in RUN_ARGV]
    unitdata.kv().set(actions.RUN_ARGV_KEY, argv)
    fake.storage = storage
    return fake


def test_gc_stops_collects_restarts_and_reports(ready, fake_docker):
    real = fake_docker.docker

    def docker(*args, timeout=0):
        (fake_docker.storage / "blob").unlink()  # the GC deletes the blob
        return real(*args, timeout=timeout)

    fake_docker.docker = docker
    gc.container.docker = docker
    run(ready, actions.garbage_collect, **{"delete-untagged": True})
    assert ready.failures == []
    assert [c[0] for c in fake_docker.calls] == ["stop", "docker", "start", "ready"]
    result = ready.result()
    assert result["reclaimed-bytes"] == "1000"
    assert (result["blobs-eligible"], result["manifests-eligible"]) == ("2", "1")
    assert result["raw"].startswith("deleted 2 blob(s) and 1 manifest(s); reclaimed 1000 B")
    assert ready.statuses[0] == ("maintenance", "Garbage collection: the registry is stopped.")


def test_gc_dry_run_leaves_the_registry_serving(ready, fake_docker):
    run(ready, actions.garbage_collect, **{"dry-run": True})
    assert [c[0] for c in fake_docker.calls] == ["docker"]
    assert ready.result()["not-writable-seconds"] == "0.00"
    assert ready.result()["raw"].startswith("dry run: 2 blob(s) and 1 manifest(s) would be")


def test_gc_failure_still_restarts_the_registry(ready, fake_docker):
    fake_docker.fail_gc = True
    run(ready, actions.garbage_collect)
    assert ready.failures == [
        "garbage-collect failed: docker run failed: boom; the registry was restarted"
    ]
    assert [c[0] for c in fake_docker.calls] == ["stop", "docker", "start", "ready"]


def test_gc_with_object_storage_reports_unknown(ready, fake_docker):
    ready.config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    run(ready, actions.garbage_collect)
    assert ready.failures == []
    assert ready.result()["reclaimed-bytes"] == "unknown"


def test_gc_on_shared_object_storage_needs_read_only_first(ready, fake_docker):
    # GIVEN two units sharing S3 WHEN GC runs while the other unit still accepts uploads
    ready.config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    ready.peers = ["docker-registry/1"]
    run(ready, actions.garbage_collect)
    # THEN it refuses, saying how to do it safely, and touches nothing
    assert "set storage-read-only=true first" in ready.failures[0]
    assert fake_docker.calls == []
    ready.config["storage-read-only"] = True
    ready.failures.clear()
    run(ready, actions.garbage_collect)
    assert ready.failures == []


def test_gc_when_stopped_by_the_operator_runs_without_touching_the_container(hook, fake_docker):
    set_flag(actions.STOPPED_FLAG)
    fake_docker.running = False
    run(hook, actions.garbage_collect)
    assert hook.failures == []
    assert [c[0] for c in fake_docker.calls] == ["docker"]
