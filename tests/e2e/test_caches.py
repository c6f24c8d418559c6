"""Pull-through caches per upstream, end to end: two local registries stand in for docker.io
and ghcr.io; the charm runs a cache for each beside its push registry (TLS from the real
easyrsa charm, basic auth); a real containerd, configured by the k8s charm's own code from
client-config's JSON (each upstream host -> its cache, the CA and credentials in it: none on
ctr's command line), pulls through each cache by the upstream's name, cold and then warm with
the upstream stopped, while the push registry takes pushes. Local-only: the upstreams run in
the test host's engine."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import jubilant
import pytest

from tests.support import containerd as private_containerd
from tests.support import peers

pytestmark = pytest.mark.local_only("the upstreams run in the test host's Docker engine")

APP = "docker-registry"
PASSWORD = "cache-" + secrets.token_urlsafe(12)
IMAGES = {"docker.io": "library/hub:1", "ghcr.io": "org/app:1"}
PORTS = {"docker.io": 5002, "ghcr.io": 5003}


@dataclass
class Registry:
    juju: jubilant.Juju
    unit: str
    netloc: str
    address: str


def run(registry: Registry, action: str, **params) -> jubilant.Task:
    try:
        return registry.juju.run(registry.unit, action, params)
    except jubilant.TaskError as exc:
        return exc.task


@pytest.fixture(scope="module")
def upstreams(upstream_registry):
    """docker.io and ghcr.io: plain registries on the docker bridge gateway, one image each."""
    return {
        host: upstream_registry(
            f"e2e-{host.split('.')[0]}", [(f"e2e-caches-{uuid.uuid4().hex[:6]}:1", path)],
            loopback=False,
        )
        for host, path in IMAGES.items()
    }  # fmt: skip


@pytest.fixture(scope="module")
def caches_option(upstreams) -> str:
    return " ".join(
        f"{host}=http://{up.gateway_netloc},port={PORTS[host]}" for host, up in upstreams.items()
    )


@pytest.fixture(scope="module")
def registry(juju, charm_dir, registry_image_tar, helpers, caches_option) -> Registry:
    helpers.deploy_registry(
        juju,
        charm_dir,
        registry_image_tar,
        APP,
        {
            "auth-basic-password": PASSWORD,
            "caches": caches_option,
        },
    )
    helpers.deploy_ca(juju)
    juju.integrate(f"{APP}:cert-provider", "easyrsa:client")
    unit = helpers.unit_of(juju, APP)
    address = helpers.unit_address(juju, unit)
    netloc = f"{address}:5000"
    helpers.wait_for_unit(
        juju, unit, "active", f"Ready at {netloc} (https); caches: docker.io, ghcr.io."
    )
    return Registry(juju, unit, netloc, address)


def hosts_from_client_config(registry: Registry, where: Path) -> Path:
    """client-config's k8s JSON through the k8s charm's own code: containerd's hosts.d."""
    out = run(registry, "client-config")
    assert out.status == "completed", out
    entries = json.loads(out.results["k8s"])
    assert [e["host"] for e in entries][1:] == list(IMAGES)
    k8s = peers.k8s_containerd(where)
    k8s.ensure_registry_configs(k8s.parse_registries(out.results["k8s"]))
    return where / "hosts.d"


