"""http: raw wire keys and YAML services list (haproxy reverseproxy compatible), flags."""

from __future__ import annotations

import pytest
import yaml

SERVICES = [
    {
        "service_name": "docker-registry",
        "service_host": "0.0.0.0",
        "service_port": 5000,
        "service_options": ["mode http", "balance leastconn", "option httpchk GET /"],
        "servers": [["docker-registry_0", "10.0.0.10", 5000, "check"]],
    }
]


@pytest.fixture
def rid(juju):
    rid = juju.relate("website", {"haproxy/0": {}})
    juju.hook("website-relation-joined", rid, "haproxy/0")
    return rid


def test_publish_services_writes_raw_keys_and_yaml_list(juju, rid):
    juju.endpoint("website").publish_services(SERVICES, "registry.example", "10.0.0.10", 5000)
    juju.flush()
    bag = juju.local[rid]
    assert bag["hostname"] == "registry.example"  # raw, not JSON '"registry.example"'
    assert bag["private-address"] == "10.0.0.10"
    assert bag["port"] == "5000"
    assert not bag["services"].startswith("[{")  # YAML block list, not JSON
    assert yaml.safe_load(bag["services"]) == SERVICES


def test_publish_services_on_every_relation_and_only_when_changed(juju, rid):
    rid2 = juju.relate("website", {"haproxy-b/0": {}})
    juju.endpoint("website").publish_services(SERVICES, "h", "10.0.0.10", 5000)
    juju.flush()
    assert juju.local[rid]["services"] == juju.local[rid2]["services"]
    writes = len(juju.relation_sets)
    juju.endpoint("website").publish_services(SERVICES, "h", "10.0.0.10", 5000)
    juju.flush()
    assert len(juju.relation_sets) == writes


def test_configure_simple_variant_drops_services(juju, rid):
    juju.endpoint("website").publish_services(SERVICES, "h", "10.0.0.10", 5000)
    juju.flush()
    juju.endpoint("website").configure(5001)
    juju.flush()
    bag = juju.local[rid]
    assert (bag["hostname"], bag["private-address"], bag["port"]) == (
        "10.0.0.10",
        "10.0.0.10",
        "5001",
    )
    assert "services" not in bag
    juju.endpoint("website").configure(443, "192.0.2.1", "reg.example")
    juju.flush()
    assert (bag["hostname"], bag["private-address"], bag["port"]) == (
        "reg.example",
        "192.0.2.1",
        "443",
    )


def test_available_while_joined_changed_on_remote_data(juju, rid):
    flags = juju.hook("update-status")
    assert "website.available" in flags
    assert "website.changed" not in flags
    juju.set_remote(rid, "haproxy/0", **{"public-address": "203.0.113.5"})
    flags = juju.hook("website-relation-changed", rid, "haproxy/0")
    assert "website.changed" in flags
    assert juju.endpoint("website").proxy_addresses() == ["203.0.113.5"]


def test_proxy_addresses_unique_over_units_and_relations(juju, rid):
    juju.set_remote(rid, "haproxy/0", **{"public-address": "203.0.113.5"})
    juju.set_remote(rid, "haproxy/1", **{"public-address": "203.0.113.6"})
    juju.relate("website", {"other/0": {"public-address": "203.0.113.5"}, "other/1": {}})
    assert juju.endpoint("website").proxy_addresses() == ["203.0.113.5", "203.0.113.6"]


def test_departed_keeps_available_until_last_unit_goes(juju, rid):
    from charms.reactive import clear_flag

    juju.set_remote(rid, "haproxy/1", **{"public-address": "203.0.113.6"})
    juju.hook("website-relation-joined", rid, "haproxy/1")
    clear_flag("website.changed")
    juju.depart(rid, "haproxy/1")
    flags = juju.hook("website-relation-departed", rid, "haproxy/1")
    assert {"website.available", "website.changed"} <= flags
    juju.depart(rid, "haproxy/0")
    flags = juju.hook("website-relation-departed", rid, "haproxy/0")
    assert "website.available" not in flags


# -- requires (haproxy-like fake) --------------------------------------------------------------


def test_requires_parses_services_and_writes_raw_public_address(juju):
    juju.local_unit = "haproxy/0"
    rid = juju.relate(
        "reverseproxy",
        {
            "docker-registry/0": {
                "hostname": "10.0.0.10",
                "private-address": "10.0.0.10",
                "port": "5000",
                "services": yaml.safe_dump(SERVICES),
            },
            "docker-registry/1": {"private-address": "10.0.0.11"},  # not published yet
            "docker-registry/2": {
                "hostname": "h2",
                "private-address": "10.0.0.12",
                "port": "5000",
                "services": "{not: a list}",
            },
        },
    )
    flags = juju.hook("reverseproxy-relation-changed", rid, "docker-registry/0")
    assert {"reverseproxy.available", "reverseproxy.changed"} <= flags
    ep = juju.endpoint("reverseproxy")
    assert ep.services() == [
        {
            "unit_name": "docker-registry/0",
            "hostname": "10.0.0.10",
            "private-address": "10.0.0.10",
            "port": 5000,
            "services": SERVICES,
        },
        {
            "unit_name": "docker-registry/2",
            "hostname": "h2",
            "private-address": "10.0.0.12",
            "port": 5000,
            "services": [],
        },
    ]
    ep.set_public_address("203.0.113.5")
    juju.flush()
    assert juju.local[rid]["public-address"] == "203.0.113.5"


def test_round_trip_between_our_provider_and_requirer(juju):
    web = juju.relate("website", {"haproxy/0": {}})
    proxy = juju.relate("reverseproxy", {"docker-registry/0": {}})

    def sync():
        juju.remote[proxy]["docker-registry/0"] = dict(juju.local[web])
        juju.remote[web]["haproxy/0"] = dict(juju.local[proxy])

    juju.endpoint("website").publish_services(SERVICES, "registry.example", "10.0.0.10", 5000)
    juju.flush()
    sync()
    juju.local_unit = "haproxy/0"
    [unit] = juju.endpoint("reverseproxy").services()
    assert (unit["hostname"], unit["port"], unit["services"]) == (
        "registry.example",
        5000,
        SERVICES,
    )
    juju.endpoint("reverseproxy").set_public_address("203.0.113.5")
    juju.flush()
    sync()
    juju.local_unit = "docker-registry/0"
    assert juju.endpoint("website").proxy_addresses() == ["203.0.113.5"]
