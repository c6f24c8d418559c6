"""container: the real subprocess path against a fake `docker` executable (no engine).

The fake is a small Python script written to tmp_path. It records every call (argv and
stdin) as JSON lines and answers from a state JSON file, so the tests see exactly which
docker commands the library ran and can make docker fail, hang or answer oddly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from charms.layer.docker_registry import container, paths, render, settings, workload
from charms.layer.docker_registry.errors import DockerError

IMAGE = "registry:2"
IMAGE_ID = "sha256:" + "a" * 64
MUTATING = {"run", "stop", "rm", "start", "restart", "create", "kill", "tag", "load", "pull"}

FAKE_DOCKER = r"""
import json, sys, time
STATE, LOG = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(LOG, "a") as log:
    log.write(json.dumps({"argv": args, "stdin": stdin}) + "\n")
with open(STATE) as fh:
    state = json.load(fh)
sub = "image " + args[1] if args[:1] == ["image"] else args[0]
if "--" in args:  # as docker's flag parser: "--" ends the options and is not an argument
    args.remove("--")

def save():
    with open(STATE, "w") as fh:
        json.dump(state, fh)

def fail(message, code=1):
    sys.stderr.write(message + "\n")
    sys.exit(code)

if sub in state.get("hang", []):
    time.sleep(30)
if sub in state.get("fail", {}):
    failure = state["fail"][sub]
    sys.stdout.write(failure.get("stdout", ""))
    sys.stderr.write(failure.get("stderr", ""))
    sys.exit(failure.get("code", 1))

containers, images = state.setdefault("containers", {}), state.setdefault("images", {})

def find(ref):
    if ref in containers:
        return containers[ref]
    for c in containers.values():  # like docker: an id prefix matches too
        if c["Id"].startswith(ref):
            return c
    return None

