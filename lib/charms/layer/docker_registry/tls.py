"""TLS material: PEM parsing and checks, SANs (pure; uses the cryptography package)."""

from __future__ import annotations

import datetime
import ipaddress
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\s+[A-Za-z0-9+/=\s]+?-----END \1-----", re.MULTILINE
)


# what cryptography raises when it parses a malformed extension (lazily, on first access)
_BAD_EXTENSIONS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def pem_blocks(text: str, kind: str = "CERTIFICATE") -> list[str]:
    """The PEM blocks of one kind in ``text`` (drops e.g. an `openssl -text` dump before them)."""
    return [
        m.group(0).strip() + "\n" for m in _PEM_BLOCK_RE.finditer(text or "") if m.group(1) == kind
    ]


def load_certs(text: str) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(b.encode()) for b in pem_blocks(text)]


def _public_bytes(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    public_key = issuer.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
            )
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except Exception:  # noqa: BLE001 - any verification failure means "not signed by"
        return False
    return True


def _pair_problem(cert: str, key: str, ca: str, now) -> tuple[str, str] | None:
    """Why a certificate/key pair is unusable, as (which part, why); None when usable.

    Parts: "cert", "key", "ca". The leaf must match the key, be valid now and, when ``ca`` is
    given, be signed by it (or by an intermediate that follows the leaf).
    """
    try:
        certs = load_certs(cert)
    except ValueError:
        return "cert", "is not a valid PEM certificate"
    if not certs:
        return "cert", "contains no PEM certificate"
    key_pems = [b for b in _PEM_BLOCK_RE.finditer(key) if b.group(1).endswith("PRIVATE KEY")]
    if not key_pems:
        return "key", "contains no PEM private key"
    try:
        private_key = serialization.load_pem_private_key(key_pems[0].group(0).encode(), None)
    except (ValueError, TypeError):
        return "key", "is not a valid unencrypted PEM private key"
    leaf = certs[0]
    if _public_bytes(private_key.public_key()) != _public_bytes(leaf.public_key()):
        return "key", "does not match the certificate"
    if leaf.not_valid_after_utc < now:
        return "cert", "has expired"
    if leaf.not_valid_before_utc > now:
        return "cert", "is not valid yet"
    if ca:
        try:
            cas = load_certs(ca)
        except ValueError:
            return "ca", "is not a valid PEM certificate"
        if not cas:
            return "ca", "contains no PEM certificate"
        if not any(_signed_by(leaf, issuer) for issuer in certs[1:] + cas):
            return "cert", "is not signed by the CA"
    return None


_BLOB_OPTIONS = {"cert": "tls-cert-blob", "key": "tls-key-blob", "ca": "tls-ca-blob"}
_BLOB_WHY = {
    "does not match the certificate": "does not match the certificate in tls-cert-blob",
    "is not signed by the CA": "is not signed by the CA in tls-ca-blob",
    "has expired": "the certificate has expired",
    "is not valid yet": "the certificate is not valid yet",
}
_SERVER_PARTS = {"cert": "certificate", "key": "key", "ca": "CA"}
_CLIENT_PARTS = {"cert": "client certificate", "key": "client key", "ca": "CA"}


def _named(problem: tuple[str, str], parts: dict[str, str]) -> str:
    """``(part, why)`` from _pair_problem as one sentence: "the <part's name> <why>"."""
    part, why = problem
    return f"the {parts[part]} {why}"


def blob_problem(*, cert: str, key: str, ca: str = "", now=None) -> tuple[str, str] | None:
    """Check TLS material given by config; returns (option, why) or None when usable."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    problem = _pair_problem(cert, key, ca, now)
    if problem is None:
        return None
    part, why = problem
    return _BLOB_OPTIONS[part], _BLOB_WHY.get(why, why)


def server_pair_problem(*, cert: str, key: str, ca: str, now=None) -> str | None:
    """Why a server certificate and key (e.g. from cert-provider) cannot be served with ``ca``
    given to clients; None when they can. The registry refuses to start on a key that does not
    match, and clients refuse a certificate that is expired or not from the CA."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    problem = _pair_problem(cert, key, ca, now)
    return None if problem is None else _named(problem, _SERVER_PARTS)


def client_pair_problem(*, cert: str, key: str, ca: str, now=None) -> str | None:
    """Why a client certificate cannot authenticate to a registry trusting ``ca`` (None: it can).

    Besides the pair checks, an extended key usage, when present, must allow client auth.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    problem = _pair_problem(cert, key, ca, now)
    if problem is not None:
        return _named(problem, _CLIENT_PARTS)
    leaf = load_certs(cert)[0]
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    except _BAD_EXTENSIONS:
        return "the client certificate has extensions that cannot be read"
    if x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return "the client certificate is not for client authentication (extended key usage)"
    return None


def cert_sans(cert_pem: str) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses) a certificate is valid for."""
    certs = load_certs(cert_pem)
    if not certs:
        return set(), set()
    try:
        ext = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    except _BAD_EXTENSIONS:
        return set(), set()  # unreadable extensions cover nothing
    dns = {name.lower() for name in ext.get_values_for_type(x509.DNSName)}
    ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return dns, ips


def covers(cert_pem: str, host: str) -> bool:
    """Whether the certificate is valid for ``host`` (a name or an IP, no brackets)."""
    dns, ips = cert_sans(cert_pem)
    host = host.strip("[]").lower()
    try:
        return str(ipaddress.ip_address(host)) in ips
    except ValueError:
        pass
    if host in dns:
        return True
    _first, _, rest = host.partition(".")
    return bool(rest) and f"*.{rest}" in dns


def private_key_block(text: str) -> str:
    """The first private key PEM block in ``text`` (PKCS#8, RSA or EC), "" if none."""
    for match in _PEM_BLOCK_RE.finditer(text or ""):
        if match.group(1).endswith("PRIVATE KEY"):
            return match.group(0).strip() + "\n"
    return ""
