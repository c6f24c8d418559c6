"""rolling: whose turn it is to recreate its registry for a change (pure)."""

from __future__ import annotations

import re

import pytest

from charms.layer.docker_registry.pipeline import rolling

NEW, OLD = "t-new", "t-old"


def said(token: str, state: str) -> dict:
    return {rolling.TOKEN: token, rolling.STATE: state}


def test_the_highest_unit_number_goes_first_and_the_lowest_last():
    units = ["docker-registry/2", "docker-registry/10", "docker-registry/0"]
    assert rolling.turn_order(units) == [
        "docker-registry/10",
        "docker-registry/2",
        "docker-registry/0",
    ]


def test_the_first_in_turn_goes_at_once():
    # GIVEN /1 is first in turn; /0 has not even seen the change
    verdict = rolling.decide(
        "docker-registry/1", NEW, {"docker-registry/0": said(OLD, rolling.APPLIED)}, None, 0.0
    )
    assert verdict == rolling.GO


def test_a_unit_waits_for_the_one_before_it_to_apply_and_keeps_whom_and_since_when():
    # GIVEN /1 (before /0 in turn) still runs the previous config
    reports = {"docker-registry/1": said(OLD, rolling.APPLIED)}
    verdict = rolling.decide("docker-registry/0", NEW, reports, None, 100.0)
    # THEN /0 waits, says for whom, and records since when
    assert not verdict.go
    assert verdict.waiting_for == "docker-registry/1"
    assert verdict.waited == rolling.Waited(NEW, "docker-registry/1", 100.0)
    assert verdict.message == (
        "Waiting for docker-registry/1 to apply the new config first (rolling change); "
        "serving the previous config."
    )
    # WHEN /1 reports it runs the new config and answers
    reports = {"docker-registry/1": said(NEW, rolling.APPLIED)}
    # THEN it is /0's turn
    assert rolling.decide("docker-registry/0", NEW, reports, verdict.waited, 130.0).go


def test_a_unit_waiting_its_own_turn_is_waited_for():
    reports = {
        "docker-registry/2": said(OLD, rolling.APPLIED),
        "docker-registry/1": said(NEW, rolling.WAITING),
    }
    verdict = rolling.decide("docker-registry/0", NEW, reports, None, 0.0)
    assert verdict.waiting_for == "docker-registry/2"
    reports["docker-registry/2"] = said(NEW, rolling.APPLIED)
    verdict = rolling.decide("docker-registry/0", NEW, reports, None, 0.0)
    assert verdict.waiting_for == "docker-registry/1"


def test_a_unit_that_reported_a_failure_with_the_new_config_is_passed_over():
    # (its own health gate keeps it on its last good config; this unit has one too)
    reports = {"docker-registry/1": said(NEW, rolling.FAILED)}
    assert rolling.decide("docker-registry/0", NEW, reports, None, 0.0).go


@pytest.mark.parametrize("report", [{}, said("", "")])
def test_a_unit_that_reported_nothing_is_not_waited_for(report):
    # (it does not serve yet, or runs a charm revision from before rolling changes)
    assert rolling.decide("docker-registry/0", NEW, {"docker-registry/1": report}, None, 0.0).go


def test_a_silent_unit_is_waited_for_patience_seconds_then_passed_over():
    # GIVEN /2 never reports the new config (its agent is gone) and /1 runs the old one
    reports = {
        "docker-registry/2": said(OLD, rolling.APPLIED),
        "docker-registry/1": said(OLD, rolling.APPLIED),
    }
    first = rolling.decide("docker-registry/0", NEW, reports, None, 1000.0)
    assert first.waiting_for == "docker-registry/2"
    # WHEN a later hook finds it still silent, within the patience: still waited for
    still = rolling.decide("docker-registry/0", NEW, reports, first.waited, 1000.0 + 299)
    assert still.waiting_for == "docker-registry/2" and still.waited == first.waited
    # WHEN past the patience: passed over, and the next unit (/1) gets its full patience
    later = rolling.decide(
        "docker-registry/0", NEW, reports, first.waited, 1000.0 + rolling.PATIENCE
    )
    assert later.passed_over == ("docker-registry/2",)
    assert later.waited == rolling.Waited(NEW, "docker-registry/1", 1000.0 + rolling.PATIENCE)


def test_patience_counts_only_for_the_same_change():
    reports = {"docker-registry/1": said(OLD, rolling.APPLIED)}
    waited = rolling.Waited("an-earlier-change", "docker-registry/1", 0.0)
    verdict = rolling.decide("docker-registry/0", NEW, reports, waited, 10_000.0)
    assert not verdict.go and verdict.waited == rolling.Waited(NEW, "docker-registry/1", 10_000.0)


def test_units_after_this_one_in_turn_are_never_waited_for():
    reports = {"docker-registry/0": said(OLD, rolling.WAITING)}
    assert rolling.decide("docker-registry/3", NEW, reports, None, 0.0).go


def test_the_token_is_the_same_for_the_same_change_and_gives_away_no_value():
    options = {"auth-basic-password": "pw-Secret-1", "log-level": "info"}
    one = rolling.token(options, "build-a", "res-a", "shared-key")
    assert one == rolling.token(dict(reversed(options.items())), "build-a", "res-a", "shared-key")
    assert re.fullmatch(r"[0-9a-f]{16}", one)
    changed = [
        rolling.token(options | {"log-level": "debug"}, "build-a", "res-a", "shared-key"),
        rolling.token(options, "build-b", "res-a", "shared-key"),  # a charm upgrade
        rolling.token(options, "build-a", "res-b", "shared-key"),  # a new image resource
    ]
    assert one not in changed and len(set(changed)) == 3


@pytest.mark.parametrize(
    ("held", "answering", "problem", "state"),
    [
        (True, True, "", rolling.WAITING),
        (False, True, "", rolling.APPLIED),
        (False, True, "The new config did not start", rolling.FAILED),
        (False, False, "", rolling.FAILED),
    ],
)
def test_what_a_unit_reports_after_its_apply(held, answering, problem, state):
    assert rolling.state(held, answering, problem) == state


@pytest.mark.parametrize(
    "record", [None, {}, {"token": "t"}, {"token": "t", "unit": "u", "since": "x"}]
)
def test_a_damaged_wait_record_is_no_record(record):
    assert rolling.Waited.from_record(record) is None
