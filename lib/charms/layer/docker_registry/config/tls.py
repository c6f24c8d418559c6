"""TLS material: PEM blocks, SANs and the checks on certificates and keys, done by `openssl`.

No Python crypto package: the charm's wheelhouse must install without a compiler or network on
every Ubuntu architecture, and the openssl tool is on every Ubuntu. PEM data reaches openssl on
stdin or in a private temporary file, never in argv (any local user can read argv in ps).
Certificates are public, so what openssl says about one is cached per process: a hook checks
the same few certificates several times.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import ipaddress
import re
import subprocess
import tempfile
from dataclasses import dataclass, field

from charms.layer.docker_registry.errors import InstallError

OPENSSL = "openssl"
OPENSSL_TIMEOUT = 30

# The one PEM pattern of the lib: base64 lines only, so encrypted legacy PEM (with headers such
# as Proc-Type) does not match.
_PEM_BLOCK_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\s+[A-Za-z0-9+/=\s]+?-----END \1-----", re.MULTILINE
)

# -text without the parts the checks do not use; ext_error prints "<Parse Error>" for an
# extension openssl knows but cannot decode (the default prints its raw bytes as if text).
_CERTOPT = (
    "no_header,no_version,no_serial,no_validity,no_subject,no_issuer,no_pubkey,no_sigdump,"
    "no_aux,ext_error"
)
# Issuers' signatures the checks accept: RSA, ECDSA and Ed25519. Go's crypto/x509 (the registry,
# docker) cannot verify Ed448 or DSA, which openssl verify would accept.
_VERIFIABLE_SIGNATURES = re.compile(
    r"(sha(1|224|256|384|512)WithRSAEncryption|rsassaPss|ecdsa-with-SHA(1|224|256|384|512)"
    r"|ED25519)"
)
_UNREADABLE = "<Parse Error>"  # what ext_error prints in place of such an extension
_SAN = "X509v3 Subject Alternative Name"
_EKU = "X509v3 Extended Key Usage"
_CLIENT_AUTH = "TLS Web Client Authentication"
# openssl prints English month names whatever the locale
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_DATE_RE = re.compile(r"([A-Z][a-z]{2}) +(\d+) (\d+):(\d+):(\d+)(?:\.\d+)? (\d+) GMT")


def has_pem(text: str | None) -> bool:
    """Whether ``text`` holds at least one PEM block, of any kind."""
    return bool(_PEM_BLOCK_RE.search(text or ""))


def pem_blocks(text: str | None, kind: str = "CERTIFICATE") -> list[str]:
    """The PEM blocks of one kind in ``text`` (drops e.g. an `openssl -text` dump before them)."""
    return [
        m.group(0).strip() + "\n" for m in _PEM_BLOCK_RE.finditer(text or "") if m.group(1) == kind
    ]


def pem_text(text: str | None, kind: str = "CERTIFICATE") -> str:
    """Only the PEM blocks of one kind in ``text``: what the charm writes out and hands on."""
    return "".join(pem_blocks(text, kind))


def _key_blocks(text: str | None) -> list[tuple[str, str]]:
    """(kind, block) of every private key in ``text``: PKCS#8, RSA, EC, encrypted PKCS#8."""
    return [
        (m.group(1), m.group(0).strip() + "\n")
        for m in _PEM_BLOCK_RE.finditer(text or "")
        if m.group(1).endswith("PRIVATE KEY")
    ]


def private_key_pem(text: str | None) -> str:
    """The first PEM private key in ``text`` ("" when there is none)."""
    blocks = _key_blocks(text)
    return blocks[0][1] if blocks else ""


