"""Provides side of the http interface (our charm, endpoint ``website``).

Wire-compatible with haproxy's ``reverseproxy`` endpoint: we write raw ``hostname``,
``private-address``, ``port`` and ``services`` (a YAML list of
``{service_name, service_host, service_port, service_options, servers}``); haproxy writes
back ``public-address`` (and ``ssl_cert``).

Flags (``{endpoint_name}`` expanded):

* ``{endpoint_name}.available``: while at least one proxy unit is joined.
* ``{endpoint_name}.changed``: a proxy unit's data changed or a unit left (the charm clears
  it).
"""

from __future__ import annotations

from typing import Any

import yaml
from charmhelpers.core import hookenv
from charms.reactive import Endpoint, clear_flag, set_flag, when, when_not


class HttpProvides(Endpoint):
    """Publish our HTTP backend(s) to reverse proxies."""

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

    def publish_services(
        self, services: list[dict[str, Any]], hostname: str, private_address: str, port: int
    ) -> None:
        """Publish ``services`` (haproxy's YAML list) and our address on every relation."""
        self._publish(
            {
                "hostname": hostname,
                "private-address": private_address,
                "port": str(port),
                "services": yaml.safe_dump(services, default_flow_style=False),
            }
        )

    def configure(
        self, port: int, private_address: str | None = None, hostname: str | None = None
    ) -> None:
        """Publish a single backend at ``private_address:port`` (haproxy builds the service)."""
        private_address = private_address or hookenv.unit_get("private-address")
        self._publish(
            {
                "hostname": hostname or private_address,
                "private-address": private_address,
                "port": str(port),
                "services": None,  # None unsets the key
            }
        )

    def withdraw(self) -> None:
        """Publish nothing (a non-leader, when only the leader speaks for the application)."""
        self._publish({"hostname": None, "private-address": None, "port": None, "services": None})

    def proxy_addresses(self) -> list[str]:
        """The ``public-address`` values the proxy units wrote back (unique, in unit order)."""
        addresses: list[str] = []
        for unit in self.all_joined_units:
            address = unit.received_raw["public-address"]
            if address and address not in addresses:
                addresses.append(address)
        return addresses

    def _publish(self, data: dict[str, str | None]) -> None:
        for relation in self.relations:
            for key, value in data.items():
                if relation.to_publish_raw[key] != value:
                    relation.to_publish_raw[key] = value
