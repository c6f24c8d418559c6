"""Hostile action parameters: files that are not image lists, lines that are secrets."""

from __future__ import annotations

import os

import pytest

from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.images import imagelists, references

SECRET = "hunter2-Secret"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "symlink", "huge"])
def test_mirror_file_must_be_a_small_regular_file(tmp_path, kind):
    # /dev/zero was read until memory ran out; a FIFO hung the action (and the machine lock)
    path = tmp_path / "list.txt"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = "/dev/zero"
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        (tmp_path / "real.txt").write_text("registry.k8s.io/pause:3.9\n")
        path.symlink_to(tmp_path / "real.txt")
    else:
        path.write_text("registry.k8s.io/pause:3.9\n" * 100_000)
    with pytest.raises(references.ListError):
        imagelists.read_list_file(str(path), 1024 * 1024)


@pytest.mark.parametrize(
    "content",
    [
        f"registry.k8s.io/pause:3.9\n-----BEGIN PRIVATE KEY-----\nMII{SECRET}\n",  # a key
        f"admin:$2y$05$abcdefghijklmnopqrstuv{SECRET}\n",  # an htpasswd line
        f"admin:{SECRET}\n",  # the nrpe check's credentials line
    ],
)
def test_a_file_that_is_not_an_image_list_is_refused_without_echoing_it(content):
    with pytest.raises(RegistryCharmError) as err:
        imagelists.parse_list(content, require_host=True)
    assert SECRET not in str(err.value) and "MII" not in str(err.value)
    assert "line" in str(err.value)


@pytest.mark.parametrize("reference", ["-oProxyCommand=x", "--help", "-/x:1"])
def test_no_reference_that_skopeo_or_docker_would_read_as_an_option(reference):
    with pytest.raises(references.BadReference):
        references.parse_reference(reference)


@pytest.mark.parametrize("reference", ["docker.io/-q.x/a:1", "-q.x/registry:2"])
def test_no_reference_whose_host_starts_with_a_dash(reference):
    with pytest.raises(references.BadReference):
        references.parse_reference(reference)


def test_docker_is_never_handed_a_reference_where_an_option_may_stand(monkeypatch):
    # GIVEN a reference that slipped past every check WHEN docker is asked about it
    from charms.layer.docker_registry.host import container

    asked: list[tuple] = []
    monkeypatch.setattr(container, "docker", lambda *args, **kw: asked.append(args) or "")
    container.image_id("-q.x/registry:2")
    container.pull("-q.x/registry:2")
    container.tag("-q.x/registry:2", "-r")
    # THEN "--" ends docker's options before it
    for args in asked:
        assert args[args.index("--") + 1].startswith("-")
