"""The alert rules the charm publishes over cos-agent, as published (cosl's AlertRules with a Juju
topology), checked and unit-tested by promtool (Debian's prometheus package) on synthetic
series shaped like a real scrape of registry 2.8 through a COS collector."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from charms.layer.docker_registry.pipeline import cos

ROOT = Path(__file__).resolve().parents[2]
UUID = "f1b2c3d4-1111-4222-8333-444455556666"
APP = {"juju_model": "lab", "juju_model_uuid": UUID, "juju_application": "docker-registry"}
UNIT = {**APP, "juju_unit": "docker-registry/0"}
OTHER_APP = {**APP, "juju_application": "other"}
# what cosl adds to every rule: the topology (unit excluded) and the charm
RULE_LABELS = {**APP, "juju_charm": "docker-registry"}
JOB = {"job": "cos-agent_0_registry", "instance": "localhost:5001"}


def series(name: str, labels: dict, values: str) -> dict:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


def published() -> dict:
    topology = cos.topology("docker-registry", "docker-registry/0", "docker-registry")
    return cos.alert_rules(ROOT / cos.ALERT_RULES_DIR, topology)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found: scripts/setup-host.sh installs Debian's prometheus"
    return path


@pytest.fixture
def rules_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("JUJU_MODEL_NAME", "lab")
    monkeypatch.setenv("JUJU_MODEL_UUID", UUID)
    path = tmp_path / "published.rules.yaml"
    path.write_text(yaml.safe_dump(published()))
    return path


def run_tests(promtool: str, rules_file: Path, tests: list[dict]) -> subprocess.CompletedProcess:
    """promtool test rules on the published rules without their annotations (promtool compares
    annotations exactly; their templates are checked by `promtool check rules`)."""
    rules = yaml.safe_load(rules_file.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    bare = rules_file.with_name("bare.rules.yaml")
    bare.write_text(yaml.safe_dump(rules))
    test_file = rules_file.with_name("test.yaml")
    test_file.write_text(
        yaml.safe_dump({"rule_files": [bare.name], "evaluation_interval": "1m", "tests": tests})
    )
    return subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )


def alert(name: str, eval_time: str, *expected: dict) -> dict:
    return {
        "eval_time": eval_time,
        "alertname": name,
        "exp_alerts": [{"exp_labels": labels} for labels in expected],
    }


def test_promtool_checks_the_published_rules(promtool, rules_file):
    # GIVEN the rules as the charm publishes them WHEN promtool checks them THEN they are valid
    proc = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 4 rules found" in proc.stdout
    rules = yaml.safe_load(rules_file.read_text())
    for group in rules["groups"]:
        assert group["name"].startswith(f"lab_{UUID[:8]}_docker-registry".replace("-", "_"))
        for rule in group["rules"]:
            assert rule["labels"].items() >= RULE_LABELS.items()
            assert 'juju_application="docker-registry"' in rule["expr"]
            assert cos.TOPOLOGY_PLACEHOLDER not in rule["expr"]


def test_registry_down_fires_for_this_application_only(promtool, rules_file):
    # GIVEN this unit's scrape failing from minute 2, and another application's too
    tests = [
        {
            "interval": "1m",
            "input_series": [
                series("up", {**UNIT, **JOB}, "1 1 0 0 0 0"),
                series("up", {**OTHER_APP, **JOB, "juju_unit": "other/0"}, "0 0 0 0 0 0"),
            ],
            "alert_rule_test": [
                # THEN pending first (nothing fires yet), firing once down for a minute
                alert("DockerRegistryDown", "1m"),
                alert("DockerRegistryDown", "2m"),
                alert(
                    "DockerRegistryDown",
                    "4m",
                    {**UNIT, **JOB, **RULE_LABELS, "severity": "critical"},
                ),
            ],
        }
    ]
    proc = run_tests(promtool, rules_file, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_5xx_ratio_over_5_percent_fires_and_under_does_not(promtool, rules_file):
    other_unit = {**APP, "juju_unit": "docker-registry/1"}
    ok = {"handler": "manifest", "method": "get", "code": "200"}
    failed = {"handler": "manifest", "method": "get", "code": "503"}
    name = "registry_http_requests_total"
    tests = [
        {
            "interval": "1m",
            "input_series": [
                # GIVEN unit 0 answering 10 of 110 requests a minute with 503 (9%)
                series(name, {**UNIT, **JOB, **ok}, "0+100x20"),
                series(name, {**UNIT, **JOB, **failed}, "0+10x20"),
                # AND unit 1 answering 1 of 101 (1%)
                series(name, {**other_unit, **JOB, **ok}, "0+100x20"),
                series(name, {**other_unit, **JOB, **failed}, "0+1x20"),
            ],
            "alert_rule_test": [
                # THEN only unit 0's fires (the ratio is per unit), after 5 minutes above
                alert(
                    "DockerRegistryHighErrorRatio",
                    "15m",
                    {**UNIT, **RULE_LABELS, "severity": "warning"},
                ),
            ],
        }
    ]
    proc = run_tests(promtool, rules_file, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def buckets(labels: dict, slow_per_minute: int, fast_per_minute: int) -> list[dict]:
    """A request-duration histogram: ``fast`` requests under 0.1 s, ``slow`` ones over 5 s."""
    name = "registry_http_request_duration_seconds_bucket"
    out = []
    for le in ("0.1", "1", "2.5", "5", "10", "+Inf"):
        per_minute = fast_per_minute + (slow_per_minute if le in ("10", "+Inf") else 0)
        out.append(series(name, {**labels, "le": le}, f"0+{per_minute}x30"))
    return out


def test_slow_api_calls_fire_but_slow_blob_transfers_do_not(promtool, rules_file):
    manifest = {**UNIT, **JOB, "handler": "manifest", "method": "get"}
    blob = {**UNIT, **JOB, "handler": "blob", "method": "get"}
    tests = [
        {
            # GIVEN every blob download taking over 5 s (big layers) and API calls fast
            "interval": "1m",
            "input_series": buckets(blob, 50, 0) + buckets(manifest, 0, 50),
            "alert_rule_test": [alert("DockerRegistryHighLatency", "25m")],  # THEN no alert
        },
        {
            # GIVEN manifest requests taking over 5 s
            "interval": "1m",
            "input_series": buckets(manifest, 50, 0),
            "alert_rule_test": [
                alert("DockerRegistryHighLatency", "10m"),  # pending: not 10 minutes yet
                alert(
                    "DockerRegistryHighLatency",
                    "25m",
                    {**UNIT, **RULE_LABELS, "severity": "warning"},
                ),
            ],
        },
    ]
    proc = run_tests(promtool, rules_file, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_storage_errors_fire_on_5xx_from_storage_handlers_only(promtool, rules_file):
    name = "registry_http_requests_total"
    tests = [
        {
            # GIVEN /v2/ (no storage) failing: no storage alert
            "interval": "1m",
            "input_series": [
                series(name, {**UNIT, **JOB, "handler": "base", "code": "500"}, "0+5x20"),
            ],
            "alert_rule_test": [alert("DockerRegistryStorageErrors", "15m")],
        },
        {
            # GIVEN blob uploads failing with 500 (the driver cannot write) for 15 minutes
            "interval": "1m",
            "input_series": [
                series(name, {**UNIT, **JOB, "handler": "blob_upload", "code": "500"}, "0+2x20"),
            ],
            "alert_rule_test": [
                alert(
                    "DockerRegistryStorageErrors",
                    "15m",
                    {**UNIT, **RULE_LABELS, "severity": "critical"},
                ),
            ],
        },
    ]
    proc = run_tests(promtool, rules_file, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
