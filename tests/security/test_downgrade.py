"""No silent downgrade: while basic or token auth is on, losing TLS never turns the registry,
or what its clients are told, into plain http without the operator saying so."""

from __future__ import annotations

import json

from tests.support import certs
from tests.unit.test_handlers import PASSWORD


def _https_with_basic_auth(charm) -> tuple[str, str]:
    charm.config["auth-basic-password"] = PASSWORD
    charm.hook("install")
    tls = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", tls, "easyrsa/0")
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    charm.set_remote(
        tls,
        "easyrsa/0",
        ca=ca.cert,
        **{
            "docker-registry_0.server.cert": server.cert,
            "docker-registry_0.server.key": server.key,
        },
    )
    charm.hook("cert-provider-relation-changed", tls, "easyrsa/0")
    containerd = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", containerd, "containerd/0")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (https).")
    return tls, containerd


def _remove_relation(charm, rid: str, unit: str) -> None:
    charm.depart(rid, unit)
    charm.hook(f"{rid.split(':')[0]}-relation-departed", rid, unit)
    del charm.remote[rid]
    charm.hook(f"{rid.split(':')[0]}-relation-broken", rid)


def test_removing_the_cert_provider_under_basic_auth_blocks_and_keeps_https(charm):
    # GIVEN https from cert-provider with basic auth, a client told so
    tls, containerd = _https_with_basic_auth(charm)
    applied = len(charm.applied)
    # WHEN the operator removes the cert-provider relation
    _remove_relation(charm, tls, "easyrsa/0")
    # THEN the unit blocks saying what to do, the registry is not recreated as http, and the
    # client is still told https with the CA (never http with the password)
    assert charm.status[0] == "blocked"
    assert charm.status[1].startswith("TLS is gone while auth-basic-password is set")
    assert "relate cert-provider" in charm.status[1]
    assert len(charm.applied) == applied
    bag = charm.local[containerd]
    assert json.loads(bag["registry_url"]) == "https://10.0.0.10:5000"
    assert json.loads(bag["tls_ca"])


def test_turning_auth_off_is_the_operator_saying_plain_http(charm):
    tls, containerd = _https_with_basic_auth(charm)
    _remove_relation(charm, tls, "easyrsa/0")
    # WHEN the operator unsets the password THEN plain http is served and told, without one
    charm.config["auth-basic-password"] = ""
    charm.hook("config-changed")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (http).")
    bag = charm.local[containerd]
    assert json.loads(bag["registry_url"]) == "http://10.0.0.10:5000"
    assert not json.loads(bag.get("basic_password", "null"))
