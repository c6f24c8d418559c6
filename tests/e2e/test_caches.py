"""Pull-through caches per upstream, end to end: two local registries stand in for docker.io
and ghcr.io; the charm runs a cache for each beside its push registry (TLS from the real
easyrsa charm, basic auth); a real containerd pulls through each cache by the upstream's
name (containerd's hosts.toml maps the host, not the path), cold and then warm with the
upstream stopped, while the push registry takes pushes."""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest

from charms.layer.docker_registry import caches, settings
from tests.e2e.test_actions import containerd  # noqa: F401 - a private containerd (fixture)

APP = "docker-registry"
UNIT = f"{APP}/0"
NETLOC = "127.0.0.2:5000"
PASSWORD = "cache-" + secrets.token_urlsafe(12)
IMAGES = {"docker.io": "library/hub:1", "ghcr.io": "org/app:1"}
PORTS = {"docker.io": 5002, "ghcr.io": 5003}


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
def registry(model, charm_dir, registry_image_tar, helpers, easyrsa_charm, caches_option):
    model.deploy(
        str(charm_dir),
        APP,
        config={
            "registry-image": helpers.registry_image,
            "auth-basic-password": PASSWORD,
            "caches": caches_option,
        },
        resources={"registry-image": str(registry_image_tar)},
    )
    helpers.deploy_easyrsa(model, easyrsa_charm)
    model.integrate(f"{APP}:cert-provider", "easyrsa:client")
    helpers.wait_for_status(
        model, UNIT, "active", f"Ready at {NETLOC} (https); caches: docker.io, ghcr.io."
    )
    return model


@pytest.fixture(scope="module")
def hosts_dir(registry, caches_option, tmp_path_factory) -> Path:
    """containerd's hosts.toml per upstream host: its cache (``cache_endpoints``, what the
    client-config action hands clients), with the CA the charm's docker trusts."""
    ca = registry.model.sandbox_dir(UNIT) / f"etc/docker/certs.d/{NETLOC}/ca.crt"
    endpoints = caches.cache_endpoints(
        settings.parse({"caches": caches_option}), NETLOC.split(":")[0], "https"
    )
    hosts = tmp_path_factory.mktemp("hosts")
    for host, url in endpoints.items():
        (hosts / host).mkdir()
        (hosts / host / "hosts.toml").write_text(
            f'server = "https://{host}"\n\n[host."{url}"]\n'
            f'  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n'
        )
    return hosts


def pull(containerd, hosts_dir, host):  # noqa: F811 - the fixture, passed in
    ref = f"{host}/{IMAGES[host]}"
    containerd("images", "rm", "--sync", ref)  # its content too: pulled again, not reused
    return containerd(
        "images", "pull", "--hosts-dir", str(hosts_dir), "--user", f"admin:{PASSWORD}", ref
    )


def test_containerd_pulls_each_upstream_through_its_cache_cold(registry, hosts_dir, containerd):  # noqa: F811
    for host in IMAGES:
        result = pull(containerd, hosts_dir, host)
        assert result.returncode == 0, result.stderr[-2000:]


