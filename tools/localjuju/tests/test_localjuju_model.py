"""The local model, proven with a tiny charm built with the real layer:basic (its hooks go
through charms.reactive and charmhelpers.hookenv) and with the real easyrsa charm.

Every unit's first hook bootstraps its venv from the wheelhouse (~15-30 s here), so tests that
only read or extend a deployment share it: `pair` (two dummy units, module scope) and `single`
(one dummy unit, module scope; the faulty-CA fake and then the real easyrsa are related to it)
are each deployed once, and their tests run in file order, like an operator's session.
"""

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509

from tests.support.charms import deploy_easyrsa
from tools.localjuju import machine
from tools.localjuju.model import Model
from tools.localjuju.runner import Controller

WRAPPER = str(Path(__file__).resolve().parents[1] / "juju")
# what layer:basic and easyrsa write outside the charm dir on a Juju machine
HOST_PATHS = [
    "/root/.pydistutils.cfg",
    "/usr/local/sbin",
    "/usr/local/share/ca-certificates",
    "/var/lib/juju",
    "/etc/os-release",
    "/root/.local/share/virtualenv",
]


def host_snapshot() -> dict:
    """Each HOST_PATHS entry: absent, or its (resolved) content / listing and mtime."""
    out = {}
    for name in HOST_PATHS:
        path = Path(name).resolve()
        if not path.exists():
            out[name] = None
        elif path.is_dir():
            listing = sorted((p.name, p.lstat().st_mtime_ns) for p in path.iterdir())
            out[name] = [*listing, path.stat().st_mtime_ns]
        else:
            out[name] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def new_controller(root: Path) -> Controller:
    return Controller(Model(root, python=os.environ.get("DOCKER_REGISTRY_PY", sys.executable)))


def seen(ctl, unit):
    return json.loads((ctl.model.charm_dir(unit) / "seen.json").read_text())


def hooks_run(ctl, unit) -> list[str]:
    """Hooks the model ran for ``unit``, in order (from debug.log)."""
    out = []
    for line in (ctl.model.root / "debug.log").read_text().splitlines():
        if line.startswith(f"{unit}: ") and " INFO running " in line and line.endswith(" hook"):
            out.append(line.split(" INFO running ", 1)[1][: -len(" hook")])
    return out


# ------------------------------------------------------------------ two units, one deploy
@pytest.fixture(scope="module")
def pair(tmp_path_factory, dummy):
    root = tmp_path_factory.mktemp("pair")
    blob = root / "blob.txt"
    blob.write_text("x")
    ctl = new_controller(root / "model")
    before = host_snapshot()
    started = time.monotonic()
    ctl.deploy(dummy, config={"port": "5005"}, resources={"blob": str(blob)}, num_units=2)
    print(f"\ndeploy of 2 dummy units: {time.monotonic() - started:.1f}s", file=sys.stderr)
    return ctl, before


def test_deploy_runs_juju_hook_order_and_tools_speak_charmhelpers_formats(pair):
    ctl, _ = pair
    # the leader runs install, relation-created, leader-elected, config-changed, start,
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


def test_hooks_run_on_the_units_own_ubuntu_machine(pair):
    ctl, _ = pair
    for unit, machine_id in (("dummy/0", "0"), ("dummy/1", "1")):
        udir = ctl.model.unit_dir(unit)
        env = seen(ctl, unit)["env"][0]
        # layer:basic re-executed the hook on the venv it built from the wheelhouse with
        # Debian's python3, and charmhelpers saw an Ubuntu machine with a Juju agent
        assert env["prefix"] == str(udir / ".venv")
        assert env["python"].startswith("/usr/bin/python3")
        assert env["platform"] == "ubuntu" and env["juju_version"] == "3.4.0-ubuntu-amd64"
        assert env["PATH"].split(":")[:3] == [
            str(udir / ".venv/bin"),
            str(ctl.model.bin_dir),
            str(machine.SHIMS),
        ]
        assert (udir / "charm/wheelhouse/.bootstrapped").exists()
        # what the hooks wrote outside the charm dir is the unit's own
        written = machine.written(udir)
        assert "/usr/local/sbin/charm-env" in written
        assert f"/var/lib/juju/tools/machine-{machine_id}/jujud" in written
        assert not any(p.startswith("/root/.pydistutils.cfg") for p in written)
        log = (udir / "machine/shims.log").read_text()
        assert "install apt-get: install python3-virtualenv: installed on this host" in log


