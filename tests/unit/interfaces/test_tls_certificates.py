"""tls-certificates: wire keys/encodings (easyrsa/vault compatible), flags, PEM clean-up."""

from __future__ import annotations

import json

import pytest

CA_PEM = "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n"
CA2_PEM = "-----BEGIN CERTIFICATE-----\nbmV3IGNh\n-----END CERTIFICATE-----\n"
INTER_PEM = "-----BEGIN CERTIFICATE-----\naW50ZXI=\n-----END CERTIFICATE-----\n"
SRV_PEM = "-----BEGIN CERTIFICATE-----\nc2VydmVy\n-----END CERTIFICATE-----\n"
KEY_PEM = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END PRIVATE KEY-----\n"
TEXT_DUMP = (
    "Certificate:\n"
    "    Data:\n"
    "        Version: 3 (0x2)\n"
    "        Serial Number: 1 (0x1)\n"
    "        Issuer: CN=Vault Root Certificate Authority\n"
    "        Subject: CN=10.0.0.10\n"
    "        X509v3 extensions:\n"
    "            X509v3 Subject Alternative Name:\n"
    "                IP Address:10.0.0.10, DNS:registry.example\n"
    "    Signature Algorithm: sha256WithRSAEncryption\n"
    "         3a:4b:5c\n"
)
ME = "docker-registry_0"
CA_UNIT = "easyrsa/0"


def flags_of(flags: set[str], endpoint: str) -> set[str]:
    return {f for f in flags if f.startswith(endpoint + ".")}


@pytest.fixture
def rid(juju):
    rid = juju.relate("cert-provider", {CA_UNIT: {}})
    juju.hook("cert-provider-relation-joined", rid, CA_UNIT)
    return rid


# -- requires: what we write -------------------------------------------------------------------


def test_join_publishes_raw_unit_name_and_sets_available(juju, rid):
    assert juju.local[rid]["unit_name"] == ME  # raw, not '"docker-registry_0"'
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert flags_of(flags, "cert-provider") == {"cert-provider.available"}


def test_first_request_uses_legacy_raw_keys(juju, rid):
    juju.endpoint("cert-provider").request_server_cert(
        "10.0.0.10", ["10.0.0.10", "registry.example"], "docker-registry"
    )
    juju.flush()
    bag = juju.local[rid]
    assert bag["common_name"] == "10.0.0.10"
    assert bag["certificate_name"] == "docker-registry"
    assert bag["sans"] == '["10.0.0.10", "registry.example"]'
    assert "cert_requests" not in bag


def test_further_requests_go_in_cert_requests_json(juju, rid):
    ep = juju.endpoint("cert-provider")
    ep.request_server_cert("10.0.0.10", ["10.0.0.10"])
    ep.request_server_cert("registry.example", ["registry.example", "10.0.0.99"])
    ep.request_server_cert("other.example", [])
    juju.flush()
    bag = juju.local[rid]
    assert bag["common_name"] == "10.0.0.10"
    assert bag["certificate_name"] == "10.0.0.10"  # stable default name
    assert json.loads(bag["cert_requests"]) == {
        "other.example": {"sans": []},
        "registry.example": {"sans": ["registry.example", "10.0.0.99"]},
    }


def test_rerequest_with_new_sans_updates_legacy_request_and_keeps_name(juju, rid):
    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10"], "reg")
    juju.flush()
    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10", "a.example"])
    juju.flush()
    bag = juju.local[rid]
    assert bag["sans"] == '["10.0.0.10", "a.example"]'
    assert bag["certificate_name"] == "reg"
    assert "cert_requests" not in bag


def test_unchanged_request_does_not_rewrite_databag(juju, rid):
    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10"])
    juju.flush()
    writes = len(juju.relation_sets)
    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10"])
    juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert len(juju.relation_sets) == writes


# -- requires: what we read --------------------------------------------------------------------


