"""The registry's log reaches journald as production runs it (docker's journald log driver,
tagged with the container's name), where the COS collectors and `journalctl` read it, and the
log-level option decides what it says. The registry runs with production's log driver; only
its files live under a temporary directory, and it listens on the loopback."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import container, workload
from charms.layer.docker_registry.pipeline import render
from tests.support.config import charm_defaults
from tests.support.hosts import ProductionApart
from tests.support.images import ensure_engine, registry_image_ref
from tests.support.journald import entries, journald
from tests.support.net import free_port, get_status


@dataclass(frozen=True)
class ProductionLogs(ProductionApart):
    """Production's log driver (sandbox unset); files, name and address kept apart."""

    def publish_address(self, unit_address: str) -> str:
        return "127.0.0.1"


@pytest.fixture(scope="module")
def journal():
    with journald():
        yield


@pytest.fixture
def run_registry(journal, tmp_path):
    ensure_engine()
    assert container.image_id(registry_image_ref()), "run `make image` first"
    host = ProductionLogs(root=str(tmp_path), suffix=uuid.uuid4().hex[:8])
    port = free_port("127.0.0.1")
    state: dict = {"managed": [], "last_good": None, "name": ""}

    def run(log_level: str) -> str:
        """The registry at ``log_level`` (recreated when it changes); its container id."""
        config = charm_defaults() | {
            "registry-image": registry_image_ref(),
            "registry-port": port,
            "log-level": log_level,
        }
        desired = render.desired(
            settings.parse(config),
            host=host,
            unit_address="127.0.0.1",
            tls=None,
            http_secret="it-secret",
            htpasswd="",
            realm="docker-registry",
        )
        assert desired.run.log_driver == "journald"  # as production runs it
        outcome, state["managed"] = workload.apply(
            desired,
            image_id=container.image_id(desired.run.image),
            host=host,
            managed_files=state["managed"],
            allow_start=True,
            last_good=state["last_good"],
            failed=None,
            secrets=(),
        )
        assert outcome.answering, outcome.problem
        state["last_good"], state["name"] = outcome.last_good, desired.run.name
        assert get_status(f"http://127.0.0.1:{port}/v2/") == 200
        inspected = container.inspect(desired.run.name)
        assert inspected
        return inspected.id

    yield run
    subprocess.run(["docker", "rm", "-f", state["name"]], capture_output=True, check=False)


def levels(said: list[str]) -> set[str]:
    """The levels of the registry's own lines (the charm has it log JSON, one object a line)."""
    found = set()
    for line in said:
        if line.startswith("{"):
            found.add(str(json.loads(line).get("level", "")))
    return found


def messages(container_id: str, until: str = "") -> list[str]:
    """What the container said in the journal; with ``until``, once a line holds it (journald
    takes in a line a moment after the container writes it)."""
    deadline = time.monotonic() + 5
    while True:
        said = [str(e.get("MESSAGE", "")) for e in entries(CONTAINER_ID_FULL=container_id)]
        if not until or any(until in m for m in said) or time.monotonic() > deadline:
            return said
        time.sleep(0.2)


def test_the_registry_log_reaches_journald_tagged_with_its_name(run_registry):
    # GIVEN the registry at log-level=debug WHEN a client asks it for /v2/
    container_id = run_registry("debug")
    # THEN journald holds its lines, named after the container (what collectors and
    # `journalctl CONTAINER_NAME=…` or `-t …` select on), the debug ones and the request's
    found = entries(CONTAINER_ID_FULL=container_id)
    assert found, "nothing from the registry in the journal"
    name = found[0]["CONTAINER_NAME"]
    assert {e["SYSLOG_IDENTIFIER"] for e in found} == {name}
    said = messages(container_id, until='"GET /v2/ HTTP/1.1" 200')
    assert "debug" in levels(said)
    assert any('"GET /v2/ HTTP/1.1" 200' in m for m in said), said[-5:]


def test_log_level_decides_what_reaches_the_journal(run_registry):
    # GIVEN the registry at log-level=info, then at log-level=error (recreated)
    info = run_registry("info")
    error = run_registry("error")
    assert info != error
    # THEN info lines came from the first and none from the second
    assert "info" in levels(messages(info, until='"level":"info"'))
    assert levels(messages(error)) <= {"error", "fatal", "panic"}
