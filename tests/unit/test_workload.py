"""workload: where the registry is probed, and apply() with container and probe faked.

Files are written for real into a sandbox under tmp_path; converge, the docker wrapper and
clients.probe are replaced at the module boundary (no Docker, no network).
"""

from __future__ import annotations

import types

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import claims, paths, workload
from charms.layer.docker_registry.pipeline import layout, render, runspec

SECRET_PASSWORD = "pa55-word"
IMAGE_ID = "registry:2"  # what the config hash is taken with (no docker here)
OURS = {workload.container.OWNER_LABEL: workload.container.owner()}


def make_desired(config, host, *, tls=None, **overrides) -> render.Desired:
    s = settings.parse(config | overrides)
    return render.desired(
        s,
        host=host,
        unit_address="10.0.0.1",
        tls=tls,
        http_secret="secret",
        htpasswd="admin:$2y$05$hash\n" if s.basic_auth else "",
        realm="docker-registry",
    )


@pytest.fixture
def sandbox(tmp_path):
    return paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/0")


class FakeWorld:
    """converge() and probe() stand-ins that record what they were asked."""

    def __init__(self, action="created", answers=(True,)):
        self.action = action
        self.answers = list(answers)
        self.converged: list[dict] = []
        self.probed: list[str] = []
        self.docker: list[tuple] = []  # remove / run calls
        self.containers: dict[str, types.SimpleNamespace] = {}
        self.busy_ports: set[int] = set()

    def converge(
        self, run, current, *, allow_start=True, announce=None, previous_name="", keep=""
    ):
        self.converged.append(
            {"image": run.spec.image, "allow_start": allow_start, "name": run.spec.name}
        )
        if self.action in ("created", "recreated"):
            self.containers[run.spec.name] = _running(run.spec.name, run.config_hash)
        return self.action

    def inspect(self, name):
        return self.containers.get(name)

    def remove(self, name):
        self.docker.append(("rm", name))
        self.containers.pop(name, None)

    def run(self, argv):
        self.docker.append(("run", argv))
        name = argv[argv.index("--name") + 1]
        self.containers[name] = _running(name, "")

    def probe(self, url, timeout=3):
        self.probed.append(url)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def world(monkeypatch):
    fake = FakeWorld()
    monkeypatch.setattr(workload, "converge", fake.converge)
    monkeypatch.setattr(workload.container, "inspect", fake.inspect)
    monkeypatch.setattr(workload.container, "remove", fake.remove)
    monkeypatch.setattr(workload.container, "run", fake.run)
    monkeypatch.setattr(
        workload.container,
        "last_log_line",
        lambda name: f'panic: Get "https://up/v2/": lookup up, password {SECRET_PASSWORD}',
    )
    monkeypatch.setattr(claims, "port_in_use", lambda bind, port: port in fake.busy_ports)
    monkeypatch.setattr(workload.clients, "probe", fake.probe)
    monkeypatch.setattr(
        workload, "time", types.SimpleNamespace(monotonic=_clock(), sleep=_no_sleep)
    )
    return fake


def _running(name, config_hash):
    return types.SimpleNamespace(
        name=name,
        running=True,
        status="running",
        restart_count=0,
        labels={runspec.HASH_LABEL: config_hash, **OURS},
        ports=(),
    )


def _clock():
    now = [0.0]

    def monotonic():
        now[0] += 0.25
        return now[0]

    return monotonic


def _no_sleep(_seconds):
    pass


# ---------------------------------------------------------------- probe_url


def test_production_probes_loopback_on_the_published_port(config):
    desired = make_desired(config, paths.Host(), **{"registry-port": 5050})
    assert workload.probe_url(desired) == "http://127.0.0.1:5050"


def test_sandbox_probes_the_unit_address_it_publishes_on(config, sandbox):
    desired = make_desired(config, sandbox)
    assert workload.probe_url(desired) == "http://10.0.0.1:5000"


def test_ipv6_unit_address_is_bracketed(config, tmp_path):
    host = paths.Host(sandbox=str(tmp_path), unit_name="u/0")
    s = settings.parse(config)
    desired = render.desired(
        s, host=host, unit_address="fd00::5", tls=None, http_secret="x", htpasswd="", realm="r"
    )
    assert workload.probe_url(desired) == "http://[fd00::5]:5000"


def test_tls_registry_is_probed_with_https(config):
    tls = render.TlsMaterial(cert="C\n", key="K\n")
    desired = make_desired(config, paths.Host(), tls=tls)
    assert workload.probe_url(desired) == "https://127.0.0.1:5000"


# ---------------------------------------------------------------- wait_answering


def test_wait_answering_retries_until_the_registry_answers(world):
    world.answers = [False, False, True]
    assert workload.wait_answering("http://127.0.0.1:5000", timeout=10) is True
    assert len(world.probed) == 3