def test_ca_text_dump_is_stripped_and_flags_set(juju, rid):
    juju.set_remote(rid, CA_UNIT, ca=TEXT_DUMP + CA_PEM, chain=TEXT_DUMP + CA_PEM + INTER_PEM)
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    ep = juju.endpoint("cert-provider")
    assert ep.get_ca() == CA_PEM
    assert ep.root_ca_cert == CA_PEM
    assert ep.get_chain() == CA_PEM + INTER_PEM
    assert {"cert-provider.ca.available", "cert-provider.ca.changed"} <= flags
    assert "cert-provider.server.certs.available" not in flags


def test_ca_without_pem_block_is_not_a_ca(juju, rid):
    juju.set_remote(rid, CA_UNIT, ca="garbage")
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert juju.endpoint("cert-provider").get_ca() is None
    assert "cert-provider.ca.available" not in flags


def test_ca_changed_is_set_only_on_change_and_left_to_the_charm(juju, rid):
    from charms.reactive import clear_flag

    juju.set_remote(rid, CA_UNIT, ca=CA_PEM)
    assert "cert-provider.ca.changed" in juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    clear_flag("cert-provider.ca.changed")  # the charm handled it
    assert "cert-provider.ca.changed" not in juju.hook("update-status")
    juju.set_remote(rid, CA_UNIT, ca=CA2_PEM)
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert {"cert-provider.ca.changed", "cert-provider.ca.available"} <= flags


def test_legacy_server_cert_raw_keys(juju, rid):
    ep = juju.endpoint("cert-provider")
    ep.request_server_cert("10.0.0.10", ["10.0.0.10"])
    juju.flush()
    assert ep.get_server_cert() == (None, None)
    juju.set_remote(
        rid,
        CA_UNIT,
        ca=CA_PEM,
        **{f"{ME}.server.cert": TEXT_DUMP + SRV_PEM, f"{ME}.server.key": KEY_PEM},
    )
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert {
        "cert-provider.available",
        "cert-provider.ca.available",
        "cert-provider.ca.changed",
        "cert-provider.server.certs.available",
        "cert-provider.server.certs.changed",
        "cert-provider.certs.available",
        "cert-provider.certs.changed",
    } == flags_of(flags, "cert-provider")
    ep = juju.endpoint("cert-provider")
    assert ep.get_server_cert() == (SRV_PEM, KEY_PEM)
    [cert] = ep.server_certs
    assert (cert.common_name, cert.cert, cert.key) == ("10.0.0.10", SRV_PEM, KEY_PEM)
    assert "c2VjcmV0" not in repr(cert)


def test_other_units_certs_are_ignored(juju, rid):
    juju.set_remote(
        rid,
        CA_UNIT,
        **{"docker-registry_1.server.cert": SRV_PEM, "docker-registry_1.server.key": KEY_PEM},
    )
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert "cert-provider.server.certs.available" not in flags
    assert juju.endpoint("cert-provider").get_server_cert() == (None, None)


def test_processed_requests_json_and_leader_only_issuing(juju):
    # easyrsa: only the leader (here unit 1) issues; unit 0 publishes nothing
    rid = juju.relate("cert-provider", {"easyrsa/0": {}, "easyrsa/1": {}})
    juju.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    ep = juju.endpoint("cert-provider")
    ep.request_server_cert("10.0.0.10", ["10.0.0.10"])
    ep.request_server_cert("registry.example", ["registry.example"])
    juju.flush()
    processed = {"registry.example": {"cert": TEXT_DUMP + SRV_PEM, "key": KEY_PEM}}
    juju.set_remote(
        rid,
        "easyrsa/1",
        ca=CA_PEM,
        **{
            f"{ME}.server.cert": SRV_PEM,
            f"{ME}.server.key": KEY_PEM,
            f"{ME}.processed_requests": json.dumps(processed),
        },
    )
    flags = juju.hook("cert-provider-relation-changed", rid, "easyrsa/1")
    assert "cert-provider.server.certs.available" in flags
    certs = juju.endpoint("cert-provider").server_certs_map
    assert sorted(certs) == ["10.0.0.10", "registry.example"]
    assert certs["registry.example"].cert == SRV_PEM
    assert certs["registry.example"].key == KEY_PEM


