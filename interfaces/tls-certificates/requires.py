"""Requires side of the tls-certificates interface (our charm, endpoint ``cert-provider``).

Wire-compatible with the easyrsa and vault charms:

* we write ``unit_name`` (raw, ``app_N``); the first server request as the legacy raw keys
  ``common_name`` / ``certificate_name`` plus ``sans`` (JSON list); further server requests as
  ``cert_requests`` (JSON ``{cn: {"sans": [...]}}``);
* the provider writes ``ca`` / ``chain`` (raw PEM, easyrsa may prefix an ``openssl x509 -text``
  dump), ``<unit_name>.server.cert`` / ``.server.key`` (raw) for the legacy request and
  ``<unit_name>.processed_requests`` (JSON ``{cn: {"cert": ..., "key": ...}}``) for the others,
  and a shared client certificate ``client.cert`` / ``client.key`` (raw).

Flags (``{endpoint_name}`` expanded):

* ``{endpoint_name}.available``: joined to a CA.
* ``{endpoint_name}.ca.available``: a CA certificate was received.
* ``{endpoint_name}.ca.changed``: CA or chain changed (set only; the charm clears it).
* ``{endpoint_name}.server.certs.available`` / ``{endpoint_name}.certs.available``: at least
  one server certificate with its key was received.
* ``{endpoint_name}.server.certs.changed`` / ``{endpoint_name}.certs.changed``: server cert/key
  data changed (set only; the charm clears them).

All flags are cleared when the relation is gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from charmhelpers.core import hookenv
from charms.reactive import (
    Endpoint,
    clear_flag,
    data_changed,
    set_flag,
    toggle_flag,
    when,
    when_not,
)
from charms.reactive.endpoints import UnitDataView

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)

LEGACY_CN = "common_name"
LEGACY_SANS = "sans"
LEGACY_NAME = "certificate_name"
SERVER_REQUESTS = "cert_requests"


def pem_only(text: str | None) -> str | None:
    """Return only the PEM blocks of ``text`` (dropping e.g. an ``openssl -text`` dump).

    Returns None when ``text`` is empty or holds no PEM block.
    """
    if not text:
        return None
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text.replace("\r\n", "\n"))]
    return "\n".join(blocks) + "\n" if blocks else None


@dataclass(frozen=True)
class Certificate:
    """A server certificate issued for ``common_name``; the key is kept out of ``repr``."""

    common_name: str
    cert: str
    key: str = field(repr=False)
    cert_type: str = "server"


class TlsRequires(Endpoint):
    """Our side of ``tls-certificates``: request server certs, read CA and certs."""

    # -- flag management -------------------------------------------------------------------

    @when("endpoint.{endpoint_name}.joined")
    def _joined(self) -> None:
        self._publish_raw("unit_name", self._unit_name)
        set_flag(self.expand_name("{endpoint_name}.available"))

        ca = self.get_ca()
        toggle_flag(self.expand_name("{endpoint_name}.ca.available"), bool(ca))
        if data_changed(self._state_key("ca"), [ca, self.get_chain()]) and ca:
            set_flag(self.expand_name("{endpoint_name}.ca.changed"))

        certs = self.server_certs
        for prefix in ("{endpoint_name}.server.certs", "{endpoint_name}.certs"):
            toggle_flag(self.expand_name(prefix + ".available"), bool(certs))
        snapshot = sorted([c.common_name, c.cert, c.key] for c in certs)
        if data_changed(self._state_key("server.certs"), snapshot) and certs:
            set_flag(self.expand_name("{endpoint_name}.server.certs.changed"))
            set_flag(self.expand_name("{endpoint_name}.certs.changed"))

    @when_not("endpoint.{endpoint_name}.joined")
    def _broken(self) -> None:
        for suffix in (
            "available",
            "ca.available",
            "ca.changed",
            "server.certs.available",
            "server.certs.changed",
            "certs.available",
            "certs.changed",
        ):
            clear_flag(self.expand_name("{endpoint_name}." + suffix))
        # forget what we saw, so a new CA relation raises the changed flags again
        data_changed(self._state_key("ca"), None)
        data_changed(self._state_key("server.certs"), None)

    # -- requests --------------------------------------------------------------------------

    def request_server_cert(
        self, cn: str, sans: list[str] | None = None, cert_name: str | None = None
    ) -> None:
        """Request (or re-request with new SANs) a server certificate for ``cn``.

        The first common name goes in the legacy keys every CA understands; others go in
        ``cert_requests``.  Call it while ``{endpoint_name}.available`` is set.
        """
        sans = list(sans or [])
        changed = False
        for relation in self.relations:
            published_cn = relation.to_publish_raw[LEGACY_CN]
            if published_cn in (None, "", cn):
                name = cert_name or relation.to_publish_raw[LEGACY_NAME] or cn
                changed |= published_cn != cn
                _set(relation.to_publish_raw, LEGACY_CN, cn)
                _set(relation.to_publish_raw, LEGACY_NAME, name)
                if relation.to_publish[LEGACY_SANS] != sans:
                    relation.to_publish[LEGACY_SANS] = sans
                    changed = True
            else:
                requests = dict(relation.to_publish[SERVER_REQUESTS] or {})
                if requests.get(cn) != {"sans": sans}:
                    requests[cn] = {"sans": sans}
                    relation.to_publish[SERVER_REQUESTS] = requests
                    changed = True
        if changed:  # requested on every hook; only a new request is worth a log line
            hookenv.log(f"Requested a server certificate for {cn} (SANs: {', '.join(sans)})")

    # -- received data ---------------------------------------------------------------------

    def get_ca(self) -> str | None:
        """The CA certificate (PEM blocks only), or None."""
        return pem_only(self._received_raw("ca"))

    def get_chain(self) -> str | None:
        """The CA chain (PEM blocks only), or None."""
        return pem_only(self._received_raw("chain"))

    root_ca_cert = property(get_ca)
    root_ca_chain = property(get_chain)

    @property
    def server_certs(self) -> list[Certificate]:
        """Server certificates (with keys) received for our requests, legacy one first."""
        certs: dict[str, Certificate] = {}
        cert, key = self.get_server_cert()
        legacy_cn = self._published_raw(LEGACY_CN)
        if cert and key and legacy_cn:
            certs[legacy_cn] = Certificate(legacy_cn, cert, key)
        for unit in self.all_joined_units:
            processed = unit.received[f"{self._unit_name}.processed_requests"]
            if not isinstance(processed, dict):
                continue
            for cn, data in processed.items():
                if cn in certs or not isinstance(data, dict):
                    continue
                cert = pem_only(data.get("cert"))
                if cert and data.get("key"):
                    certs[cn] = Certificate(cn, cert, data["key"])
        return list(certs.values())

    @property
    def server_certs_map(self) -> dict[str, Certificate]:
        """Server certificates by common name."""
        return {c.common_name: c for c in self.server_certs}

    def get_client_cert(self) -> tuple[str | None, str | None]:
        """The provider's shared client certificate (PEM blocks only) and key, or (None, None).

        easyrsa and vault publish one ``client.cert`` / ``client.key`` pair to every requirer.
        """
        cert = pem_only(self._received_raw("client.cert"))
        key = self._received_raw("client.key")
        if cert and key:
            return cert, key
        return None, None

    def get_server_cert(self) -> tuple[str | None, str | None]:
        """Cert (PEM blocks only) and key answering the legacy request, or (None, None)."""
        cert = pem_only(self._received_raw(f"{self._unit_name}.server.cert"))
        key = self._received_raw(f"{self._unit_name}.server.key")
        if cert and key:
            return cert, key
        return None, None

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _unit_name(self) -> str:
        return hookenv.local_unit().replace("/", "_")

    def _state_key(self, what: str) -> str:
        return f"tls-certificates.requires.{self.endpoint_name}.{what}"

    def _received_raw(self, key: str) -> str | None:
        """First non-empty raw value of ``key`` over all remote units (relation, unit order)."""
        for unit in self.all_joined_units:
            value = unit.received_raw[key]
            if value:
                return value
        return None

    def _published_raw(self, key: str) -> str | None:
        for relation in self.relations:
            value = relation.to_publish_raw[key]
            if value:
                return value
        return None

    def _publish_raw(self, key: str, value: str) -> None:
        for relation in self.relations:
            _set(relation.to_publish_raw, key, value)


def _set(view: UnitDataView, key: str, value: str) -> None:
    """Assign only when different, so an unchanged databag is not rewritten."""
    if view[key] != value:
        view[key] = value