@pytest.fixture(scope="module")
def hosts_dir(registry, tmp_path_factory) -> Path:
    return hosts_from_client_config(registry, tmp_path_factory.mktemp("etc-containerd"))


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    with private_containerd.running(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon


def pull(containerd, hosts_dir, host):
    ref = f"{host}/{IMAGES[host]}"
    containerd.ctr("images", "rm", "--sync", ref)  # its content too: pulled again, not reused
    return containerd.ctr("images", "pull", "--hosts-dir", str(hosts_dir), ref)


def test_containerd_pulls_each_upstream_through_its_cache_cold(registry, hosts_dir, containerd):
    for host in IMAGES:
        result = pull(containerd, hosts_dir, host)
        assert result.returncode == 0, result.stderr[-2000:]


def test_the_push_registry_takes_pushes_while_the_caches_run(registry, upstreams, tmp_path):
    out = run(registry, "client-config")
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    ca = base64.b64decode(json.loads(out.results["k8s"])[0]["ca_file"]).decode()
    (cert_dir / "ca.crt").write_text(ca)
    auth = tmp_path / "auth.json"
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    auth.write_text(json.dumps({"auths": {registry.netloc: {"auth": token}}}))
    ref = upstreams["docker.io"].refs[0]
    push = subprocess.run(
        ["skopeo", "copy", "--dest-authfile", str(auth), "--dest-cert-dir", str(cert_dir),
         f"docker-daemon:{ref}", f"docker://{registry.netloc}/pushed/hub:1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr


def test_the_caches_action_lists_what_each_cache_holds(registry):
    result = run(registry, "caches")
    assert result.status == "completed", result
    held = json.loads(result.results["caches"])
    for host, path in IMAGES.items():
        repository, tag = path.split(":")
        assert held[host]["repositories"] == {repository: [tag]}
        assert held[host]["url"] == f"https://{registry.address}:{PORTS[host]}"
        assert held[host]["serving"] == "proxy" and held[host]["bytes"] > 0
    assert PASSWORD not in json.dumps(result.results)


def test_garbage_collect_one_cache_keeps_what_it_holds(registry, hosts_dir, containerd):
    result = run(registry, "garbage-collect", cache="ghcr.io")
    assert result.status == "completed", result
    assert "the cache of ghcr.io was not writable" in result.results["raw"]
    again = pull(containerd, hosts_dir, "ghcr.io")
    assert again.returncode == 0, again.stderr[-2000:]
    unknown = run(registry, "garbage-collect", cache="quay.io")
    assert unknown.status == "failed"
    assert "cache: not an upstream host in the caches option" in unknown.message


def test_upstream_credentials_are_never_shown(registry, helpers, tmp_path):
    secret = "upstream-" + secrets.token_urlsafe(12)
    credentials = json.dumps({"docker.io": {"username": "me", "password": secret}})
    settings = tmp_path / "credentials.yaml"  # from a file: never on a command line
    settings.write_text(json.dumps({APP: {"caches-credentials": credentials}}))
    registry.juju.cli("config", APP, "--file", str(settings))
    state = helpers.wait_for_unit(registry.juju, registry.unit, "active")
    assert secret not in state.workload_status.message
    assert secret not in registry.juju.cli("debug-log", "--replay", "--no-tail")
    names = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in (n for n in names if n.startswith("registry-cache-")):
        inspect = subprocess.run(["docker", "inspect", name], capture_output=True, text=True)
        assert secret not in inspect.stdout


def test_one_upstream_down_is_reported_and_its_cache_serves_warm(
    registry, upstreams, hosts_dir, containerd, helpers
):
    # GIVEN ghcr.io's upstream stops WHEN Juju's periodic update-status runs
    subprocess.run(["docker", "stop", upstreams["ghcr.io"].name], check=True, capture_output=True)
    helpers.fire_update_status(registry.juju, registry.unit)
    # THEN only its cache is reported; the push registry and docker.io's cache are Ready
    helpers.wait_for_unit(
        registry.juju,
        registry.unit,
        "active",
        f"Ready at {registry.netloc} (https); caches: docker.io; ghcr.io unreachable.",
    )
    # AND its cache serves what it holds
    warm = pull(containerd, hosts_dir, "ghcr.io")
    assert warm.returncode == 0, warm.stderr[-2000:]


def test_with_every_upstream_down_both_caches_serve_warm(
    registry, upstreams, hosts_dir, containerd
):
    subprocess.run(
        ["docker", "stop", upstreams["docker.io"].name], check=True, capture_output=True
    )
    for host in IMAGES:
        warm = pull(containerd, hosts_dir, host)
        assert warm.returncode == 0, warm.stderr[-2000:]


def test_bad_caches_block_and_leave_the_caches_serving(
    registry, hosts_dir, containerd, helpers, caches_option
):
    # GIVEN serving caches WHEN the operator lists docker.io twice
    registry.juju.config(APP, {"caches": caches_option + " docker.io=https://elsewhere.example"})
    # THEN the unit blocks naming the option, and what ran before still serves
    helpers.wait_for_unit(
        registry.juju,
        registry.unit,
        "blocked",
        "Invalid charm config: caches: docker.io is listed twice",
    )
    warm = pull(containerd, hosts_dir, "docker.io")
    assert warm.returncode == 0, warm.stderr[-2000:]
    registry.juju.config(APP, {"caches": caches_option})
    helpers.wait_for_unit(registry.juju, registry.unit, "active")


def test_behind_haproxy_each_cache_is_reached_on_its_own_frontend_port(
    registry, upstreams, containerd, helpers, tmp_path
):
    # GIVEN the upstreams answer again WHEN haproxy fronts the application
    for up in upstreams.values():
        subprocess.run(["docker", "start", up.name], check=True, capture_output=True)
    juju = registry.juju
    juju.deploy("fake:haproxy", "haproxy")
    juju.integrate(f"{APP}:website", "haproxy:reverseproxy")
    proxy = helpers.unit_address(juju, helpers.unit_of(juju, "haproxy"))
    helpers.fire_update_status(juju, registry.unit)  # Juju's periodic hook: probes again
    helpers.wait_for_unit(
        juju,
        registry.unit,
        "active",
        f"Ready at {proxy}:5000 (https, proxied); caches: docker.io, ghcr.io.",
    )
    # THEN client-config points each upstream at the proxy, on the cache's port, and
    # containerd pulls each upstream's image there
    hosts = hosts_from_client_config(registry, tmp_path / "etc-containerd")
    for host, port in PORTS.items():
        assert f'server = "https://{proxy}:{port}"' in (hosts / host / "hosts.toml").read_text()
        result = pull(containerd, hosts, host)
        assert result.returncode == 0, result.stderr[-2000:]