def test_server_certs_changed_only_when_data_changes(juju, rid):
    from charms.reactive import clear_flag

    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10"])
    juju.flush()
    certs = {f"{ME}.server.cert": SRV_PEM, f"{ME}.server.key": KEY_PEM}
    juju.set_remote(rid, CA_UNIT, ca=CA_PEM, **certs)
    juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    clear_flag("cert-provider.server.certs.changed")
    clear_flag("cert-provider.certs.changed")
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert "cert-provider.server.certs.changed" not in flags
    assert "cert-provider.server.certs.available" in flags
    # reissue: new key
    juju.set_remote(rid, CA_UNIT, **{f"{ME}.server.key": KEY_PEM.replace("c2Vj", "bmV3")})
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert {"cert-provider.server.certs.changed", "cert-provider.certs.changed"} <= flags
    # certs withdrawn: available cleared, changed not raised
    clear_flag("cert-provider.server.certs.changed")
    juju.set_remote(rid, CA_UNIT, **{f"{ME}.server.cert": None, f"{ME}.server.key": None})
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert "cert-provider.server.certs.available" not in flags
    assert "cert-provider.server.certs.changed" not in flags
    # the same certs coming back count as a change
    juju.set_remote(rid, CA_UNIT, **certs)
    flags = juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert "cert-provider.server.certs.changed" in flags


def test_departure_clears_every_flag(juju, rid):
    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10"])
    juju.flush()
    juju.set_remote(
        rid, CA_UNIT, ca=CA_PEM, **{f"{ME}.server.cert": SRV_PEM, f"{ME}.server.key": KEY_PEM}
    )
    assert len(
        flags_of(juju.hook("cert-provider-relation-changed", rid, CA_UNIT), "cert-provider")
    )
    juju.depart(rid, CA_UNIT)
    flags = juju.hook("cert-provider-relation-departed", rid, CA_UNIT)
    assert flags_of(flags, "cert-provider") == set()


def test_secrets_are_not_logged(juju, rid):
    juju.endpoint("cert-provider").request_server_cert("10.0.0.10", ["10.0.0.10"])
    juju.flush()
    juju.set_remote(
        rid, CA_UNIT, ca=CA_PEM, **{f"{ME}.server.cert": SRV_PEM, f"{ME}.server.key": KEY_PEM}
    )
    juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert not [line for line in juju.logs if "c2VjcmV0" in line]


# -- provides (fake CA) ------------------------------------------------------------------------


@pytest.fixture
def ca_rid(juju):
    juju.local_unit = "easyrsa/0"
    rid = juju.relate("certificates", {"docker-registry/0": {}, "docker-registry/1": {}})
    juju.set_remote(
        rid,
        "docker-registry/0",
        unit_name="docker-registry_0",
        common_name="10.0.0.10",
        certificate_name="docker-registry",
        sans='["10.0.0.10"]',
        cert_requests='{"registry.example": {"sans": ["registry.example"]}}',
    )
    return rid


def test_provider_reads_legacy_and_batch_requests(juju, ca_rid):
    flags = juju.hook("certificates-relation-changed", ca_rid, "docker-registry/0")
    assert {
        "certificates.available",
        "certificates.certs.requested",
        "certificates.server.certs.requested",
        "certificates.server.cert.requested",
    } == flags_of(flags, "certificates")
    reqs = juju.endpoint("certificates").all_requests
    assert [(r.unit_name, r.common_name, r.sans, r.legacy) for r in reqs] == [
        ("docker-registry_0", "10.0.0.10", ("10.0.0.10",), True),
        ("docker-registry_0", "registry.example", ("registry.example",), False),
    ]
    assert reqs[0].cert_name == "docker-registry"


