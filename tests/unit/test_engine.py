"""engine: the Docker engine, the htpasswd tool and the registry image, with a fake docker CLI.

PATH is replaced by a directory the test controls, so "is dockerd / htpasswd / systemctl
installed" is answered by real `shutil.which` lookups; the docker CLI is the recording fake
from test_container.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import types

import pytest
from test_container import IMAGE, IMAGE_ID, FakeDocker

from charms.layer.docker_registry.errors import InstallError
from charms.layer.docker_registry.host import container, engine


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> FakeDocker:
    fake = FakeDocker(tmp_path)
    monkeypatch.setattr(container, "DOCKER", str(fake.executable))
    return fake


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """An empty PATH: tools exist only when a test puts them there."""
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    return path


def executable(path, body: str = "exit 0") -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


class Installer:
    """Stands in for charms.apt's install; records what was asked for."""

    def __init__(self, on_install=None, error: Exception | None = None):
        self.requests: list[list[str]] = []
        self.on_install = on_install
        self.error = error

    def __call__(self, packages: list[str]) -> None:
        self.requests.append(list(packages))
        if self.error:
            raise self.error
        if self.on_install:
            self.on_install(packages)


def set_engine_up(fake: FakeDocker, up: bool) -> None:
    fake.load_state()
    fake.state["engine_up"] = up
    fake.save()


# ---------------------------------------------------------------- ensure_engine


def test_engine_that_answers_installs_nothing(fake_docker, bin_dir):
    install = Installer()
    engine.ensure_engine(install, wait=0)
    assert install.requests == []
    assert fake_docker.calls == [["info", "--format", "{{.ServerVersion}}"]]


def test_missing_engine_is_installed_and_started(fake_docker, bin_dir):
    # GIVEN no dockerd and an engine that does not answer
    set_engine_up(fake_docker, False)
    started = bin_dir.parent / "systemctl-args"

    def install_docker(_packages):
        executable(bin_dir / "dockerd")
        executable(
            bin_dir / "systemctl",
            f'echo "$@" > {started}\n'
            f"{sys.executable} -c "
            f"\"import json; p='{fake_docker.state_file}'; s=json.load(open(p)); "
            f"s['engine_up']=True; json.dump(s, open(p, 'w'))\"",
        )

    install = Installer(on_install=install_docker)
    # WHEN the engine is ensured
    engine.ensure_engine(install, wait=5)
    # THEN docker.io was installed, the daemon started with systemctl, and it answers
    assert install.requests == [["docker.io"]]
    assert started.read_text().split() == ["start", "docker"]
    assert engine.engine_answers()


def test_installed_but_stopped_engine_is_started_without_installing(fake_docker, bin_dir):
    set_engine_up(fake_docker, False)
    executable(bin_dir / "dockerd")
    marker = bin_dir.parent / "service-args"
    executable(bin_dir / "service", f'echo "$@" > {marker}')
    install = Installer()
    with pytest.raises(InstallError, match=r"The Docker engine does not answer \(docker info\)"):
        engine.ensure_engine(install, wait=0)
    assert install.requests == []
    assert marker.read_text().split() == ["docker", "start"]


def test_engine_that_starts_slowly_is_polled_until_it_answers(fake_docker, bin_dir, monkeypatch):
    # GIVEN dockerd installed, no init system tool, and an engine answering on the third try
    executable(bin_dir / "dockerd")
    fake_docker.load_state()
    fake_docker.state["info_failures"] = 2
    fake_docker.save()
    sleeps = []
    clock = types.SimpleNamespace(monotonic=time.monotonic, sleep=sleeps.append)
    monkeypatch.setattr(engine, "time", clock)
    engine.ensure_engine(Installer(), wait=30)
    assert fake_docker.subcommands() == ["info", "info", "info"]
    assert sleeps == [1]


