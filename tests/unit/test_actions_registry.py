"""Registry actions (push, mirror, images, rmi, garbage-collect): parameter checks, readiness,
failures without tracebacks or secrets; transfer/registry_api/gc faked where they touch the
outside. Hook tools are recorders, the kv is a real SQLite file, flags are real."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from charmhelpers.core import hookenv, unitdata
from charms.reactive import set_flag

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.actions import content, copies, gc
from charms.layer.docker_registry.host import container, lock, paths
from charms.layer.docker_registry.images import registry_api, transfer
from charms.layer.docker_registry.pipeline import clients, runspec

SECRET = "act-s3cr3t"
ENDPOINT = clients.Endpoint(
    netloc="10.0.0.1:5000",
    url="https://10.0.0.1:5000",
    local_url="https://127.0.0.1:5000",
    ca_file="/etc/docker/registry/ca.crt",
)
RUN = runspec.ContainerRun(
    runspec.RunSpec(
        name="registry",
        image="registry:2",
        ports=(("", 5000, 5000),),
        mounts=(("/etc/docker/registry/config.yml", "/etc/docker/registry/config.yml"),),
        env_file="/etc/docker/registry/registry.env",
        storage_mount=("/srv/registry", "/var/lib/registry"),
    ),
    config_hash="abc",
)


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
    monkeypatch.setattr(actions, "action_log", h.logs.append)
    yield h
    unitdata._KV = None


@pytest.fixture
def ready(hook):
    records.save_endpoint(ENDPOINT)
    records.save_container_run(RUN)
    set_flag(records.CONFIGURED_FLAG)
    return hook


def run(hook, body, **params):
    hook.params = params
    actions.run(body)
    return hook


# ---------------------------------------------------------------- readiness


@pytest.mark.parametrize(
    ("body", "params"),
    [
        (content.push, {"image": "nginx:1"}),
        (copies.mirror, {"images": "nginx:1"}),
        (content.images, {}),
        (content.rmi, {"image": "nginx:1"}),
        (content.garbage_collect, {}),
    ],
)
def test_every_action_fails_clearly_when_the_registry_is_not_ready(hook, body, params):
    run(hook, body, **params)
    assert hook.failures == ["the registry is not ready: Waiting for the registry."]


def test_an_endpoint_without_the_configured_flag_is_not_ready(hook, monkeypatch):
    # GIVEN the last hook left the registry not answering (and it still does not)
    monkeypatch.setattr(clients, "probe", lambda url, timeout=3: False)
    records.save_endpoint(ENDPOINT)
    run(hook, content.images)
    assert hook.failures[0].startswith("the registry is not ready")


# ---------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("body", "params", "message"),
    [
        (content.push, {}, "image: required"),
        (content.push, {"image": "  "}, "image: required"),
        (content.push, {"image": 3}, "image: must be a string"),
        (content.push, {"image": "Bad/Name"}, "image: Bad/Name: bad repository path"),
        (content.push, {"image": "nginx:1", "pull": "yes"}, "pull: must be a boolean"),
        (content.push, {"image": "nginx:1", "tag": "a b"}, "tag: not an image reference"),
        (copies.mirror, {}, "give images (a list) or file (a path on the unit)"),
        (copies.mirror, {"images": "# only\n\n"}, "no images in the list"),
        (copies.mirror, {"images": "ok:1 BAD:1"}, "images line 1: 'BAD:1' not an image ref"),
        (copies.mirror, {"file": "relative.txt"}, "file: must be an absolute path"),
        (copies.mirror, {"images": "a:1", "prefix": "CDK"}, "prefix: a repository path"),
        (copies.mirror, {"images": "a:1", "source": "x"}, "source: give registry=host"),
        (copies.mirror, {"images": "a:1", "arch": "i386"}, "arch: one of amd64, arm64"),
        (copies.mirror, {"images": "a:1", "dry-run": "y"}, "dry-run: must be a boolean"),
        (copies.import_images, {"path": "x.tar"}, "path: must be an absolute path"),
        (copies.import_images, {"path": "/a", "concurrency": 99}, "concurrency: must be betw"),
        (copies.mirror, {"file": "/no/such/file"}, "file: cannot read /no/such/file"),
        (copies.mirror, {"images": "a:1", "concurrency": 0}, "concurrency: must be between"),
        (copies.mirror, {"images": "a:1", "concurrency": True}, "concurrency: must be an int"),
        (copies.mirror, {"images": "a:1", "src-tls-verify": 1}, "src-tls-verify: must be a b"),
        (content.images, {"options": "--digests"}, "options: apply to the local docker"),
        (content.images, {"repository": "Bad Repo"}, "repository: a repository name"),
        (content.images, {"local": True, "options": "--rm -rf"}, "options: '--rm' is not allow"),
        (content.rmi, {}, "image: required"),
        (content.rmi, {"image": "nginx"}, "image: give repository:tag or repository@sha256"),
        (content.rmi, {"image": "other:5000/x:1"}, "image: other:5000 is not this registry"),
        (content.rmi, {"image": "x:1", "options": "-f"}, "options: apply to the local docker"),
        (content.rmi, {"image": "x:1", "local": True, "options": "--all"}, "options: '--all'"),
        (content.garbage_collect, {"dry-run": "no"}, "dry-run: must be a boolean"),
        (content.garbage_collect, {"delete-untagged": 1}, "delete-untagged: must be a boolean"),
    ],
)
def test_bad_params_fail_with_a_clear_message(ready, body, params, message):
    run(ready, body, **params)
    assert len(ready.failures) == 1
    assert ready.failures[0].startswith(message), ready.failures[0]
    assert "unexpected" not in ready.failures[0]


def test_rmi_without_storage_delete_says_how_to_enable_it(ready):
    ready.config["storage-delete"] = False
    run(ready, content.rmi, image="team/app:1")
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
    run(ready, content.images)
    assert ready.failures[0].startswith("the registry uses token auth")


def test_invalid_config_is_reported_without_values(ready):
    ready.config["registry-port"] = -1
    run(ready, content.images)
    assert ready.failures[0].startswith("invalid charm config: registry-port")


# ---------------------------------------------------------------- push


def test_push_reports_tag_and_digest_and_passes_credentials_in_target(ready, monkeypatch):
    seen = {}

    def push(image, target, *, tag="", pull=True):
        seen.update(image=image, target=target, tag=tag, pull=pull)
        return transfer.PushResult(f"{target.netloc}/nginx:1", "sha256:" + "d" * 64)

    monkeypatch.setattr(transfer, "push", push)
    run(ready, content.push, image="nginx:1")
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
    run(ready, content.push, image="nginx:1", pull=False)
    assert ready.failures == ["unauthorized: authentication required"]
    assert SECRET not in ready.everything()


# ---------------------------------------------------------------- mirror


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
    run(ready, content.images, repository="10.0.0.1:5000/team")
    result = ready.result()
    assert json.loads(result["repositories"]) == {"team/app": ["1", "2"]}
    assert (result["count"], result["tags"]) == ("1", "2")
    assert result["raw"] == "team/app  1, 2"


def test_images_of_a_large_registry_fit_action_set_and_the_rest_goes_to_a_report(
    ready, api, monkeypatch, tmp_path
):
    # ~1,300 repositories used to crash the action with OSError (action-set's size limit)
    listing = {f"cdk/team-{n:04d}/some-long-application-name": ["v1.2.3"] for n in range(2000)}
    monkeypatch.setattr(FakeApi, "list_images", lambda self, repository="": listing)
    monkeypatch.setenv(actions.paths.SANDBOX_ENV, str(tmp_path))
    run(ready, content.images)
    result = ready.result()
    assert sum(len(v) for v in result.values()) < 128 * 1024
    assert result["count"] == "2000" and result["repositories"] == ""
    assert "more (see the report file)" in result["raw"]
    assert json.loads(Path(result["report"]).read_text())["repositories"] == listing


def test_images_falls_back_to_the_local_url_when_the_public_one_does_not_answer(ready, api):
    api.unreachable = True
    run(ready, content.images)
    assert [a.url for a in api.instances] == [ENDPOINT.url, ENDPOINT.local_url]
    assert ready.failures == []


def test_images_local_runs_docker_images_with_allowed_options(ready, monkeypatch):
    calls = []
    monkeypatch.setattr(container, "docker", lambda *a, **k: calls.append(a) or "LIST\n")
    run(
        ready,
        content.images,
        local=True,
        options="--digests --filter dangling=false",
        repository="nginx",
    )
    assert calls == [("images", "--digests", "--filter", "dangling=false", "nginx")]
    assert ready.result() == {"outcome": "success", "raw": "LIST"}


def test_rmi_deletes_by_digest_and_reports_the_other_tags(ready, api):
    run(ready, content.rmi, image="10.0.0.1:5000/team/app:1")
    assert ready.failures == []
    assert api.instances[-1].deleted == [("team/app", "sha256:" + "a" * 64)]
    result = ready.result()
    assert result["removed-tags"] == "1,also"
    assert result["other-tags"] == "also"
    assert "run garbage-collect" in result["raw"]


def test_rmi_of_an_unknown_tag(ready, api):
    run(ready, content.rmi, image="team/app:9")
    assert ready.failures == ["team/app:9 is not in the registry"]


def test_rmi_with_a_tag_and_a_different_digest_is_refused(ready, api):
    run(ready, content.rmi, image=f"team/app:1@sha256:{'b' * 64}")
    assert ready.failures == [f"team/app:1 does not point at sha256:{'b' * 64}"]
    assert api.instances[-1].deleted == []


def test_rmi_local_runs_docker_rmi(ready, monkeypatch):
    calls = []
    monkeypatch.setattr(container, "docker", lambda *a, **k: calls.append(a) or "Untagged")
    run(ready, content.rmi, image="nginx:1", local=True, options="--force")
    assert calls == [("rmi", "--force", "nginx:1")]


# ---------------------------------------------------------------- garbage-collect


def test_plan_from_the_saved_run_spec():
    plan = gc.plan(runspec.ContainerRun.from_record(RUN.as_record()))
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
        "--name",
        "registry-gc",  # a name the charm knows: it can stop it and never runs two
        "--network",
        "none",
        "--label",
        f"{container.OWNER_LABEL}={container.owner()}",
        "--volume",
        "/etc/docker/registry/config.yml:/etc/docker/registry/config.yml:ro",
        "--volume",
        "/srv/registry:/var/lib/registry",
        # the proxy's env file, read by the container's shell (never docker's environment)
        "--volume",
        "/etc/docker/registry/registry.env:/etc/docker/registry/registry.env:ro",
        "--entrypoint",
        "/bin/sh",
        "registry:2",
        "-c",
        runspec.with_env_file("x", [])[1][1],
        "sh",
        "garbage-collect",
        "--delete-untagged",
        "/etc/docker/registry/config.yml",
    ]
    # on object storage it keeps the network the registry uses to reach it
    s3 = dataclasses.replace(plan, storage_dir="")
    assert "--network" not in s3.argv()
    with pytest.raises(gc.GcError, match="run a hook first"):
        gc.plan(runspec.ContainerRun.from_record(None))


def test_plan_without_filesystem_storage_measures_nothing():
    spec = dataclasses.replace(RUN.spec, storage_mount=None)
    plan = gc.plan(runspec.ContainerRun(spec, "abc"))
    assert plan.storage_dir == ""
    assert "/srv/registry:/var/lib/registry" not in plan.volumes


class FakeDocker:
    def __init__(self, fail_gc=False):
        self.calls: list[tuple] = []
        self.fail_gc = fail_gc
        self.running = True
        self.gc_left = None  # a GC container the docker CLI gave up on
        self.gc_stuck = False  # ... and which cannot be removed

    def inspect(self, name):
        if name.endswith("-gc"):  # the GC container: gone once its run ended (--rm)
            return self.gc_left
        return type("S", (), {"running": self.running})()

    def remove(self, name):
        self.calls.append(("rm", name))
        if self.gc_left and not self.gc_stuck:
            self.gc_left = None

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
    for name in ("inspect", "stop", "start", "docker", "remove"):
        monkeypatch.setattr(gc.container, name, getattr(fake, name))
    monkeypatch.setattr(gc.workload, "wait_answering", lambda url, timeout: True)
    monkeypatch.setattr(
        actions, "report_restarted", lambda name: fake.calls.append(("ready", name))
    )
    storage = tmp_path / "storage"
    storage.mkdir()
    (storage / "blob").write_bytes(b"x" * 1000)
    spec = dataclasses.replace(RUN.spec, storage_mount=(str(storage), "/var/lib/registry"))
    unitdata.kv().set(records.RUN, runspec.ContainerRun(spec, "abc").as_record())
    fake.storage = storage
    return fake


def test_gc_stops_collects_restarts_and_reports(ready, fake_docker):
    real = fake_docker.docker

    def docker(*args, timeout=0):
        (fake_docker.storage / "blob").unlink()  # the GC deletes the blob
        return real(*args, timeout=timeout)

    fake_docker.docker = docker
    gc.container.docker = docker
    run(ready, content.garbage_collect, **{"delete-untagged": True})
    assert ready.failures == []
    assert [c[0] for c in fake_docker.calls] == ["stop", "docker", "start", "ready"]
    result = ready.result()
    assert result["reclaimed-bytes"] == "1000"
    assert (result["blobs-eligible"], result["manifests-eligible"]) == ("2", "1")
    assert result["raw"].startswith("deleted 2 blob(s) and 1 manifest(s); reclaimed 1000 B")
    assert ready.statuses[0] == ("maintenance", "Garbage collection: the registry is stopped.")


def test_gc_dry_run_leaves_the_registry_serving(ready, fake_docker):
    run(ready, content.garbage_collect, **{"dry-run": True})
    assert [c[0] for c in fake_docker.calls] == ["docker"]
    assert ready.result()["not-writable-seconds"] == "0.00"
    assert ready.result()["raw"].startswith("dry run: 2 blob(s) and 1 manifest(s) would be")


def test_gc_failure_still_restarts_the_registry(ready, fake_docker):
    fake_docker.fail_gc = True
    run(ready, content.garbage_collect)
    assert ready.failures == [
        "garbage-collect failed: docker run failed: boom; the registry was restarted"
    ]
    assert [c[0] for c in fake_docker.calls] == ["stop", "docker", "start", "ready"]


def test_a_gc_the_docker_cli_gave_up_on_is_stopped_before_the_registry_comes_back(
    ready, fake_docker
):
    # GIVEN the docker CLI times out while the GC container keeps running
    def timed_out(*args, timeout=0):
        fake_docker.calls.append(("docker", "run"))
        fake_docker.gc_left = type("S", (), {"running": True})()
        raise gc.DockerError("docker run timed out after 3600s")

    gc.container.docker = timed_out
    run(ready, content.garbage_collect)
    # THEN the GC container is removed before the registry starts again
    assert [c[0] for c in fake_docker.calls] == ["stop", "docker", "rm", "start", "ready"]
    assert fake_docker.calls[2] == ("rm", "registry-gc")
    assert ready.failures[0].startswith("garbage-collect failed: docker run timed out")


def test_a_gc_that_cannot_be_stopped_leaves_the_registry_stopped(ready, fake_docker):
    def timed_out(*args, timeout=0):
        fake_docker.calls.append(("docker", "run"))
        fake_docker.gc_left = type("S", (), {"running": True})()
        fake_docker.gc_stuck = True
        raise gc.DockerError("docker run timed out after 3600s")

    gc.container.docker = timed_out
    run(ready, content.garbage_collect)
    assert "start" not in [c[0] for c in fake_docker.calls]
    assert "registry-gc could not be stopped, so the registry stays stopped" in ready.failures[0]


def test_a_gc_is_refused_while_a_hook_or_another_gc_holds_the_registry(ready, fake_docker):
    with lock.registry_lock(paths.current()):
        run(ready, content.garbage_collect)
    assert [c[0] for c in fake_docker.calls] == ["ready"]  # the status as it was, nothing else
    assert ready.failures == [
        "another garbage-collect, start/stop or hook is working on the registry"
    ]


def test_gc_with_object_storage_reports_unknown(ready, fake_docker):
    ready.config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    spec = dataclasses.replace(RUN.spec, storage_mount=None)  # as render runs it with S3
    unitdata.kv().set(records.RUN, runspec.ContainerRun(spec, "abc").as_record())
    run(ready, content.garbage_collect)
    assert ready.failures == []
    assert ready.result()["reclaimed-bytes"] == "unknown"


def test_gc_on_shared_object_storage_needs_read_only_first(ready, fake_docker):
    # GIVEN two units sharing S3 WHEN GC runs while the other unit still accepts uploads
    ready.config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    ready.peers = ["docker-registry/1"]
    run(ready, content.garbage_collect)
    # THEN it refuses, saying how to do it safely, and touches nothing
    assert "set storage-read-only=true first" in ready.failures[0]
    assert fake_docker.calls == []
    ready.config["storage-read-only"] = True
    ready.failures.clear()
    run(ready, content.garbage_collect)
    assert ready.failures == []


def test_gc_when_stopped_by_the_operator_runs_without_touching_the_container(hook, fake_docker):
    set_flag(records.STOPPED_FLAG)
    fake_docker.running = False
    run(hook, content.garbage_collect)
    assert hook.failures == []
    assert [c[0] for c in fake_docker.calls] == ["docker"]


# ---------------------------------------------------------------- mirror and import

ROOT_LIST = "\n".join(
    [
        "ci-static: docker.io/sonobuoy/sonobuoy:v0.57.1",
        "v1.34-static: registry.k8s.io/pause:3.9",
        "v1.35-static: registry.k8s.io/pause:3.10 docker.io/calico/node:v3.27.4"
        " rocks.canonical.com/cdk/addon-resizer-{{ arch }}:1.8.9",
        "v1.35.3-upstream: registry.k8s.io/coredns/coredns{{ multiarch_workaround }}:v1.11.1",
        "v1.35.12-upstream: registry.k8s.io/coredns/coredns:v1.11.3"
        " quay.io/cephcsi/cephcsi:v3.8.1",
    ]
)
NETLOC = ENDPOINT.netloc


class RegistryFake:
    """The registry API as the already-there check sees it: HEAD digests, GET manifests."""

    digests: dict = {}  # "repo:reference" -> digest
    configs: dict = {}  # manifest digest -> config digest
    answers = True

    def __init__(self, *args, **kwargs):
        pass

    def ping(self):
        if not RegistryFake.answers:
            raise registry_api.RegistryApiError("no answer from the registry", 0)

    def digest(self, repo, reference):
        return RegistryFake.digests.get(f"{repo}:{reference}")

    def request(self, method, path, headers=None):
        digest = path.rsplit("/", 1)[1]
        body = json.dumps({"config": {"digest": RegistryFake.configs.get(digest, "")}})
        return registry_api.Response(200, {}, body.encode())

    def close(self):
        pass


@pytest.fixture
def unit(ready, monkeypatch, tmp_path):
    """A ready unit whose CA file exists, sandboxed paths and the registry API faked."""
    ca = tmp_path / "ca.crt"
    ca.write_text("CA PEM")
    endpoint = clients.Endpoint(ENDPOINT.netloc, ENDPOINT.url, ENDPOINT.local_url, str(ca))
    records.save_endpoint(endpoint)
    monkeypatch.setenv("DOCKER_REGISTRY_SANDBOX", str(tmp_path / "root"))
    RegistryFake.digests, RegistryFake.configs, RegistryFake.answers = {}, {}, True
    monkeypatch.setattr(registry_api, "Registry", RegistryFake)
    return ready


def _report(result) -> dict:
    return json.loads(open(result["report"]).read())


def test_mirror_dry_run_of_container_images_txt_is_the_plan(unit, fake_skopeo, tmp_path):
    listing = tmp_path / "container-images.txt"
    listing.write_text(ROOT_LIST)
    run(unit, copies.mirror, file=str(listing), release="1.35", arch="arm64", **{"dry-run": True})
    assert unit.failures == []
    result = unit.result()
    assert result["list"] == "container-images.txt (v1.35-static, v1.35.12-upstream)"
    assert (result["dry-run"], result["planned"], result["copied"]) == ("true", "5", "0")
    assert result["image-registry"] == NETLOC
    assert result["juju-config"] == f"juju config kubernetes-control-plane image-registry={NETLOC}"
    assert [(r["source"], r["target"]) for r in json.loads(result["results"])] == [
        ("registry.k8s.io/pause:3.10", f"{NETLOC}/pause:3.10"),
        ("docker.io/calico/node:v3.27.4", f"{NETLOC}/calico/node:v3.27.4"),
        (
            "rocks.canonical.com/cdk/addon-resizer-arm64:1.8.9",
            f"{NETLOC}/addon-resizer-arm64:1.8.9",
        ),
        ("registry.k8s.io/coredns/coredns:v1.11.3", f"{NETLOC}/coredns/coredns:v1.11.3"),
        ("quay.io/cephcsi/cephcsi:v3.8.1", f"{NETLOC}/cephcsi/cephcsi:v3.8.1"),
    ]
    assert result["raw"].splitlines()[0] == (
        f"dry run: 5 image(s) would go to {NETLOC}; the cluster needs: "
        f"juju config kubernetes-control-plane image-registry={NETLOC}"
    )
    report = _report(result)
    assert result["report"].startswith(str(tmp_path / "root" / "var/lib/docker-registry-charm"))
    assert len(report["images"]) == 5 and report["image-registry"] == NETLOC
    assert fake_skopeo.calls() == []  # nothing copied or inspected


def test_mirror_prefix_cdk_is_shrinkwraps_layout(unit, fake_skopeo):
    run(unit, copies.mirror, images="registry.k8s.io/pause:3.9", prefix="cdk", **{"dry-run": True})
    result = unit.result()
    assert json.loads(result["results"])[0]["target"] == f"{NETLOC}/cdk/pause:3.9"
    assert result["image-registry"] == f"{NETLOC}/cdk"
    assert result["juju-config"].endswith(f"image-registry={NETLOC}/cdk")


def test_mirror_of_canonical_k8s_list_images_in_the_mirror_layout(unit, fake_skopeo, tmp_path):
    # GIVEN the list `k8s list-images` prints (one full reference a line)
    listing = tmp_path / "k8s-images.txt"
    listing.write_text(
        "ghcr.io/canonical/k8s-snap/pause:3.10\n"
        "ghcr.io/canonical/coredns:1.11.4-ck1\n"
        "docker.io/library/busybox:1.36\n"
    )
    # WHEN it is mirrored with layout=mirror
    run(unit, copies.mirror, file=str(listing), layout="mirror", **{"dry-run": True})
    # THEN each image lands where containerd asks when this registry mirrors its host, and
    # the results say which hosts client-config must mirror
    assert unit.failures == []
    result = unit.result()
    assert [r["target"] for r in json.loads(result["results"])] == [
        f"{NETLOC}/canonical/k8s-snap/pause:3.10",
        f"{NETLOC}/canonical/coredns:1.11.4-ck1",
        f"{NETLOC}/library/busybox:1.36",
    ]
    assert result["mirror-for"] == "docker.io,ghcr.io"
    assert result["client-config"].endswith("client-config mirror-for=docker.io,ghcr.io")
    assert "image-registry" not in result and "juju-config" not in result


def test_mirror_layout_refuses_a_prefix_and_unknown_layouts(unit, fake_skopeo):
    run(unit, copies.mirror, images="ghcr.io/a/b:1", layout="mirror", prefix="cdk")
    run(unit, copies.mirror, images="ghcr.io/a/b:1", layout="flat")
    assert unit.failures == [
        "prefix: not with layout=mirror (containerd asks for the path as it is)",
        "layout: one of image-registry, mirror",
    ]


def test_mirror_skips_same_digest_copies_the_rest_and_logs_a_running_count(
    unit, fake_skopeo, monkeypatch
):
    monkeypatch.setenv("JUJU_CHARM_HTTPS_PROXY", "http://squid.internal:3128")
    monkeypatch.setenv("JUJU_CHARM_NO_PROXY", "10.0.0.0/8,.internal")
    same_raw = '{"schemaVersion": 2, "same": true}'
    import hashlib

    same = "sha256:" + hashlib.sha256(same_raw.encode()).hexdigest()
    RegistryFake.digests = {"pause:3.9": same, "calico/node:v3.27.4": "sha256:" + "9" * 64}
    fake_skopeo.manifests = {
        "docker://registry.k8s.io/pause:3.9": same_raw,
        "docker://docker.io/calico/node:v3.27.4": '{"other": 1}',
    }
    images = (
        "registry.k8s.io/pause:3.9 docker.io/calico/node:v3.27.4 "
        "quay.io/cephcsi/cephcsi:v3.8.1 quay.io/missing/x:1"
    )
    run(unit, copies.mirror, images=images, concurrency=1, arch="amd64")
    assert unit.failures == ["1 of 4 image(s) failed: quay.io/missing/x:1"]
    result = unit.result()
    assert (result["copied"], result["skipped"], result["failed"]) == ("2", "1", "1")
    statuses = {r["source"]: r["status"] for r in json.loads(result["results"])}
    assert statuses == {
        "registry.k8s.io/pause:3.9": "present",
        "docker.io/calico/node:v3.27.4": "copied",
        "quay.io/cephcsi/cephcsi:v3.8.1": "copied",
        "quay.io/missing/x:1": "failed",
    }
    progress = [line for line in unit.logs if line.startswith("[")]
    assert progress[0] == (
        "[1/4] skipped registry.k8s.io/pause:3.9: already in the registry with the same digest"
    )
    assert [line.split("]")[0] for line in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    copied = fake_skopeo.copies()
    assert len(copied) == 3
    assert all(c[:3] == ["--override-arch", "amd64", "copy"] for c in copied)
    assert sorted(c[-1] for c in copied) == sorted(
        f"docker://{NETLOC}/{p}"
        for p in ("calico/node:v3.27.4", "cephcsi/cephcsi:v3.8.1", "missing/x:1")
    )
    env = fake_skopeo.calls()[0]["env"]
    assert env["HTTPS_PROXY"] == "http://squid.internal:3128"
    assert env["NO_PROXY"] == "10.0.0.0/8,.internal,10.0.0.1,10.0.0.1:5000"
    assert SECRET not in unit.everything() + json.dumps(fake_skopeo.calls())


def test_mirror_refuses_both_sources_of_one_destination_and_copies_the_others(unit, fake_skopeo):
    images = "registry.k8s.io/pause:3.9 rocks.canonical.com/cdk/pause:3.9 quay.io/a/b:1"
    run(unit, copies.mirror, images=images, arch="all")
    assert unit.failures == [
        "2 image(s) refused, each shares its destination with another: "
        "registry.k8s.io/pause:3.9, rocks.canonical.com/cdk/pause:3.9"
    ]
    result = unit.result()
    assert (result["copied"], result["refused"], result["arch"]) == ("1", "2", "all")
    rows = {r["source"]: r for r in json.loads(result["results"])}
    assert rows["registry.k8s.io/pause:3.9"]["reason"] == (
        f"rocks.canonical.com/cdk/pause:3.9 also goes to {NETLOC}/pause:3.9"
    )
    (copy,) = fake_skopeo.copies()
    assert "--all" in copy and "--override-arch" not in copy  # every platform for arch=all
    assert copy[-2:] == ["docker://quay.io/a/b:1", f"docker://{NETLOC}/a/b:1"]


def test_mirror_reads_rocks_names_from_another_registry(unit, fake_skopeo):
    run(
        unit,
        copies.mirror,
        images="rocks.canonical.com/cdk/coredns/coredns:1.11.1",
        source="rocks.canonical.com=127.0.0.1:5001",
        **{"src-tls-verify": False},
    )
    assert unit.failures == []
    (copy,) = fake_skopeo.copies()
    assert "--src-tls-verify=false" in copy
    assert copy[-2:] == [
        "docker://127.0.0.1:5001/cdk/coredns/coredns:1.11.1",
        f"docker://{NETLOC}/coredns/coredns:1.11.1",
    ]
    assert "read from rocks.canonical.com=127.0.0.1:5001" in unit.result()["notes"]


def test_a_5000_image_plan_fits_what_action_set_carries(unit, fake_skopeo):
    images = "\n".join(f"quay.io/some-team/application-{n}:v1.{n}.0" for n in range(5000))
    run(unit, copies.mirror, images=images, **{"dry-run": True})
    result = unit.result()
    assert result["planned"] == "5000"
    assert sum(len(k) + len(v) for k, v in result.items()) < 128 * 1024
    assert all(len(v) < 128 * 1024 for v in result.values())  # one argument each
    shown = int(result["results-shown"].split()[0])
    assert 0 < shown < 5000 and result["results-shown"].endswith(result["report"])
    assert len(_report(result)["images"]) == 5000


def test_thousands_of_failures_still_fit_and_problems_come_first(unit):
    from charms.layer.docker_registry.images.plans import Item

    items = [
        Item(f"quay.io/ok/app-{n}:1", f"{NETLOC}/ok/app-{n}:1", status="copied", digest="d")
        for n in range(3000)
    ]
    items += [
        Item(
            f"quay.io/gone/app-{n}:1",
            f"{NETLOC}/gone/app-{n}:1",
            status="failed",
            reason="x" * 300,
        )
        for n in range(2000)
    ]
    endpoint = records.endpoint()
    with pytest.raises(actions.ActionError) as err:
        copies._outcome("mirror", items, endpoint, "", False, [], {})
    result = err.value.results
    assert sum(len(k) + len(v) for k, v in result.items()) < 128 * 1024
    assert json.loads(result["results"])[0]["source"] == "quay.io/gone/app-0:1"
    assert str(err.value).startswith("2000 of 5000 image(s) failed: quay.io/gone/app-0:1, ")
    assert str(err.value).endswith("quay.io/gone/app-19:1 and 1980 more")
    assert result["raw"].splitlines()[1].startswith("FAILED quay.io/gone/app-0:1")


@pytest.mark.parametrize(
    "content",
    [
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAs3cr3tk3y\n-----END RSA PRIVATE KEY-----\n",
        "admin:$2y$04$s3cr3tk3y/hash.value\n",
        "admin:s3cr3tk3y\n",
    ],
)
def test_mirror_refuses_a_file_that_is_no_image_list_without_echoing_it(
    unit, fake_skopeo, tmp_path, content
):
    secret = tmp_path / "secret"
    secret.write_text(content)
    run(unit, copies.mirror, file=str(secret))
    assert len(unit.failures) == 1 and unit.failures[0].startswith("file line 1: not an image")
    assert "s3cr3tk3y" not in unit.everything()
    assert fake_skopeo.calls() == []


def test_mirror_of_the_root_list_without_release_lists_the_releases(unit, tmp_path):
    listing = tmp_path / "container-images.txt"
    listing.write_text(ROOT_LIST)
    run(unit, copies.mirror, file=str(listing))
    assert unit.failures[0].endswith("releases in it: 1.34, 1.35")
    run(unit, copies.mirror, file=str(listing), release="1.29")
    assert unit.failures[-1] == "release 1.29 is not in the list; the closest: 1.34, 1.35"


def test_mirror_takes_release_as_the_number_juju_hands_over(unit, fake_skopeo, tmp_path):
    # GIVEN container-images.txt on the unit
    listing = tmp_path / "container-images.txt"
    listing.write_text(ROOT_LIST)
    # WHEN mirror runs with release=1.35 as juju run passes it: a number
    run(unit, copies.mirror, file=str(listing), release=1.35, **{"dry-run": True})
    # THEN it plans that release
    assert unit.failures == []
    assert unit.result()["list"].startswith("container-images.txt (v1.35-static, v1.35.")


def test_mirror_refuses_release_1_30_read_as_a_number(unit, fake_skopeo, tmp_path):
    listing = tmp_path / "container-images.txt"
    listing.write_text(ROOT_LIST)
    run(unit, copies.mirror, file=str(listing), release=1.3, **{"dry-run": True})
    assert len(unit.failures) == 1
    assert unit.failures[0].startswith("release: Juju read it as the number 1.3")
    assert "release=v1.30" in unit.failures[0]
    assert fake_skopeo.calls() == []


def test_mirror_copies_everything_when_the_registry_api_does_not_answer(unit, fake_skopeo):
    RegistryFake.answers = False
    RegistryFake.digests = {"pause:3.9": "sha256:" + "1" * 64}
    run(unit, copies.mirror, images="registry.k8s.io/pause:3.9")
    assert unit.failures == []
    assert unit.result()["copied"] == "1"
    assert "the registry API did not answer" in unit.result()["notes"]


def test_reports_are_pruned_and_a_report_that_cannot_be_written_is_a_note(
    unit, fake_skopeo, monkeypatch, tmp_path
):
    monkeypatch.setattr(actions, "KEEP_REPORTS", 2)
    for n in range(3):
        monkeypatch.setenv("JUJU_ACTION_UUID", f"{n}0000000")
        run(unit, copies.mirror, images="a.io/b:1", **{"dry-run": True})
    reports = tmp_path / "root" / "var/lib/docker-registry-charm/reports"
    assert len(list(reports.iterdir())) == 2
    monkeypatch.setattr(actions, "REPORTS_DIR", "/blocked/reports")
    (tmp_path / "root" / "blocked").write_text("a file where the directory would be")
    run(unit, copies.mirror, images="a.io/b:1", **{"dry-run": True})
    assert unit.result()["report"] == ""
    assert "could not write the report" in unit.result()["notes"]


def _archives(directory):
    from tests.unit.test_importer import docker_archive, oci_archive, oci_layout

    directory.mkdir()
    configs = docker_archive(
        directory / "saved.tar",
        [
            (b'{"pause": 1}', ["registry.k8s.io/pause:3.9"]),
            (b'{"dns": 1}', ["rocks.canonical.com/cdk/coredns/coredns:1.11.1"]),
        ],
    )
    layout = directory.parent / "layout"
    digests = oci_layout(layout, ["quay.io/cephcsi/cephcsi:v3.8.1"])
    oci_archive(directory / "ck.tar", layout)
    return configs, digests


def test_import_dry_run_of_a_directory_of_archives(unit, fake_skopeo, tmp_path):
    _archives(tmp_path / "in")
    run(unit, copies.import_images, path=str(tmp_path / "in"), **{"dry-run": True})
    assert unit.failures == []
    result = unit.result()
    assert (result["archives"], result["planned"]) == ("2", "3")
    assert sorted(r["target"] for r in json.loads(result["results"])) == [
        f"{NETLOC}/cephcsi/cephcsi:v3.8.1",
        f"{NETLOC}/coredns/coredns:1.11.1",
        f"{NETLOC}/pause:3.9",
    ]
    assert "docker save archives hold no registry manifest" in result["notes"]
    assert fake_skopeo.copies() == []


def test_import_pushes_keeping_oci_digests_and_skips_what_is_there(unit, fake_skopeo, tmp_path):
    configs, digests = _archives(tmp_path / "in")
    RegistryFake.digests = {"pause:3.9": "sha256:" + "7" * 64}
    RegistryFake.configs = {"sha256:" + "7" * 64: configs[0]}  # the same image ID: skipped
    ck = str(tmp_path / "in" / "ck.tar")
    fake_skopeo.digests = {}
    run(unit, copies.import_images, path=str(tmp_path / "in"))
    assert unit.failures == []
    result = unit.result()
    assert (result["copied"], result["skipped"]) == ("2", "1")
    copied = fake_skopeo.copies()
    reads = sorted(c[-2] for c in copied)
    assert reads[0] == f"docker-archive:{tmp_path}/in/saved.tar:@1"
    assert reads[1].startswith(f"oci:{tmp_path}/root/var/lib/docker-registry-charm/import/")
    assert reads[1].endswith(":quay.io/cephcsi/cephcsi:v3.8.1")
    oci_copy = next(c for c in copied if c[-2].startswith("oci:"))
    assert "--preserve-digests" in oci_copy
    # the fake writes another digest than the archive's: digest-kept says so
    assert result["digests-kept"] == "0 of 1"
    row = next(r for r in json.loads(result["results"]) if r["source"].startswith("quay.io"))
    assert row["digest-kept"] is False
    assert not list((tmp_path / "root/var/lib/docker-registry-charm/import").iterdir())
    # a second run with the archive's digest in place skips the OCI image as well
    RegistryFake.digests["cephcsi/cephcsi:v3.8.1"] = digests[0]
    run(unit, copies.import_images, path=ck)
    assert unit.result()["skipped"] == "1"


def test_import_without_preserve_digests_support_says_so(unit, fake_skopeo, tmp_path):
    _archives(tmp_path / "in")
    fake_skopeo.old = True
    run(unit, copies.import_images, path=str(tmp_path / "in" / "ck.tar"))
    assert unit.failures == []
    assert "no --preserve-digests" in unit.result()["notes"]
    assert all("--preserve-digests" not in c for c in fake_skopeo.copies())


def test_import_defaults_to_the_images_resource(unit, fake_skopeo, tmp_path, monkeypatch):
    _archives(tmp_path / "in")
    monkeypatch.setattr(hookenv, "resource_get", lambda name: False)
    run(unit, copies.import_images)
    assert unit.failures == [
        "give path= (an archive or directory on the unit) or attach the images resource "
        "(juju attach-resource docker-registry images=<archive>)"
    ]

    def boom(name):
        raise OSError("resource-get: not supported")

    monkeypatch.setattr(hookenv, "resource_get", boom)
    run(unit, copies.import_images)
    assert unit.failures[-1].startswith("give path=")
    resource = str(tmp_path / "in" / "saved.tar")
    monkeypatch.setattr(hookenv, "resource_get", lambda name: name == "images" and resource)
    run(unit, copies.import_images, **{"dry-run": True})
    assert unit.result()["path"] == resource and unit.result()["planned"] == "2"


def test_import_of_an_archive_without_named_images(unit, fake_skopeo, tmp_path):
    from tests.unit.test_importer import docker_archive

    docker_archive(tmp_path / "anon.tar", [(b"{}", [])])
    run(unit, copies.import_images, path=str(tmp_path / "anon.tar"))
    assert unit.failures == [
        f"no image to import: skipped an image in {tmp_path}/anon.tar (image 0): the archive "
        "gives it no name"
    ]