def test_hook_runs_leave_the_host_unchanged(pair):
    ctl, before = pair
    rec = ctl.run_action("dummy/1", "echo", {"text": "x"})
    assert rec["status"] == "completed"
    assert host_snapshot() == before
    assert not Path("/root/.pydistutils.cfg").exists()
    assert not Path("/usr/local/sbin/charm-env").exists()


def test_client_fake_reads_registry_data(pair):
    ctl, _ = pair
    ctl.deploy("fake:containerd")
    ctl.integrate("dummy:docker-registry", "containerd")
    info = json.loads(
        (ctl.model.root / "clients" / "127.0.0.2:5005" / "registry.json").read_text()
    )
    assert info["registry_url"] == "http://127.0.0.2:5005"
    status = ctl.status()["applications"]["containerd"]["units"]["containerd/0"]
    assert status["workload-status"]["message"] == "Configured for 127.0.0.2:5005."


def test_remove_unit_runs_departed_broken_stop_remove_and_moves_leadership(pair):
    ctl, _ = pair
    before = len(seen(ctl, "dummy/1")["hooks"])
    first = seen(ctl, "dummy/0")["hooks"][0]
    ctl.remove_unit("dummy/0")
    assert not ctl.model.unit_dir("dummy/0").exists()
    ran0 = hooks_run(ctl, "dummy/0")
    assert first == "install"
    # (layer:basic has no remove hook: Juju skips hooks a charm does not implement)
    assert not (ctl.model.charm_dir("dummy/1") / "hooks/remove").exists()
    assert ran0[-3:] in (
        ["peer-relation-broken", "docker-registry-relation-broken", "stop"],
        ["docker-registry-relation-broken", "peer-relation-broken", "stop"],
    )
    s1 = seen(ctl, "dummy/1")["hooks"][before:]
    assert "peer-relation-departed" in s1 and s1[-1] == "leader-elected"
    assert ctl.status()["applications"]["dummy"]["units"]["dummy/1"]["leader"]


def test_remove_relation_and_destroy(pair):
    ctl, _ = pair
    ctl.remove_relation("dummy", "containerd")
    hooks = seen(ctl, "dummy/1")["hooks"]
    assert hooks[-2:] == ["docker-registry-relation-departed", "docker-registry-relation-broken"]
    ctl.destroy()
    assert ctl.model.read()["units"] == {}


# ------------------------------------------------------------------ one unit, one deploy
@pytest.fixture(scope="module")
def single(tmp_path_factory, dummy):
    ctl = new_controller(tmp_path_factory.mktemp("single") / "model")
    ctl.deploy(dummy)
    return ctl


def test_resource_get_fails_without_resource(single):
    assert seen(single, "dummy/0")["resource"] == [False]


def test_hook_failure_sets_error_until_resolved(single):
    ctl = single
    ctl.config_set("dummy", {"fail-hook": "config-changed"})
    unit = ctl.status()["applications"]["dummy"]["units"]["dummy/0"]
    assert unit["workload-status"] == {
        **unit["workload-status"],
        "current": "error",
        "message": "hook failed: config-changed",
    }
    ctl.config_set("dummy", reset=["fail-hook"])  # queued behind the error
    assert ctl.model.read()["queue"], "later events wait behind the failed hook"
    ctl.resolved("dummy/0")
    unit = ctl.status()["applications"]["dummy"]["units"]["dummy/0"]
    assert unit["juju-status"]["current"] == "idle"
    assert hooks_run(ctl, "dummy/0")[-2:] == ["config-changed", "config-changed"]
    assert unit["workload-status"] == {
        **unit["workload-status"],
        "current": "active",
        "message": "ok config-changed",
    }


def test_actions_run_through_charm_env_on_the_units_venv(single):
    ctl = single
    rec = ctl.run_action("dummy/0", "echo", {"text": "ab", "times": 2})
    assert rec["status"] == "completed" and rec["results"] == {
        "echo": "abab",
        "nested": {"key": "v"},
    }
    rec = ctl.run_action("dummy/0", "boom")
    assert rec["status"] == "failed" and rec["message"] == "boom as requested"
    cli = [WRAPPER, "--model", str(ctl.model.root), "run", "dummy/0"]
    out = subprocess.run(
        [*cli, "echo", "text=hi"], capture_output=True, text=True, cwd=ctl.model.root
    )
    assert out.returncode == 0 and "echo: hi" in out.stdout, out.stderr
    # as Juju 3: a task failed with action-fail exits 0 (only a non-zero hook exit fails)
    out = subprocess.run([*cli, "boom"], capture_output=True, text=True)
    assert out.returncode == 0 and "failed: boom as requested" in out.stdout, out.stderr