if sub == "info":
    if state.get("info_failures", 0) > 0:
        state["info_failures"] -= 1
        save()
        fail("Cannot connect to the Docker daemon (still starting)")
    if not state.get("engine_up", True):
        fail("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
    print("24.0.7")
elif sub == "inspect":
    c = find(args[-1])
    if c is None:
        fail("Error: No such container: " + args[-1])
    print(json.dumps([c]))
elif sub == "image inspect":
    if args[-1] not in images:
        fail("Error: No such image: " + args[-1])
    print(images[args[-1]])
elif sub == "load":
    for name in state.get("tarball_holds", []):
        images[name] = state.get("tarball_image_id", "sha256:" + "b" * 64)
        print("Loaded image: " + name)
    save()
elif sub == "tag":
    images[args[2]] = images[args[1]]
    save()
elif sub == "pull":
    if args[1] not in state.get("remote", []):
        fail("Error response from daemon: manifest for " + args[1] + " not found")
    images[args[1]] = "sha256:" + "c" * 64
    save()
elif sub == "run":
    name = args[args.index("--name") + 1]
    if name in containers:
        fail('docker: Error response from daemon: Conflict. The container name "/'
             + name + '" is already in use.')
    labels = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--label")
    cid = "%064x" % (len(containers) + 1 + state.get("created", 0))
    state["created"] = state.get("created", 0) + 1
    containers[name] = {"Id": cid, "Name": "/" + name, "Image": images.get(args[-1], ""),
                        "State": {"Running": True, "Status": "running"},
                        "Config": {"Labels": labels}, "RestartCount": 0}
    save()
    print(cid)
elif sub in ("start", "stop"):
    c = find(args[-1])
    if c is None:
        fail("Error response from daemon: No such container: " + args[-1])
    c["State"] = {"Running": sub == "start", "Status": "running" if sub == "start" else "exited"}
    save()
    print(args[-1])
elif sub == "rm":
    if containers.pop(args[-1], None) is None:
        fail("Error response from daemon: No such container: " + args[-1])
    save()
    print(args[-1])
else:
    fail("fake docker: unknown command " + " ".join(args), 125)
"""


class FakeDocker:
    """A fake docker CLI on disk: ``state`` is what it answers from, ``calls`` what it ran."""

    def __init__(self, tmp_path: Path):
        self.state_file = tmp_path / "docker-state.json"
        self.log_file = tmp_path / "docker-calls.jsonl"
        script = tmp_path / "fake_docker.py"
        script.write_text(FAKE_DOCKER)
        self.executable = tmp_path / "docker"
        self.executable.write_text(
            f'#!/bin/sh\nexec {sys.executable} {script} {self.state_file} {self.log_file} "$@"\n'
        )
        self.executable.chmod(0o755)
        self.state = {"containers": {}, "images": {}}
        self.save()

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def load_state(self) -> dict:
        self.state = json.loads(self.state_file.read_text())
        return self.state

    def reset_log(self) -> None:
        self.log_file.unlink(missing_ok=True)

    @property
    def records(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    @property
    def calls(self) -> list[list[str]]:
        return [r["argv"] for r in self.records]

    def subcommands(self) -> list[str]:
        return [c[0] for c in self.calls]

    def mutating_calls(self) -> list[list[str]]:
        return [c for c in self.calls if c[0] in MUTATING]

    def add_image(self, ref: str, image_id: str = IMAGE_ID) -> None:
        self.load_state()
        self.state["images"][ref] = image_id
        self.save()

    def add_container(self, name: str, *, cid: str, labels=None, running=True, real_name=None):
        self.load_state()
        self.state["containers"][name] = {
            "Id": cid,
            "Name": "/" + (real_name or name),
            "Image": IMAGE_ID,
            "State": {"Running": running, "Status": "running" if running else "exited"},
            "Config": {"Labels": labels or {}},
            "RestartCount": 3,
        }
        self.save()


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> FakeDocker:
    fake = FakeDocker(tmp_path)
    monkeypatch.setattr(container, "DOCKER", str(fake.executable))
    return fake


def make_desired(config: dict, **overrides) -> render.Desired:
    s = settings.parse(config | overrides)
    return render.desired(
        s,
        host=paths.Host(),
        unit_address="10.0.0.1",
        tls=None,
        http_secret="secret",
        htpasswd="",
        realm="docker-registry",
    )


# ---------------------------------------------------------------- docker() itself


def test_docker_returns_stdout_of_the_cli(fake_docker):
    # WHEN a command succeeds THEN its stdout comes back and argv reached the CLI unchanged
    assert container.docker("info", "--format", "{{.ServerVersion}}").strip() == "24.0.7"
    assert fake_docker.calls == [["info", "--format", "{{.ServerVersion}}"]]


def test_docker_error_names_the_subcommand_and_docker_message_but_not_stdin(fake_docker):
    # GIVEN docker login fails
    fake_docker.state["fail"] = {"login": {"stderr": "first line\nError: unauthorized\n"}}
    fake_docker.save()
    # WHEN it is given a secret on stdin
    with pytest.raises(DockerError) as err:
        container.docker("login", "--password-stdin", "example.com", stdin="s3cr3t-pw")
    # THEN the secret did reach docker, but the error names the command and docker's last line
    assert fake_docker.records[0]["stdin"] == "s3cr3t-pw"
    assert str(err.value) == "docker login failed: Error: unauthorized"
    assert "s3cr3t-pw" not in str(err.value)


def test_docker_error_falls_back_to_stdout_then_to_the_exit_code(fake_docker):
    fake_docker.state["fail"] = {
        "info": {"stdout": "only on stdout\n", "code": 2},
        "stop": {"code": 7},
    }
    fake_docker.save()
    with pytest.raises(DockerError, match=r"^docker info failed: only on stdout$"):
        container.docker("info")
    with pytest.raises(DockerError, match=r"^docker stop failed: 7$"):
        container.docker("stop", "x")


def test_docker_timeout_is_a_docker_error_naming_the_subcommand(fake_docker):
    fake_docker.state["hang"] = ["info"]
    fake_docker.save()
    with pytest.raises(DockerError, match=r"^docker info timed out after 1s$"):
        container.docker("info", timeout=1)


def test_missing_docker_cli_is_a_docker_error(monkeypatch, tmp_path):
    monkeypatch.setattr(container, "DOCKER", str(tmp_path / "no-such-docker"))
    with pytest.raises(DockerError, match="the docker CLI is not installed"):
        container.docker("info")


# ---------------------------------------------------------------- inspect / image_id


def test_inspect_returns_the_state_of_the_container_with_that_exact_name(fake_docker):
    fake_docker.add_container("registry", cid="f" * 64, labels={"k": "v"}, running=False)
    state = container.inspect("registry")
    assert state == container.ContainerState(
        name="registry",
        id="f" * 64,
        running=False,
        status="exited",
        image_id=IMAGE_ID,
        labels={"k": "v"},
        started_at="",
        restart_count=3,
    )
    assert fake_docker.calls == [["inspect", "--type", "container", "registry"]]


def test_inspect_ignores_a_container_docker_matched_by_id_prefix(fake_docker):
    # GIVEN a container whose id starts with "abc" but is named something else
    fake_docker.add_container("other", cid="abc" + "0" * 61)
    # WHEN the registry container "abc" is looked up THEN docker answers, but it is not ours
    assert container.inspect("abc") is None
    assert fake_docker.calls == [["inspect", "--type", "container", "abc"]]


def test_inspect_of_a_missing_container_is_none(fake_docker):
    assert container.inspect("registry") is None


def test_inspect_raises_other_docker_errors(fake_docker):
    fake_docker.state["fail"] = {"inspect": {"stderr": "permission denied on docker.sock"}}
    fake_docker.save()
    with pytest.raises(DockerError, match="docker inspect failed: permission denied"):
        container.inspect("registry")


def test_image_id_is_the_local_id_or_none(fake_docker):
    fake_docker.add_image(IMAGE)
    assert container.image_id(IMAGE) == IMAGE_ID
    assert container.image_id("registry:3") is None
    assert fake_docker.calls[0] == ["image", "inspect", "--format", "{{.Id}}", "--", IMAGE]


def test_image_id_raises_other_docker_errors(fake_docker):
    fake_docker.state["fail"] = {"image inspect": {"stderr": "daemon is not running"}}
    fake_docker.save()
    with pytest.raises(DockerError, match="docker image failed: daemon is not running"):
        container.image_id(IMAGE)


def test_load_returns_what_the_tarball_held(fake_docker, tmp_path):
    fake_docker.state["tarball_holds"] = ["registry:2.8.2", "sha256:" + "d" * 64]
    fake_docker.save()
    assert container.load(str(tmp_path / "image.tar")) == ["registry:2.8.2", "sha256:" + "d" * 64]
    assert fake_docker.calls == [["load", "--input", str(tmp_path / "image.tar")]]


def test_small_commands_pass_their_arguments(fake_docker):
    fake_docker.add_image("a:1")
    fake_docker.add_container("reg", cid="1" * 64, running=False)
    fake_docker.state["remote"] = ["b:2"]
    fake_docker.save()
    container.tag("a:1", "a:latest")
    container.pull("b:2")
    container.start("reg")
    container.stop("reg", timeout=5)
    container.remove("reg")
    assert fake_docker.calls == [
        ["tag", "--", "a:1", "a:latest"],
        ["pull", "--", "b:2"],
        ["start", "reg"],
        ["stop", "--time", "5", "reg"],
        ["rm", "--force", "reg"],
    ]
    state = fake_docker.load_state()
    assert state["images"]["a:latest"] == IMAGE_ID
    assert state["containers"] == {}


# ---------------------------------------------------------------- converge
# (workload's policy, run here over the real wrapper and the fake docker CLI)


def converge(desired: render.Desired, **kw) -> tuple[str, list[str]]:
    """As workload.apply calls it: the wanted hash and the current container looked up first."""
    run = render.ContainerRun(desired.run, workload.config_hash(desired))
    argv = run.argv()  # as docker is asked: labelled with this unit as owner
    argv[1:1] = ["--label", f"{container.OWNER_LABEL}={container.owner()}"]
    return workload.converge(run, container.inspect(desired.run.name), **kw), argv


def test_converge_fails_when_the_image_is_absent(fake_docker, config):
    with pytest.raises(DockerError, match="image registry:2 is not present"):
        converge(make_desired(config))
    assert fake_docker.mutating_calls() == []


def test_converge_creates_a_missing_container_labelled_with_the_config_hash(
    fake_docker, config, monkeypatch
):
    monkeypatch.setenv("JUJU_MODEL_UUID", "m-1")
    monkeypatch.setenv("JUJU_UNIT_NAME", "docker-registry/0")
    fake_docker.add_image(IMAGE)
    desired = make_desired(config)
    action, argv = converge(desired)
    assert action == "created"
    assert fake_docker.mutating_calls() == [argv]
    created = fake_docker.load_state()["containers"]["registry"]
    assert created["Config"]["Labels"] == {
        render.HASH_LABEL: desired.config_hash(IMAGE_ID),
        container.OWNER_LABEL: "m-1/docker-registry/0",  # this unit created it
    }
    assert argv[-1] == IMAGE


def test_converge_leaves_a_matching_running_container_untouched(fake_docker, config):
    fake_docker.add_image(IMAGE)
    desired = make_desired(config)
    converge(desired)
    fake_docker.reset_log()
    action, _argv = converge(make_desired(config))
    assert action == "unchanged"
    assert fake_docker.mutating_calls() == []
    assert fake_docker.subcommands() == ["image", "inspect"]


def test_converge_recreates_on_config_change_with_one_stop_rm_run(fake_docker, config):
    fake_docker.add_image(IMAGE)
    converge(make_desired(config))
    fake_docker.reset_log()
    # WHEN the port changes
    action, argv = converge(make_desired(config, **{"registry-port": 5001}))
    # THEN exactly one stop, one rm and one run, in that order
    assert action == "recreated"
    assert fake_docker.mutating_calls() == [
        ["stop", "--time", "10", "registry"],
        ["rm", "--force", "registry"],
        argv,
    ]
    assert "5001:5000" in argv


def test_converge_recreates_when_the_image_behind_the_tag_changed(fake_docker, config):
    fake_docker.add_image(IMAGE)
    converge(make_desired(config))
    # WHEN the tag now points at another image (the container is kept)
    fake_docker.add_image(IMAGE, "sha256:" + "e" * 64)
    action, _ = converge(make_desired(config))
    assert action == "recreated"


def test_converge_starts_a_stopped_container_with_the_same_config(fake_docker, config):
    fake_docker.add_image(IMAGE)
    desired = make_desired(config)
    fake_docker.add_container(
        "registry",
        cid="2" * 64,
        labels={render.HASH_LABEL: desired.config_hash(IMAGE_ID)},
        running=False,
    )
    action, _ = converge(desired)
    assert action == "started"
    assert fake_docker.mutating_calls() == [["start", "registry"]]


@pytest.mark.parametrize("same_config", [True, False])
def test_converge_leaves_a_container_the_operator_stopped_alone(fake_docker, config, same_config):
    fake_docker.add_image(IMAGE)
    desired = make_desired(config)
    label = desired.config_hash(IMAGE_ID) if same_config else "old-hash"
    fake_docker.add_container(
        "registry", cid="3" * 64, labels={render.HASH_LABEL: label}, running=False
    )
    action, _ = converge(desired, allow_start=False)
    assert action == "stopped-by-operator"
    assert fake_docker.mutating_calls() == []


def test_converge_does_not_create_a_removed_container_while_stopped_by_operator(
    fake_docker, config
):
    fake_docker.add_image(IMAGE)
    action, _ = converge(make_desired(config), allow_start=False)
    assert action == "stopped-by-operator"
    assert fake_docker.mutating_calls() == []
    assert fake_docker.load_state()["containers"] == {}


def test_converge_creates_rather_than_touching_an_id_prefix_match(fake_docker, config):
    # GIVEN an unrelated container whose id starts with the registry's name
    fake_docker.add_image(IMAGE)
    fake_docker.add_container("unrelated", cid="abcdef" + "0" * 58)
    desired = make_desired(config, **{"registry-name": "abcdef"})
    # WHEN converging THEN the unrelated container is not stopped or removed
    action, argv = converge(desired)
    assert action == "created"
    assert fake_docker.mutating_calls() == [argv]
    assert "unrelated" in fake_docker.load_state()["containers"]


def test_announce_only_when_the_container_is_touched(fake_docker, config):
    fake_docker.add_image(IMAGE)
    desired = make_desired(config)
    seen = []
    converge(desired, announce=seen.append)
    assert seen == [None]  # created: nothing there before
    converge(desired, announce=seen.append)
    assert seen == [None]  # unchanged: no maintenance status flicker


def test_published_ports_come_from_the_port_bindings():
    data = {
        "HostConfig": {
            "PortBindings": {
                "5000/tcp": [{"HostIp": "127.0.0.2", "HostPort": "5000"}],
                "5001/tcp": [{"HostIp": "", "HostPort": "5001"}, {"HostPort": ""}],
            }
        }
    }
    assert container._published(data) == (("127.0.0.2", 5000), ("", 5001))
    assert container._published({}) == ()


def test_converge_asks_docker_nothing_before_stopping_the_old_container(fake_docker, config):
    # every docker call before the old container stops delays serving again
    fake_docker.add_image(IMAGE)
    converge(make_desired(config))
    changed = make_desired(config, **{"registry-port": 5001})
    run = render.ContainerRun(changed.run, workload.config_hash(changed))
    current = container.inspect("registry")
    fake_docker.reset_log()
    assert workload.converge(run, current) == "recreated"
    assert fake_docker.subcommands() == ["stop", "rm", "run"]
