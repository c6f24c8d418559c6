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

import datetime
import ipaddress
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .base import Fake, FakeContext


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def _cert_pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _san(value: str):
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


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
        key = _key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{self.app} local CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        self.save("ca.json", {"cert": _cert_pem(cert), "key": _key_pem(key)})
        (self.model.fake_dir(self.app) / "ca.crt").write_text(_cert_pem(cert))
        return cert, key

    def issue(self, cn: str, sans: list[str], client: bool, days: int) -> tuple[str, str]:
        ca_cert, ca_key = self.ca()
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH]
                    if client
                    else [ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        names = [_san(s) for s in dict.fromkeys(sans or [cn])]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return _cert_pem(cert), _key_pem(key)

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
        if ctx.kind in ("created", "joined", "changed") and ctx.is_leader:
            self.answer(ctx, ctx.relation_id)

    def on_config_changed(self, ctx: FakeContext) -> None:
        if ctx.is_leader:
            for rid in ctx.relation_ids("client"):
                self.answer(ctx, rid)

    def answer(self, ctx: FakeContext, rid: int) -> None:
        ca_cert, _ = self.ca()
        issued = self.load("issued.json", {})
        days = int(ctx.config.get("validity-days") or 365)
        generation = int(ctx.config.get("generation") or 0)
        out = {"ca": self._pem(ctx, _cert_pem(ca_cert))}
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
