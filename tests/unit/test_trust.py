"""trust: the unit's own docker engine trusts its registry (certs.d or insecure-registries)."""

import json

import pytest

from charms.layer.docker_registry.host import paths, trust


class Host(paths.Host):
    reloads: list


@pytest.fixture
def host(tmp_path, monkeypatch):
    h = Host(sandbox=str(tmp_path), unit_name="u/0")
    object.__setattr__(h, "reloads", [])
    monkeypatch.setattr(trust, "reload_daemon", lambda: h.reloads.append(1) or True)
    return h


def daemon(host):
    return json.loads(host.path("/etc/docker/daemon.json").read_text())


def test_http_marks_insecure_once_and_keeps_other_settings(host):
    host.path("/etc/docker").mkdir(parents=True)
    host.path("/etc/docker/daemon.json").write_text('{"log-driver": "journald"}')
    state = trust.trust(host, netloc="10.0.0.1:5000", ca="", previous=None)
    assert daemon(host) == {"log-driver": "journald", "insecure-registries": ["10.0.0.1:5000"]}
    assert host.reloads == [1]
    trust.trust(host, netloc="10.0.0.1:5000", ca="", previous=state)
    assert host.reloads == [1]  # nothing changed: no reload


def test_switch_to_tls_installs_ca_and_drops_insecure(host):
    state = trust.trust(host, netloc="r:5000", ca="", previous=None)
    state = trust.trust(host, netloc="r:5000", ca="CA\n", previous=state)
    assert host.path("/etc/docker/certs.d/r:5000/ca.crt").read_text() == "CA\n"
    assert daemon(host) == {}
    assert state == {"netloc": "r:5000", "tls": True}
    # and back to http: the CA dir goes away
    trust.trust(host, netloc="r:5000", ca="", previous=state)
    assert not host.path("/etc/docker/certs.d/r:5000").exists()
    assert daemon(host) == {"insecure-registries": ["r:5000"]}


def test_netloc_change_moves_the_ca(host):
    state = trust.trust(host, netloc="a:5000", ca="CA\n", previous=None)
    trust.trust(host, netloc="b:5000", ca="CA\n", previous=state)
    assert not host.path("/etc/docker/certs.d/a:5000").exists()
    assert host.path("/etc/docker/certs.d/b:5000/ca.crt").exists()
    assert host.reloads == []


def test_unparsable_daemon_json_is_left_alone(host):
    host.path("/etc/docker").mkdir(parents=True)
    host.path("/etc/docker/daemon.json").write_text("{broken")
    trust.trust(host, netloc="r:5000", ca="", previous=None)
    assert host.path("/etc/docker/daemon.json").read_text() == "{broken"
    host.path("/etc/docker/daemon.json").write_text("[1]")
    trust.trust(host, netloc="r:5000", ca="", previous=None)
    assert host.path("/etc/docker/daemon.json").read_text() == "[1]"


class _Exit:
    def __init__(self, returncode: int):
        self.returncode = returncode


@pytest.mark.parametrize(
    ("installed", "failing", "expected", "reloaded"),
    [
        # a systemd machine: `systemctl reload docker` (ExecReload sends SIGHUP), nothing else
        ({"systemctl", "pkill"}, set(), [["systemctl", "reload", "docker"]], True),
        # no systemd (a container, the local model): SIGHUP to dockerd by its exact name
        ({"pkill"}, set(), [["pkill", "-HUP", "-x", "dockerd"]], True),
        # systemd without a docker unit (dockerd started by hand): systemctl fails, pkill works
        (
            {"systemctl", "pkill"},
            {"systemctl"},
            [["systemctl", "reload", "docker"], ["pkill", "-HUP", "-x", "dockerd"]],
            True,
        ),
        # neither works: said, never a restart
        (
            {"systemctl", "pkill"},
            {"systemctl", "pkill"},
            [["systemctl", "reload", "docker"], ["pkill", "-HUP", "-x", "dockerd"]],
            False,
        ),
        ({""}, set(), [], False),
    ],
)
def test_reload_is_a_sighup_never_a_restart(monkeypatch, installed, failing, expected, reloaded):
    # GIVEN the tools this machine has, and which of them fail
    calls = []
    monkeypatch.setattr(
        trust.shutil, "which", lambda name: f"/usr/bin/{name}" if name in installed else None
    )

    def run(argv, **kw):
        calls.append(argv)
        return _Exit(1 if argv[0] in failing else 0)

    monkeypatch.setattr(trust.subprocess, "run", run)
    # WHEN the charm asks dockerd to re-read daemon.json
    ok = trust.reload_daemon()
    # THEN it used the first way that worked, and never restart/stop/kill without -HUP
    assert ok is reloaded
    assert calls == expected
    assert not any({"restart", "stop", "-9", "-KILL", "-TERM"} & set(argv) for argv in calls)


def test_client_certificate_next_to_the_ca_then_removed(host):
    state = trust.trust(host, netloc="r:5000", ca="CA\n", previous=None, client=("C\n", "K\n"))
    cert, key = trust.client_files(host, "r:5000")
    assert (cert.read_text(), key.read_text()) == ("C\n", "K\n")
    assert key.stat().st_mode & 0o777 == 0o600
    assert cert == host.path("/etc/docker/certs.d/r:5000/client.cert")
    trust.trust(host, netloc="r:5000", ca="CA\n", previous=state)
    assert not cert.exists() and not key.exists()
    assert host.path("/etc/docker/certs.d/r:5000/ca.crt").exists()


def test_no_client_certificate_without_tls(host):
    trust.trust(host, netloc="r:5000", ca="", previous=None, client=("C\n", "K\n"))
    assert not host.path("/etc/docker/certs.d/r:5000").exists()
