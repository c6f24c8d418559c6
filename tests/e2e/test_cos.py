"""Observability the COS way, end to end: the charm's real hooks publish over cos-agent; a
collector stand-in (tools/localjuju/fakes/cos_collector.py) parses the unit data with the
vendored library's own model and hands its scrape job and alert rules to a real Prometheus
(Debian's), started here on the loopback. The tests run in order, like an operator's session.

Local model only: the collector is a local-model fake and Prometheus runs on the test host."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jubilant
import pytest
import yaml

from tests.support.net import free_port

APP = "docker-registry"
COLLECTOR = "cos-collector"
pytestmark = pytest.mark.local_only("the collector is a local-model fake")


def poll(what: str, probe, timeout: float = 60):
    """``probe()``'s first truthy answer, asking as an operator refreshing a page would."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(1)


class Prometheus:
    """Debian's prometheus on 127.0.0.1, scraping and evaluating every second."""

    def __init__(self, workdir: Path, collected: dict):
        binary = shutil.which("prometheus")
        assert binary, "prometheus not found: scripts/setup-host.sh installs Debian's package"
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "rules.yaml").write_text(yaml.safe_dump(collected["alert_rules"]))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(workdir / "rules.yaml")],
            "scrape_configs": collected["scrape_configs"],  # exactly what the collector got
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "prometheus.log", "w"),  # noqa: SIM115 - closed with the process
        )  # fmt: skip

    def api(self, path: str, **params) -> dict:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as resp:
                return json.load(resp)["data"]
        except OSError:  # not listening yet
            return {}

    def query(self, promql: str) -> list[dict]:
        return self.api("query", query=promql).get("result", [])

    def alerts(self, name: str) -> list[dict]:
        return [
            a for a in self.api("alerts").get("alerts", []) if a["labels"]["alertname"] == name
        ]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def deployed(juju: jubilant.Juju, charm_dir, registry_image_tar, helpers):
    unit = helpers.deploy_registry(juju, charm_dir, registry_image_tar, APP)
    address = helpers.unit_address(juju, unit)
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {address}:5000 (http).")
    juju.deploy("fake:cos-collector", COLLECTOR)
    juju.integrate(f"{APP}:cos-agent", f"{COLLECTOR}:cos-agent")
    assert juju.model is not None  # the local model's directory
    return unit, address, Path(juju.model) / "fakes" / COLLECTOR / "collector.json"


@pytest.fixture(scope="module")
def prometheus(deployed, tmp_path_factory):
    unit, _, collected_file = deployed
    collected = json.loads(collected_file.read_text())[unit]
    prom = Prometheus(tmp_path_factory.mktemp("prometheus"), collected)
    yield prom
    prom.stop()


def test_the_collector_gets_the_job_rules_and_dashboard(juju, deployed):
    unit, address, collected_file = deployed
    # GIVEN the relation WHEN the collector parses the unit data with the library's model
    assert juju.status().apps[COLLECTOR].units[f"{COLLECTOR}/0"].workload_status.message == (
        "1 scrape job(s) from 1 unit(s)."
    )
    collected = json.loads(collected_file.read_text())[unit]
    # THEN one job: the registry's metrics listener, which the charm scrapes at localhost
    (job,) = collected["scrape_configs"]
    assert job["job_name"] == "cos-agent_0_registry"
    assert job["static_configs"][0]["targets"] == [f"{address}:5001"]
    alerts = {r["alert"] for g in collected["alert_rules"]["groups"] for r in g["rules"]}
    assert "DockerRegistryDown" in alerts
    assert collected["dashboards"] == 1


def test_prometheus_scrapes_the_registry(deployed, prometheus):
    # WHEN Prometheus runs the published job THEN the target is up and registry metrics arrive
    selector = f'{{juju_application="{APP}"}}'
    poll("up == 1", lambda: [r for r in prometheus.query(f"up{selector}") if r["value"][1] == "1"])
    poll("registry metrics", lambda: prometheus.query(f"registry_http_requests_total{selector}"))


def test_stopping_the_registry_raises_the_down_alert(juju, deployed, prometheus):
    unit, _, _ = deployed
    # WHEN the operator stops the registry
    juju.run(unit, "stop")
    # THEN DockerRegistryDown goes pending (then firing after its minute) for this unit
    (alert,) = poll(
        "DockerRegistryDown",
        lambda: [
            a for a in prometheus.alerts("DockerRegistryDown") if a["labels"]["juju_unit"] == unit
        ],
    )
    assert alert["state"] in ("pending", "firing")
    juju.run(unit, "start")
    poll("up == 1 again", lambda: [r for r in prometheus.query("up") if r["value"][1] == "1"])


def test_removing_the_relation_puts_the_listener_back_to_the_options(juju, deployed, helpers):
    unit, address, _ = deployed
    juju.remove_relation(f"{APP}:cos-agent", f"{COLLECTOR}:cos-agent")
    helpers.wait_for_unit(juju, unit, "active", f"Ready at {address}:5000 (http).")
    # THEN prometheus-metrics (false) rules again: no debug listener in the config, none open
    config = helpers.unit_file(juju, unit, "/etc/docker/registry/config.yml")
    assert config is not None and "debug:" not in config
    with socket.socket() as sock:
        sock.settimeout(5)
        assert sock.connect_ex((address, 5001)) != 0
