"""files: atomic writes with the mode set, no rewrite when unchanged, stale files removed."""

from __future__ import annotations

import os

import pytest

from charms.layer.docker_registry.host import files, paths
from charms.layer.docker_registry.pipeline.render import PRIVATE, PUBLIC
from charms.layer.docker_registry.pipeline.runspec import HostFile


def mode_of(path) -> int:
    return path.stat().st_mode & 0o777


def test_new_file_is_written_with_its_mode_and_parents(tmp_path):
    target = tmp_path / "etc" / "docker" / "registry" / "htpasswd"
    assert files.write_if_changed(target, "admin:hash\n", 0o600) is True
    assert target.read_text() == "admin:hash\n"
    assert mode_of(target) == 0o600


def test_mode_is_set_before_content_lands_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        target = tmp_path / "key.pem"
        files.write_if_changed(target, "KEY", PRIVATE)
    finally:
        os.umask(old)
    assert mode_of(target) == 0o600


def test_unchanged_file_is_not_rewritten(tmp_path):
    target = tmp_path / "config.yml"
    files.write_if_changed(target, "version: 0.1\n", PUBLIC)
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    before = target.stat()
    assert files.write_if_changed(target, "version: 0.1\n", PUBLIC) is False
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_content_replaces_the_file_atomically(tmp_path):
    target = tmp_path / "config.yml"
    files.write_if_changed(target, "old\n", PUBLIC)
    inode = target.stat().st_ino
    assert files.write_if_changed(target, "new\n", PUBLIC) is True
    assert target.read_text() == "new\n"
    assert target.stat().st_ino != inode  # a new file renamed over the old one
    assert [p.name for p in tmp_path.iterdir()] == ["config.yml"]  # no temp file left


def test_mode_only_change_is_rewritten(tmp_path):
    target = tmp_path / "server.key"
    files.write_if_changed(target, "KEY\n", PUBLIC)
    assert files.write_if_changed(target, "KEY\n", PRIVATE) is True
    assert mode_of(target) == 0o600
    assert target.read_text() == "KEY\n"


def test_failed_write_leaves_no_temp_file_and_the_old_content(tmp_path, monkeypatch):
    target = tmp_path / "config.yml"
    files.write_if_changed(target, "old\n", PUBLIC)

    def broken_replace(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.write_if_changed(target, "new\n", PUBLIC)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yml"]


def test_sync_writes_wanted_files_under_the_sandbox(tmp_path):
    host = paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/0")
    wanted = [
        HostFile("/etc/docker/registry/config.yml", "cfg\n", PUBLIC),
        HostFile("/etc/docker/registry/htpasswd", "admin:x\n", PRIVATE),
    ]
    written, removed = files.sync(host, wanted, previously=[])
    assert written == ["/etc/docker/registry/config.yml", "/etc/docker/registry/htpasswd"]
    assert removed == []
    assert (tmp_path / "etc/docker/registry/htpasswd").read_text() == "admin:x\n"
    assert mode_of(tmp_path / "etc/docker/registry/htpasswd") == 0o600
    # THEN a second sync with the same files writes nothing
    assert files.sync(host, wanted, previously=[f.path for f in wanted]) == ([], [])


def test_sync_removes_only_stale_files_the_charm_managed(tmp_path):
    host = paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/0")
    registry_dir = tmp_path / "etc/docker/registry"
    registry_dir.mkdir(parents=True)
    (registry_dir / "htpasswd").write_text("admin:old\n")  # managed before, now unwanted
    (registry_dir / "operator-notes.txt").write_text("mine\n")  # never managed by the charm
    wanted = [HostFile("/etc/docker/registry/config.yml", "cfg\n", PUBLIC)]
    written, removed = files.sync(
        host,
        wanted,
        previously=[
            "/etc/docker/registry/config.yml",
            "/etc/docker/registry/htpasswd",
            "/etc/docker/registry/already-gone.pem",
        ],
    )
    assert written == ["/etc/docker/registry/config.yml"]
    assert removed == ["/etc/docker/registry/htpasswd"]
    assert sorted(p.name for p in registry_dir.iterdir()) == ["config.yml", "operator-notes.txt"]


def test_ensure_dir_creates_nested_directories_with_the_mode(tmp_path):
    target = tmp_path / "srv" / "registry"
    files.ensure_dir(target, 0o700)
    files.ensure_dir(target, 0o700)  # idempotent
    assert target.is_dir()
    old = os.umask(0)
    try:
        files.ensure_dir(tmp_path / "other", 0o750)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "other") == 0o750


def test_sync_on_a_full_disk_leaves_the_whole_old_set_and_names_the_file(tmp_path, monkeypatch):
    host = paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/0")
    old = [
        HostFile("/etc/docker/registry/config.yml", "cfg-old\n", PUBLIC),
        HostFile("/etc/docker/registry/htpasswd", "admin:old\n", PRIVATE),
    ]
    files.sync(host, old, previously=[])
    real_fdopen = os.fdopen
    opened = []

    def fills_up(fd, mode):  # the first staged copy fits, the second does not
        opened.append(fd)
        handle = real_fdopen(fd, mode)
        if len(opened) == 2:
            handle.close()
            raise OSError(28, "No space left on device")
        return handle

    monkeypatch.setattr(files.os, "fdopen", fills_up)
    new = [
        HostFile("/etc/docker/registry/config.yml", "cfg-new\n", PUBLIC),
        HostFile("/etc/docker/registry/htpasswd", "admin:new\n", PRIVATE),
    ]
    with pytest.raises(OSError, match="No space left on device") as full:
        files.sync(host, new, previously=[f.path for f in old])
    registry_dir = tmp_path / "etc/docker/registry"
    assert full.value.filename == str(registry_dir / "htpasswd")
    assert (registry_dir / "config.yml").read_text() == "cfg-old\n"  # not half the new set
    assert (registry_dir / "htpasswd").read_text() == "admin:old\n"
    assert sorted(p.name for p in registry_dir.iterdir()) == ["config.yml", "htpasswd"]
