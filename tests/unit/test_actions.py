"""actions: run() never ends in a traceback; stop/start with hookenv and container faked.

hookenv's hook tools are replaced by recorders, the unit's kv store is a real
charmhelpers SQLite file under tmp_path, flags are real charms.reactive flags.
"""

from __future__ import annotations

import types

import pytest
from charmhelpers.core import hookenv, unitdata
from charms.reactive import is_flag_set, set_flag

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.actions import lifecycle
from charms.layer.docker_registry.errors import DockerError
from charms.layer.docker_registry.host import container, paths
from charms.layer.docker_registry.pipeline import runspec, status

SECRET = "s3cr3t-value"


class Hook:
    """Recorders for the hook tools actions use."""

    def __init__(self, params=None, config=None):
        self.params = params or {}
        self.config = {"registry-name": "registry", "registry-port": 5000} | (config or {})
        self.results: list[dict] = []
        self.failures: list[str] = []
        self.logs: list[tuple[str, str]] = []
        self.statuses: list[tuple[str, str]] = []


@pytest.fixture
def hook(monkeypatch, tmp_path, defaults):
    h = Hook(config=dict(defaults))
    monkeypatch.setenv("UNIT_STATE_DB", str(tmp_path / "unit-state.db"))
    monkeypatch.setattr(unitdata, "_KV", None)
    monkeypatch.delenv(paths.SANDBOX_ENV, raising=False)
    monkeypatch.setattr(hookenv, "action_get", lambda key=None: h.params)
    monkeypatch.setattr(hookenv, "action_set", h.results.append)
    monkeypatch.setattr(hookenv, "action_fail", h.failures.append)
    monkeypatch.setattr(hookenv, "log", lambda msg, level=None: h.logs.append((msg, level)))
    monkeypatch.setattr(hookenv, "config", lambda key=None: h.config)
    monkeypatch.setattr(hookenv, "status_set", lambda s, m, **kw: h.statuses.append((s, m)))
    monkeypatch.setattr(hookenv, "unit_private_ip", lambda: "10.0.0.1")
    yield h
    unitdata._KV = None


class Containers:
    """In-memory containers by exact name; records every mutating call."""

    def __init__(self):
        self.running: dict[str, bool] = {}
        self.calls: list[tuple] = []
        self.foreign: set[str] = set()  # containers another program created (no owner label)

    def inspect(self, name):
        if name not in self.running:
            return None
        labels = {} if name in self.foreign else {container.OWNER_LABEL: container.owner()}
        return container.ContainerState(
            name=name,
            id="0" * 64,
            running=self.running[name],
            status="",
            image_id="",
            labels=labels,
        )

    def stop(self, name, timeout=10):
        self.calls.append(("stop", name))
        self.running[name] = False

    def remove(self, name):
        self.calls.append(("rm", name))
        del self.running[name]

    def start(self, name):
        self.calls.append(("start", name))
        self.running[name] = True

    def run(self, argv):
        self.calls.append(("run", *argv))
        self.running[argv[argv.index("--name") + 1]] = True
        return "new-id"


@pytest.fixture
def containers(monkeypatch):
    fake = Containers()
    for name in ("inspect", "stop", "remove", "start", "run"):
        monkeypatch.setattr(container, name, getattr(fake, name))
    return fake


@pytest.fixture
def answering(monkeypatch):
    """The registry answers on these URLs (workload.wait_answering faked)."""
    from charms.layer.docker_registry.host import workload

    urls: list[str] = []
    asked: list[tuple[str, float]] = []

    def wait_answering(url, timeout):
        asked.append((url, timeout))
        return url in urls

    monkeypatch.setattr(workload, "wait_answering", wait_answering)
    return types.SimpleNamespace(urls=urls, asked=asked)


# ---------------------------------------------------------------- run()


def test_run_sets_the_results_of_the_body(hook):
    hook.params = {"name": "x"}
    actions.run(lambda params: {"outcome": "success", "echo": params.text("name")})
    assert hook.results == [{"outcome": "success", "echo": "x"}]
    assert hook.failures == []


def test_run_turns_an_expected_error_into_action_fail_with_its_message(hook):
    def body(_params):
        raise DockerError("docker stop failed: permission denied")

    actions.run(body)
    assert hook.failures == ["docker stop failed: permission denied"]
    assert hook.results == []


