"""tls: PEM parsing, SAN coverage and the checks on TLS material, with real certificates and the
real openssl tool (the certificates are made with `cryptography`, a test-only dependency)."""

from __future__ import annotations

import base64
import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from charms.layer.docker_registry.config import tls
from charms.layer.docker_registry.errors import InstallError
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


def openssl_text_dump(pem: str) -> str:
    """What easyrsa sends: `openssl x509 -text` output, the PEM block last."""
    dump = subprocess.run(["openssl", "x509", "-text"], input=pem, capture_output=True, text=True)
    assert dump.returncode == 0 and dump.stdout.startswith("Certificate:")
    return dump.stdout


# ---------------------------------------------------------------- pem_blocks


def test_pem_blocks_drops_an_openssl_text_dump(server):
    dump = openssl_text_dump(server.cert)
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


def cert_with_raw_extension(ca, oid, value: bytes) -> certs.Pair:
    """A certificate from ``ca`` whose extension ``oid`` holds ``value`` as it is (DER or not)."""
    _pair, ca_key, ca_cert = ca
    key = ed25519.Ed25519PrivateKey.generate()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certs.Pair(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem)


GARBAGE_DER = b"\x30\x05garbage"  # a SEQUENCE whose length runs past its content


def test_an_unreadable_san_names_nothing_and_is_a_named_problem(ca):
    odd = cert_with_raw_extension(ca, ExtensionOID.SUBJECT_ALTERNATIVE_NAME, GARBAGE_DER)
    assert tls.cert_sans(odd.cert) == (set(), set())
    assert not tls.covers(odd.cert, "odd")
    assert tls.blob_problem(cert=odd.cert, key=odd.key, ca=ca[0].cert) == (
        "tls-cert-blob",
        "the certificate has extensions that cannot be read",
    )
    assert tls.server_pair_problem(cert=odd.cert, key=odd.key, ca="") == (
        "the certificate has extensions that cannot be read"
    )


def test_an_unreadable_extended_key_usage_is_an_answer_not_a_traceback(ca):
    odd = cert_with_raw_extension(ca, ExtensionOID.EXTENDED_KEY_USAGE, GARBAGE_DER)
    assert tls.client_pair_problem(cert=odd.cert, key=odd.key, ca=ca[0].cert) == (
        "the client certificate has extensions that cannot be read"
    )


