"""The local model's CLI answers Juju's own test client, jubilant: every argument shape jubilant
sends (`--model` after the verb, `--format json`, `run --params FILE`, `exec --unit U -- cmd`,
`config --reset`...) and every output shape it parses (`Status`, `Task`, `UnitInfo`, config).

One deployment of the dummy charm (two units) and the containerd fake, driven only through
`jubilant.Juju(model=DIR, cli_binary=tools/localjuju/juju)`; the tests run in file order like an
operator's session.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jubilant
import pytest

WRAPPER = Path(__file__).resolve().parents[1] / "juju"


@pytest.fixture(scope="module")
def juju(tmp_path_factory, dummy) -> jubilant.Juju:
    root = tmp_path_factory.mktemp("jubilant")
    blob = root / "blob.txt"
    blob.write_text("first")
    j = jubilant.Juju(model=str(root / "model"), cli_binary=WRAPPER)
    j.deploy(
        Path(dummy),
        "dummy",
        config={"port": 5005, "sans": "a.example,b.example"},
        resources={"blob": str(blob)},
        num_units=2,
        base="ubuntu@22.04",
        trust=True,
    )
    return j


def seen(juju: jubilant.Juju, unit: str) -> dict:
    """What the dummy charm recorded (seen.json in its charm dir, exec's working directory)."""
    return json.loads(juju.exec("cat seen.json", unit=unit).stdout)


def test_status_parses_into_jubilants_status(juju):
    status = juju.wait(jubilant.all_active, timeout=60)
    app = status.apps["dummy"]
    assert (app.charm_name, app.charm_origin, app.base) == (
        "dummy",
        "local",
        jubilant.statustypes.FormattedBase("ubuntu", "22.04"),
    )
    assert app.app_status.current == "active"
    leader, other = app.units["dummy/0"], app.units["dummy/1"]
    assert leader.leader and not other.leader
    assert (leader.public_address, other.public_address) == ("127.0.0.2", "127.0.0.3")
    assert leader.open_ports == ["5005/tcp"]
    assert leader.workload_status.message.startswith("ok ")
    assert leader.juju_status.current == "idle"
    assert status.machines[leader.machine].dns_name == "127.0.0.2"
    assert app.relations["peer"][0].related_app == "dummy"
    assert status.model.type == "iaas"


def test_model_goes_before_or_after_the_verb(juju):
    for argv in (
        ["--model", juju.model, "status", "--format", "json"],
        ["status", "--format", "json", "-m", juju.model],
    ):
        out = subprocess.run([WRAPPER, *argv], capture_output=True, text=True, cwd="/")
        assert out.returncode == 0, out.stderr
        assert set(json.loads(out.stdout)["applications"]) == {"dummy"}


def test_config_reads_in_jujus_shape_sets_and_resets(juju):
    config = juju.config("dummy")
    assert config == {"port": 5005, "fail-hook": "", "sans": "a.example,b.example"}
    assert "unset-opt" not in config  # no default, never set: Juju shows no value
    assert juju.config("dummy", app_config=True) == {"trust": True}
    juju.config("dummy", {"sans": "c.example"})
    assert juju.config("dummy")["sans"] == "c.example"
    juju.config("dummy", reset=["sans", "port"])
    assert juju.config("dummy")["sans"] == "dummy.local"
    assert juju.config("dummy")["port"] == 5000
    assert "5000/tcp" in juju.status().apps["dummy"].units["dummy/0"].open_ports


def test_run_returns_the_task_with_results_and_params_from_a_file(juju):
    task = juju.run("dummy/leader", "echo", {"text": "ab", "times": 2})
    assert task.success and task.status == "completed" and task.return_code == 0
    assert task.results == {"echo": "abab", "nested": {"key": "v"}}


def test_string_args_takes_values_as_typed_and_juju_checks_the_types(juju):
    # GIVEN values that YAML reads as numbers
    out = juju.cli("run", "--format", "json", "--string-args", "dummy/0", "echo", "text=1.30")
    # THEN --string-args hands them over as typed
    assert "1.30" in out
    # AND a non-string parameter then fails Juju's type check, as it does on Juju
    with pytest.raises(jubilant.CLIError) as bad:
        juju.cli("run", "--string-args", "dummy/0", "echo", "text=a", "times=2")
    assert "times" in bad.value.stderr


def test_an_action_failed_with_action_fail_raises_task_error(juju):
    with pytest.raises(jubilant.TaskError) as failed:
        juju.run("dummy/1", "boom")
    task = failed.value.task
    assert (task.status, task.message, task.return_code) == ("failed", "boom as requested", 0)
    assert task.log[0].endswith(" about to fail")


def test_an_action_that_exits_non_zero_raises_task_error(juju):
    with pytest.raises(jubilant.TaskError) as failed:
        juju.run("dummy/0", "crash")
    task = failed.value.task
    assert (task.status, task.return_code) == ("failed", 3)
    assert task.results == {"partial": "yes"}
    assert "crashing on purpose" in task.stdout


def test_bad_action_params_and_unknown_actions_are_cli_errors(juju):
    with pytest.raises(jubilant.CLIError) as bad:
        juju.run("dummy/0", "echo", {"times": 2})
    assert "text" in bad.value.stderr
    with pytest.raises(jubilant.CLIError) as unknown:
        juju.run("dummy/0", "no-such-action")
    assert 'action "no-such-action" not defined' in unknown.value.stderr


def test_exec_runs_in_the_units_hook_context_on_its_machine(juju, tmp_path):
    task = juju.exec(
        'echo "$JUJU_UNIT_NAME $(is-leader) $PWD"; touch /root/exec-was-here', unit="dummy/1"
    )
    unit, leader, cwd = task.stdout.split()
    assert (unit, leader) == ("dummy/1", "False")
    assert cwd.endswith("/units/dummy-1/charm")
    assert not Path("/root/exec-was-here").exists()  # it wrote on the unit's machine only
    assert juju.exec("ls", "/root/exec-was-here", unit="dummy/1").return_code == 0
    with pytest.raises(jubilant.TaskError):  # each unit has its own machine
        juju.exec("test", "-e", "/root/exec-was-here", unit="dummy/0", wait=60)
    with pytest.raises(jubilant.TaskError) as failed:
        juju.exec("echo out; echo err >&2; exit 7", unit="dummy/0")
    task = failed.value.task
    assert (task.return_code, task.stdout, task.stderr) == (7, "out\n", "err\n")


def _secret_get(juju: jubilant.Juju, unit: str, *args: str) -> dict:
    return json.loads(juju.exec("secret-get", *args, "--format", "json", unit=unit).stdout)


def test_user_secrets_as_an_operator_uses_them_through_jubilant(juju):
    # GIVEN a user secret, not granted yet: the unit cannot read it
    uri = juju.add_secret("creds", {"password": "one"}, info="for dummy")
    assert uri.startswith("secret:") and len(uri.unique_identifier) == 20
    with pytest.raises(jubilant.TaskError) as denied:
        juju.exec("secret-get", uri, unit="dummy/0")
    assert denied.value.task.stderr.strip() == "ERROR permission denied"
    # WHEN granted (no hook) THEN the unit reads the latest revision and tracks it
    hooks = seen(juju, "dummy/0")["hooks"]
    juju.grant_secret(uri, "dummy")
    assert seen(juju, "dummy/0")["hooks"] == hooks
    assert _secret_get(juju, "dummy/0", uri) == {"password": "one"}
    assert juju.exec("secret-get", uri, "password", unit="dummy/0").stdout == "one\n"
    # WHEN the content changes THEN secret-changed runs on the unit that read it, only there
    juju.update_secret(uri, {"password": "two"})
    changed = seen(juju, "dummy/0")
    assert changed["hooks"][-1] == "secret-changed"
    assert changed["env"][-1]["JUJU_SECRET_ID"] == uri
    assert "secret-changed" not in seen(juju, "dummy/1")["hooks"]
    # the unit keeps its revision until it refreshes; --peek looks without moving
    assert _secret_get(juju, "dummy/0", uri) == {"password": "one"}
    assert _secret_get(juju, "dummy/0", uri, "--peek") == {"password": "two"}
    assert _secret_get(juju, "dummy/0", uri, "--refresh") == {"password": "two"}
    assert _secret_get(juju, "dummy/0", uri) == {"password": "two"}
    # the application owns no secret of its own
    assert juju.exec("secret-ids", "--format", "json", unit="dummy/0").stdout == "[]\n"
    with pytest.raises(jubilant.TaskError):
        juju.exec("secret-info-get", uri, unit="dummy/0")
    (listed,) = juju.secrets()
    assert (listed.uri, listed.name, listed.revision) == (uri, "creds", 2)
    assert [a.target for a in listed.access or []] == ["application-dummy"]
    assert juju.show_secret("creds", reveal=True).content == {"password": "two"}


def test_a_revoked_or_removed_secret_fails_secret_get_as_in_juju(juju):
    (secret,) = juju.secrets()
    juju.cli("revoke-secret", secret.uri, "dummy")
    with pytest.raises(jubilant.TaskError) as denied:
        juju.exec("secret-get", secret.uri, unit="dummy/0")
    assert denied.value.task.stderr.strip() == "ERROR permission denied"
    juju.remove_secret(secret.uri)
    with pytest.raises(jubilant.TaskError) as gone:
        juju.exec("secret-get", secret.uri, unit="dummy/0")
    assert gone.value.task.stderr.strip().endswith("not found")
    assert juju.secrets() == []


def test_the_leader_adds_a_secret_its_application_owns_and_every_unit_reads(juju):
    # GIVEN content in a file on the leader's machine WHEN the leader runs secret-add --file
    uri = juju.exec(
        "echo 'shared-key: s3cr3t' > /tmp/owned.yaml && secret-add --file /tmp/owned.yaml",
        unit="dummy/0",
    ).stdout.strip()
    # THEN it gets a URI, and every unit of the application reads the content
    assert uri.startswith("secret:")
    assert _secret_get(juju, "dummy/1", uri) == {"shared-key": "s3cr3t"}
    # AND another unit may not add one for the application, as in Juju
    with pytest.raises(jubilant.TaskError) as refused:
        juju.exec("secret-add", "other-key=x", unit="dummy/1")
    assert "not the leader" in refused.value.task.stderr
    (owned,) = [s for s in juju.secrets() if s.uri.endswith(uri.removeprefix("secret:"))]
    assert owned.owner == "dummy"
    juju.cli("exec", "--unit", "dummy/0", "--", "rm", "/tmp/owned.yaml")


def test_show_unit_has_ports_leadership_and_relation_data(juju):
    info = juju.show_unit("dummy/0")
    assert info.leader and "5000/tcp" in info.opened_ports
    assert info.public_address == "127.0.0.2"
    (peer,) = info.relation_info
    assert (peer.endpoint, peer.related_endpoint) == ("peer", "peer")
    assert set(peer.related_units) == {"dummy/1"}


def test_integrate_and_remove_relation(juju):
    juju.deploy("fake:containerd", "containerd")
    juju.integrate("dummy:docker-registry", "containerd")
    status = juju.status()
    assert [r.related_app for r in status.apps["dummy"].relations["docker-registry"]] == [
        "containerd"
    ]
    (registry,) = [
        r
        for r in juju.show_unit("containerd/0").relation_info
        if r.related_endpoint == "docker-registry"
    ]
    data = registry.related_units["dummy/0"].data
    assert json.loads(data["registry_netloc"]) == "127.0.0.2:5000"
    juju.remove_relation("dummy", "containerd")
    assert "docker-registry" not in juju.status().apps["dummy"].relations


def test_add_unit_and_remove_unit(juju):
    juju.add_unit("dummy", num_units=1)
    assert set(juju.status().apps["dummy"].units) == {"dummy/0", "dummy/1", "dummy/2"}
    juju.remove_unit("dummy/2")
    assert set(juju.status().apps["dummy"].units) == {"dummy/0", "dummy/1"}


def test_refresh_with_a_new_resource_runs_upgrade_charm(juju, dummy, tmp_path):
    blob = tmp_path / "blob.txt"
    blob.write_text("second")
    juju.refresh("dummy", path=dummy, resources={"blob": str(blob)})
    hooks = seen(juju, "dummy/0")["hooks"]
    assert "upgrade-charm" in hooks[-4:] and hooks[-1] == "config-changed"
    path = seen(juju, "dummy/0")["resource"][-1]
    assert juju.exec("cat", path, unit="dummy/0").stdout == "second"


def test_debug_log_limit_and_include(juju):
    lines = juju.debug_log(limit=5).splitlines()
    assert len(lines) == 5
    mine = juju.cli("debug-log", "--include", "unit-dummy-1", "--limit", "20").splitlines()
    assert mine and all(line.startswith("dummy/1: ") for line in mine)


def test_a_failed_hook_shows_as_error_until_resolved(juju):
    def dummy_active(status):
        return jubilant.all_active(status, "dummy")

    juju.config("dummy", {"fail-hook": "config-changed"})
    with pytest.raises(jubilant.WaitError):
        juju.wait(dummy_active, error=jubilant.any_error, timeout=30)
    juju.config("dummy", reset="fail-hook")
    for unit in ("dummy/0", "dummy/1"):
        juju.cli("resolved", unit)
    juju.wait(dummy_active, error=jubilant.any_error, timeout=30)


def test_the_models_state_contexts_records_and_fakes_files_are_private(juju):
    # the model holds the charm's secrets (config values, relation data, action results): the
    # basic-auth password sat in 0644 files beside a 0600 connection.json
    root = Path(juju.model)
    assert root.stat().st_mode & 0o777 == 0o700
    written = [root / "state.json", *root.glob("actions/*.json"), *root.glob("fakes/**/*.json")]
    written += list(root.glob("ctx/*.json"))
    assert len(written) > 2
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o600, path
