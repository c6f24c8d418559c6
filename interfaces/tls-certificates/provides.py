"""Provides side of the tls-certificates interface (a CA; used by our test fake CA charm).

Reads what easyrsa/vault read and writes what they write (see requires.py for the keys).

Flags (``{endpoint_name}`` expanded), as the upstream interface layer sets them:

* ``{endpoint_name}.available``: any client joined.
* ``{endpoint_name}.certs.requested``: server requests without a current answer.
* ``{endpoint_name}.server.certs.requested``: the same (only server certs are supported).
* ``{endpoint_name}.server.cert.requested``: legacy alias of the previous flag.

A request counts as answered once ``set_server_cert`` published a cert for it with the SANs
it currently asks for; changed SANs make it new again (easyrsa reissues then).
"""

from __future__ import annotations

from dataclasses import dataclass

from charmhelpers.core import hookenv, unitdata
from charms.reactive import Endpoint, clear_flag, set_flag, toggle_flag, when, when_not

_REQUESTED_SUFFIXES = ("certs.requested", "server.certs.requested", "server.cert.requested")


@dataclass(frozen=True)
class CertRequest:
    """One server certificate request of one remote unit."""

    relation_id: str
    unit_name: str  # as published by the requirer, e.g. ``docker-registry_0``
    common_name: str
    sans: tuple[str, ...]
    cert_name: str | None
    legacy: bool  # asked via the legacy top-level keys (answer goes in raw keys)


class TlsProvides(Endpoint):
    """CA side of ``tls-certificates``."""

    @when("endpoint.{endpoint_name}.joined")
    def _joined(self) -> None:
        set_flag(self.expand_name("{endpoint_name}.available"))
        self._toggle_requested()

    @when_not("endpoint.{endpoint_name}.joined")
    def _broken(self) -> None:
        clear_flag(self.expand_name("{endpoint_name}.available"))
        for suffix in _REQUESTED_SUFFIXES:
            clear_flag(self.expand_name("{endpoint_name}." + suffix))

    # -- requests --------------------------------------------------------------------------

    @property
    def all_requests(self) -> list[CertRequest]:
        """Every server request of every joined unit (legacy one first per unit)."""
        requests = []
        for unit in self.all_joined_units:
            raw, decoded = unit.received_raw, unit.received
            unit_name = raw["unit_name"] or unit.unit_name.replace("/", "_")
            rid = unit.relation.relation_id
            if raw["common_name"]:
                requests.append(
                    CertRequest(
                        rid,
                        unit_name,
                        raw["common_name"],
                        tuple(_str_list(decoded["sans"])),
                        raw["certificate_name"],
                        legacy=True,
                    )
                )
            batch = decoded["cert_requests"]
            for cn, req in (batch if isinstance(batch, dict) else {}).items():
                sans = req.get("sans") if isinstance(req, dict) else None
                requests.append(CertRequest(rid, unit_name, cn, tuple(_str_list(sans)), cn, False))
        return requests

    @property
    def new_requests(self) -> list[CertRequest]:
        """Requests not answered yet, or answered for other SANs."""
        return [r for r in self.all_requests if _answered(self._kv_key(r)) != list(r.sans)]

    new_server_requests = new_requests

    # -- answers ---------------------------------------------------------------------------

    def set_ca(self, pem: str) -> None:
        """Publish the CA certificate (raw) to every client."""
        for relation in self.relations:
            relation.to_publish_raw["ca"] = pem

    def set_chain(self, pem: str) -> None:
        """Publish the CA chain (raw) to every client."""
        for relation in self.relations:
            relation.to_publish_raw["chain"] = pem

    def set_server_cert(self, unit_name: str, cn: str, cert: str, key: str) -> None:
        """Answer the request of ``unit_name`` (``app_N`` or ``app/N``) for ``cn``.

        Raises KeyError when that unit made no such request.
        """
        unit_name = unit_name.replace("/", "_")
        matches = [r for r in self.all_requests if (r.unit_name, r.common_name) == (unit_name, cn)]
        if not matches:
            raise KeyError(f"no server certificate request from {unit_name} for {cn}")
        for request in matches:
            relation = self.relations[request.relation_id]
            if request.legacy:
                relation.to_publish_raw[f"{unit_name}.server.cert"] = cert
                relation.to_publish_raw[f"{unit_name}.server.key"] = key
            else:
                published_key = f"{unit_name}.processed_requests"
                processed = dict(relation.to_publish[published_key] or {})
                processed[cn] = {"cert": cert, "key": key}
                relation.to_publish[published_key] = processed
            unitdata.kv().set(self._kv_key(request), list(request.sans))
        hookenv.log(f"Published a server certificate for {unit_name} ({cn})")
        self._toggle_requested()

    # -- helpers ---------------------------------------------------------------------------

    def _kv_key(self, request: CertRequest) -> str:
        return ".".join(
            (
                "tls-certificates.provides",
                request.relation_id,
                request.unit_name,
                request.common_name,
            )
        )

    def _toggle_requested(self) -> None:
        pending = bool(self.new_requests)
        for suffix in _REQUESTED_SUFFIXES:
            toggle_flag(self.expand_name("{endpoint_name}." + suffix), pending)


def _answered(kv_key: str) -> list[str] | None:
    return unitdata.kv().get(kv_key)


def _str_list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
