"""End to end: the registry's images on a Juju storage volume (the registry-data store).

As an operator does it: deploy with `--storage registry-data=1G`, push, detach the volume
(the registry stops and nothing lands on the root disk under the mount point), attach it again
(the same images are served), then fill the volume: from 90 % the status says how full, from
98 % the registry is read-only (a real push is refused with the registry's own answer, pulls
work) until space is freed. A unit deployed without storage gets a volume with add-storage:
its images move onto it. In the local model the volume is a 1 GiB tmpfs bind-mounted at the
store's location on the unit's machine. Two deployments in one model, the tests in file
order; what is checked on the unit goes through `juju exec`, hooks only those Juju would run
(update-status after the volume was filled or emptied behind the charm's back).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass

import jubilant
import pytest

from tests.support.images import make_test_image

APP = "registry-store"
DATA = '"${DOCKER_REGISTRY_SANDBOX:-}/srv/registry"'  # the store's location on the unit


@dataclass
class Deployed:
    juju: jubilant.Juju
    unit: str
    netloc: str
    storage: str
    digest: str
    helpers: type

    @property
    def ready(self) -> str:
        return f"Ready at {self.netloc} (http)."

    @property
    def ref(self) -> str:
        return f"docker://{self.netloc}/store/busybox:1"

    @property
    def container(self) -> str:
        local = self.helpers.is_local(self.juju)
        return "registry-" + self.unit.replace("/", "-") if local else "registry"


def on_unit(d: Deployed, command: str) -> str:
    return d.juju.exec(command, unit=d.unit).stdout.strip()


def storage_status(d: Deployed) -> dict:
    return json.loads(d.juju.cli("storage", "--format", "json"))["storage"][d.storage]


def running(d: Deployed) -> str:
    return d.helpers.docker_on(
        d.juju, d.unit, "inspect", "-f", "{{.State.Running}}", d.container
    ).strip()


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True)


def pulled_digest(d: Deployed) -> str:
    done = skopeo("inspect", "--tls-verify=false", "--format", "{{.Digest}}", d.ref)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def push(d: Deployed, tag: str) -> subprocess.CompletedProcess:
    local = f"e2e-store-{uuid.uuid4().hex[:6]}:1"
    make_test_image(local, seed=tag)
    try:
        return skopeo(
            "copy",
            "--dest-tls-verify=false",
            f"docker-daemon:{local}",
            f"docker://{d.netloc}/store/{tag}",
        )
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True)


def fill_to(d: Deployed, percent: int) -> None:
    """A file on the volume that brings it just under ``percent`` % full (df rounds up to
    ``percent``), behind the
    charm's back; 0 removes it."""
    on_unit(
        d,
        f"d={DATA}; rm -f $d/filler; [ {percent} -gt 0 ] || exit 0; "
        "set -- $(stat -f -c '%b %f %a %S' $d); used=$((($1 - $2) * $4)); "
        f"usable=$(((($1 - $2) + $3) * $4)); fallocate -l $((usable * {percent} / 100 - used - "
        "8192)) $d/filler",
    )


@pytest.fixture(scope="module")
def deployed(juju, charm_dir, registry_image_tar, helpers) -> Deployed:
    unit = helpers.deploy_registry(
        juju, charm_dir, registry_image_tar, APP, storage={"registry-data": "1G"}
    )
    netloc = f"{helpers.unit_address(juju, unit)}:5000"
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (http).")
    listing = json.loads(juju.cli("storage", "--format", "json"))["storage"]
    (storage,) = [sid for sid, s in listing.items() if unit in s["attachments"]["units"]]
    d = Deployed(juju, unit, netloc, storage, "", helpers)
    done = push(d, "busybox:1")
    assert done.returncode == 0, done.stderr
    d.digest = pulled_digest(d)
    return d


def test_images_pushed_land_on_the_store(deployed):
    d = deployed
    # storage-attached ran first (a machine charm: before install)
    ran = [h.split(": ", 1)[1] for h in d.helpers.hooks_ran(d.juju) if h.startswith(d.unit)]
    assert ran[:2] == ["registry-data-storage-attached", "install"]
    assert storage_status(d)["attachments"]["units"][d.unit]["location"] == "/srv/registry"
    # the data directory is the volume, and the pushed repository is on it
    assert on_unit(d, f"mountpoint -q {DATA} && echo mounted") == "mounted"
    assert on_unit(d, f"ls {DATA}/docker/registry/v2/repositories/store") == "busybox"


