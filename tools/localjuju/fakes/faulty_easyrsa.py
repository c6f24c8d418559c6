"""FAULT INJECTION: an easyrsa-like CA whose faults are config options (`fake:faulty-easyrsa`).

The model's CA is the real easyrsa charm (tests/support/charms.py); this fake exists only for
tests that need a CA to misbehave on demand: `mismatched-key=true` sends each server
certificate with another certificate's key, `generation=N` reissues every certificate
(rotation, which the real easyrsa does only when the SANs change).
It provides `client` on the tls-certificates interface with real certificates.

Wire format: the requirer writes `unit_name` (raw), a legacy first request
(`common_name`, `sans` JSON list, `certificate_name`) and further ones in `cert_requests` /
`client_cert_requests` JSON. Only the leader answers: `ca`, shared `client.cert`/`client.key`,
legacy answer `<unit_name>.server.cert`/`.server.key`, others as JSON
`<unit_name>.processed_requests` / `<unit_name>.processed_client_requests`.
A certificate is reissued only when its SANs change. Config `text-dump=true` prefixes every PEM
with an `openssl x509 -text`-like dump, as easyrsa does.
"""

from __future__ import annotations

import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..certs import ca_certificate, cert_pem, key_pem, leaf_certificate, new_key
from .base import Fake, FakeContext


class FaultyEasyRSAFake(Fake):
    ENDPOINTS = {"client": ("provides", "tls-certificates")}
    CONFIG = {
        "text-dump": {
            "type": "boolean",
            "default": False,
            "description": "prefix PEMs with a text dump",
        },
        "validity-days": {"type": "int", "default": 365, "description": "certificate lifetime"},
        "generation": {
            "type": "int",
            "default": 0,
            "description": "change it to reissue every certificate (rotation)",
        },
        "mismatched-key": {
            "type": "boolean",
            "default": False,
            "description": "a broken CA: send server certificates with another certificate's key",
        },
    }

    # --- CA --------------------------------------------------------------------------
    def ca(self):
        """(ca_cert, ca_key) of this application, created once and kept in the fake dir."""
        stored = self.load("ca.json")
        if stored:
            return (
                x509.load_pem_x509_certificate(stored["cert"].encode()),
                serialization.load_pem_private_key(stored["key"].encode(), None),
            )
        key = new_key("rsa")
        cert = ca_certificate(key, f"{self.app} local CA", days=3650, easyrsa=True)
        self.save("ca.json", {"cert": cert_pem(cert), "key": key_pem(key, pkcs1=True)})
        (self.model.fake_dir(self.app) / "ca.crt").write_text(cert_pem(cert))
        return cert, key

    def issue(self, cn: str, sans: list[str], client: bool, days: int) -> tuple[str, str]:
        ca_cert, ca_key = self.ca()
        key = new_key("rsa")
        cert = leaf_certificate(
            ca_key,
            ca_cert,
            key,
            cn,
            list(dict.fromkeys(sans or [cn])),
            days=days,
            usages=("client",) if client else ("server",),
            easyrsa=True,
        )
        return cert_pem(cert), key_pem(key, pkcs1=True)

    def _pem(self, ctx: FakeContext, pem: str) -> str:
        if not ctx.config.get("text-dump"):
            return pem
        cert = x509.load_pem_x509_certificate(pem.encode())
        dump = (
            "Certificate:\n    Data:\n        Version: 3 (0x2)\n"
            f"        Serial Number: {cert.serial_number:x}\n"
            f"        Issuer: {cert.issuer.rfc4514_string()}\n"
            f"        Subject: {cert.subject.rfc4514_string()}\n"
        )
        return dump + pem

    # --- events ----------------------------------------------------------------------
    def on_install(self, ctx: FakeContext) -> None:
        if ctx.is_leader:
            self.ca()
        ctx.set_status("active", "Certificate Authority ready." if ctx.is_leader else "")

    def on_leader_elected(self, ctx: FakeContext) -> None:
        self.ca()
        ctx.set_status("active", "Certificate Authority ready.")
        for rid in ctx.relation_ids("client"):
            self.answer(ctx, rid)

    def on_relation(self, ctx: FakeContext) -> None:
        rid = ctx.relation_id
        if rid is not None and ctx.kind in ("created", "joined", "changed") and ctx.is_leader:
            self.answer(ctx, rid)

    def on_config_changed(self, ctx: FakeContext) -> None:
        if ctx.is_leader:
            for rid in ctx.relation_ids("client"):
                self.answer(ctx, rid)

    def answer(self, ctx: FakeContext, rid: int) -> None:
        ca_cert, _ = self.ca()
        issued = self.load("issued.json", {})
        days = int(ctx.config.get("validity-days") or 365)
        generation = int(ctx.config.get("generation") or 0)
        out = {"ca": self._pem(ctx, cert_pem(ca_cert))}
        if "client" not in issued:
            cert, key = self.issue("client", ["client"], True, days)
            issued["client"] = {"sans": ["client"], "cert": cert, "key": key}
        out["client.cert"] = self._pem(ctx, issued["client"]["cert"])
        out["client.key"] = issued["client"]["key"]
        for unit in ctx.related_units(rid):
            data = ctx.received(rid, unit)
            name = data.get("unit_name")
            if not name:
                continue

            def get(cn, sans, client=False, _name=name):
                slot = f"{_name}/{'client' if client else 'server'}/{cn}"
                sans = list(sans or [])
                have = issued.get(slot)
                # reissue only when the SANs change, or on rotation (generation)
                if not have or have["sans"] != sans or have.get("generation", 0) != generation:
                    cert, key = self.issue(cn, sans, client, days)
                    issued[slot] = have = {
                        "sans": sans,
                        "cert": cert,
                        "key": key,
                        "generation": generation,
                    }
                    ctx.log(
                        f"issued {'client' if client else 'server'} certificate {cn} "
                        f"for {_name} sans={sans}"
                    )
                return {"cert": self._pem(ctx, have["cert"]), "key": have["key"]}

            cn = data.get("common_name")
            if cn:
                answer = get(cn, _json_list(data.get("sans")))
                out[f"{name}.server.cert"] = answer["cert"]
                out[f"{name}.server.key"] = answer["key"]
                if ctx.config.get("mismatched-key"):
                    out[f"{name}.server.key"] = issued["client"]["key"]
            reqs = _json_dict(data.get("cert_requests"))
            if reqs:
                out[f"{name}.processed_requests"] = json.dumps(
                    {c: get(c, (r or {}).get("sans")) for c, r in sorted(reqs.items())},
                    sort_keys=True,
                )
            creqs = _json_dict(data.get("client_cert_requests"))
            if creqs:
                out[f"{name}.processed_client_requests"] = json.dumps(
                    {
                        c: get(c, (r or {}).get("sans"), client=True)
                        for c, r in sorted(creqs.items())
                    },
                    sort_keys=True,
                )
        self.save("issued.json", issued)
        current = ctx.published(rid)
        ctx.set_many(rid, {k: v for k, v in out.items() if current.get(k) != v})


def _json_list(raw):
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _json_dict(raw):
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
