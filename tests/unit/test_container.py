"""container: the real subprocess path against a fake `docker` executable (no engine).

The fake is a small Python script written to tmp_path. It records every call (argv and
stdin) as JSON lines and answers from a state JSON file, so the tests see exactly which
docker commands the library ran and can make docker fail, hang or answer oddly.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import DockerError
from charms.layer.docker_registry.host import claims, container, paths, workload
from charms.layer.docker_registry.pipeline import render, runspec

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
    refused = state.get("run_refused")  # docker created the container but could not start it
    containers[name] = {"Id": cid, "Name": "/" + name, "Image": images.get(args[-1], ""),
                        "State": state.get("run_state", {"Running": True, "Status": "running"}),
                        "Config": {"Labels": labels}, "RestartCount": state.get("run_restarts", 0)}
    if refused:
        containers[name]["State"] = {"Running": False, "Status": "created"}
    save()
    if refused:
        fail(refused, 125)
    print(cid)
elif sub == "rename":
    if args[2] in containers:
        fail("Error response from daemon: Conflict. The name is already in use")
    containers[args[2]] = containers.pop(args[1])
    containers[args[2]]["Name"] = "/" + args[2]
    save()
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
    run = runspec.ContainerRun(
        desired.run, desired.config_hash(container.image_id(desired.run.image))
    )
    argv = run.argv()  # as docker is asked: labelled with this unit as owner
    argv[1:1] = ["--label", f"{container.OWNER_LABEL}={container.owner()}"]
    return workload.converge(run, container.inspect(desired.run.name), **kw), argv


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
        runspec.HASH_LABEL: desired.config_hash(IMAGE_ID),
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
        labels={runspec.HASH_LABEL: desired.config_hash(IMAGE_ID)},
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
        "registry", cid="3" * 64, labels={runspec.HASH_LABEL: label}, running=False
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
    run = runspec.ContainerRun(
        changed.run, changed.config_hash(container.image_id(changed.run.image))
    )
    current = container.inspect("registry")
    fake_docker.reset_log()
    assert workload.converge(run, current) == "recreated"
    assert fake_docker.subcommands() == ["stop", "rm", "run"]


def test_a_refused_run_says_why_not_where_to_find_help(fake_docker):
    # GIVEN docker run refusing a volume spec (the CLI ends with a --help hint)
    fake_docker.state["fail"] = {
        "run": {
            "stderr": "docker: invalid spec: /etc/docker/registry/a:b.crt:/x:ro: too many colons."
            "\nSee 'docker run --help'.\n\nRun 'docker run --help' for more information\n",
            "code": 125,
        }
    }
    fake_docker.save()
    # THEN the error is docker's own words, without the hint
    with pytest.raises(DockerError) as err:
        container.run(["run", "x"])
    assert str(err.value) == (
        "docker run failed: docker: invalid spec: /etc/docker/registry/a:b.crt:/x:ro: too many"
        " colons."
    )


def test_a_run_whose_image_is_gone_says_so(fake_docker):
    fake_docker.state["fail"] = {
        "run": {
            "stderr": "Unable to find image 'registry:2' locally\ndocker: Error response from"
            ' daemon: Get "https://registry-1.docker.io/v2/": no such host.\n',
            "code": 125,
        }
    }
    fake_docker.save()
    with pytest.raises(
        DockerError, match=r"^docker run failed: Unable to find image 'registry:2'"
    ):
        container.run(["run", "registry:2"])


# ---------------------------------------------------------------- a new config that fails to start
# workload.apply with the real converge against the fake docker CLI: only the registry's
# answer (clients.probe) and the clock are stand-ins.

UNIT_ADDRESS = "10.0.0.1"


class Gated:
    """A unit whose registry answers while a container of an answering config runs."""

    def __init__(self, fake_docker, config, tmp_path):
        self.fake, self.config = fake_docker, config
        self.host = paths.Host(sandbox=str(tmp_path / "root"), unit_name="docker-registry/0")
        self.answering_hashes: set[str] = set()
        self.probes = 0
        self.state = {"managed": [], "last_good": None, "failed": None}

    def desired(self, **overrides) -> render.Desired:
        return render.desired(
            settings.parse(self.config | overrides),
            host=self.host,
            unit_address=UNIT_ADDRESS,
            tls=None,
            http_secret="secret",
            htpasswd="",
            realm="docker-registry",
        )

    def probe(self, url, timeout=3):
        self.probes += 1
        running = self.container(self.desired().run.name)
        return bool(
            running
            and running["State"]["Running"]
            and running["Config"]["Labels"].get(runspec.HASH_LABEL) in self.answering_hashes
        )

    def container(self, name):
        return self.fake.load_state()["containers"].get(name)

    def apply(self, answers=True, changed=(), **overrides):
        desired = self.desired(**overrides)
        if answers:
            self.answering_hashes.add(desired.config_hash(IMAGE_ID))
        self.probes = 0
        outcome, self.state["managed"] = workload.apply(
            desired,
            image_id=IMAGE_ID,
            host=self.host,
            managed_files=self.state["managed"],
            allow_start=True,
            last_good=self.state["last_good"],
            failed=self.state["failed"],
            changed=changed,
        )
        self.state["last_good"], self.state["failed"] = outcome.last_good, outcome.failed
        return outcome


@pytest.fixture
def gated(fake_docker, config, tmp_path, monkeypatch):
    fake_docker.add_image(IMAGE)
    unit = Gated(fake_docker, config | {"registry-image": IMAGE}, tmp_path)
    monkeypatch.setattr(workload.clients, "probe", unit.probe)
    monkeypatch.setattr(claims, "port_in_use", lambda bind, port: False)
    now = [0.0]

    def monotonic():
        now[0] += 0.25
        return now[0]

    monkeypatch.setattr(workload.time, "monotonic", monotonic)
    monkeypatch.setattr(workload.time, "sleep", lambda seconds: None)
    # GIVEN a registry that answered with the default config
    assert unit.apply().action == "created"
    return unit


NAME = "registry-docker-registry-0"
PORT_TAKEN = (
    "docker: Error response from daemon: driver failed programming external connectivity on"
    " endpoint registry-docker-registry-0 (e27c34): Error starting userland proxy: listen tcp4"
    f" {UNIT_ADDRESS}:5000: bind: address already in use.\n"
)


@pytest.mark.parametrize(
    ("refused", "named", "retried"),
    [
        (
            "docker: invalid spec: /etc/docker/registry/a:b.crt:/etc/docker/registry/a:b.crt:ro:"
            " too many colons.\nSee 'docker run --help'.\n",
            "docker refused to mount a file (tls-ca-path, tls-cert-path, tls-key-path)",
            False,
        ),
        (
            PORT_TAKEN,
            "registry-port: a port (5000) was taken on this host while the registry restarted",
            True,
        ),
        (
            "Unable to find image 'registry:2' locally\ndocker: Error response from daemon: Get"
            ' "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on'
            " 10.255.255.53:53: no such host.\n",
            "registry-image: registry:2 is no longer on this host",
            True,
        ),
        (
            "docker: Error response from daemon: failed to create endpoint on network bridge:"
            f" {UNIT_ADDRESS}:5000 unavailable.\n",
            "docker could not run the new config (docker run failed: docker: Error response from"
            " daemon: failed to create endpoint on network bridge: <address> unavailable.)",
            True,
        ),
    ],
    ids=["invalid-volume-spec", "port-taken", "image-removed", "daemon-error"],
)
def test_docker_refusing_the_new_container_brings_the_last_good_one_back(
    gated, refused, named, retried
):
    good = gated.container(NAME)
    # WHEN docker refuses to run the new config (a port taken leaves it Created)
    gated.fake.load_state()
    gated.fake.state["run_refused"] = refused
    gated.fake.save()
    outcome = gated.apply(**{"log-level": "debug"})
    # THEN the very container that served before serves again, nothing is left aside
    assert (outcome.action, outcome.answering) == ("rolled-back", True)
    back = gated.container(NAME)
    assert back["Id"] == good["Id"] and back["State"]["Running"]
    assert set(gated.fake.load_state()["containers"]) == {NAME}
    assert "level: debug" not in gated.host.path(runspec.CONFIG_FILE).read_text()
    # AND the operator reads the option to blame, not an address of this host
    assert outcome.problem == named
    assert UNIT_ADDRESS not in outcome.problem and "10.255" not in outcome.problem
    # AND a cause that may pass is tried again by the next hook; a refused spec is not
    assert bool(outcome.failed) is not retried


def test_a_failure_to_stop_the_old_container_leaves_it_serving(gated):
    good = gated.container(NAME)
    gated.fake.load_state()
    gated.fake.state["fail"] = {"stop": {"stderr": "Error response from daemon: cannot stop\n"}}
    gated.fake.save()
    outcome = gated.apply(**{"log-level": "debug"})
    assert (outcome.action, outcome.answering) == ("rolled-back", True)
    assert gated.container(NAME)["Id"] == good["Id"]
    assert "docker stop failed" in outcome.problem


def test_a_new_container_that_exits_is_noticed_at_once_and_rolled_back(gated):
    good = gated.container(NAME)
    # WHEN the new container exits at start (its restart policy is restarting it)
    gated.fake.load_state()
    gated.fake.state["run_state"] = {"Running": True, "Status": "restarting"}
    gated.fake.save()
    outcome = gated.apply(answers=False, changed=("cache-password",), **{"log-level": "debug"})
    # THEN the wait ends at the first look, not at the bound, and the last good one serves
    assert gated.probes == 2  # one for the new container, one for the one brought back
    assert (outcome.action, outcome.answering) == ("rolled-back", True)
    assert gated.container(NAME)["Id"] == good["Id"]
    assert outcome.problem.startswith(
        "The new config did not start (options changed: cache-password; the registry said:"
    )


def test_the_last_good_container_goes_once_the_new_one_answers(gated):
    good = gated.container(NAME)
    outcome = gated.apply(**{"log-level": "debug"})
    assert (outcome.action, outcome.answering) == ("recreated", True)
    containers = gated.fake.load_state()["containers"]
    assert set(containers) == {NAME} and containers[NAME]["Id"] != good["Id"]


def test_a_hook_that_ended_with_the_last_good_container_aside_gets_it_back(gated):
    # GIVEN a hook that ended after setting the last good container aside (stopped, renamed)
    # and before the new one was run
    good = gated.container(NAME)
    gated.fake.load_state()
    state = gated.fake.state
    aside = state["containers"][workload.aside_name(NAME)] = state["containers"].pop(NAME)
    aside |= {"Name": "/" + workload.aside_name(NAME), "State": {"Running": False}}
    gated.fake.save()
    # WHEN the next hook runs with the same config
    outcome = gated.apply()
    # THEN the last good container is started again under its name
    assert (outcome.action, outcome.answering) == ("started", True)
    assert set(gated.fake.load_state()["containers"]) == {NAME}
    assert gated.container(NAME)["Id"] == good["Id"]


@pytest.mark.parametrize(
    ("started_at", "running", "seconds"),
    [
        ("2026-12-03T16:10:44.500000000Z", True, 10.5),  # docker's nanoseconds
        ("2026-12-03T16:10:55Z", True, 0.0),
        ("2026-12-03T16:10:44.5Z", False, None),  # not running: no verdict to wait for
        ("0001-01-01T00:00:00Z", False, None),  # never started
        ("", True, None),
    ],
)
def test_running_for_reads_dockers_start_time(started_at, running, seconds):
    state = container.ContainerState(
        name="r", id="i", running=running, status="", image_id="", started_at=started_at
    )
    now = datetime.datetime(2026, 12, 3, 16, 10, 55, tzinfo=datetime.timezone.utc).timestamp()
    assert container.running_for(state, now) == (
        pytest.approx(seconds) if seconds is not None else None
    )
