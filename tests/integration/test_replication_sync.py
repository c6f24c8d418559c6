"""A backup's sync from its primary (replication.sync) between two real registries: copies by
the primary's digest and skips what is there, deletes what the primary deleted, keeps what no
sync from it brought, and says when the primary does not answer. Hook tools replaced by
recorders, a real (in-memory) unit kv; registries, skopeo and the registry API are real."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from charmhelpers.core import hookenv, unitdata

from charms.layer.docker_registry.host import container, workload
from charms.layer.docker_registry.images import registry_api
from charms.layer.docker_registry.pipeline import replication
from tests.support.images import ensure_engine, make_test_image, registry_image_ref
from tests.support.net import free_port

RUN = uuid.uuid4().hex[:6]
PRIMARY = "docker-registry/0"
ACCESS = replication.Access(user="", password="", ca_file="", client_pair=None)


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def registries():
    """Two plain registries with deletes allowed: (primary URL, backup URL)."""
    ensure_engine()
    assert container.image_id(registry_image_ref()), "run `make image` first"
    urls, names = [], []
    for role in ("primary", "backup"):
        port, name = free_port(), f"it-replica-{role}-{RUN}"
        docker(
            "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000",
            "-e", "REGISTRY_STORAGE_DELETE_ENABLED=true", registry_image_ref(),
        )  # fmt: skip
        names.append(name)
        urls.append(f"http://127.0.0.1:{port}")
        assert workload.wait_answering(urls[-1], 20)
    yield urls[0], urls[1]
    subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)


@pytest.fixture(autouse=True)
def hook_context(monkeypatch):
    monkeypatch.setattr(unitdata, "_KV", KV)
    monkeypatch.setattr(hookenv, "log", lambda *a, **k: None)


KV = unitdata.Storage(":memory:")  # the backup's unit kv, kept across this module's syncs


def push(url: str, name: str, seed: str) -> str:
    local = f"it-replica-{RUN}-{uuid.uuid4().hex[:6]}:1"
    make_test_image(local, payload_bytes=32 * 1024, seed=seed)
    netloc = url.split("://", 1)[1]
    try:
        subprocess.run(
            ["skopeo", "copy", "--dest-tls-verify=false", f"docker-daemon:{local}",
             f"docker://{netloc}/{name}"],
            check=True, capture_output=True,
        )  # fmt: skip
    finally:
        subprocess.run(["docker", "rmi", local], capture_output=True, check=False)
    repo, tag = name.rsplit(":", 1)
    return registry_api.Registry(url).digest(repo, tag) or ""


def holdings(url: str) -> dict[str, dict[str, str]]:
    return replication.inventory(registry_api.Registry(url))


def test_a_backup_copies_every_tag_at_the_primarys_digest(registries):
    primary, backup = registries
    push(primary, "cdk/pause:3.9", "pause")
    push(primary, "team/tool:2", "tool")
    outcome = replication.sync(PRIMARY, primary, backup, ACCESS)
    assert outcome.in_sync and outcome.behind == 0
    assert holdings(backup) == holdings(primary)
    # a second sync finds nothing to do
    assert replication.sync(PRIMARY, primary, backup, ACCESS).in_sync


def test_a_tag_deleted_on_the_primary_goes_and_a_tag_pushed_to_the_backup_stays(registries):
    primary, backup = registries
    api = registry_api.Registry(primary)
    api.delete_manifest("team/tool", api.digest("team/tool", "2") or "")
    push(backup, "hotfix/app:1", "hotfix")  # (taken while the backup served for the primary)
    outcome = replication.sync(PRIMARY, primary, backup, ACCESS)
    assert outcome.in_sync and outcome.foreign == 1
    here = holdings(backup)
    assert "team/tool" not in here and "cdk/pause" in here and "hotfix/app" in here


def test_a_primary_that_does_not_answer_is_named_and_nothing_changes(registries):
    _, backup = registries
    before = holdings(backup)
    gone = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    outcome = replication.sync(PRIMARY, gone, backup, ACCESS)
    assert outcome.error.startswith("no answer from the registry at http://127.0.0.1:")
    assert not outcome.in_sync and holdings(backup) == before


def test_an_empty_new_primary_never_makes_the_backup_delete_down_to_it(registries):
    # GIVEN the backup's record is of docker-registry/0's images; an empty registry is named
    _, backup = registries
    before = holdings(backup)
    port, name = free_port(), f"it-replica-empty-{RUN}"
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000", registry_image_ref())
    try:
        assert workload.wait_answering(f"http://127.0.0.1:{port}", 20)
        outcome = replication.sync("docker-registry/5", f"http://127.0.0.1:{port}", backup, ACCESS)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    # THEN nothing is deleted: no sync from that primary brought any of it (all counted)
    assert holdings(backup) == before
    assert outcome.in_sync and outcome.foreign == sum(len(t) for t in before.values())