def test_provider_writes_answers_in_the_requirer_formats(juju, ca_rid):
    juju.hook("certificates-relation-changed", ca_rid, "docker-registry/0")
    ep = juju.endpoint("certificates")
    ep.set_ca(CA_PEM)
    ep.set_chain(INTER_PEM)
    ep.set_server_cert("docker-registry_0", "10.0.0.10", SRV_PEM, KEY_PEM)
    assert "certificates.server.certs.requested" in set(_get_flags())
    ep.set_server_cert("docker-registry/0", "registry.example", SRV_PEM, KEY_PEM)
    assert not {f for f in _get_flags() if f.endswith("requested")}
    with pytest.raises(KeyError):
        ep.set_server_cert("docker-registry_1", "10.0.0.10", SRV_PEM, KEY_PEM)
    juju.flush()
    bag = juju.local[ca_rid]
    assert bag["ca"] == CA_PEM and bag["chain"] == INTER_PEM
    assert bag["docker-registry_0.server.cert"] == SRV_PEM
    assert bag["docker-registry_0.server.key"] == KEY_PEM
    assert json.loads(bag["docker-registry_0.processed_requests"]) == {
        "registry.example": {"cert": SRV_PEM, "key": KEY_PEM}
    }
    flags = juju.hook("update-status")
    assert flags_of(flags, "certificates") == {"certificates.available"}
    # new SANs make the request new again
    juju.set_remote(ca_rid, "docker-registry/0", sans='["10.0.0.10", "b.example"]')
    flags = juju.hook("certificates-relation-changed", ca_rid, "docker-registry/0")
    assert "certificates.server.certs.requested" in flags
    assert [r.common_name for r in juju.endpoint("certificates").new_requests] == ["10.0.0.10"]


def test_round_trip_between_our_requirer_and_provider(juju):
    """Our requires side against our provides side, exchanging databags like Juju would.

    One fake model plays both charms; ``local_unit`` says whose hook runs.
    """
    req = juju.relate("cert-provider", {"easyrsa/0": {}})
    prov = juju.relate("certificates", {"docker-registry/0": {}})

    def sync():
        juju.remote[prov]["docker-registry/0"] = dict(juju.local[req])
        juju.remote[req]["easyrsa/0"] = dict(juju.local[prov])

    juju.hook("cert-provider-relation-joined", req, "easyrsa/0")
    ep = juju.endpoint("cert-provider")
    ep.request_server_cert("10.0.0.10", ["10.0.0.10"])
    ep.request_server_cert("registry.example", ["registry.example"])
    juju.flush()
    sync()
    juju.local_unit = "easyrsa/0"
    juju.hook("certificates-relation-changed", prov, "docker-registry/0")
    ca = juju.endpoint("certificates")
    ca.set_ca(TEXT_DUMP + CA_PEM)
    assert len(ca.new_requests) == 2
    for request in ca.new_requests:
        ca.set_server_cert(request.unit_name, request.common_name, SRV_PEM, KEY_PEM)
    juju.flush()
    sync()
    juju.local_unit = "docker-registry/0"
    flags = juju.hook("cert-provider-relation-changed", req, "easyrsa/0")
    assert {"cert-provider.server.certs.changed", "cert-provider.ca.available"} <= flags
    ours = juju.endpoint("cert-provider")
    assert ours.get_ca() == CA_PEM
    assert ours.get_server_cert() == (SRV_PEM, KEY_PEM)
    assert sorted(ours.server_certs_map) == ["10.0.0.10", "registry.example"]


def _get_flags() -> list[str]:
    from charms.reactive import get_flags

    return get_flags()


def test_shared_client_certificate_raw_keys(juju, rid):
    ep = juju.endpoint("cert-provider")
    assert ep.get_client_cert() == (None, None)
    # easyrsa writes one client pair for every requirer, raw, maybe after a text dump
    juju.set_remote(
        rid, CA_UNIT, ca=CA_PEM, **{"client.cert": TEXT_DUMP + SRV_PEM, "client.key": KEY_PEM}
    )
    juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert juju.endpoint("cert-provider").get_client_cert() == (SRV_PEM, KEY_PEM)


def test_client_certificate_without_its_key_is_none(juju, rid):
    juju.set_remote(rid, CA_UNIT, **{"client.cert": SRV_PEM})
    juju.hook("cert-provider-relation-changed", rid, CA_UNIT)
    assert juju.endpoint("cert-provider").get_client_cert() == (None, None)
