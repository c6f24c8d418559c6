"""paths: the host seam, production vs the local model's per-unit sandbox."""

from __future__ import annotations

from pathlib import Path

from charms.layer.docker_registry.host import paths


def test_production_uses_real_paths_names_and_every_address():
    host = paths.Host()
    assert host.path("/etc/docker/registry/config.yml") == Path("/etc/docker/registry/config.yml")
    assert host.container_name("registry") == "registry"
    assert host.publish_address("10.0.0.1") == ""


def test_sandbox_moves_paths_renames_the_container_and_binds_the_unit_address(tmp_path):
    host = paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/1")
    assert host.path("/etc/docker/registry/config.yml") == (
        tmp_path / "etc/docker/registry/config.yml"
    )
    assert host.path("/srv/registry") == tmp_path / "srv/registry"
    assert host.container_name("registry") == "registry-docker-registry-1"
    assert host.publish_address("10.0.0.2") == "10.0.0.2"


def test_current_host_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.SANDBOX_ENV, raising=False)
    monkeypatch.setenv("JUJU_UNIT_NAME", "docker-registry/0")
    assert paths.current() == paths.Host(sandbox="", unit_name="docker-registry/0")
    assert paths.current().container_name("registry") == "registry"

    monkeypatch.setenv(paths.SANDBOX_ENV, str(tmp_path))
    current = paths.current()
    assert current == paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/0")
    assert current.container_name("registry") == "registry-docker-registry-0"