def test_model_cli_status(single):
    out = subprocess.run(
        [WRAPPER, "--model", str(single.model.root), "status", "--format", "json"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert (
        json.loads(out.stdout)["applications"]["dummy"]["units"]["dummy/0"]["address"]
        == "127.0.0.2"
    )
    assert isinstance(Model(single.model.root).read()["queue"], list)


def test_faulty_easyrsa_fake_issues_real_certs_and_reissues_on_san_change(single):
    ctl = single
    ctl.deploy("fake:faulty-easyrsa", "faulty-ca")
    ctl.integrate("dummy", "faulty-ca")

    def answer():
        rel = next(
            r
            for r in ctl.model.read()["relations"].values()
            if r["interface"] == "tls-certificates"
        )
        return rel["unit_data"]["faulty-ca/0"]

    data = answer()
    ca = x509.load_pem_x509_certificate(data["ca"].encode())
    cert = x509.load_pem_x509_certificate(data["dummy_0.server.cert"].encode())
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "dummy.local" in sans.get_values_for_type(x509.DNSName)
    ctl.config_set("dummy", {"sans": "other.local"})
    data2 = answer()
    cert2 = x509.load_pem_x509_certificate(data2["dummy_0.server.cert"].encode())
    sans2 = cert2.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans2.get_values_for_type(x509.DNSName) == ["other.local"]
    assert data2["ca"] == data["ca"]
    ctl.remove_relation("dummy", "faulty-ca")


def test_real_easyrsa_issues_certificates_and_keeps_its_ca_off_the_host(single, easyrsa_charm):
    ctl = single
    before = host_snapshot()
    started = time.monotonic()
    deploy_easyrsa(ctl, easyrsa_charm)
    ctl.integrate("dummy:cert-provider", "easyrsa:client")
    took = time.monotonic() - started
    print(f"\neasyrsa deploy, integrate, first certificates: {took:.1f}s", file=sys.stderr)
    st = ctl.status()["applications"]["easyrsa"]
    assert st["version"] == "3.0.9"
    assert st["units"]["easyrsa/0"]["workload-status"] == {
        **st["units"]["easyrsa/0"]["workload-status"],
        "current": "active",
        "message": "Certificate Authority connected.",
    }
    (rel,) = [
        r for r in ctl.model.read()["relations"].values() if r["interface"] == "tls-certificates"
    ]
    data = rel["unit_data"]["easyrsa/0"]
    ca = x509.load_pem_x509_certificate(data["ca"].encode())
    # easyrsa puts an `openssl x509 -text` dump before each PEM block
    cert = x509.load_pem_x509_certificate(data["dummy_0.server.cert"].encode())
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["other.local"]  # the dummy's config
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.2"]
    assert "BEGIN CERTIFICATE" in data["client.cert"]
    # easyrsa installed its CA on its machine, not on the host
    layer = machine.written(ctl.model.unit_dir("easyrsa/0"))
    assert "/usr/local/share/ca-certificates/easyrsa.crt" in layer
    assert (
        "update-ca-certificates: no-op"
        in (ctl.model.unit_dir("easyrsa/0") / "machine/shims.log").read_text()
    )
    assert host_snapshot() == before


def test_upgrade_charm_rebuilds_the_venv_and_keeps_unit_state(single, dummy):
    ctl = single
    udir = ctl.model.unit_dir("dummy/0")
    # GIVEN the unit's state (charmhelpers' kv, where the reactive flags live) holding a mark
    state = udir / "charm/.unit-state.db"
    with contextlib.closing(sqlite3.connect(state)) as db, db:
        db.execute("insert into kv (key, data) values ('test.mark', '\"kept\"')")
        before = dict(db.execute("select key, data from kv where key like 'reactive.%'"))
    assert before  # the hooks so far set flags
    ctl.upgrade_charm("dummy", dummy)
    assert hooks_run(ctl, "dummy/0")[-2:] == ["upgrade-charm", "config-changed"]
    # THEN the upgraded unit has it still, and every flag it had
    with contextlib.closing(sqlite3.connect(state)) as db:
        after = dict(db.execute("select key, data from kv"))
    assert after["test.mark"] == '"kept"'
    assert set(before) <= set(after)
    # layer:basic rebuilds the venv on upgrade-charm, as on a Juju machine
    assert (udir / "charm/wheelhouse/.bootstrapped").exists()
    assert seen(ctl, "dummy/0")["hooks"] == ["upgrade-charm", "config-changed"]
    agent = ctl.status()["applications"]["dummy"]["units"]["dummy/0"]["juju-status"]
    assert agent["current"] == "idle"
