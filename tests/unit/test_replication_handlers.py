"""Replication through the real handlers and interface layers (charms.reactive dispatch): what
a backup publishes and shows, and what the leader records and tells haproxy."""

from __future__ import annotations

import yaml

from tests.unit.test_handlers import charm  # noqa: F401 - the handlers' fixture

PROXY = {"haproxy/0": {"public-address": "10.0.0.99"}}


def test_a_backup_that_cannot_reach_the_primary_says_so_and_serves(charm):  # noqa: F811
    # GIVEN unit /1, not the leader, whose leader recorded /0 as the primary, and /0's
    # registry URL on the peer relation where nothing answers
    charm.local_unit, charm.leader = "docker-registry/1", False
    charm.leader_data["replica-primary"] = "docker-registry/0"
    charm.hook("install")
    peer = charm.relate(
        "peer",
        {
            "docker-registry/0": {
                "ingress-address": "10.0.0.9",
                "registry-url": "http://127.0.0.1:9",
            }
        },
    )
    web = charm.relate("website", PROXY)
    # WHEN a hook runs
    charm.hook("website-relation-changed", web, "haproxy/0")
    # THEN the unit serves (active) and names the primary it cannot reach and why
    state, message = charm.status
    assert state == "active"
    assert message.startswith(
        "Ready at 10.0.0.99:5000 (http, proxied); backup, cannot reach docker-registry/0 "
        "(no answer from the registry at http://127.0.0.1:9"
    )
    assert message.endswith("; serving what it synced.")
    # AND tells its peers where it answers, and that it is in sync with nobody
    assert charm.local[peer]["registry-url"] == "http://10.0.0.10:5000"
    assert "replica-in-sync-with" not in charm.local[peer]
    assert charm.leader_data["replica-primary"] == "docker-registry/0"  # (the leader's)


def test_the_primary_removed_the_leader_records_a_unit_in_sync_with_it(charm):  # noqa: F811
    # GIVEN the leader /0 is new (never synced); /0's record names /5, which is gone; /3 says
    # its last sync matched /5
    charm.leader_data["replica-primary"] = "docker-registry/5"
    charm.hook("install")
    charm.relate(
        "peer",
        {
            "docker-registry/3": {
                "ingress-address": "10.0.0.13",
                "registry-url": "http://127.0.0.1:9",  # (nothing answers there)
                "replica-in-sync-with": "docker-registry/5",
            }
        },
    )
    web = charm.relate("website", PROXY)
    charm.hook("website-relation-changed", web, "haproxy/0")
    # THEN the leader records /3, whose images are /5's, and haproxy sends traffic to it
    assert charm.leader_data["replica-primary"] == "docker-registry/3"
    (service,) = yaml.safe_load(charm.local[web]["services"])
    active = [s[0] for s in service["servers"] if not s[3].endswith("backup")]
    assert active == ["docker-registry-3"]
    # AND the leader follows /3 (the hook's pipeline runs again once leader data changed)
    assert charm.status[0] == "active"
    assert "; backup, cannot reach docker-registry/3 (" in charm.status[1]