def test_run_hides_the_text_of_unexpected_errors(hook):
    def body(_params):
        raise KeyError(f"password={SECRET}")

    actions.run(body)
    assert hook.failures == ["unexpected error (KeyError); see juju debug-log"]
    assert hook.logs == [("action failed unexpectedly: KeyError", hookenv.ERROR)]
    assert SECRET not in repr(hook.failures) + repr(hook.logs)


def test_run_persists_flags_set_by_the_body(hook, tmp_path):
    def body(_params):
        set_flag("some.flag")
        return {}

    actions.run(body)
    unitdata._KV = None  # a later hook opens the database afresh
    assert is_flag_set("some.flag")
    assert hook.results == []  # nothing to set


# ---------------------------------------------------------------- stop


def test_stop_of_our_container_stops_removes_flags_and_blocks(hook, containers):
    containers.running["registry"] = True
    hook.params = {}
    actions.run(lifecycle.stop)
    assert containers.calls == [("stop", "registry"), ("rm", "registry")]
    assert is_flag_set(records.STOPPED_FLAG)
    assert hook.statuses == [("blocked", "registry container is stopped.")]
    assert hook.results == [{"outcome": "success", "raw": "stopped registry and removed it"}]


def test_stop_and_start_leave_a_container_the_charm_did_not_create_alone(hook, containers):
    # GIVEN registry-name names a container another program created
    containers.running["registry"] = False
    containers.foreign.add("registry")
    # WHEN stop or start runs THEN it fails naming the option and touches nothing
    actions.run(lifecycle.stop)
    actions.run(lifecycle.start)
    assert containers.calls == []
    assert not is_flag_set(records.STOPPED_FLAG)
    assert [
        f.startswith("registry-name: the container registry was not created")
        for f in hook.failures
    ] == [True, True]


def test_stop_without_remove_keeps_the_container(hook, containers):
    containers.running["registry"] = True
    hook.params = {"remove": False}
    actions.run(lifecycle.stop)
    assert containers.calls == [("stop", "registry")]
    assert hook.results == [{"outcome": "success", "raw": "stopped registry"}]


def test_stop_of_an_already_stopped_container_only_removes_it(hook, containers):
    containers.running["registry"] = False
    actions.run(lifecycle.stop)
    assert containers.calls == [("rm", "registry")]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "bad name; rm -rf /"}, "name: not a valid container name"),
        ({"remove": "yes"}, "remove: must be a boolean"),
    ],
)
def test_stop_refuses_bad_params_and_missing_containers(hook, containers, params, message):
    containers.running["registry"] = True
    hook.params = params
    actions.run(lifecycle.stop)
    assert hook.failures == [message]
    assert containers.calls == []
    assert not is_flag_set(records.STOPPED_FLAG)


def test_stop_in_the_sandbox_targets_the_unit_container(hook, containers, monkeypatch, tmp_path):
    monkeypatch.setenv(paths.SANDBOX_ENV, str(tmp_path))
    monkeypatch.setenv("JUJU_UNIT_NAME", "docker-registry/2")
    containers.running["registry-docker-registry-2"] = True
    hook.params = {"name": "registry"}  # the configured name means "ours"
    actions.run(lifecycle.stop)
    assert containers.calls[0] == ("stop", "registry-docker-registry-2")
    assert is_flag_set(records.STOPPED_FLAG)


def test_invalid_config_falls_back_to_a_safe_container_name(hook, containers):
    hook.config |= {"registry-name": "../../evil name", "registry-port": -1}
    containers.running["registry"] = True
    actions.run(lifecycle.stop)
    assert containers.calls[0] == ("stop", "registry")


def test_invalid_config_keeps_a_valid_configured_name(hook, containers):
    hook.config |= {"registry-name": "myreg", "registry-port": -1}
    containers.running["myreg"] = True
    actions.run(lifecycle.stop)
    assert containers.calls[0] == ("stop", "myreg")


# ---------------------------------------------------------------- start


def _served(local_url="http://127.0.0.1:5000", scheme="http", proxied=False, notes=()):
    """What the last serving hook left: where it probed the registry, and its status facts."""
    from charms.layer.docker_registry.pipeline import clients

    netloc = "10.0.0.1:5000"
    endpoint = clients.Endpoint(
        netloc=netloc, url=f"{scheme}://{netloc}", local_url=local_url, ca_file=""
    )
    records.save_endpoint(endpoint)
    report = status.Report(ready_at=netloc, scheme=scheme, proxied=proxied, notes=list(notes))
    records.save_serving(report)


