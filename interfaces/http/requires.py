"""Requires side of the http interface (a reverse proxy; used by our haproxy-like test fake).

Reads what haproxy's ``reverseproxy`` endpoint reads (raw ``hostname``, ``private-address``,
``port`` and the YAML ``services`` list) and writes back raw ``public-address``.

Flags (``{endpoint_name}`` expanded):

* ``{endpoint_name}.available``: while at least one backend unit is joined.
* ``{endpoint_name}.changed``: a backend's data changed or a unit left (the charm clears it).
"""

from __future__ import annotations

from typing import Any

import yaml
from charms.reactive import Endpoint, clear_flag, set_flag, when, when_not


class HttpRequires(Endpoint):
    """Read HTTP backends published by related units."""

    @when("endpoint.{endpoint_name}.joined")
    def _joined(self) -> None:
        set_flag(self.expand_name("{endpoint_name}.available"))

    @when("endpoint.{endpoint_name}.changed")
    def _changed(self) -> None:
        set_flag(self.expand_name("{endpoint_name}.changed"))
        clear_flag(self.expand_name("endpoint.{endpoint_name}.changed"))

    @when("endpoint.{endpoint_name}.departed")
    def _departed(self) -> None:
        set_flag(self.expand_name("{endpoint_name}.changed"))
        self.all_departed_units.clear()
        clear_flag(self.expand_name("endpoint.{endpoint_name}.departed"))

    @when_not("endpoint.{endpoint_name}.joined")
    def _broken(self) -> None:
        clear_flag(self.expand_name("{endpoint_name}.available"))

    def services(self) -> list[dict[str, Any]]:
        """Per remote unit that published a port or services: its parsed data.

        Each item: ``unit_name``, ``hostname``, ``private-address``, ``port`` (int or None)
        and ``services`` (list, empty when absent or unparsable).
        """
        result = []
        for unit in self.all_joined_units:
            raw = unit.received_raw
            if not (raw["port"] or raw["services"]):
                continue
            result.append(
                {
                    "unit_name": unit.unit_name,
                    "hostname": raw["hostname"],
                    "private-address": raw["private-address"],
                    "port": _int_or_none(raw["port"]),
                    "services": _yaml_list(raw["services"]),
                }
            )
        return result

    def set_public_address(self, address: str) -> None:
        """Tell every backend the address clients reach the proxy at."""
        for relation in self.relations:
            if relation.to_publish_raw["public-address"] != address:
                relation.to_publish_raw["public-address"] = address


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _yaml_list(text: str | None) -> list[Any]:
    if not text:
        return []
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    return parsed if isinstance(parsed, list) else []
