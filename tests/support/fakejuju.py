"""In-memory Juju model for testing the interface layers through charms.reactive itself.

Each test gets a fresh charm dir (metadata.yaml), a fresh in-memory unit kv, fresh reactive
handler registry and freshly loaded interface modules, named as in a built charm
(``relations.<interface>.<role>``, loaded by file path from the layer cache's
``interfaces/<interface>/``: the real upstream layers, see ``tests/support/layers.py``).
``FakeJuju.hook()`` runs one hook the way ``charms.reactive.main()`` does: endpoint start-up
(automatic flags), handler dispatch, then the at-exit relation-data flush.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from charmhelpers.core import hookenv, unitdata
from charms.reactive import bus, flags
from charms.reactive.endpoints import Endpoint

from tests.support.layers import ROOT, layer_cache

# the real upstream interface layers, from the layer cache the charm is built with
INTERFACES = layer_cache() / "interfaces"
# the interfaces the charm includes (a built charm holds only those; the cache may hold more)
CHARM_INTERFACES = sorted(
    name.split(":", 1)[1]
    for name in yaml.safe_load((ROOT / "layer.yaml").read_text())["includes"]
    if name.startswith("interface:")
)

METADATA = {
    "name": "test-charm",
    "provides": {
        "website": {"interface": "http"},
        "docker-registry": {"interface": "docker-registry"},
        "certificates": {"interface": "tls-certificates"},
    },
    "requires": {
        "cert-provider": {"interface": "tls-certificates"},
        "reverseproxy": {"interface": "http"},
        "registry": {"interface": "docker-registry"},
    },
    "peers": {"peer": {"interface": "peer-discovery"}},
}


class FakeJuju:
    """Relation databags and hook context; replaces charmhelpers' hook tools."""

    def __init__(self, local_unit: str = "docker-registry/0") -> None:
        self.local_unit = local_unit
        self.local: dict[str, dict[str, str]] = {}  # rid -> our unit databag
        self.remote: dict[str, dict[str, dict[str, str]]] = {}  # rid -> unit -> databag
        self.relation_sets: list[tuple[str, dict[str, Any]]] = []
        self.logs: list[str] = []
        self.unit_private_address = "10.0.0.10"
        self._ctx: dict[str, Any] = {"hook": "update-status", "rid": None, "unit": None}
        self._next_id = 1
        self.load_interfaces: Callable[[], None] = lambda: None

    # -- model manipulation ------------------------------------------------------------------

    def relate(self, endpoint: str, units: dict[str, dict[str, str]] | None = None) -> str:
        rid = f"{endpoint}:{self._next_id}"
        self._next_id += 1
        self.local[rid] = {"private-address": self.unit_private_address}
        self.remote[rid] = {u: dict(d) for u, d in (units or {}).items()}
        return rid

    def depart(self, rid: str, unit: str) -> None:
        del self.remote[rid][unit]

    def set_remote(self, rid: str, unit: str, **data: str | None) -> None:
        bag = self.remote[rid].setdefault(unit, {})
        for key, value in data.items():
            if value is None:
                bag.pop(key, None)
            else:
                bag[key] = value

    def hook(self, name: str = "update-status", rid: str | None = None, unit: str | None = None):
        """Run one hook; returns the set of flags afterwards."""
        self._ctx = {"hook": name, "rid": rid, "unit": unit}
        self._start()
        bus.dispatch()
        hookenv._run_atexit()
        return set(flags.get_flags())

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint instance as a new hook builds it (to call the API outside handlers)."""
        self._start()
        return Endpoint.from_name(name)

    def _start(self) -> None:
        """What a new hook process does before dispatch: load modules, start endpoints."""
        hookenv.cache.clear()
        hookenv._atexit.clear()
        self.load_interfaces()
        Endpoint._endpoints.clear()
        Endpoint._startup()

    def flush(self) -> None:
        """Publish what API calls wrote (what happens at the end of a hook)."""
        hookenv._run_atexit()

    # -- hook tools ----------------------------------------------------------------------------

    def relation_ids(self, reltype: str | None = None) -> list[str]:
        return [rid for rid in self.remote if reltype is None or rid.split(":")[0] == reltype]

    def related_units(self, relid: str | None = None) -> list[str]:
        return sorted(self.remote.get(relid or self._ctx["rid"], {}))

    def relation_get(self, attribute=None, unit=None, rid=None, app=None):
        rid = rid or self._ctx["rid"]
        unit = unit or self._ctx["unit"]
        if unit == self.local_unit:
            bag = self.local.get(rid, {})
        else:
            bag = self.remote.get(rid, {}).get(unit, {})
        return dict(bag) if attribute is None else bag.get(attribute)

    def relation_set(self, relation_id=None, relation_settings=None, app=False, **kwargs):
        assert not app, "interfaces must only write unit databags"
        settings = {**(relation_settings or {}), **kwargs}
        self.relation_sets.append((relation_id, settings))
        bag = self.local[relation_id]
        for key, value in settings.items():
            if value is None or value == "":
                bag.pop(key, None)
            else:
                bag[key] = f"{value}"  # as charmhelpers' relation_set stringifies

    def log(self, message, level=None):
        self.logs.append(str(message))


def fresh_hook_process(monkeypatch, charm_dir: Path, metadata: dict) -> None:
    """What a new hook process starts with: a charm dir holding ``metadata``, empty hookenv
    caches, an in-memory unit kv, no endpoints and no registered handlers."""
    (charm_dir / "metadata.yaml").write_text(yaml.safe_dump(metadata))
    monkeypatch.setenv("JUJU_CHARM_DIR", str(charm_dir))
    monkeypatch.setenv("CHARM_DIR", str(charm_dir))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(hookenv, "cache", {})
    monkeypatch.setattr(hookenv, "_atexit", [])
    monkeypatch.setattr(unitdata, "_KV", unitdata.Storage(":memory:"))
    monkeypatch.setattr(Endpoint, "_endpoints", {})
    monkeypatch.setattr(bus.Handler, "_HANDLERS", {})


def patch_hook_tools(monkeypatch, fake: FakeJuju, **extra: Callable[..., Any]) -> None:
    """Replace charmhelpers' hook tools with ``fake``'s; ``extra`` adds (or overrides) tools."""
    tools: dict[str, Callable[..., Any]] = {
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
        **extra,
    }
    for name, func in tools.items():
        monkeypatch.setattr(hookenv, name, func)


def _load_interfaces(monkeypatch) -> None:
    """Fresh handler registry and interface modules, as in a new hook process.

    Modules are named as in a built charm (``relations.<interface>.<role>``, each interface a
    package so its relative imports work) and loaded by file path from the layer cache: the
    ones the charm's layer.yaml includes.
    """
    monkeypatch.setattr(bus.Handler, "_HANDLERS", {})
    _fresh_package(monkeypatch, "relations", [])
    for iface_dir in (INTERFACES / name for name in CHARM_INTERFACES):
        package = f"relations.{iface_dir.name}"
        _fresh_package(monkeypatch, package, [str(iface_dir)])
        for role in ("provides", "requires", "peers"):
            path = iface_dir / f"{role}.py"
            if not path.exists():
                continue
            name = f"{package}.{role}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            # charms.reactive looks up ``reactive.relations.*`` first, then ``relations.*``
            monkeypatch.setitem(sys.modules, name, module)
            monkeypatch.setitem(sys.modules, f"reactive.{name}", module)
            spec.loader.exec_module(module)


def _fresh_package(monkeypatch, name: str, search_path: list[str]) -> None:
    package = types.ModuleType(name)
    package.__path__ = search_path
    monkeypatch.setitem(sys.modules, name, package)
