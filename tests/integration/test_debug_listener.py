"""The debug listener as an attacker on another host sees it, and as the COS collector on the
unit scrapes it: registry 2.8 serves /metrics only
there, beside pprof and expvar, without auth. The registry runs as production publishes it (host
ports and container name as in production; only its files live under a temporary directory),
and another container (its own network namespace, as another machine) tries this host's
addresses."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import container, workload
from charms.layer.docker_registry.pipeline import cos, render
from tests.support.config import charm_defaults
from tests.support.hosts import ProductionApart
from tests.support.images import ensure_engine, registry_image_ref
from tests.support.net import free_port, get_status

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ProductionPorts(ProductionApart):
    """Production's port bindings (sandbox unset); files and the name kept apart."""

    def log_driver(self) -> str:
        return ""  # this test host runs no journald


def host_addresses() -> list[str]:
    """This machine's addresses other machines reach it at (not the loopback)."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    addresses = [line.split()[3].split("/")[0] for line in out.stdout.splitlines()]
    return [a for a in addresses if not a.startswith("127.")]


def from_another_host(address: str, port: int, path: str) -> str:
    """GET from a container on the default bridge (busybox nc: its wget crashes there): the
    status line, or "refused"."""
    request = f"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 {address} {port}"
    proc = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/sh", registry_image_ref(), "-c", request],
        capture_output=True,
        text=True,
        check=False,
    )
    if "refused" in proc.stderr.lower():
        return "refused"
    return proc.stdout.splitlines()[0].strip() if proc.stdout else proc.stderr.strip()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    ensure_engine()
    assert container.image_id(registry_image_ref()), "run `make image` first"
    addresses = host_addresses()
    assert addresses, "this machine has no address but the loopback"
    host = ProductionPorts(root=str(tmp_path_factory.mktemp("root")), suffix=uuid.uuid4().hex[:8])
    port, debug_port = free_port("0.0.0.0"), free_port("0.0.0.0")
    config = charm_defaults() | {
        "registry-image": registry_image_ref(),
        "registry-port": port,
        "debug-port": debug_port,
        "prometheus-metrics": True,
    }
    desired = render.desired(
        settings.parse(config),
        host=host,
        unit_address=addresses[0],
        tls=None,
        http_secret="it-secret",
        htpasswd="",
        realm="docker-registry",
    )
    outcome, _ = workload.apply(
        desired,
        image_id=container.image_id(desired.run.image),
        host=host,
        managed_files=[],
        allow_start=True,
        last_good=None,
        failed=None,
        secrets=(),
    )
    assert outcome.answering, outcome.problem
    yield addresses, port, debug_port
    subprocess.run(["docker", "rm", "-f", desired.run.name], capture_output=True, check=False)


def test_pprof_and_expvar_are_refused_from_another_host(registry):
    addresses, port, debug_port = registry
    for address in addresses:
        # GIVEN the registry itself answers another host at this address (the path works)
        assert from_another_host(address, port, "/v2/") == "HTTP/1.0 200 OK"
        # WHEN that host asks for pprof, expvar or the metrics THEN the connection is refused
        for path in ("/debug/pprof/cmdline", "/debug/vars", "/metrics"):
            assert from_another_host(address, debug_port, path) == "refused", path


def test_metrics_answer_on_the_loopback_for_the_local_collector(registry):
    _, _, debug_port = registry
    # GIVEN the COS collector on this machine WHEN it scrapes localhost THEN it gets /metrics
    assert get_status(f"http://127.0.0.1:{debug_port}/metrics") == 200
    # AND nothing listens for the debug port on any other address of this machine
    for address in host_addresses():
        with socket.socket() as sock:
            sock.settimeout(5)
            assert sock.connect_ex((address, debug_port)) != 0, address


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (each is written as name{...} or name[...]),
    or that label_values(name, label) reads."""
    names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr))
    names |= set(re.findall(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", expr))
    return names - {"up"}  # the scraper's own, never in a scrape


def published_queries() -> list[str]:
    dashboard = json.loads((ROOT / cos.DASHBOARDS_DIR / "registry.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    rules = yaml.safe_load((ROOT / cos.ALERT_RULES_DIR / "registry.yaml").read_text())
    queries += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return queries


def test_every_metric_the_dashboard_and_rules_use_is_in_a_real_scrape(registry):
    _, port, debug_port = registry
    # GIVEN the registry served what every dashboard row shows: API calls, a pull that reads
    # the storage
    for path in ("/v2/", "/v2/_catalog", "/v2/library/x/manifests/latest", "/v2/x/tags/list"):
        get_status(f"http://127.0.0.1:{port}{path}")
    # WHEN the collector scrapes it
    with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/metrics", timeout=10) as resp:
        scrape = resp.read().decode()
    scraped = {line.split("{")[0].split()[0] for line in scrape.splitlines() if line[:1].isalpha()}
    # THEN every metric name a dashboard query or an alert rule uses is in it
    queries = published_queries()
    used = set().union(*(metric_names(q) for q in queries))
    assert all(metric_names(q) or "up" in q for q in queries)  # each query reads a metric
    assert used - scraped == set()
    assert {"registry_http_requests_total", "registry_storage_action_seconds_bucket"} <= used
