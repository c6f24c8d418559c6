"""Fixtures for the interface layer tests: see tests/support/fakejuju.py."""

from __future__ import annotations

import pytest

from tests.support.fakejuju import (
    METADATA,
    FakeJuju,
    _load_interfaces,
    fresh_hook_process,
    patch_hook_tools,
)


@pytest.fixture
def juju(tmp_path, monkeypatch) -> FakeJuju:
    fake = FakeJuju()
    fresh_hook_process(monkeypatch, tmp_path, METADATA)
    patch_hook_tools(monkeypatch, fake)
    fake.load_interfaces = lambda: _load_interfaces(monkeypatch)
    return fake
