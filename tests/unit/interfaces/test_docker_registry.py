"""docker-registry: JSON-encoded unit data, both-or-neither credentials, ready flag."""

from __future__ import annotations

import json

import pytest

CA_PEM = "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n"
PASSWORD = "s3cr3t-Pa55"
KEYS = ("registry_netloc", "registry_url", "basic_user", "basic_password", "tls_ca")


@pytest.fixture
def rid(juju):
    rid = juju.relate("docker-registry", {"containerd/0": {}})
    juju.hook("docker-registry-relation-joined", rid, "containerd/0")
    return rid


def publish(juju, *args, **kwargs) -> None:
    ep = juju.endpoint("docker-registry")
    assert ep.clients_joined
    ep.set_registry_data(*args, **kwargs)
    juju.flush()


def test_values_are_json_encoded(juju, rid):
    publish(juju, "10.0.0.10:5000", "https://10.0.0.10:5000", "admin", PASSWORD, CA_PEM)
    bag = juju.local[rid]
    assert bag["registry_netloc"] == '"10.0.0.10:5000"'
    assert bag["registry_url"] == '"https://10.0.0.10:5000"'
    assert bag["basic_user"] == '"admin"'
    assert bag["basic_password"] == json.dumps(PASSWORD)
    assert bag["tls_ca"] == json.dumps(CA_PEM)
    assert json.loads(bag["tls_ca"]) == CA_PEM


@pytest.mark.parametrize(
    ("user", "password"), [("admin", None), ("admin", ""), (None, PASSWORD), ("", PASSWORD)]
)
def test_credentials_both_or_neither(juju, rid, user, password):
    publish(juju, "10.0.0.10:5000", "http://10.0.0.10:5000", user, password)
    bag = juju.local[rid]
    assert bag["basic_user"] == "null"
    assert bag["basic_password"] == "null"


def test_no_auth_no_tls_publishes_nulls(juju, rid):
    publish(juju, "[2001:db8::1]:5000", "http://[2001:db8::1]:5000", tls_ca="")
    bag = juju.local[rid]
    assert {k: bag[k] for k in KEYS} == {
        "registry_netloc": '"[2001:db8::1]:5000"',
        "registry_url": '"http://[2001:db8::1]:5000"',
        "basic_user": "null",
        "basic_password": "null",
        "tls_ca": "null",
    }


def test_credentials_can_be_withdrawn(juju, rid):
    publish(juju, "r:5000", "http://r:5000", "admin", PASSWORD)
    publish(juju, "r:5000", "http://r:5000")
    assert juju.local[rid]["basic_password"] == "null"


def test_every_relation_unchanged_not_rewritten_and_password_not_logged(juju, rid):
    rid2 = juju.relate("docker-registry", {"docker/0": {}})
    publish(juju, "r:5000", "https://r:5000", "admin", PASSWORD, CA_PEM)
    assert juju.local[rid2]["basic_password"] == json.dumps(PASSWORD)
    writes = len(juju.relation_sets)
    publish(juju, "r:5000", "https://r:5000", "admin", PASSWORD, CA_PEM)
    assert len(juju.relation_sets) == writes
    assert juju.logs and not [line for line in juju.logs if PASSWORD in line]


# -- requires ----------------------------------------------------------------------------------


@pytest.fixture
def client_rid(juju):
    juju.local_unit = "containerd/0"
    return juju.relate("registry", {"docker-registry/0": {}, "docker-registry/1": {}})


def test_ready_and_decoded_data(juju, client_rid):
    flags = juju.hook("registry-relation-joined", client_rid, "docker-registry/0")
    assert "endpoint.registry.ready" not in flags
    assert juju.endpoint("registry").registry_data() is None
    juju.set_remote(
        client_rid,
        "docker-registry/1",
        registry_netloc='"10.0.0.11:5000"',
        registry_url='"https://10.0.0.11:5000"',
        basic_user="null",
        basic_password="null",
        tls_ca=json.dumps(CA_PEM),
    )
    flags = juju.hook("registry-relation-changed", client_rid, "docker-registry/1")
    assert "endpoint.registry.ready" in flags
    assert juju.endpoint("registry").registry_data() == {
        "registry_netloc": "10.0.0.11:5000",
        "registry_url": "https://10.0.0.11:5000",
        "basic_user": None,
        "basic_password": None,
        "tls_ca": CA_PEM,
    }
    assert juju.local[client_rid] == {"private-address": "10.0.0.10"}  # requirer writes nothing


def test_ready_cleared_when_netloc_goes_and_on_broken(juju, client_rid):
    juju.set_remote(client_rid, "docker-registry/0", registry_netloc='"r:5000"')
    assert "endpoint.registry.ready" in juju.hook("registry-relation-changed", client_rid)
    juju.set_remote(client_rid, "docker-registry/0", registry_netloc=None)
    assert "endpoint.registry.ready" not in juju.hook("registry-relation-changed", client_rid)
    juju.set_remote(client_rid, "docker-registry/0", registry_netloc='"r:5000"')
    assert "endpoint.registry.ready" in juju.hook("registry-relation-changed", client_rid)
    for unit in ("docker-registry/0", "docker-registry/1"):
        juju.depart(client_rid, unit)
        flags = juju.hook("registry-relation-departed", client_rid, unit)
    assert "endpoint.registry.ready" not in flags


def test_round_trip(juju):
    prov = juju.relate("docker-registry", {"containerd/0": {}})
    cli = juju.relate("registry", {"docker-registry/0": {}})
    publish(juju, "r:5000", "https://r:5000", "admin", PASSWORD, CA_PEM)
    juju.remote[cli]["docker-registry/0"] = dict(juju.local[prov])
    juju.local_unit = "containerd/0"
    flags = juju.hook("registry-relation-changed", cli, "docker-registry/0")
    assert "endpoint.registry.ready" in flags
    assert juju.endpoint("registry").registry_data() == {
        "registry_netloc": "r:5000",
        "registry_url": "https://r:5000",
        "basic_user": "admin",
        "basic_password": PASSWORD,
        "tls_ca": CA_PEM,
    }
