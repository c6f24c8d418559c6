"""Requires side of the docker-registry interface (client charms, our test fake client).

The registry publishes JSON-encoded ``registry_netloc``, ``registry_url``, ``basic_user``,
``basic_password`` and ``tls_ca``; the client writes nothing.

Flags (``{endpoint_name}`` expanded):

* ``endpoint.{endpoint_name}.ready``: a registry unit published ``registry_netloc``;
  cleared when it is gone or the relation is broken.
"""

from __future__ import annotations

from typing import Any

from charms.reactive import Endpoint, clear_flag, toggle_flag, when, when_not

FIELDS = ("registry_netloc", "registry_url", "basic_user", "basic_password", "tls_ca")


class DockerRegistryRequires(Endpoint):
    """Read the registry data published by the docker-registry charm."""

    @when("endpoint.{endpoint_name}.joined")
    def _joined(self) -> None:
        toggle_flag(self.expand_name("ready"), self.registry_data() is not None)

    @when_not("endpoint.{endpoint_name}.joined")
    def _broken(self) -> None:
        clear_flag(self.expand_name("ready"))

    def registry_data(self) -> dict[str, Any] | None:
        """Decoded data of the first registry unit that published ``registry_netloc``."""
        for unit in self.all_joined_units:
            received = unit.received
            if received["registry_netloc"]:
                return {name: received[name] for name in FIELDS}
        return None