def test_failed_docker_install_is_an_install_error(fake_docker, bin_dir):
    set_engine_up(fake_docker, False)
    install = Installer(error=RuntimeError("E: Unable to locate package docker.io"))
    with pytest.raises(InstallError) as err:
        engine.ensure_engine(install, wait=0)
    assert str(err.value) == "Failed to install docker.io"
    assert isinstance(err.value.__cause__, RuntimeError)
    assert install.requests == [["docker.io"]]


def test_engine_answers_is_false_without_a_docker_cli(monkeypatch, tmp_path):
    monkeypatch.setattr(container, "DOCKER", str(tmp_path / "missing-docker"))
    assert engine.engine_answers() is False


# ---------------------------------------------------------------- ensure_tools


def test_present_tools_install_nothing(bin_dir):
    executable(bin_dir / "htpasswd")
    executable(bin_dir / "openssl")
    executable(bin_dir / "skopeo")
    install = Installer()
    engine.ensure_tools(install)
    assert install.requests == []


def test_missing_tools_install_their_packages(bin_dir):
    executable(bin_dir / "openssl")
    executable(bin_dir / "skopeo")
    install = Installer()
    engine.ensure_tools(install)
    assert install.requests == [["apache2-utils"]]
    (bin_dir / "skopeo").unlink()
    engine.ensure_tools(install)
    assert install.requests[-1] == ["apache2-utils", "skopeo"]


def test_failed_tool_install_is_an_install_error(bin_dir):
    install = Installer(error=OSError("dpkg lock"))
    with pytest.raises(InstallError, match=r"^Failed to install apache2-utils, openssl, skopeo$"):
        engine.ensure_tools(install)


# ---------------------------------------------------------------- ensure_image


@pytest.fixture
def tarball(tmp_path):
    path = tmp_path / "registry-image.tar"
    path.write_bytes(b"not really a tar, the fake docker does not care" * 1000)
    return path


def tarball_holds(fake: FakeDocker, names: list[str]) -> None:
    fake.load_state()
    fake.state["tarball_holds"] = names
    fake.save()


def test_file_digest_is_the_sha256_of_the_file(tarball):
    assert engine.file_digest(tarball) == hashlib.sha256(tarball.read_bytes()).hexdigest()


def test_new_resource_is_loaded_and_its_digest_returned(fake_docker, tarball):
    tarball_holds(fake_docker, [IMAGE])
    image = engine.ensure_image(IMAGE, lambda: tarball, loaded_digest="")
    assert image.token.partition("@")[0] == engine.file_digest(tarball)
    assert image.id == container.image_id(IMAGE)
    assert fake_docker.mutating_calls() == [["load", "--input", str(tarball)]]


def test_unchanged_resource_is_not_loaded_again(fake_docker, tarball):
    fake_docker.add_image(IMAGE)
    token = engine.resource_token(tarball)
    assert engine.ensure_image(IMAGE, lambda: tarball, loaded_digest=token).token == token
    assert fake_docker.mutating_calls() == []


def test_outside_install_and_upgrade_charm_a_loaded_image_needs_no_resource_get(
    fake_docker, tarball
):
    # the resource changes only with `juju attach-resource`, which fires upgrade-charm
    fake_docker.add_image(IMAGE, IMAGE_ID)
    token = engine.resource_token(tarball)
    asked = []
    image = engine.ensure_image(IMAGE, lambda: asked.append(1), loaded_digest=token, recheck=False)
    assert (image.token, image.id, asked) == (token, IMAGE_ID, [])
    assert fake_docker.subcommands() == ["image"]  # one image inspect, nothing else


def test_a_loaded_image_that_disappeared_is_loaded_again_whatever_the_hook(fake_docker, tarball):
    tarball_holds(fake_docker, [IMAGE])
    token = engine.resource_token(tarball)
    engine.ensure_image(IMAGE, lambda: tarball, loaded_digest=token, recheck=False)
    assert [c[0] for c in fake_docker.mutating_calls()] == ["load"]


