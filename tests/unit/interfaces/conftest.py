"""Fixtures for the interface layer tests: see tests/support/fakejuju.py."""

from __future__ import annotations

import sys

import pytest
import yaml
from charmhelpers.core import hookenv, unitdata
from charms.reactive import bus
from charms.reactive.endpoints import Endpoint

from tests.support.fakejuju import METADATA, FakeJuju, _load_interfaces


@pytest.fixture
def juju(tmp_path, monkeypatch) -> FakeJuju:
    fake = FakeJuju()
    (tmp_path / "metadata.yaml").write_text(yaml.safe_dump(METADATA))
    monkeypatch.setenv("JUJU_CHARM_DIR", str(tmp_path))
    monkeypatch.setenv("CHARM_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(hookenv, "cache", {})
    monkeypatch.setattr(hookenv, "_atexit", [])
    monkeypatch.setattr(unitdata, "_KV", unitdata.Storage(":memory:"))
    monkeypatch.setattr(Endpoint, "_endpoints", {})
    monkeypatch.setattr(bus.Handler, "_HANDLERS", {})

    tools = {
        "relation_ids": fake.relation_ids,
        "related_units": fake.related_units,
        "relation_get": fake.relation_get,
        "relation_set": fake.relation_set,
        "log": fake.log,
        "local_unit": lambda: fake.local_unit,
        "application_name": lambda: fake.local_unit.split("/")[0],
        "hook_name": lambda: fake._ctx["hook"],
        "remote_unit": lambda: fake._ctx["unit"],
        "relation_id": lambda *a, **k: fake._ctx["rid"],
        "relation_type": lambda: fake._ctx["rid"] and fake._ctx["rid"].split(":")[0],
        "unit_get": lambda attribute: fake.unit_private_address,
    }
    for name, func in tools.items():
        monkeypatch.setattr(hookenv, name, func)

    fake.load_interfaces = lambda: _load_interfaces(monkeypatch)
    return fake