def test_wait_answering_gives_up_at_the_deadline(world):
    world.answers = [False]
    assert workload.wait_answering("http://127.0.0.1:5000", timeout=2) is False
    assert 2 <= len(world.probed) <= 10  # tried more than once, stopped at the deadline


# ---------------------------------------------------------------- apply


def test_apply_writes_files_converges_and_reports_answering(config, sandbox, world, tmp_path):
    desired = make_desired(config, sandbox, **{"auth-basic-password": SECRET_PASSWORD})
    outcome, managed = workload.apply(
        desired, image_id=IMAGE_ID, host=sandbox, managed_files=[], allow_start=True
    )
    assert outcome.action == "created"
    assert outcome.answering is True
    assert outcome.probe_url == "http://10.0.0.1:5000"
    assert managed == [runspec.CONFIG_FILE, layout.HTPASSWD_FILE]
    assert (tmp_path / "etc/docker/registry/htpasswd").read_text() == "admin:$2y$05$hash\n"
    assert (tmp_path / "etc/docker/registry").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "srv/registry").is_dir()
    assert world.converged == [
        {"image": "registry:2", "allow_start": True, "name": "registry-docker-registry-0"}
    ]
    assert world.probed == ["http://10.0.0.1:5000"]
    assert not any(SECRET_PASSWORD in arg for arg in outcome.run.argv())


def test_apply_removes_files_no_longer_wanted(config, sandbox, world, tmp_path):
    with_auth = make_desired(config, sandbox, **{"auth-basic-password": SECRET_PASSWORD})
    _outcome, managed = workload.apply(
        with_auth, image_id=IMAGE_ID, host=sandbox, managed_files=[], allow_start=True
    )
    without_auth = make_desired(config, sandbox)
    _outcome, managed = workload.apply(
        without_auth,
        image_id=IMAGE_ID,
        host=sandbox,
        managed_files=managed,
        allow_start=True,
    )
    assert managed == [runspec.CONFIG_FILE]
    assert not (tmp_path / "etc/docker/registry/htpasswd").exists()


def test_apply_with_s3_storage_makes_no_storage_directory(config, sandbox, world, tmp_path):
    desired = make_desired(
        config, sandbox, **{"storage-s3-region": "eu-west-1", "storage-s3-bucket": "b"}
    )
    workload.apply(desired, image_id=IMAGE_ID, host=sandbox, managed_files=[], allow_start=True)
    assert not (tmp_path / "srv").exists()


def test_apply_does_not_probe_a_container_the_operator_stopped(config, sandbox, world):
    world.action = "stopped-by-operator"
    outcome, _ = workload.apply(
        make_desired(config, sandbox),
        image_id=IMAGE_ID,
        host=sandbox,
        managed_files=[],
        allow_start=False,
    )
    assert (outcome.action, outcome.answering) == ("stopped-by-operator", False)
    assert world.converged[0]["allow_start"] is False
    assert world.probed == []


@pytest.mark.parametrize(("action", "expected_wait"), [("unchanged", 2), ("recreated", 20)])
def test_apply_waits_briefly_for_an_unchanged_container(
    config, sandbox, world, monkeypatch, action, expected_wait
):
    world.action = action
    waits: list[tuple[str, float]] = []

    def fake_wait(url, timeout, alive=None):
        waits.append((url, timeout))
        return False

    monkeypatch.setattr(workload, "wait_answering", fake_wait)
    outcome, _ = workload.apply(
        make_desired(config, sandbox),
        image_id=IMAGE_ID,
        host=sandbox,
        managed_files=[],
        allow_start=True,
    )
    assert waits == [("http://10.0.0.1:5000", expected_wait)]
    assert outcome.answering is False


# ---------------------------------------------------------------- health-gated apply


def _apply(desired, sandbox, **kw):
    kw.setdefault("managed_files", [])
    return workload.apply(desired, image_id=IMAGE_ID, host=sandbox, allow_start=True, **kw)


def test_a_new_config_that_never_answers_is_rolled_back_to_the_last_good(
    config, sandbox, world, tmp_path, monkeypatch
):
    # GIVEN a registry that answered with the default config
    good = make_desired(config, sandbox)
    outcome, managed = _apply(good, sandbox)
    last_good, good_run = outcome.last_good, outcome.run
    assert last_good["run"] == good_run.as_record()
    # WHEN a change (basic auth) is recreated but never answers
    world.action = "recreated"
    # only the restored last good container answers
    monkeypatch.setattr(workload.clients, "probe", lambda url, timeout=3: bool(world.docker))
    bad = make_desired(config, sandbox, **{"auth-basic-password": SECRET_PASSWORD})
    outcome, managed = _apply(
        bad, sandbox, managed_files=managed, last_good=last_good, secrets=(SECRET_PASSWORD,)
    )
    # THEN the new container is removed, the last good files and container come back
    assert outcome.action == "rolled-back"
    assert outcome.answering is True
    assert ("rm", "registry-docker-registry-0") in world.docker
    assert ("run", good_run.argv()) in world.docker
    assert outcome.run == good_run
    assert managed == [runspec.CONFIG_FILE]
    assert not (tmp_path / "etc/docker/registry/htpasswd").exists()
    config_yml = (tmp_path / "etc/docker/registry/config.yml").read_text()
    assert config_yml == good.config_yaml
    # AND the problem quotes the registry, secrets scrubbed
    assert outcome.problem.startswith("The new config did not start (the registry said: panic")
    assert SECRET_PASSWORD not in outcome.problem and "***" in outcome.problem


