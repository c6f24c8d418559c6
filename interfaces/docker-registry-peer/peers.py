"""Peers side of the docker-registry-peer interface (endpoint ``peer``).

Every unit publishes, JSON-encoded in its own unit databag, ``address`` (where its registry
answers for a proxy: the unit's ingress address) and ``port`` (its registry port). The leader
reads every unit (itself included) with ``units()`` to build the proxy's server list.

Flags (``{endpoint_name}`` expanded):

* ``endpoint.{endpoint_name}.joined`` (charms.reactive): at least one other unit is joined;
  ``endpoint.{endpoint_name}.changed[.address|.port]`` and ``.departed`` as charms.reactive
  gives them (this layer clears them after turning them into the flag below).
* ``{endpoint_name}.changed``: a peer published a new address/port or a peer left; the charm
  clears it once it has acted on ``units()``.
"""

from __future__ import annotations

from charmhelpers.core import hookenv
from charms.reactive import Endpoint, clear_flag, set_flag, when


def _unit_key(unit: str) -> tuple[int, str]:
    """Unit number order (``/2`` before ``/10``), not string order."""
    _, _, number = unit.rpartition("/")
    return (int(number) if number.isdigit() else 1 << 62, unit)


class DockerRegistryPeers(Endpoint):
    """Each unit's registry address and port, shared with its peers."""

    @when("endpoint.{endpoint_name}.changed")
    def _changed(self) -> None:
        set_flag(self.expand_name("{endpoint_name}.changed"))
        clear_flag(self.expand_name("endpoint.{endpoint_name}.changed"))
        clear_flag(self.expand_name("endpoint.{endpoint_name}.changed.address"))
        clear_flag(self.expand_name("endpoint.{endpoint_name}.changed.port"))

    @when("endpoint.{endpoint_name}.departed")
    def _departed(self) -> None:
        set_flag(self.expand_name("{endpoint_name}.changed"))
        self.all_departed_units.clear()
        clear_flag(self.expand_name("endpoint.{endpoint_name}.departed"))

    def publish(self, address: str, port: int) -> bool:
        """Publish this unit's ``address`` and ``port``; True when anything was rewritten."""
        changed = False
        for relation in self.relations:
            for key, value in (("address", address), ("port", int(port))):
                if relation.to_publish.get(key) != value:
                    relation.to_publish[key] = value
                    changed = True
        return changed

    def units(self, include_self: bool = True) -> list[tuple[str, str, int]]:
        """(unit name, address, port) of every unit that published both, by unit number.

        ``include_self``: this unit too (from what it published), so every unit computes the
        same list.
        """
        found: dict[str, tuple[str, int]] = {}
        for relation in self.relations:
            if include_self:
                mine = _entry(relation.to_publish)
                if mine:
                    found.setdefault(hookenv.local_unit(), mine)
            for unit in relation.joined_units:
                entry = _entry(unit.received)
                if entry:
                    found.setdefault(unit.unit_name, entry)
                elif unit.received.get("address") or unit.received.get("port"):
                    hookenv.log(f"peer {unit.unit_name} published an unusable address/port")
        return [(u, *found[u]) for u in sorted(found, key=_unit_key)]


def _entry(data) -> tuple[str, int] | None:
    """(address, port) when both are usable: a non-empty string and a port number."""
    address, port = data.get("address"), data.get("port")
    if not isinstance(address, str) or not address.strip():
        return None
    try:
        number = int(port)
    except (TypeError, ValueError):
        return None
    return (address, number) if 0 < number < 65536 else None