def test_detach_stops_the_registry_and_nothing_lands_on_the_root_disk(deployed):
    d = deployed
    d.juju.cli("detach-storage", d.storage)
    status = d.helpers.wait_for_unit(d.juju, d.unit, "blocked")
    assert status.workload_status.message == (
        f"Storage detached ({d.storage}): the registry is stopped, its images are on that "
        f"volume; attach it again: juju attach-storage {d.unit} {d.storage}."
    )
    assert running(d) == "false"
    # the next hook Juju runs leaves it so; under the bare mount point nothing was written
    d.helpers.fire_update_status(d.juju, d.unit)
    assert running(d) == "false"
    assert on_unit(d, f"mountpoint -q {DATA} || echo bare") == "bare"
    assert on_unit(d, f"ls -A {DATA}") == ""
    with pytest.raises(jubilant.TaskError) as refused:  # the start action refuses too
        d.juju.run(d.unit, "start")
    assert "is detached" in refused.value.task.message


def test_attach_again_serves_the_same_images(deployed):
    d = deployed
    d.juju.cli("attach-storage", d.unit, d.storage)
    d.helpers.wait_for_unit(d.juju, d.unit, "active", d.ready)
    assert pulled_digest(d) == d.digest


def test_fill_level_then_read_only_then_writable_again(deployed):
    d = deployed
    # GIVEN the volume 93 % full: the status says so at the next hook
    fill_to(d, 93)
    d.helpers.fire_update_status(d.juju, d.unit)
    d.helpers.wait_for_unit(
        d.juju, d.unit, "active", f"Ready at {d.netloc} (http); storage 93 % full."
    )
    # WHEN it reaches 98 %: read-only, saying until when
    fill_to(d, 98)
    d.helpers.fire_update_status(d.juju, d.unit)
    status = d.helpers.wait_for_unit(d.juju, d.unit, "blocked")
    assert status.workload_status.message == (
        "Storage 98 % full: the registry is read-only (pulls work, pushes are refused) until "
        f"it is below 95 %; free space on {d.storage}."
    )
    # THEN a push is refused with the registry's own read-only answer; pulls work
    refused = push(d, "refused:1")
    assert refused.returncode != 0 and "405, Method not allowed" in refused.stderr
    assert pulled_digest(d) == d.digest
    # AND once space is freed it is writable again at the next hook
    fill_to(d, 0)
    d.helpers.fire_update_status(d.juju, d.unit)
    d.helpers.wait_for_unit(d.juju, d.unit, "active", d.ready)
    done = push(d, "after:1")
    assert done.returncode == 0, done.stderr


def test_add_storage_moves_the_root_disk_images_onto_the_volume(
    juju, charm_dir, registry_image_tar, helpers
):
    # GIVEN a unit deployed without storage, serving an image from its root disk
    unit = helpers.deploy_registry(juju, charm_dir, registry_image_tar, "registry-late")
    netloc = f"{helpers.unit_address(juju, unit)}:5000"
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {netloc} (http).")
    d = Deployed(juju, unit, netloc, "", "", helpers)
    done = push(d, "busybox:1")
    assert done.returncode == 0, done.stderr
    d.digest = pulled_digest(d)
    # WHEN the operator adds a volume
    juju.cli("add-storage", unit, "registry-data=1G")
    helpers.wait_for_unit(juju, unit, "active", d.ready)
    # THEN the registry serves the same image from the volume
    assert on_unit(d, f"mountpoint -q {DATA} && echo mounted") == "mounted"
    assert on_unit(d, f"ls {DATA}/docker/registry/v2/repositories/store") == "busybox"
    assert pulled_digest(d) == d.digest
    ran = [h.split(": ", 1)[1] for h in helpers.hooks_ran(juju) if h.startswith(unit)]
    assert ran[-1] == "registry-data-storage-attached"