def test_a_digest_saved_by_an_earlier_charm_still_counts(fake_docker, tarball):
    # before the token had a stamp, the kv held the bare sha256: no reload on upgrade
    fake_docker.add_image(IMAGE)
    image = engine.ensure_image(IMAGE, lambda: tarball, loaded_digest=engine.file_digest(tarball))
    assert image.token.startswith(engine.file_digest(tarball) + "@")
    assert fake_docker.mutating_calls() == []


def test_the_tarball_is_hashed_again_only_when_its_size_or_mtime_change(tarball, monkeypatch):
    token = engine.resource_token(tarball)
    monkeypatch.setattr(engine, "file_digest", lambda path: pytest.fail("hashed again"))
    assert engine.resource_token(tarball, token) == token
    monkeypatch.undo()
    tarball.write_bytes(b"another image")
    new = engine.resource_token(tarball, token)
    assert new != token and new.partition("@")[0] == engine.file_digest(tarball)


def test_unchanged_resource_is_loaded_again_when_the_image_disappeared(fake_docker, tarball):
    tarball_holds(fake_docker, [IMAGE])
    engine.ensure_image(IMAGE, lambda: tarball, loaded_digest=engine.resource_token(tarball))
    assert [c[0] for c in fake_docker.mutating_calls()] == ["load"]


def test_changed_resource_is_loaded_even_when_the_image_exists(fake_docker, tarball):
    fake_docker.add_image(IMAGE)
    tarball_holds(fake_docker, [IMAGE])
    engine.ensure_image(IMAGE, lambda: tarball, loaded_digest="digest-of-the-previous-tarball")
    assert [c[0] for c in fake_docker.mutating_calls()] == ["load"]


def test_resource_naming_another_image_is_tagged_as_the_configured_ref(fake_docker, tarball):
    tarball_holds(fake_docker, ["docker-registry-charm/registry:2.8.2"])
    engine.ensure_image(IMAGE, lambda: tarball)
    assert fake_docker.mutating_calls()[1:] == [
        ["tag", "--", "docker-registry-charm/registry:2.8.2", IMAGE]
    ]
    assert container.image_id(IMAGE) is not None


def test_resource_holding_no_image_is_an_install_error(fake_docker, tarball):
    tarball_holds(fake_docker, [])
    with pytest.raises(InstallError, match="The registry-image resource holds no image"):
        engine.ensure_image(IMAGE, lambda: tarball)


def test_resource_docker_cannot_load_is_an_install_error_naming_the_resource(fake_docker, tarball):
    fake_docker.load_state()
    fake_docker.state["fail"] = {"load": {"stderr": "open /var/lib/docker/tmp: unexpected EOF"}}
    fake_docker.save()
    with pytest.raises(InstallError) as err:
        engine.ensure_image(IMAGE, lambda: tarball)
    assert str(err.value) == (
        "Failed to load the registry-image resource: "
        "docker load failed: open /var/lib/docker/tmp: unexpected EOF"
    )


def test_absent_image_without_resource_is_pulled(fake_docker):
    fake_docker.state["remote"] = [IMAGE]
    fake_docker.save()
    assert engine.ensure_image(IMAGE, lambda: None).token == ""
    assert fake_docker.mutating_calls() == [["pull", "--", IMAGE]]
    assert container.image_id(IMAGE) is not None


def test_present_image_without_resource_is_not_pulled(fake_docker):
    fake_docker.add_image(IMAGE, IMAGE_ID)
    assert engine.ensure_image(IMAGE, lambda: None) == engine.LocalImage("", IMAGE_ID)
    assert fake_docker.mutating_calls() == []


def test_failed_pull_is_an_install_error_naming_the_image(fake_docker):
    with pytest.raises(InstallError) as err:
        engine.ensure_image("registry:9.9", lambda: None)
    assert str(err.value).startswith("Failed to pull registry:9.9: docker pull failed:")
    assert json.loads(fake_docker.state_file.read_text())["images"] == {}