def test_a_rolled_back_config_is_not_retried_until_it_changes(config, sandbox, world):
    good = make_desired(config, sandbox)
    outcome, managed = _apply(good, sandbox)
    last_good = outcome.last_good
    world.containers[good.run.name] = _running(good.run.name, "")
    bad = make_desired(config, sandbox, **{"log-level": "debug"})
    failed = {"hash": bad.config_hash("registry:2"), "problem": "The new config did not start"}
    converged = len(world.converged)
    outcome, _ = _apply(bad, sandbox, managed_files=managed, last_good=last_good, failed=failed)
    assert (outcome.action, outcome.problem) == ("held", "The new config did not start")
    assert len(world.converged) == converged  # nothing touched
    other = make_desired(config, sandbox, **{"log-level": "warn"})
    outcome, _ = _apply(other, sandbox, managed_files=managed, last_good=last_good, failed=failed)
    assert outcome.action == "created"


def test_a_change_held_for_its_turn_leaves_the_serving_registry_and_its_files_alone(
    config, sandbox, world, tmp_path
):
    # GIVEN the last good registry serving (its container runs under its config hash)
    good = make_desired(config, sandbox)
    outcome, managed = _apply(good, sandbox)
    last_good, good_run = outcome.last_good, outcome.run
    config_yml = (tmp_path / "etc/docker/registry/config.yml").read_text()
    converged = len(world.converged)
    # WHEN a change comes while it is not this unit's turn (rolling changes)
    change = make_desired(config, sandbox, **{"log-level": "debug"})
    outcome, kept = _apply(
        change, sandbox, managed_files=managed, last_good=last_good, failed={}, hold=True
    )
    # THEN nothing is touched: the previous config serves on and is what runs
    assert (outcome.action, outcome.answering, outcome.run) == (
        workload.WAITING_TURN,
        True,
        good_run,
    )
    assert outcome.last_good == last_good and kept == managed
    assert len(world.converged) == converged
    assert (tmp_path / "etc/docker/registry/config.yml").read_text() == config_yml
    # WHEN its registry is not running: starting it takes nothing away, so no turn is waited
    world.containers.clear()
    world.action = "created"
    outcome, _ = _apply(change, sandbox, managed_files=managed, last_good=last_good, hold=True)
    assert outcome.action == "created"


def test_a_port_another_program_holds_blocks_before_anything_is_touched(config, sandbox, world):
    world.busy_ports = {5000}
    with pytest.raises(workload.RegistryCharmError, match="registry-port 5000 is already in use"):
        _apply(make_desired(config, sandbox), sandbox)
    assert world.converged == []


def test_the_ports_of_our_own_last_good_container_are_not_in_the_way(config, sandbox, world):
    outcome, managed = _apply(make_desired(config, sandbox), sandbox)
    world.busy_ports = {5000}  # held by our running registry
    world.action = "recreated"
    outcome, _ = _apply(
        make_desired(config, sandbox, **{"log-level": "debug"}),
        sandbox,
        managed_files=managed,
        last_good=outcome.last_good,
    )
    assert outcome.action == "recreated"


def test_port_in_use_sees_a_listening_socket():
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert claims.port_in_use("127.0.0.1", port) is True
    assert claims.port_in_use("127.0.0.1", port) is False


def test_ports_the_container_being_replaced_publishes_are_not_in_the_way(config, sandbox, world):
    # GIVEN our container (from a hook whose registry never answered: no last good state)
    # holding the port
    world.containers["registry-docker-registry-0"] = types.SimpleNamespace(
        running=True, labels=OURS, ports=(("10.0.0.1", 5000),)
    )
    world.busy_ports = {5000}
    world.action = "recreated"
    desired = make_desired(config, sandbox)
    desired = type(desired)(
        config_yaml=desired.config_yaml,
        files=desired.files,
        run=type(desired.run)(**{**desired.run.__dict__, "ports": (("10.0.0.1", 5000, 5000),)}),
        scheme=desired.scheme,
    )
    # WHEN a change is applied THEN it goes ahead
    assert _apply(desired, sandbox)[0].action == "recreated"


def test_a_port_left_in_time_wait_by_a_removed_registry_is_free():
    import socket

    # GIVEN a server that closed a connection first (its side of it stays in TIME_WAIT)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()
    server.close()
    client.close()
    # THEN the port is not "in use" for the next registry
    assert claims.port_in_use("127.0.0.1", port) is False
