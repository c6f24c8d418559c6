"""A unit's machine without a charm: the namespace, its layers and the shims (fast)."""

import os
import subprocess
from pathlib import Path

import pytest

from tools.localjuju import machine

PROBE = "localjuju-machine-probe"


def run_on(unit_dir: Path, script: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        machine.wrap(unit_dir, ["/bin/sh", "-c", script]),
        capture_output=True,
        text=True,
        env={"PATH": machine.hook_path(unit_dir / "no-tools"), **env},
        cwd=unit_dir,
    )


def test_writes_outside_the_charm_dir_land_in_the_units_layers(tmp_path):
    unit = tmp_path / "units" / "app-0"
    (unit / "charm").mkdir(parents=True)
    machine.prepare_unit(unit, "7")
    assert oct((unit / "machine/upper/root").stat().st_mode & 0o777) == oct(
        Path("/root").stat().st_mode & 0o777
    )
    proc = run_on(
        unit,
        f"echo x > /root/{PROBE} && touch /usr/local/sbin/{PROBE} "
        f"&& touch /var/lib/{PROBE} && . /etc/os-release && echo $ID $VERSION_CODENAME "
        "&& /var/lib/juju/tools/machine-7/jujud version && command -v python3",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ubuntu", "jammy", "3.4.0-ubuntu-amd64", "/usr/bin/python3"]
    for host_path in (f"/root/{PROBE}", f"/usr/local/sbin/{PROBE}", f"/var/lib/{PROBE}"):
        assert not Path(host_path).exists()
        assert host_path in machine.written(unit)
    assert not Path("/var/lib/juju").exists()
    assert "ubuntu" not in Path("/etc/os-release").read_text().lower()
    # a second run sees what the first wrote; another unit does not
    assert run_on(unit, f"cat /root/{PROBE}").stdout == "x\n"
    other = tmp_path / "units" / "app-1"
    (other / "charm").mkdir(parents=True)
    machine.prepare_unit(other, "8")
    assert run_on(other, f"test -e /root/{PROBE}").returncode == 1


def test_apt_get_shim_answers_from_the_hosts_packages(tmp_path):
    charm = tmp_path / "unit" / "charm"
    charm.mkdir(parents=True)
    (tmp_path / "unit" / "machine").mkdir()
    env = {"JUJU_CHARM_DIR": str(charm), "JUJU_HOOK_NAME": "install", "PATH": os.environ["PATH"]}
    apt = str(machine.SHIMS / "apt-get")
    ok = subprocess.run(
        [
            apt,
            "--option=Dpkg::Options::=--force-confold",
            "-y",
            "install",
            "openssl",
            "build-essential",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    assert "install openssl: installed on this host" in ok.stderr
    missing = subprocess.run(
        [apt, "install", "-y", "no-such-package-xyz"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 100
    assert "not installed on this host: no-such-package-xyz" in missing.stderr
    assert subprocess.run([apt, "update"], capture_output=True, env=env).returncode == 0
    log = (tmp_path / "unit" / "machine" / "shims.log").read_text()
    assert "install apt-get: update: no-op" in log
    ca = subprocess.run(
        [str(machine.SHIMS / "update-ca-certificates")], capture_output=True, env=env
    )
    assert ca.returncode == 0


@pytest.mark.parametrize("inside", ["/root/model", "/var/lib/model", "/usr/local/m"])
def test_a_model_under_an_overlaid_directory_is_refused(inside):
    with pytest.raises(machine.MachineError, match="is under"):
        machine.check_host(Path(inside))
