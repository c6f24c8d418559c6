"""datastore: the registry-data store's pure decision (fill level -> read-only mode and status
facts; attached, detaching, detached -> whether the registry may run) and the settings it
forces; the status line it adds to; gather's read of a real filesystem."""

from __future__ import annotations

import os

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import paths
from charms.layer.docker_registry.pipeline import datastore, juju, status
from charms.layer.docker_registry.pipeline.datastore import Fill, Observed, Record
from tests.support.config import charm_defaults

UNIT = "docker-registry/0"
GIB = 1 << 30


def settings_for(overrides: dict | None = None) -> settings.Settings:
    return settings.parse(charm_defaults() | (overrides or {}))


def fill(percent: float, total: int = 10 * GIB) -> Fill:
    used = int(total * percent / 100)
    return Fill(total=total, used=used, avail=total - used)


def on_volume(percent: float | None, total: int = 10 * GIB, **observed) -> Observed:
    return Observed(
        attached=("registry-data/0",),
        location=paths.STORAGE_DIR,
        fill=None if percent is None else fill(percent, total),
        **observed,
    )


def decide(observed: Observed, before: Record | None = None, filesystem: bool = True):
    return datastore.decide(observed, before or Record(), unit=UNIT, filesystem=filesystem)


def ready_message(decision: datastore.Decision) -> tuple[str, str]:
    report = status.Report(ready_at="10.0.0.1:5000")
    report.add(decision.report)
    return status.decide(report)


def test_without_the_store_nothing_changes():
    decision = decide(Observed())
    assert decision == datastore.Decision(Record())
    assert ready_message(decision) == ("active", "Ready at 10.0.0.1:5000 (http).")


@pytest.mark.parametrize(
    ("percent", "message"),
    [
        (50, "Ready at 10.0.0.1:5000 (http)."),
        (89.0, "Ready at 10.0.0.1:5000 (http)."),
        (92.1, "Ready at 10.0.0.1:5000 (http); storage 93 % full."),
        (97, "Ready at 10.0.0.1:5000 (http); storage 97 % full."),
    ],
)
def test_fill_level_is_reported_from_90_percent(percent, message):
    # GIVEN the volume is `percent` full and writable
    decision = decide(on_volume(percent))
    # THEN the registry serves writable and the status says how full from 90 %
    assert decision.serve and not decision.record.read_only
    assert decision.record.volume == "registry-data/0"
    assert ready_message(decision) == ("active", message)


def test_at_98_percent_the_registry_goes_read_only_and_says_until_when():
    decision = decide(on_volume(98))
    assert decision.serve and decision.record.read_only
    assert ready_message(decision) == (
        "blocked",
        "Storage 98 % full: the registry is read-only (pulls work, pushes are refused) until "
        "it is below 95 %; free space on registry-data/0.",
    )
    config = settings_for()
    assert datastore.effective(config, decision).storage_read_only
    assert not datastore.effective(config, decide(on_volume(50))).storage_read_only


@pytest.mark.parametrize(
    ("percent", "was", "read_only"),
    [
        (97, False, False),  # filling up: writable until 98
        (97, True, True),  # freed a little: read-only until below 95
        (95, True, True),
        (94.2, True, True),  # 95 % rounded up, as df rounds: not below 95 yet
        (93.9, True, False),  # 94 %: writable again
        (99, False, True),
    ],
)
def test_hysteresis_between_95_and_98_percent(percent, was, read_only):
    decision = decide(on_volume(percent), Record("registry-data/0", read_only=was))
    assert decision.record.read_only is read_only


def test_a_config_read_only_stays_read_only():
    config = settings_for({"storage-read-only": True})
    assert datastore.effective(config, decide(on_volume(10))).storage_read_only


def test_detaching_stops_the_registry_and_blocks_naming_the_volume():
    # GIVEN the registry runs on registry-data/0, WHEN its storage-detaching hook runs
    before = Record("registry-data/0")
    decision = decide(on_volume(50, detaching="registry-data/0"), before)
    # THEN it may not run, and stays so once the volume is gone
    assert not decision.serve
    assert decision.record == Record("registry-data/0", detached=True)
    assert decision.report.blocked == [
        "Storage detached (registry-data/0): the registry is stopped, its images are on that "
        "volume; attach it again: juju attach-storage docker-registry/0 registry-data/0."
    ]
    later = decide(Observed(), decision.record)
    assert not later.serve and later.record == decision.record


