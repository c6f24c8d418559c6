"""work.decide: what one run does, from the plan and the host's facts (pure: no hook tools,
no docker, no kv; what earlier hooks recorded comes in ``Inputs.recorded``)."""

from __future__ import annotations

import dataclasses

import yaml

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.pipeline import caches, plan, rolling, work
from tests.unit.test_plan import INPUTS


def read_only(config_yaml: str) -> bool:
    return bool(yaml.safe_load(config_yaml)["storage"]["maintenance"]["readonly"]["enabled"])


FACTS = work.Facts(image_id="sha256:" + "i" * 64, http_secret="s" * 43, htpasswd="")


def _work(config: dict, facts: work.Facts = FACTS, **inputs) -> work.Work:
    given = dataclasses.replace(INPUTS, config=config, **inputs)
    parsed = settings.parse(config)
    return work.decide(parsed, given, plan.decide(parsed, given), facts)


def test_a_first_hook_opens_what_juju_does_not_have_open(config):
    # GIVEN no record of ports yet: gather asked Juju what is open
    todo = _work(config, opened_ports=frozenset({"5000/TCP", "6000/TCP"}))
    # THEN the plan's port stays and the stray one closes
    assert (todo.open_ports, todo.close_ports) == (frozenset(), {"6000/TCP"})


def test_the_record_of_opened_ports_stands_for_juju(config):
    recorded = records.Recorded(ports=("5000/TCP",))
    assert _work(config, recorded=recorded).open_ports == frozenset()
    moved = _work(config | {"registry-port": 5050}, recorded=recorded)
    assert (moved.open_ports, moved.close_ports) == ({"5050/TCP"}, {"5000/TCP"})


def test_changed_options_are_named_by_keyed_digests_never_values(config):
    first = _work(config)
    again = _work(
        config | {"registry-port": 5050},
        recorded=records.Recorded(good_options=dict(first.digests)),
    )
    assert again.changed == ("registry-port",)
    assert "5050" not in repr(dict(again.digests))


def test_an_unreachable_upstream_makes_its_cache_a_read_only_registry(config):
    facts = dataclasses.replace(
        FACTS,
        upstreams={
            "quay.io": caches.Verdict(True),
            "ghcr.io": caches.Verdict(False, "connection refused"),
        },
    )
    todo = _work(config | {"caches": "quay.io=https://quay.io ghcr.io=https://ghcr.io"}, facts)
    modes = {c.cache.host: read_only(c.desired.config_yaml) for c in todo.caches}
    assert modes == {"quay.io": False, "ghcr.io": True}
    assert all(c.desired.run.name != todo.registry.run.name for c in todo.caches)


def test_a_unit_on_its_own_applies_at_once_and_behind_a_proxy_waits_its_turn(config):
    assert _work(config).turn == rolling.GO and _work(config).token == ""
    peers = {"docker-registry/0": "10.0.0.1", "docker-registry/1": "10.0.0.2"}
    turns = {"docker-registry/1": {rolling.TOKEN: "old", rolling.STATE: rolling.APPLIED}}
    todo = _work(config, peers=peers, turns=turns, unit="docker-registry/0", now=1000.0)
    # /1 goes first (highest number): /0 waits for it, since now
    assert not todo.turn.go and todo.turn.waited.unit == "docker-registry/1"
    assert todo.turn.waited.since == 1000.0 and todo.token
