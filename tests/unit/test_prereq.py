"""The test suites' own guards: prereq.missing (a skip for a developer, a failure naming the piece
under CI) and the host-daemon guard of the unit and security suites."""

import subprocess

import pytest

from tests.support.prereq import missing


def test_a_missing_piece_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no Python 3\.10"):
        missing("no Python 3.10")


def test_a_missing_piece_fails_ci_naming_it(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and no Python 3\.10"):
        missing("no Python 3.10")


def test_the_host_daemon_guard_refuses_the_machines_own_systemctl(host_dockerd_out_of_reach):
    # GIVEN the guard every unit and security test runs under
    # WHEN a test would run the machine's systemctl (here: one that would reload dockerd)
    with pytest.raises(PermissionError, match="systemctl"):
        subprocess.run(["systemctl", "reload", "docker"], check=False)
    # THEN it was refused and recorded (the guard fails the test at teardown; emptied here)
    assert host_dockerd_out_of_reach == [["systemctl", "reload", "docker"]]
    host_dockerd_out_of_reach.clear()