def test_a_volume_gone_without_a_detaching_hook_seen_is_detached_too():
    decision = decide(Observed(), Record("registry-data/0"))
    assert not decision.serve and decision.record.detached


def test_attached_again_serves_from_it():
    decision = decide(on_volume(40), Record("registry-data/0", detached=True))
    assert decision.serve and decision.record == Record("registry-data/0")


def test_object_storage_never_stops_for_the_volume():
    # (S3/Swift hold the images; the volume holds only the pull-through caches' data)
    decision = decide(Observed(), Record("registry-data/0"), filesystem=False)
    assert decision.serve
    assert not decide(on_volume(99), filesystem=False).record.read_only


def test_a_store_smaller_than_the_minimum_blocks_yet_serves():
    decision = decide(on_volume(10, total=512 << 20))
    assert decision.serve
    assert decision.report.blocked == [
        "Storage registry-data/0 is 512 MiB, smaller than the 1024 MiB the registry needs: "
        "move its images to a larger one."
    ]


def test_an_unreadable_store_holds_everything_as_it_is():
    before = Record("registry-data/0", read_only=True)
    decision = decide(Observed(error="storage-get failed"), before)
    assert decision.hold and decision.record == before
    assert decision.report.blocked == [
        "Cannot read storage registry-data: storage-get failed; the registry is left as it is."
    ]


def test_a_volume_mounted_elsewhere_holds_everything_as_it_is():
    decision = decide(Observed(attached=("registry-data/3",), location="/mnt/x"))
    assert decision.hold
    assert decision.report.blocked == [
        "Storage registry-data/3 is mounted at /mnt/x, not /srv/registry; the registry is "
        "left as it is."
    ]


def test_record_round_trips_and_tolerates_garbage():
    record = Record("registry-data/0", detached=True, read_only=True)
    assert Record.from_dict(record.as_dict()) == record
    assert Record.from_dict(None) == Record()
    assert Record.from_dict("x") == Record()


def test_percent_is_rounded_up_like_df():
    assert Fill(total=100, used=90, avail=10).percent == 90
    assert Fill(total=100, used=901, avail=99).percent == 91
    assert Fill(total=0, used=0, avail=0).percent == 100


def test_observe_reads_the_fill_of_the_location(monkeypatch, tmp_path):
    # GIVEN storage-list and storage-get answer as Juju does (charmhelpers' own wrappers)
    from charmhelpers.core import hookenv

    monkeypatch.setattr(hookenv, "storage_list", lambda name: ["registry-data/0"])
    monkeypatch.setattr(hookenv, "storage_get", lambda attr, sid: "/srv/registry")
    (tmp_path / "srv" / "registry").mkdir(parents=True)
    monkeypatch.setenv("DOCKER_REGISTRY_SANDBOX", str(tmp_path))
    observed = juju.observe_store("update-status")
    fs = os.statvfs(tmp_path)
    assert observed.attached == ("registry-data/0",) and observed.location == "/srv/registry"
    assert observed.fill and observed.fill.total == fs.f_blocks * fs.f_frsize
    # AND in its detaching hook the volume is not read
    monkeypatch.setenv("JUJU_STORAGE_ID", "registry-data/0")
    detaching = juju.observe_store("registry-data-storage-detaching")
    assert detaching.detaching == "registry-data/0" and detaching.fill is None


def test_observe_turns_a_failing_hook_tool_into_a_reason(monkeypatch):
    import subprocess

    from charmhelpers.core import hookenv

    def fails(*_args):
        raise subprocess.CalledProcessError(1, ["storage-get", "--format=json"])

    monkeypatch.setattr(hookenv, "storage_list", lambda name: ["registry-data/0"])
    monkeypatch.setattr(hookenv, "storage_get", fails)
    assert juju.observe_store("update-status") == Observed(error="storage-get failed")
