"""plan.decide: what a unit should serve and tell, from what a hook gathered (no hook tools,
no docker; certificates checked by the real openssl tool)."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.pipeline import plan, status
from tests.support import certs

INPUTS = plan.Inputs(
    config={},
    address="10.0.0.1",
    public_address="203.0.113.1",
    hostname="unit-0",
    leader=True,
    stopped=False,
    tls_joined=False,
    issued={},
    ca="",
    chain="",
    client_cert=(None, None),
    proxies=[],
    peers={"docker-registry/0": "10.0.0.1"},
    clients=False,
    nrpe=[],
)


@pytest.fixture
def ca():
    return certs.make_ca()


def _decide(config: dict, **inputs) -> plan.Plan:
    return plan.decide(settings.parse(config), dataclasses.replace(INPUTS, **inputs))


def test_a_plain_unit_serves_http_at_its_address_and_opens_its_port(config):
    decided = _decide(config)
    assert (decided.netloc, decided.proxied, decided.tls) == ("10.0.0.1:5000", False, None)
    assert decided.ports == {"5000/TCP"}
    assert (decided.common_name, decided.request_cert, decided.tell_peers) == (
        "10.0.0.1",
        False,
        True,
    )
    assert status.decide(decided.when_serving) == ("active", "Ready at 10.0.0.1:5000 (http).")


def test_behind_a_proxy_clients_dial_the_proxy_and_the_certificate_names_it(config):
    decided = _decide(config | {"prometheus-metrics": True}, proxies=["192.0.2.9"])
    assert (decided.netloc, decided.proxied) == ("192.0.2.9:5000", True)
    assert "192.0.2.9" in decided.sans
    assert decided.ports == {"5000/TCP"}  # the debug listener is on the loopback only


def test_an_invalid_proxy_address_blocks_and_is_left_out(config):
    decided = _decide(config, proxies=["bad address", "192.0.2.9"])
    assert decided.netloc == "192.0.2.9:5000"
    assert decided.report.blocked == [
        "The proxy sent an invalid public-address on website: 'bad address'."
    ]


def test_filesystem_storage_behind_a_proxy_with_peers_is_replicated_not_blocked(config):
    peers = {"docker-registry/0": "10.0.0.1", "docker-registry/1": "10.0.0.2"}
    decided = _decide(config, proxies=["192.0.2.9"], peers=peers)
    assert decided.report.blocked == decided.when_serving.blocked == []


def test_filesystem_storage_behind_a_proxy_with_token_auth_blocks_once_serving(config, ca):
    # GIVEN token auth: a backup has no token to read the primary with
    token = {
        "auth-token-realm": "https://auth.example/token",
        "auth-token-service": "registry",
        "auth-token-issuer": "issuer",
        "auth-token-root-certs": base64.b64encode(ca[0].cert.encode()).decode(),
    }
    peers = {"docker-registry/0": "10.0.0.1", "docker-registry/1": "10.0.0.2"}
    decided = _decide(config | token, proxies=["192.0.2.9"], peers=peers)
    assert decided.when_serving.blocked[0].startswith("Units do not share data")


def test_while_a_certificate_is_expected_nobody_is_told_http(config):
    decided = _decide(config, tls_joined=True)
    assert (decided.tls, decided.request_cert, decided.tell_peers) == (None, True, False)
    assert decided.report.waiting == ["Waiting for a server certificate from cert-provider."]


def test_a_certificate_for_a_new_common_name_in_flight_keeps_the_one_issued_before(config, ca):
    pair, key, cert = ca
    old = certs.make_server_cert(key, cert, "10.0.0.9", ["10.0.0.9"])
    decided = _decide(
        config, tls_joined=True, issued={"10.0.0.9": (old.cert, old.key)}, ca=pair.cert
    )
    assert decided.tls is not None and decided.tls.source == "relation"
    assert decided.report.waiting and decided.tell_peers
    assert decided.when_serving.notes == ["Warning: the certificate does not cover 10.0.0.1."]


def test_an_unusable_certificate_from_the_relation_is_a_problem_not_an_exception(config, ca):
    _pair, key, cert = ca
    other_pair, _other_key, _other_cert = certs.make_ca("other")
    issued = certs.make_server_cert(key, cert, "10.0.0.1", ["10.0.0.1"])
    decided = _decide(
        config, tls_joined=True, issued={"10.0.0.1": (issued.cert, issued.key)}, ca=other_pair.cert
    )
    assert decided.problem.startswith("cert-provider sent an unusable server certificate:")
    assert decided.tls is None


def test_client_auth_without_a_ca_is_a_problem(config):
    decided = _decide(config | {"tls-client-auth": True})
    assert decided.problem.startswith("tls-client-auth needs a CA to verify clients")
