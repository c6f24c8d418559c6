"""Real X.509 material made with `cryptography`: a CA and certificates it signs.

One implementation for the faulty-easyrsa fake (RSA keys in PKCS#1 PEM and the extensions
easyrsa's certificates carry) and the tests (tests/support/certs.py re-exports the helpers
below: quick EC keys, only the extensions a test needs). It lives here, not in tests/, so that
the local model never imports the test tree.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
KeyKind = Literal["ec", "rsa"]
USAGES = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
# not-before lies a little in the past, so that a peer whose clock is behind accepts it
BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Pair:
    cert: str
    key: str


def new_key(kind: KeyKind = "ec") -> PrivateKey:
    # EC is fast (tests make hundreds); easyrsa makes 2048-bit RSA keys
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey, *, pkcs1: bool = False) -> str:
    """PKCS#8 PEM, or with pkcs1 the traditional `BEGIN RSA PRIVATE KEY` easyrsa writes."""
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if pkcs1
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.NoEncryption()
    ).decode()


def cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def general_name(value: str) -> x509.GeneralName:
    """A SAN entry: an IP address if it parses as one, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def ca_certificate(
    key: PrivateKey, name: str, *, days: int = 30, easyrsa: bool = False
) -> x509.Certificate:
    """A self-signed CA; easyrsa adds key usage and a subject key identifier."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = _now() - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + BACKDATE + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if easyrsa:
        builder = builder.add_extension(
            # digitalSignature, keyCertSign, cRLSign
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
            critical=True,
        ).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    return builder.sign(key, hashes.SHA256())


def leaf_certificate(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    key: PrivateKey,
    cn: str,
    sans: list[str],
    *,
    days: int = 30,
    not_before_days: int = 0,
    usages: tuple[str, ...] = ("server", "client"),
    easyrsa: bool = False,
) -> x509.Certificate:
    """A certificate for `cn` signed by the CA; no SAN extension when `sans` is empty.

    easyrsa adds basicConstraints CA:FALSE and the authority key identifier.
    """
    start = _now() - BACKDATE + datetime.timedelta(days=not_before_days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
    )
    if easyrsa:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([USAGES[u] for u in usages]), critical=False
    )
    if easyrsa:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([general_name(s) for s in sans]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())


# --- the tests' short forms (tests/support/certs.py) ----------------------------------------
def make_ca(name: str = "test-ca") -> tuple[Pair, PrivateKey, x509.Certificate]:
    key = new_key()
    cert = ca_certificate(key, name)
    return Pair(cert_pem(cert), key_pem(key)), key, cert


def make_server_cert(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    cn: str,
    sans: list[str],
    *,
    days: int = 30,
    not_before_days: int = 0,
    usages: tuple[str, ...] = ("server", "client"),
) -> Pair:
    key = new_key()
    cert = leaf_certificate(
        ca_key, ca_cert, key, cn, sans, days=days, not_before_days=not_before_days, usages=usages
    )
    return Pair(cert_pem(cert), key_pem(key))


def make_client_cert(
    ca_key: PrivateKey, ca_cert: x509.Certificate, cn: str = "client", **kw: int
) -> Pair:
    """A client certificate (extended key usage: client auth only), as easyrsa's client.cert."""
    return make_server_cert(ca_key, ca_cert, cn, [], usages=("client",), **kw)