def test_start_of_a_stopped_container_starts_it_and_reports_ready(hook, containers, answering):
    containers.running["registry"] = False
    set_flag(records.STOPPED_FLAG)
    _served()
    answering.urls.append("http://127.0.0.1:5000")
    actions.run(lifecycle.start)
    assert containers.calls == [("start", "registry")]
    assert not is_flag_set(records.STOPPED_FLAG)
    assert hook.statuses == [("active", "Ready at 10.0.0.1:5000 (http).")]
    assert hook.results == [{"outcome": "success", "raw": "started registry"}]
    # one probe, where the last hook found it (an http registry waits for no https probe)
    assert [url for url, _ in answering.asked] == ["http://127.0.0.1:5000"]


def test_start_behind_a_proxy_keeps_what_the_hook_said(hook, containers, answering):
    containers.running["registry"] = False
    note = "Note: registry 2.8 does not send cache-username upstream."
    _served("https://127.0.0.1:5000", "https", proxied=True, notes=[note])
    answering.urls.append("https://127.0.0.1:5000")
    actions.run(lifecycle.start)
    assert hook.statuses == [("active", f"Ready at 10.0.0.1:5000 (https, proxied). {note}")]


def test_start_of_a_removed_container_reruns_what_the_last_hook_ran(hook, containers, answering):
    spec = runspec.RunSpec(name="registry", image="registry:2", ports=(), mounts=())
    last = runspec.ContainerRun(spec, "c0ffee")
    records.save_container_run(last)
    _served("https://127.0.0.1:5000", "https")
    answering.urls.append("https://127.0.0.1:5000")
    actions.run(lifecycle.start)
    assert containers.calls == [("run", *last.argv())]
    assert "--label" in last.argv() and "docker-registry.config-hash=c0ffee" in last.argv()
    assert hook.statuses == [("active", "Ready at 10.0.0.1:5000 (https).")]


def test_start_of_a_removed_container_without_saved_arguments_fails(hook, containers):
    set_flag(records.STOPPED_FLAG)
    actions.run(lifecycle.start)
    assert hook.failures == ["no container named registry"]
    assert containers.calls == []


def test_start_of_a_running_container_does_nothing_to_it(hook, containers, answering):
    containers.running["registry"] = True
    answering.urls.append("http://127.0.0.1:5000")
    actions.run(lifecycle.start)
    assert containers.calls == []
    assert hook.results == [{"outcome": "success", "raw": "started registry"}]


@pytest.mark.parametrize("action", ["stop", "start"])
def test_containers_the_charm_does_not_manage_are_refused(hook, containers, action):
    # stop name=<any container on the host> used to stop and remove it
    containers.running["other"] = True
    hook.params = {"name": "other"}
    actions.run(getattr(lifecycle, action))
    assert hook.failures == [
        "name: only this unit's registry container (registry-name) is managed"
    ]
    assert containers.calls == []


def test_start_that_does_not_answer_leaves_the_unit_waiting(hook, containers, answering):
    containers.running["registry"] = False
    actions.run(lifecycle.start)
    assert hook.statuses == [("waiting", "Waiting for the registry container to answer.")]
    assert hook.results == [{"outcome": "success", "raw": "started registry"}]


def test_start_with_invalid_config_waits_for_the_next_hook(hook, containers, answering):
    hook.config |= {"registry-port": -1}
    containers.running["registry"] = False
    actions.run(lifecycle.start)
    assert hook.statuses == [("waiting", "Started; the next hook checks the config.")]
    assert answering.asked == []


def test_start_in_the_sandbox_starts_the_unit_container_and_probes_where_the_hook_did(
    hook, containers, answering, monkeypatch, tmp_path
):
    monkeypatch.setenv(paths.SANDBOX_ENV, str(tmp_path))
    monkeypatch.setenv("JUJU_UNIT_NAME", "docker-registry/0")
    containers.running["registry-docker-registry-0"] = False
    _served("http://10.0.0.1:5000")
    answering.urls.append("http://10.0.0.1:5000")
    actions.run(lifecycle.start)
    assert containers.calls == [("start", "registry-docker-registry-0")]
    assert hook.statuses == [("active", "Ready at 10.0.0.1:5000 (http).")]
