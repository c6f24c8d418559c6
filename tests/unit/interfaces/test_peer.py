"""docker-registry-peer: JSON address/port per unit, units() by unit number, flags."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.support.fakejuju import INTERFACES

PEERS = INTERFACES / "docker-registry-peer" / "peers.py"


@pytest.fixture
def juju(juju, monkeypatch):
    """The shared harness loads provides/requires; a peers module is loaded here the same way
    (``relations.<interface>.peers``, fresh per hook so its handlers register again)."""
    load = juju.load_interfaces

    def load_with_peers():
        load()
        name = "relations.docker-registry-peer.peers"
        spec = importlib.util.spec_from_file_location(name, PEERS)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setitem(sys.modules, f"reactive.{name}", module)
        spec.loader.exec_module(module)

    juju.load_interfaces = load_with_peers
    return juju


@pytest.fixture
def rid(juju):
    return juju.relate("peer", {})


def test_endpoint_is_the_peer_class(juju, rid):
    assert type(juju.endpoint("peer")).__name__ == "DockerRegistryPeers"


def test_publish_writes_json_address_and_port(juju, rid):
    assert juju.endpoint("peer").publish("10.0.0.10", 5000)
    juju.flush()
    assert juju.local[rid]["address"] == '"10.0.0.10"'
    assert juju.local[rid]["port"] == "5000"
    writes = len(juju.relation_sets)
    assert not juju.endpoint("peer").publish("10.0.0.10", "5000")  # unchanged: no write
    juju.flush()
    assert len(juju.relation_sets) == writes


def test_units_alone_is_just_this_unit(juju, rid):
    assert juju.endpoint("peer").units() == []  # nothing published yet
    juju.endpoint("peer").publish("10.0.0.10", 5000)
    juju.flush()
    assert juju.endpoint("peer").units() == [("docker-registry/0", "10.0.0.10", 5000)]
    assert juju.endpoint("peer").units(include_self=False) == []


def test_units_sorted_by_unit_number_and_only_complete_entries(juju, rid):
    juju.endpoint("peer").publish("10.0.0.10", 5000)
    juju.flush()
    for unit, address in (
        ("docker-registry/10", "10.0.0.20"),
        ("docker-registry/2", "10.0.0.12"),
    ):
        juju.set_remote(rid, unit, address=f'"{address}"', port="5000")
        juju.hook("peer-relation-joined", rid, unit)
    juju.set_remote(rid, "docker-registry/3", address='"10.0.0.13"')  # no port yet
    juju.hook("peer-relation-joined", rid, "docker-registry/3")
    assert juju.endpoint("peer").units() == [
        ("docker-registry/0", "10.0.0.10", 5000),
        ("docker-registry/2", "10.0.0.12", 5000),
        ("docker-registry/10", "10.0.0.20", 5000),
    ]


def test_same_list_whichever_unit_computes_it(juju, rid):
    """Seen from /10 (e.g. a new leader): the same list as from /0."""
    juju.local_unit = "docker-registry/10"
    juju.endpoint("peer").publish("10.0.0.20", 5000)
    juju.flush()
    juju.set_remote(rid, "docker-registry/0", address='"10.0.0.10"', port="5000")
    juju.set_remote(rid, "docker-registry/2", address='"10.0.0.12"', port="5000")
    juju.hook("peer-relation-changed", rid, "docker-registry/2")
    assert [u for u, _, _ in juju.endpoint("peer").units()] == [
        "docker-registry/0",
        "docker-registry/2",
        "docker-registry/10",
    ]


def test_flags_joined_changed_departed(juju, rid):
    flags = juju.hook("update-status")
    assert "endpoint.peer.joined" not in flags
    juju.set_remote(rid, "docker-registry/1", address='"10.0.0.11"', port="5000")
    flags = juju.hook("peer-relation-joined", rid, "docker-registry/1")
    assert "endpoint.peer.joined" in flags
    assert "peer.changed" in flags
    assert not any(f.startswith("endpoint.peer.changed") for f in flags)

    juju.hook("update-status")
    from charms.reactive import clear_flag

    clear_flag("peer.changed")  # the charm acted on it
    flags = juju.hook("update-status")
    assert "peer.changed" not in flags

    juju.set_remote(rid, "docker-registry/1", address='"10.0.0.99"')
    flags = juju.hook("peer-relation-changed", rid, "docker-registry/1")
    assert "peer.changed" in flags
    assert ("docker-registry/1", "10.0.0.99", 5000) in juju.endpoint("peer").units()
    clear_flag("peer.changed")

    juju.depart(rid, "docker-registry/1")
    flags = juju.hook("peer-relation-departed", rid, "docker-registry/1")
    assert "peer.changed" in flags
    assert "endpoint.peer.joined" not in flags
    assert juju.endpoint("peer").units(include_self=False) == []


@pytest.mark.parametrize(
    ("address", "port"),
    [('"10.0.0.13"', '"http"'), ('"10.0.0.13"', "70000"), ("42", "5000"), ('""', "5000")],
)
def test_unusable_peer_data_is_skipped_not_a_traceback(juju, rid, address, port):
    juju.endpoint("peer").publish("10.0.0.10", 5000)
    juju.flush()
    juju.set_remote(rid, "docker-registry/3", address=address, port=port)
    juju.hook("peer-relation-changed", rid, "docker-registry/3")
    assert juju.endpoint("peer").units() == [("docker-registry/0", "10.0.0.10", 5000)]
