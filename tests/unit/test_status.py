"""status: the one ladder, blocked > waiting > maintenance > active, and its texts."""

from __future__ import annotations

from charms.layer.docker_registry.pipeline import status


def report(**facts) -> status.Report:
    r = status.Report()
    for message in facts.pop("blocked", []):
        r.block(message)
    for message in facts.pop("waiting", []):
        r.wait(message)
    for message in facts.pop("busy", []):
        r.busy(message)
    for name, value in facts.items():
        setattr(r, name, value)
    return r


def test_ready_registry_is_active_with_its_address_and_scheme():
    assert status.decide(report(ready_at="10.0.0.1:5000")) == (
        "active",
        "Ready at 10.0.0.1:5000 (http).",
    )


def test_ready_proxied_https_registry_says_so():
    assert status.decide(report(ready_at="10.0.0.1:5000", scheme="https", proxied=True)) == (
        "active",
        "Ready at 10.0.0.1:5000 (https, proxied).",
    )


def test_notes_follow_the_ready_message():
    r = report(ready_at="reg:443", scheme="https", notes=["Storage is read-only.", "Note 2."])
    assert status.decide(r) == (
        "active",
        "Ready at reg:443 (https). Storage is read-only. Note 2.",
    )


def test_blocked_beats_everything_and_joins_every_reason():
    r = report(
        blocked=["tls-cert-blob: expired.", "auth: both kinds set."],
        waiting=["Waiting for certificates."],
        busy=["Installing docker."],
        ready_at="10.0.0.1:5000",
    )
    assert status.decide(r) == ("blocked", "tls-cert-blob: expired. auth: both kinds set.")


def test_waiting_beats_maintenance_and_active():
    r = report(waiting=["Waiting for A.", "Waiting for B."], busy=["x"], ready_at="a:1")
    assert status.decide(r) == ("waiting", "Waiting for A. Waiting for B.")


def test_maintenance_shows_the_latest_step_and_beats_active():
    r = report(busy=["Installing docker.", "Loading the image."], ready_at="a:1")
    assert status.decide(r) == ("maintenance", "Loading the image.")


def test_nothing_known_is_waiting_for_the_registry():
    assert status.decide(status.Report()) == ("waiting", "Waiting for the registry to start.")


def test_the_same_reason_reported_twice_is_shown_once():
    r = report(blocked=["Bad config.", "Bad config."])
    assert status.decide(r) == ("blocked", "Bad config.")
    r = report(waiting=["Waiting.", "Waiting."])
    assert status.decide(r) == ("waiting", "Waiting.")


def test_a_report_survives_the_kv_as_a_record():
    report = status.Report(ready_at="10.0.0.1:5000", scheme="https", proxied=True, notes=["n"])
    assert status.Report.from_record(report.as_record()) == report
    assert status.Report.from_record(report.as_record() | {"from-a-later-revision": 1}) == report
    assert status.Report.from_record(None) is None


def test_after_an_action_restarts_the_registry_the_serving_facts_are_reported_again():
    serving = status.Report(ready_at="10.0.0.1:5000", scheme="http", proxied=True)
    assert status.decide(status.restarted("registry", serving)) == (
        "active",
        "Ready at 10.0.0.1:5000 (http, proxied).",
    )
    waiting = ("waiting", "Waiting for the registry container to answer.")
    assert status.decide(status.restarted("registry", None)) == waiting
    assert status.decide(status.restarted("registry", status.Report())) == waiting


def test_stopped_by_the_operator_blocks_naming_the_container():
    assert status.decide(status.stopped("reg")) == ("blocked", "reg container is stopped.")