def _openssl(args: list[str], stdin: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [OPENSSL, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=OPENSSL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise InstallError("the openssl tool is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"openssl {args[0]} did not answer in {OPENSSL_TIMEOUT} s") from exc


@dataclass(frozen=True)
class Certificate:
    """What the checks need of one certificate, as openssl printed it."""

    public_key: str  # SubjectPublicKeyInfo, base64 without line breaks
    not_before: datetime.datetime
    not_after: datetime.datetime
    signature: str  # the issuer's signature algorithm, e.g. "ecdsa-with-SHA256"
    extensions: dict[str, str] = field(default_factory=dict)  # name -> openssl's text of it

    @property
    def unreadable_extensions(self) -> bool:
        return _UNREADABLE in self.extensions.values()


def _pem_body(block: str) -> str:
    return "".join(block.splitlines()[1:-1]).replace(" ", "")


def _date(text: str) -> datetime.datetime:
    match = _DATE_RE.fullmatch(text.strip())
    if not match or match.group(1) not in _MONTHS:
        raise ValueError(f"unexpected date from openssl: {text!r}")
    month, day, hour, minute, second, year = match.groups()
    return datetime.datetime(
        int(year),
        _MONTHS[month],
        int(day),
        int(hour),
        int(minute),
        int(second),
        tzinfo=datetime.timezone.utc,
    )


def _extensions(lines: list[str]) -> dict[str, str]:
    """The "X509v3 extensions:" section of -text: a header line per extension, then its text
    indented deeper (several lines for some, e.g. CRL distribution points)."""
    try:
        start = [line.strip() for line in lines].index("X509v3 extensions:") + 1
    except ValueError:
        return {}
    found: dict[str, list[str]] = {}
    twice = set()
    indent = None
    name = ""
    for line in lines[start:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        if depth == indent:
            name = line.strip().removesuffix("critical").strip().removesuffix(":")
            if name in found:
                twice.add(name)
            found[name] = []
        else:  # the first line set the indent: a header came before
            found[name].append(line.strip())
    # an extension given twice is as unreadable: Go refuses it, and which one counts is unclear
    return {key: _UNREADABLE if key in twice else "\n".join(text) for key, text in found.items()}


@functools.lru_cache(maxsize=64)
def _certificate(block: str) -> Certificate | None:
    """One openssl run per certificate: public key, dates, signature and extensions."""
    args = ["x509", "-noout", "-pubkey", "-startdate", "-enddate", "-text", "-certopt", _CERTOPT]
    proc = _openssl(args, block)
    if proc.returncode != 0:
        return None
    keys = pem_blocks(proc.stdout, "PUBLIC KEY")
    lines = proc.stdout.splitlines()
    dates = dict(
        line.split("=", 1) for line in lines if line.startswith(("notBefore=", "notAfter="))
    )
    signature = next(
        (line.split(":", 1)[1].strip() for line in lines if "Signature Algorithm:" in line), ""
    )
    try:
        return Certificate(
            public_key=_pem_body(keys[0]),
            not_before=_date(dates["notBefore"]),
            not_after=_date(dates["notAfter"]),
            signature=signature,
            extensions=_extensions(lines),
        )
    except (IndexError, KeyError, ValueError):
        return None


def load_certs(text: str | None) -> list[Certificate]:
    """Every certificate in ``text``; ValueError when a PEM block is not a certificate."""
    parsed = []
    for block in pem_blocks(text):
        cert = _certificate(block)
        if cert is None:
            raise ValueError("not a valid PEM certificate")
        parsed.append(cert)
    return parsed


# sha256 of a key block -> its public key: keys are not kept, and not checked twice
_KEY_PUBLIC: dict[str, str | None] = {}


def _key_public(block: str) -> str | None:
    """The public half of an unencrypted private key (base64 SubjectPublicKeyInfo), or None."""
    digest = hashlib.sha256(block.encode()).hexdigest()
    if digest not in _KEY_PUBLIC:
        # empty -passin: a key that wants a passphrase fails instead of prompting on a tty
        proc = _openssl(["pkey", "-pubout", "-passin", "pass:"], block)
        keys = pem_blocks(proc.stdout, "PUBLIC KEY") if proc.returncode == 0 else []
        if len(_KEY_PUBLIC) >= 64:
            _KEY_PUBLIC.clear()
        _KEY_PUBLIC[digest] = _pem_body(keys[0]) if keys else None
    return _KEY_PUBLIC[digest]


@functools.lru_cache(maxsize=64)
def _signed_by_any(leaf: str, issuers: tuple[str, ...]) -> bool:
    """Whether one of ``issuers`` signed ``leaf``: each is a trust anchor (-partial_chain), the
    system store is not used, and time is not checked (the caller names expiry itself)."""
    with tempfile.NamedTemporaryFile("w", prefix="issuers-", suffix=".pem") as bundle:
        bundle.write("".join(issuers))  # mkstemp: mode 0600; deleted on close
        bundle.flush()
        args = ["verify", "-partial_chain", "-no_check_time", "-no-CApath", "-no-CAstore"]
        proc = _openssl([*args, "-CAfile", bundle.name], leaf)
    return proc.returncode == 0


def _pair_problem(cert: str, key: str, ca: str, now: datetime.datetime) -> tuple[str, str] | None:
    """Why a certificate/key pair is unusable, as (which part, why); None when usable.

    Parts: "cert", "key", "ca". The leaf must match the key, be valid now, have extensions
    that can be read and, when ``ca`` is given, be signed by it (or by a certificate that
    follows the leaf).
    """
    blocks = pem_blocks(cert)
    try:
        certs = load_certs(cert)
    except ValueError:
        return "cert", "is not a valid PEM certificate"
    if not certs:
        return "cert", "contains no PEM certificate"
    keys = _key_blocks(key)
    if not keys:
        return "key", "contains no PEM private key"
    kind, key_block = keys[0]
    public = None if kind.startswith("ENCRYPTED") else _key_public(key_block)
    if public is None:
        return "key", "is not a valid unencrypted PEM private key"
    leaf = certs[0]
    if public != leaf.public_key:
        return "key", "does not match the certificate"
    if leaf.not_after < now:
        return "cert", "has expired"
    if leaf.not_before > now:
        return "cert", "is not valid yet"
    if leaf.unreadable_extensions:  # Go refuses such a certificate, openssl verify too
        return "cert", "has extensions that cannot be read"
    return _issuer_problem(leaf, blocks, ca) if ca else None


def _issuer_problem(leaf: Certificate, blocks: list[str], ca: str) -> tuple[str, str] | None:
    """Why ``leaf`` (the first of ``blocks``) is not signed by ``ca`` or the blocks after it."""
    cas = pem_blocks(ca)
    if not cas:
        return "ca", "contains no PEM certificate"
    signed = _VERIFIABLE_SIGNATURES.fullmatch(leaf.signature) and _signed_by_any(
        blocks[0], tuple(blocks[1:] + cas)
    )
    if signed:
        return None
    # only now: a certificate openssl cannot read also makes verify fail
    if any(_certificate(block) is None for block in cas):
        return "ca", "is not a valid PEM certificate"
    return "cert", "is not signed by the CA"


_BLOB_OPTIONS = {"cert": "tls-cert-blob", "key": "tls-key-blob", "ca": "tls-ca-blob"}
_BLOB_WHY = {
    "does not match the certificate": "does not match the certificate in tls-cert-blob",
    "is not signed by the CA": "is not signed by the CA in tls-ca-blob",
    "has expired": "the certificate has expired",
    "is not valid yet": "the certificate is not valid yet",
    "has extensions that cannot be read": "the certificate has extensions that cannot be read",
}
_SERVER_PARTS = {"cert": "certificate", "key": "key", "ca": "CA"}
_CLIENT_PARTS = {"cert": "client certificate", "key": "client key", "ca": "CA"}


def _named(problem: tuple[str, str], parts: dict[str, str]) -> str:
    """``(part, why)`` from _pair_problem as one sentence: "the <part's name> <why>"."""
    part, why = problem
    return f"the {parts[part]} {why}"


def _now(now: datetime.datetime | None) -> datetime.datetime:
    return now or datetime.datetime.now(datetime.timezone.utc)


def blob_problem(
    *, cert: str, key: str, ca: str = "", now: datetime.datetime | None = None
) -> tuple[str, str] | None:
    """Check TLS material given by config; returns (option, why) or None when usable."""
    problem = _pair_problem(cert, key, ca, _now(now))
    if problem is None:
        return None
    part, why = problem
    return _BLOB_OPTIONS[part], _BLOB_WHY.get(why, why)


def server_pair_problem(
    *, cert: str, key: str, ca: str, now: datetime.datetime | None = None
) -> str | None:
    """Why a server certificate and key (e.g. from cert-provider) cannot be served with ``ca``
    given to clients; None when they can. The registry refuses to start on a key that does not
    match, and clients refuse a certificate that is expired or not from the CA."""
    problem = _pair_problem(cert, key, ca, _now(now))
    return None if problem is None else _named(problem, _SERVER_PARTS)


def client_pair_problem(
    *, cert: str, key: str, ca: str, now: datetime.datetime | None = None
) -> str | None:
    """Why a client certificate cannot authenticate to a registry trusting ``ca`` (None: it can).

    Besides the pair checks, an extended key usage, when present, must allow client auth.
    """
    problem = _pair_problem(cert, key, ca, _now(now))
    if problem is not None:
        return _named(problem, _CLIENT_PARTS)
    usages = load_certs(cert)[0].extensions.get(_EKU)
    if usages is not None and _CLIENT_AUTH not in (u.strip() for u in usages.split(",")):
        return "the client certificate is not for client authentication (extended key usage)"
    return None


def cert_sans(cert_pem: str) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses) a certificate is valid for."""
    blocks = pem_blocks(cert_pem)
    leaf = _certificate(blocks[0]) if blocks else None
    if leaf is None:
        return set(), set()
    dns: set[str] = set()
    ips: set[str] = set()
    # "DNS:a, IP Address:10.0.0.1, email:..."; "<Parse Error>" (unreadable) names nothing
    for entry in leaf.extensions.get(_SAN, "").split(", "):
        kind, _, value = entry.strip().partition(":")
        if kind == "DNS" and value:
            dns.add(value.lower())
        elif kind == "IP Address":
            with contextlib.suppress(ValueError):  # "<invalid>": an address of a bad length
                ips.add(str(ipaddress.ip_address(value)))
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
