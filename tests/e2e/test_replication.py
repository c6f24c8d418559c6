"""End to end: Charmed Kubernetes' documented HA recipe on the default filesystem storage
(`juju add-unit docker-registry`, `juju integrate docker-registry haproxy:reverseproxy`):
the backup replicates the primary at its hooks (update-status fired as Juju's timer fires it),
deletions too; with the primary's container gone haproxy serves every synced image from the
backup, which says it cannot reach the primary and keeps serving; the primary unit removed,
the backup in sync with it becomes the primary. One model for the module. Local model only:
haproxy is the local model's fake (real haproxy, its config read on the test host)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import jubilant
import pytest

from tests.support.images import make_test_image

APP = "docker-registry"
P, B = f"{APP}/0", f"{APP}/1"  # primary (the lowest unit number), backup

pytestmark = pytest.mark.local_only("haproxy is the local model's fake")


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )


def digest_at(netloc: str, name: str) -> str:
    """The manifest digest ``name`` has at ``netloc`` ("" when it has none)."""
    proc = skopeo(
        "inspect", "--tls-verify=false", "--format", "{{.Digest}}", f"docker://{netloc}/{name}"
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def pull(netloc: str, name: str, tmp: Path) -> str:
    """Copy the image out (every blob checked by digest); its manifest digest, "" if it fails."""
    proc = skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{netloc}/{name}",
        f"dir:{tmp / uuid.uuid4().hex}",
    )
    return digest_at(netloc, name) if proc.returncode == 0 else ""


def haproxy_cfg(juju: jubilant.Juju) -> str:
    assert juju.model is not None
    return next((Path(juju.model) / "fakes").rglob("haproxy.cfg")).read_text()


def message(juju: jubilant.Juju, unit: str) -> str:
    return juju.status().get_units(APP)[unit].workload_status.message


@pytest.fixture(scope="module")
def recipe(juju, charm_dir, registry_image_tar, helpers, tmp_path_factory):
    # juju deploy docker-registry; juju add-unit docker-registry (default filesystem storage;
    # storage-delete for the rmi action)
    helpers.deploy_registry(
        juju, charm_dir, registry_image_tar, APP, {"storage-delete": True}, num_units=2
    )
    juju.deploy("fake:haproxy", "haproxy")
    # juju integrate docker-registry haproxy:reverseproxy
    juju.integrate(f"{APP}:website", "haproxy:reverseproxy")
    proxy = f"{helpers.unit_address(juju, 'haproxy/0')}:5000"
    ready = f"Ready at {proxy} (http, proxied); "
    helpers.wait_for_unit(juju, P, "active", ready + "primary.")
    helpers.wait_for_unit(juju, B, "active", ready + f"backup, in sync with {P}.")
    refs = []
    for n in range(2):
        ref = f"e2e-replica-{uuid.uuid4().hex[:6]}:{n}"
        make_test_image(ref, payload_bytes=100_000, seed=ref)
        refs.append(ref)
    yield juju, proxy, refs, tmp_path_factory.mktemp("replica")
    subprocess.run(["docker", "rmi", *refs], capture_output=True)


def test_haproxy_sends_traffic_to_the_primary_and_keeps_the_other_as_backup(recipe, helpers):
    juju, _, _, _ = recipe
    cfg = haproxy_cfg(juju)
    for unit, backup in ((P, False), (B, True)):
        server = f"server {unit.replace('/', '-')} {helpers.unit_address(juju, unit)}:5000"
        assert server in cfg
        assert cfg.split(server, 1)[1].splitlines()[0].endswith(" backup") is backup


def test_a_push_to_the_primary_reaches_the_backup_at_its_next_hook(recipe, helpers):
    juju, proxy, refs, _ = recipe
    backup = f"{helpers.unit_address(juju, B)}:5000"
    pushed = {}
    for n, ref in enumerate(refs):
        name = f"rep/img{n}:v{n}"
        copy = skopeo(
            "copy", "--dest-tls-verify=false", f"docker-daemon:{ref}", f"docker://{proxy}/{name}"
        )
        assert copy.returncode == 0, copy.stderr
        pushed[name] = digest_at(proxy, name)
    assert all(pushed.values()) and not digest_at(backup, "rep/img0:v0")
    # WHEN Juju's timer fires update-status on the backup
    helpers.fire_update_status(juju, B)
    # THEN it holds every pushed tag at the primary's digest, and says it is in sync
    assert {name: digest_at(backup, name) for name in pushed} == pushed
    assert message(juju, B).endswith(f"; backup, in sync with {P}.")


def test_a_deletion_on_the_primary_is_deleted_on_the_backup(recipe, helpers):
    juju, _, _, _ = recipe
    backup = f"{helpers.unit_address(juju, B)}:5000"
    # juju run docker-registry/0 rmi image=rep/img1:v1
    result = juju.run(P, "rmi", {"image": "rep/img1:v1"})
    assert result.status == "completed", result.message
    helpers.fire_update_status(juju, B)
    assert not digest_at(backup, "rep/img1:v1")
    assert digest_at(backup, "rep/img0:v0")
    assert message(juju, B).endswith(f"; backup, in sync with {P}.")


def test_without_the_primarys_container_the_backup_serves_what_it_synced(recipe, helpers):
    juju, proxy, _, tmp = recipe
    want = digest_at(proxy, "rep/img0:v0")
    # WHEN the primary's registry container is removed out of band
    subprocess.run(["docker", "rm", "-f", f"registry-{APP}-0"], check=True, capture_output=True)
    # THEN haproxy's health check fails over to the backup, which serves the synced image
    deadline = time.time() + 20
    while (got := pull(proxy, "rep/img0:v0", tmp)) != want and time.time() < deadline:
        time.sleep(1)
    assert got == want
    # AND the backup's next hook says it cannot reach the primary, and it keeps serving
    helpers.fire_update_status(juju, B)
    assert f"backup, cannot reach {P} (" in message(juju, B)
    assert juju.status().get_units(APP)[B].workload_status.current == "active"
    assert pull(proxy, "rep/img0:v0", tmp) == want


def test_the_primary_unit_removed_the_backup_in_sync_with_it_becomes_primary(recipe, helpers):
    juju, proxy, _, tmp = recipe
    want = digest_at(proxy, "rep/img0:v0")
    # GIVEN the primary is gone (its container above) and the backup's last sync matched it
    # WHEN the primary unit is removed (the leader: Juju elects /1)
    juju.remove_unit(P)
    helpers.wait_for_unit(juju, B, "active", f"Ready at {proxy} (http, proxied).")
    assert juju.exec("leader-get", "replica-primary", unit=B).stdout.strip() == B
    cfg = haproxy_cfg(juju)
    assert f"server {APP}-0 " not in cfg and f"server {APP}-1 " in cfg
    deadline = time.time() + 20
    while (got := pull(proxy, "rep/img0:v0", tmp)) != want and time.time() < deadline:
        time.sleep(1)
    assert got == want
