"""Juju storage in the local model: the verbs (deploy --storage, add-storage, detach-storage,
attach-storage, storage), the storage hooks in Juju's order with JUJU_STORAGE_ID, the hook tools
storage-list and storage-get through charmhelpers, and each instance a real size-limited
filesystem mounted at the store's location on the unit's machine.

One dummy unit deployed with storage (module scope: its first hook bootstraps a venv); its
tests run in file order, like an operator's session."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tools.localjuju import storage
from tools.localjuju.model import Model, ModelError
from tools.localjuju.runner import Controller

UNIT = "dummy/0"


def seen(ctl: Controller) -> dict:
    return json.loads((ctl.model.charm_dir(UNIT) / "seen.json").read_text())


def location(ctl: Controller):
    """Where the unit's machine has /srv/data (the store's location) on this host."""
    return ctl.model.sandbox_dir(UNIT) / "srv" / "data"


def cli(ctl: Controller, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.localjuju", *argv, "--model", str(ctl.model.root)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("directive", "parsed"),
    [
        ("10G", ("tmpfs", 10240, 1)),
        ("512M", ("tmpfs", 512, 1)),
        ("tmpfs,64M", ("tmpfs", 64, 1)),
        ("rootfs,1G,1", ("rootfs", 1024, 1)),
        ("", ("tmpfs", None, 1)),
    ],
)
def test_directives_as_juju_takes_them(directive, parsed):
    assert storage.parse_directive(directive) == parsed


@pytest.fixture(scope="module")
def ctl(tmp_path_factory, dummy):
    root = tmp_path_factory.mktemp("storage") / "model"
    ctl = Controller(Model(root, python=os.environ.get("DOCKER_REGISTRY_PY", sys.executable)))
    ctl.deploy(dummy, config={"port": "5006"}, storage={"data": "32M"})
    yield ctl
    ctl.destroy()
    assert not any(p.is_mount() for p in (root / "storage").iterdir())


def test_deploy_with_storage_attaches_it_before_install(ctl):
    # GIVEN deploy --storage data=32M
    s = seen(ctl)
    # THEN storage-attached ran first, with its instance in JUJU_STORAGE_ID and the tools
    assert s["hooks"][:2] == ["data-storage-attached", "install"]
    assert s["env"][0]["JUJU_STORAGE_ID"] == "data/0"
    attached = {"hook": "data-storage-attached", "ids": ["data/0"], "at": "/srv/data"}
    assert s["storage"][0] == attached
    # AND the location is a real filesystem of that size, which the hook wrote to
    assert location(ctl).is_mount()
    fs = os.statvfs(location(ctl))
    assert fs.f_blocks * fs.f_frsize == 32 * 1024 * 1024
    assert (location(ctl) / "seen-by-data-storage-attached").read_text() == "data/0"


def test_storage_verb_shows_it_attached(ctl):
    shown = json.loads(cli(ctl, "storage", "--format", "json").stdout)
    assert shown["storage"]["data/0"]["status"]["current"] == "attached"
    assert shown["storage"]["data/0"]["attachments"]["units"][UNIT]["location"] == "/srv/data"
    assert shown["filesystems"]["0"]["size"] == 32


def test_more_instances_than_the_range_or_a_store_too_small_are_refused(ctl, dummy):
    with pytest.raises(ModelError, match="maximum of 1"):
        ctl.add_storage(UNIT, {"data": "32M"})
    with pytest.raises(ModelError, match="minimum storage size is 16 MiB, 8 MiB specified"):
        ctl.deploy(dummy, "small", storage={"data": "8M"})
    with pytest.raises(ModelError, match='storage "logs" not found'):
        ctl.deploy(dummy, "other", storage={"logs": "1G"})
    assert set(ctl.status()["applications"]) == {"dummy"}


def test_detach_runs_detaching_while_mounted_then_unmounts(ctl):
    # WHEN the operator detaches the instance
    done = cli(ctl, "detach-storage", "data/0")
    assert done.returncode == 0, done.stderr
    s = seen(ctl)
    # THEN storage-detaching ran while the volume was still there; then it went
    assert s["hooks"][-1] == "data-storage-detaching"
    assert s["env"][-1]["JUJU_STORAGE_ID"] == "data/0"
    assert not location(ctl).is_mount()
    assert not (location(ctl) / "seen-by-data-storage-detaching").exists()
    shown = json.loads(cli(ctl, "storage", "--format", "json").stdout)
    assert shown["storage"]["data/0"]["status"]["current"] == "detached"


def test_attach_again_brings_the_same_files(ctl):
    done = cli(ctl, "attach-storage", UNIT, "data/0")
    assert done.returncode == 0, done.stderr
    assert seen(ctl)["hooks"][-1] == "data-storage-attached"
    assert (location(ctl) / "seen-by-data-storage-detaching").read_text() == "data/0"


def test_remove_unit_runs_detaching_before_stop(ctl):
    ctl.remove_unit(UNIT)
    log = (ctl.model.root / "debug.log").read_text().splitlines()
    ran = [ln.split(" INFO running ", 1)[1] for ln in log if " INFO running " in ln]
    # (the dummy charm has no remove hook file: Juju skips it)
    assert ran[-3:] == ["peer-relation-broken hook", "data-storage-detaching hook", "stop hook"]
    shown = json.loads(cli(ctl, "storage", "--format", "json").stdout)
    assert shown["storage"]["data/0"]["status"]["current"] == "detached"