def test_the_push_registry_takes_pushes_while_the_caches_run(registry, upstreams, tmp_path):
    cert_dir = tmp_path / "certs"
    cert_dir.mkdir()
    ca = registry.model.sandbox_dir(UNIT) / f"etc/docker/certs.d/{NETLOC}/ca.crt"
    (cert_dir / "ca.crt").write_text(ca.read_text())
    ref = upstreams["docker.io"].refs[0]
    push = subprocess.run(
        ["skopeo", "copy", "--dest-creds", f"admin:{PASSWORD}", "--dest-cert-dir", str(cert_dir),
         f"docker-daemon:{ref}", f"docker://{NETLOC}/pushed/hub:1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert push.returncode == 0, push.stderr


def test_the_caches_action_lists_what_each_cache_holds(registry):
    result = registry.run_action(UNIT, "caches", {})
    assert result["status"] == "completed", result
    held = json.loads(result["results"]["caches"])
    for host, path in IMAGES.items():
        repository, tag = path.split(":")
        assert held[host]["repositories"] == {repository: [tag]}
        assert held[host]["url"] == f"https://127.0.0.2:{PORTS[host]}"
        assert held[host]["serving"] == "proxy" and held[host]["bytes"] > 0
    assert PASSWORD not in json.dumps(result)


def test_garbage_collect_one_cache_keeps_what_it_holds(registry, hosts_dir, containerd):  # noqa: F811
    result = registry.run_action(UNIT, "garbage-collect", {"cache": "ghcr.io"})
    assert result["status"] == "completed", result
    assert "the cache of ghcr.io was not writable" in result["results"]["raw"]
    again = pull(containerd, hosts_dir, "ghcr.io")
    assert again.returncode == 0, again.stderr[-2000:]
    unknown = registry.run_action(UNIT, "garbage-collect", {"cache": "quay.io"})
    assert unknown["status"] == "failed"
    assert "cache: not an upstream host in the caches option" in unknown["message"]


def test_upstream_credentials_are_never_shown(registry, helpers):
    secret = "upstream-" + secrets.token_urlsafe(12)
    credentials = json.dumps({"docker.io": {"username": "me", "password": secret}})
    registry.config_set(APP, {"caches-credentials": credentials})
    state = helpers.wait_for_status(registry, UNIT, "active")
    assert secret not in state["message"]
    assert secret not in (registry.model.root / "debug.log").read_text()
    names = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in (n for n in names if n.startswith("registry-cache-")):
        inspect = subprocess.run(["docker", "inspect", name], capture_output=True, text=True)
        assert secret not in inspect.stdout


def test_one_upstream_down_is_reported_and_its_cache_serves_warm(
    registry,
    upstreams,
    hosts_dir,
    containerd,  # noqa: F811
    helpers,
):
    # GIVEN ghcr.io's upstream stops WHEN Juju's periodic update-status runs
    subprocess.run(["docker", "stop", upstreams["ghcr.io"].name], check=True, capture_output=True)
    registry.update_status(UNIT)
    # THEN only its cache is reported; the push registry and docker.io's cache are Ready
    helpers.wait_for_status(
        registry,
        UNIT,
        "active",
        f"Ready at {NETLOC} (https); caches: docker.io; ghcr.io unreachable.",
    )
    # AND its cache serves what it holds
    warm = pull(containerd, hosts_dir, "ghcr.io")
    assert warm.returncode == 0, warm.stderr[-2000:]


def test_with_every_upstream_down_both_caches_serve_warm(
    registry,
    upstreams,
    hosts_dir,
    containerd,  # noqa: F811
):
    subprocess.run(
        ["docker", "stop", upstreams["docker.io"].name], check=True, capture_output=True
    )
    for host in IMAGES:
        warm = pull(containerd, hosts_dir, host)
        assert warm.returncode == 0, warm.stderr[-2000:]


def test_bad_caches_block_and_leave_the_caches_serving(
    registry,
    hosts_dir,
    containerd,  # noqa: F811
    helpers,
    caches_option,
):
    # GIVEN serving caches WHEN the operator lists docker.io twice
    registry.config_set(APP, {"caches": caches_option + " docker.io=https://elsewhere.example"})
    # THEN the unit blocks naming the option, and what ran before still serves
    helpers.wait_for_status(
        registry, UNIT, "blocked", "Invalid charm config: caches: docker.io is listed twice"
    )
    warm = pull(containerd, hosts_dir, "docker.io")
    assert warm.returncode == 0, warm.stderr[-2000:]
    registry.config_set(APP, {"caches": caches_option})
    helpers.wait_for_status(registry, UNIT, "active")


def test_behind_haproxy_each_cache_is_reached_on_its_own_frontend_port(
    registry,
    upstreams,
    containerd,  # noqa: F811
    helpers,
    caches_option,
    tmp_path,
):
    # GIVEN the upstreams answer again WHEN haproxy fronts the application
    for up in upstreams.values():
        subprocess.run(["docker", "start", up.name], check=True, capture_output=True)
    registry.deploy("fake:haproxy", "haproxy")
    registry.integrate(f"{APP}:website", "haproxy:reverseproxy")
    proxy = registry.status()["applications"]["haproxy"]["units"]["haproxy/0"]["address"]
    registry.update_status(UNIT)  # Juju's periodic hook: the unit probes the upstreams again
    helpers.wait_for_status(
        registry,
        UNIT,
        "active",
        f"Ready at {proxy}:5000 (https, proxied); caches: docker.io, ghcr.io.",
    )
    # THEN containerd pulls each upstream's image through the proxy, on the cache's port
    ca = registry.model.sandbox_dir(UNIT) / f"etc/docker/certs.d/{proxy}:5000/ca.crt"
    endpoints = caches.cache_endpoints(settings.parse({"caches": caches_option}), proxy, "https")
    assert endpoints == {host: f"https://{proxy}:{port}" for host, port in PORTS.items()}
    hosts = tmp_path / "hosts"
    for host, url in endpoints.items():
        (hosts / host).mkdir(parents=True)
        (hosts / host / "hosts.toml").write_text(
            f'server = "https://{host}"\n\n[host."{url}"]\n'
            f'  capabilities = ["pull", "resolve"]\n  ca = "{ca}"\n'
        )
    for host in IMAGES:
        result = pull(containerd, hosts, host)
        assert result.returncode == 0, result.stderr[-2000:]
