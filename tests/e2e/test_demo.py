"""`make demo` leaves an https registry with auth that a plain docker client logs in to with
what connection.json says; running it twice works; `make demo-clean` removes what it made.

Local model only: the demo is the local model (scripts/demo.sh deploys into BUILD/demo/model);
the model it leaves is then read the way a user would, with jubilant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jubilant
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_JUJU = ROOT / "tools" / "localjuju" / "juju"


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"DEMO_DIR": str(tmp_path / "demo"), "DOCKER_REGISTRY_PY": sys.executable}
    return subprocess.run(
        ["bash", "scripts/demo.sh", *args, "build"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.local_only("make demo deploys into the local model")
def test_demo_twice_then_clean(charm_dir, registry_image_tar, tmp_path):
    first = demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "raw: pushed 127.0.0.2:5000/demo/hello-registry:1" in first.stdout
    assert "demo/hello-registry  1" in first.stdout  # the images action
    # the model the demo leaves answers Juju's own client
    juju = jubilant.Juju(model=str(tmp_path / "demo" / "model"), cli_binary=LOCAL_JUJU)
    status = juju.status()
    registry = status.apps["docker-registry"].units["docker-registry/0"]
    assert registry.workload_status.current == "active"
    assert registry.workload_status.message.startswith("Ready at 127.0.0.2:5000 (https")
    assert status.apps["docker-registry"].relations["cert-provider"][0].related_app == "easyrsa"
    assert "demo/hello-registry" in json.dumps(juju.run("docker-registry/0", "images").results)
    second = demo(tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already deployed" in second.stdout
    connection = json.loads((tmp_path / "demo" / "connection.json").read_text())
    assert set(connection) == {
        "registry_url",
        "registry_netloc",
        "basic_user",
        "basic_password",
        "ca_cert",
    }
    assert connection["registry_url"] == "https://127.0.0.2:5000"
    assert connection["basic_password"] not in first.stdout + second.stdout
    docker = ["docker", "--config", str(tmp_path / "client")]
    login = subprocess.run(
        [
            *docker,
            "login",
            connection["registry_netloc"],
            "-u",
            connection["basic_user"],
            "--password-stdin",
        ],
        input=connection["basic_password"],
        capture_output=True,
        text=True,
    )
    assert login.returncode == 0, login.stderr
    pulled = subprocess.run(
        [*docker, "pull", f"{connection['registry_netloc']}/demo/hello-registry:1"],
        capture_output=True,
        text=True,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert Path(connection["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert Path("/etc/docker/certs.d/127.0.0.2:5000/ca.crt").exists()
    subprocess.run(["docker", "rmi", "127.0.0.2:5000/demo/hello-registry:1"], capture_output=True)

    clean = demo(tmp_path, "--clean")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "error" not in clean.stdout + clean.stderr
    assert not (tmp_path / "demo").exists()
    assert not Path("/etc/docker/certs.d/127.0.0.2:5000").exists()
    names = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout.split()
    assert "registry-docker-registry-0" not in names
