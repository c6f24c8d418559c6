"""tls: PEM parsing, SAN coverage and the checks on tls-*-blob material, with real certificates."""

from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from charms.layer.docker_registry import tls
from tests.support import certs

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture(scope="module")
def ca():
    return certs.make_ca("test-ca")


@pytest.fixture(scope="module")
def server(ca):
    _pair, ca_key, ca_cert = ca
    return certs.make_server_cert(
        ca_key,
        ca_cert,
        "registry.example.com",
        ["registry.example.com", "*.apps.example.com", "10.0.0.1", "fd00::1"],
    )


def ca_with_key(key, algorithm):
    """A self-signed CA with a key type certs.py does not make (RSA, Ed25519, Ed448)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "other-ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, algorithm)
    )
    return cert


def server_signed_by(ca_key, ca_cert, algorithm):
    key = ed25519.Ed25519PrivateKey.generate()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reg")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .sign(ca_key, algorithm)
    )
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM).decode()  # noqa: E731
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certs.Pair(pem(cert), key_pem), pem(ca_cert)


# ---------------------------------------------------------------- pem_blocks


def test_pem_blocks_drops_an_openssl_text_dump(server):
    if shutil.which("openssl"):
        dump = subprocess.run(
            ["openssl", "x509", "-text"], input=server.cert, capture_output=True, text=True
        ).stdout
    else:  # the same shape: text first, then the PEM block
        dump = "Certificate:\n    Data:\n        Version: 3 (0x2)\n" + server.cert
    assert "Certificate:" in dump
    assert tls.pem_blocks(dump) == [server.cert]


def test_pem_blocks_keeps_every_block_of_the_kind_in_order(ca, server):
    bundle = server.cert + "\n" + server.key + ca[0].cert
    assert tls.pem_blocks(bundle) == [server.cert, ca[0].cert]
    assert tls.pem_blocks(bundle, "PRIVATE KEY") == [server.key]


def test_pem_blocks_of_nothing_is_empty():
    assert tls.pem_blocks("") == []
    assert tls.pem_blocks(None) == []
    assert tls.pem_blocks("-----BEGIN CERTIFICATE-----\nabc\n-----END PUBLIC KEY-----\n") == []


# ---------------------------------------------------------------- SANs / covers


def test_cert_sans_lists_dns_names_and_ips(server):
    assert tls.cert_sans(server.cert) == (
        {"registry.example.com", "*.apps.example.com"},
        {"10.0.0.1", "fd00::1"},
    )


@pytest.mark.parametrize(
    "host",
    [
        "registry.example.com",
        "REGISTRY.Example.COM",
        "team.apps.example.com",
        "10.0.0.1",
        "fd00::1",
        "[fd00::1]",
        "fd00:0:0:0:0:0:0:1",
    ],
)
def test_covers_names_wildcards_and_addresses_in_the_certificate(server, host):
    assert tls.covers(server.cert, host)


@pytest.mark.parametrize(
    "host",
    [
        "other.example.com",
        "example.com",
        "apps.example.com",  # a wildcard does not cover its own parent
        "a.team.apps.example.com",  # nor two levels below it
        "10.0.0.2",
        "fd00::2",
        "localhost",
    ],
)
def test_covers_nothing_else(server, host):
    assert not tls.covers(server.cert, host)


def test_cert_without_san_or_garbage_covers_nothing(ca):
    ca_pair, _key, _cert = ca  # the CA certificate has no SAN extension
    assert tls.cert_sans(ca_pair.cert) == (set(), set())
    assert tls.cert_sans("no certificate here") == (set(), set())
    assert not tls.covers(ca_pair.cert, "test-ca")


# ---------------------------------------------------------------- blob_problem


def test_valid_material_has_no_problem(ca, server):
    assert tls.blob_problem(cert=server.cert, key=server.key, ca=ca[0].cert) is None
    assert tls.blob_problem(cert=server.cert, key=server.key) is None


def test_chain_in_the_cert_blob_counts_as_issuer(ca, server):
    # GIVEN the CA is sent along with the leaf, and tls-ca-blob holds an unrelated CA
    other_ca = certs.make_ca("other")[0].cert
    assert tls.blob_problem(cert=server.cert + ca[0].cert, key=server.key, ca=other_ca) is None


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        ("just text", ("tls-cert-blob", "contains no PEM certificate")),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ("tls-cert-blob", "is not a valid PEM certificate"),
        ),
    ],
)
def test_garbage_certificate_is_a_cert_problem(server, cert, expected):
    assert tls.blob_problem(cert=cert, key=server.key) == expected


def test_key_problems(ca, server):
    other = certs.make_server_cert(ca[1], ca[2], "x", ["x"])
    broken_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    assert tls.blob_problem(cert=server.cert, key="") == (
        "tls-key-blob",
        "contains no PEM private key",
    )
    assert tls.blob_problem(cert=server.cert, key=broken_key) == (
        "tls-key-blob",
        "is not a valid unencrypted PEM private key",
    )
    assert tls.blob_problem(cert=server.cert, key=other.key) == (
        "tls-key-blob",
        "does not match the certificate in tls-cert-blob",
    )


def test_key_problem_message_holds_no_key_material(ca, server):
    other = certs.make_server_cert(ca[1], ca[2], "x", ["x"])
    problem = tls.blob_problem(cert=server.cert, key=other.key)
    assert problem is not None
    assert all("PRIVATE" not in part and other.key not in part for part in problem)


def test_certificate_not_valid_yet(ca):
    future = certs.make_server_cert(ca[1], ca[2], "r", ["r"], not_before_days=2)
    assert tls.blob_problem(cert=future.cert, key=future.key) == (
        "tls-cert-blob",
        "the certificate is not valid yet",
    )


def test_expired_certificate(server):
    later = NOW + datetime.timedelta(days=60)
    assert tls.blob_problem(cert=server.cert, key=server.key, now=later) == (
        "tls-cert-blob",
        "the certificate has expired",
    )


def test_certificate_signed_by_another_ca(server):
    other_ca = certs.make_ca("other")[0].cert
    assert tls.blob_problem(cert=server.cert, key=server.key, ca=other_ca) == (
        "tls-cert-blob",
        "is not signed by the CA in tls-ca-blob",
    )


def test_garbage_ca(server):
    assert tls.blob_problem(cert=server.cert, key=server.key, ca="not a ca") == (
        "tls-ca-blob",
        "contains no PEM certificate",
    )
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert tls.blob_problem(cert=server.cert, key=server.key, ca=broken) == (
        "tls-ca-blob",
        "is not a valid PEM certificate",
    )


KEY_TYPES = {
    "rsa": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), hashes.SHA256),
    "ed25519": (ed25519.Ed25519PrivateKey.generate, lambda: None),
}


@pytest.mark.parametrize("kind", sorted(KEY_TYPES))
def test_rsa_and_ed25519_cas_are_recognised_as_issuers(kind):
    new_key, algorithm = KEY_TYPES[kind]
    key = new_key()
    pair, ca_pem = server_signed_by(key, ca_with_key(key, algorithm()), algorithm())
    assert tls.blob_problem(cert=pair.cert, key=pair.key, ca=ca_pem) is None
    # and another CA of the same key type (same name) is not taken for the issuer
    stranger = ca_with_key(new_key(), algorithm()).public_bytes(serialization.Encoding.PEM)
    assert tls.blob_problem(cert=pair.cert, key=pair.key, ca=stranger.decode()) == (
        "tls-cert-blob",
        "is not signed by the CA in tls-ca-blob",
    )


def test_ca_key_types_it_cannot_verify_are_not_issuers():
    # Ed448 is not checked (Go's crypto/x509, used by the registry, cannot verify it either)
    key = ed448.Ed448PrivateKey.generate()
    ca_cert = ca_with_key(key, None)
    pair, ca_pem = server_signed_by(key, ca_cert, None)
    assert tls.blob_problem(cert=pair.cert, key=pair.key, ca=ca_pem) == (
        "tls-cert-blob",
        "is not signed by the CA in tls-ca-blob",
    )


# ---------------------------------------------------------------- client_pair_problem


def test_a_client_certificate_from_the_ca_is_usable(ca):
    pair, ca_key, ca_cert = ca
    client = certs.make_client_cert(ca_key, ca_cert)
    assert tls.client_pair_problem(cert=client.cert, key=client.key, ca=pair.cert) is None


def test_a_certificate_for_both_usages_is_usable_as_client(ca, server):
    assert tls.client_pair_problem(cert=server.cert, key=server.key, ca=ca[0].cert) is None


def test_a_server_only_certificate_is_not_a_client_certificate(ca):
    pair, ca_key, ca_cert = ca
    only = certs.make_server_cert(ca_key, ca_cert, "srv", ["srv"], usages=("server",))
    why = tls.client_pair_problem(cert=only.cert, key=only.key, ca=pair.cert)
    assert why == "the client certificate is not for client authentication (extended key usage)"


def test_a_client_certificate_from_another_ca_is_not_usable(ca):
    _other, other_key, other_cert = certs.make_ca("other-ca")
    client = certs.make_client_cert(other_key, other_cert)
    why = tls.client_pair_problem(cert=client.cert, key=client.key, ca=ca[0].cert)
    assert why == "the client certificate is not signed by the CA"


def test_a_client_key_that_does_not_match_is_named(ca):
    pair, ca_key, ca_cert = ca
    one, two = certs.make_client_cert(ca_key, ca_cert), certs.make_client_cert(ca_key, ca_cert)
    why = tls.client_pair_problem(cert=one.cert, key=two.key, ca=pair.cert)
    assert why == "the client key does not match the certificate"
    assert "PRIVATE" not in why


def test_an_expired_client_certificate_is_not_usable(ca):
    pair, ca_key, ca_cert = ca
    old = certs.make_client_cert(ca_key, ca_cert, days=1, not_before_days=-3)
    why = tls.client_pair_problem(cert=old.cert, key=old.key, ca=pair.cert)
    assert why == "the client certificate has expired"


# ---------------------------------------------------------------- server_pair_problem


def test_a_server_certificate_from_the_ca_is_servable(ca, server):
    assert tls.server_pair_problem(cert=server.cert, key=server.key, ca=ca[0].cert) is None


def test_a_server_key_that_does_not_match_is_named(ca, server):
    pair, ca_key, ca_cert = ca
    other = certs.make_server_cert(ca_key, ca_cert, "x", ["x"])
    why = tls.server_pair_problem(cert=server.cert, key=other.key, ca=pair.cert)
    assert why == "the key does not match the certificate"


def test_a_server_certificate_from_another_ca_or_expired_is_named(ca, server):
    _other, other_key, other_cert = certs.make_ca("other-ca")
    foreign = certs.make_server_cert(other_key, other_cert, "x", ["x"])
    assert (
        tls.server_pair_problem(cert=foreign.cert, key=foreign.key, ca=ca[0].cert)
        == "the certificate is not signed by the CA"
    )
    pair, ca_key, ca_cert = ca
    old = certs.make_server_cert(ca_key, ca_cert, "x", ["x"], days=1, not_before_days=-3)
    assert (
        tls.server_pair_problem(cert=old.cert, key=old.key, ca=pair.cert)
        == "the certificate has expired"
    )
    assert (
        tls.server_pair_problem(cert="garbage", key=old.key, ca=pair.cert)
        == "the certificate contains no PEM certificate"
    )


def test_unreadable_extensions_are_answers_not_tracebacks(ca, monkeypatch):
    # cryptography parses extensions lazily: a malformed one raises on first access
    pair, ca_key, ca_cert = ca
    client = certs.make_client_cert(ca_key, ca_cert)

    class Broken:
        def __init__(self, real):
            self._real = real

        def __getattr__(self, name):
            if name == "extensions":
                raise ValueError("error parsing asn1 value")
            return getattr(self._real, name)

    real_load = tls.load_certs
    monkeypatch.setattr(tls, "load_certs", lambda text: [Broken(c) for c in real_load(text)])
    assert tls.cert_sans(client.cert) == (set(), set())
    assert tls.client_pair_problem(cert=client.cert, key=client.key, ca=pair.cert) == (
        "the client certificate has extensions that cannot be read"
    )