def test_an_extension_given_twice_is_unreadable(ca):
    # the builder refuses duplicates: give a SAN a private OID, then rename it in the DER (the
    # signature no longer matches, which no check without a CA looks at)
    name = x509.DNSName("twice.example")
    san = x509.SubjectAlternativeName([name])
    private = x509.ObjectIdentifier("2.5.29.98")
    odd = cert_with_raw_extension(ca, private, san.public_bytes())
    cert = x509.load_pem_x509_certificate(odd.cert.encode())
    _pair, ca_key, ca_cert = ca
    both = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(ca_cert.subject)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .add_extension(san, critical=False)
        .add_extension(x509.UnrecognizedExtension(private, san.public_bytes()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    der = both.public_bytes(serialization.Encoding.DER)
    assert der.count(b"\x06\x03\x55\x1d\x62") == 1
    der = der.replace(b"\x06\x03\x55\x1d\x62", b"\x06\x03\x55\x1d\x11")
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der).decode()
    pem += "-----END CERTIFICATE-----\n"
    assert tls.cert_sans(pem) == (set(), set())
    assert tls.blob_problem(cert=pem, key=odd.key) == (
        "tls-cert-blob",
        "the certificate has extensions that cannot be read",
    )


def test_an_extension_openssl_does_not_know_is_not_a_problem(ca):
    odd = cert_with_raw_extension(ca, x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    assert tls.client_pair_problem(cert=odd.cert, key=odd.key, ca=ca[0].cert) is None
    assert tls.cert_sans(odd.cert) == (set(), set())


# ---------------------------------------------------------------- material from easyrsa & co


def test_a_certificate_after_an_openssl_text_dump_is_checked_as_the_pem_alone(ca, server):
    cert = openssl_text_dump(server.cert)
    ca_blob = "CA of the test\n" + openssl_text_dump(ca[0].cert) + "\n-- end --\n"
    key = "# the key\n" + server.key + "trailing words\n"
    assert tls.blob_problem(cert=cert, key=key, ca=ca_blob) is None
    assert tls.server_pair_problem(cert=cert, key=key, ca=ca_blob) is None
    assert tls.cert_sans(cert) == tls.cert_sans(server.cert)
    assert tls.pem_text(cert) == server.cert
    assert tls.pem_text(ca_blob) == ca[0].cert
    assert tls.private_key_pem(key) == server.key


def test_pem_text_and_private_key_pem_of_nothing_are_empty(ca, server):
    assert tls.pem_text(None) == tls.pem_text("junk") == ""
    assert tls.private_key_pem(None) == tls.private_key_pem(server.cert) == ""
    bundle = server.cert + ca[0].cert
    assert tls.pem_text("x\n" + bundle + "y\n") == bundle


def test_traditional_rsa_keys_are_read():
    # easyrsa's keys: "BEGIN RSA PRIVATE KEY", not PKCS#8
    def traditional(key):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()

    key, stranger = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in "ab")
    cert = ca_with_key(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    assert traditional(key).startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert tls.blob_problem(cert=cert, key=traditional(key), ca=cert) is None
    assert tls.blob_problem(cert=cert, key=traditional(stranger)) == (
        "tls-key-blob",
        "does not match the certificate in tls-cert-blob",
    )


def test_an_encrypted_key_is_not_usable(server):
    key = serialization.load_pem_private_key(server.key.encode(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    assert tls.blob_problem(cert=server.cert, key=encrypted) == (
        "tls-key-blob",
        "is not a valid unencrypted PEM private key",
    )


def test_a_broken_certificate_next_to_the_issuer_in_the_ca_blob_is_named(ca, server):
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert tls.blob_problem(cert=server.cert, key=server.key, ca=ca[0].cert + broken) == (
        "tls-ca-blob",
        "is not a valid PEM certificate",
    )


def test_a_broken_chain_certificate_in_the_cert_blob_is_named(ca, server):
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    assert tls.blob_problem(cert=server.cert + broken, key=server.key, ca=ca[0].cert) == (
        "tls-cert-blob",
        "is not a valid PEM certificate",
    )


def test_dates_past_2049_are_read(ca):
    # GeneralizedTime: openssl prints it like UTCTime, the checks must read both
    _pair, ca_key, ca_cert = ca
    long = certs.make_server_cert(ca_key, ca_cert, "long", ["long"], days=365 * 40)
    assert tls.load_certs(long.cert)[0].not_after.year >= 2060
    assert tls.blob_problem(cert=long.cert, key=long.key) is None


def test_load_certs_refuses_a_broken_block():
    with pytest.raises(ValueError):
        tls.load_certs("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_the_extension_section_is_read_by_its_indentation():
    text = """\
        Signature Algorithm: sha256WithRSAEncryption
        X509v3 extensions:
            X509v3 CRL Distribution Points: critical

                Full Name:
                  URI:http://crl.example/a.crl
            X509v3 Subject Alternative Name:
                DNS:a.example
    Signature Value:
        00:11
"""
    assert tls._extensions(text.splitlines()) == {
        "X509v3 CRL Distribution Points": "Full Name:\nURI:http://crl.example/a.crl",
        "X509v3 Subject Alternative Name": "DNS:a.example",
    }


def test_output_openssl_did_not_mean_to_give_is_not_a_certificate(server, monkeypatch):
    odd = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    odd += "notBefore=soon\nnotAfter=never\n"  # not dates
    monkeypatch.setattr(
        tls, "_openssl", lambda args, stdin: subprocess.CompletedProcess(args, 0, odd, "")
    )
    tls._certificate.cache_clear()
    assert tls.cert_sans(server.cert) == (set(), set())
    assert tls.blob_problem(cert=server.cert, key=server.key) == (
        "tls-cert-blob",
        "is not a valid PEM certificate",
    )
    tls._certificate.cache_clear()


# ---------------------------------------------------------------- how openssl is run


@pytest.fixture
def openssl_runs(monkeypatch):
    """Every openssl run of the test: (argv, stdin, files named in argv as they were then)."""
    runs = []
    real_run = subprocess.run

    def run(argv, **kw):
        named = {}
        for arg in argv:
            if arg.startswith("/") and Path(arg).is_file():
                named[arg] = (Path(arg).stat().st_mode & 0o777, Path(arg).read_text())
        runs.append((list(argv), kw.get("input") or "", named))
        return real_run(argv, **kw)

    monkeypatch.setattr(tls.subprocess, "run", run)
    tls._certificate.cache_clear()
    tls._signed_by_any.cache_clear()
    tls._KEY_PUBLIC.clear()
    return runs


def test_key_material_never_appears_in_argv(ca, openssl_runs):
    pair, ca_key, ca_cert = ca
    client = certs.make_client_cert(ca_key, ca_cert)
    other = certs.make_client_cert(ca_key, ca_cert)
    assert tls.client_pair_problem(cert=client.cert, key=client.key, ca=pair.cert) is None
    assert tls.blob_problem(cert=client.cert, key=other.key, ca=pair.cert) is not None
    assert openssl_runs
    key_lines = {
        line for k in (client.key, other.key) for line in k.splitlines() if "-----" not in line
    }
    for argv, _stdin, named in openssl_runs:
        text = " ".join(argv)
        assert "PRIVATE" not in text
        assert not any(line in text for line in key_lines)
        assert all("PRIVATE" not in content for _mode, content in named.values())
    # the keys went on stdin
    stdins = [stdin for _argv, stdin, _named in openssl_runs]
    assert client.key in stdins and other.key in stdins


def test_issuers_go_in_a_private_temporary_file_and_the_system_store_is_not_used(
    ca, server, openssl_runs
):
    assert tls.blob_problem(cert=server.cert, key=server.key, ca=ca[0].cert) is None
    verify = [run for run in openssl_runs if run[0][1] == "verify"]
    assert len(verify) == 1
    argv, stdin, named = verify[0]
    assert stdin == server.cert
    assert "-no-CApath" in argv and "-no-CAstore" in argv
    ((path, (mode, content)),) = named.items()
    assert mode == 0o600 and content == ca[0].cert
    assert not Path(path).exists()


def test_each_certificate_is_read_by_one_openssl_run_per_process(ca, server, openssl_runs):
    for _ in range(3):
        tls.cert_sans(server.cert)
        tls.server_pair_problem(cert=server.cert, key=server.key, ca=ca[0].cert)
        tls.client_pair_problem(cert=server.cert, key=server.key, ca=ca[0].cert)
    commands = sorted(argv[1] for argv, _stdin, _named in openssl_runs)
    # the leaf, its key, one verify; the CA is only read when the leaf does not verify
    assert commands == ["pkey", "verify", "x509"]


def test_no_openssl_is_an_install_error(server, monkeypatch):
    tls._certificate.cache_clear()
    monkeypatch.setattr(tls, "OPENSSL", "/nonexistent/openssl")
    with pytest.raises(InstallError, match="openssl"):
        tls.cert_sans(server.cert)


def test_a_hung_openssl_is_an_install_error(server, monkeypatch):
    tls._certificate.cache_clear()

    def hang(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw.get("timeout"))

    monkeypatch.setattr(tls.subprocess, "run", hang)
    with pytest.raises(InstallError, match="did not answer"):
        tls.cert_sans(server.cert)
