"""Pull-through caches per upstream: the ``caches`` option, each cache's config and container,
where clients reach it, the upstream probe, the status, and the hooks that run them."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading

import pytest
import yaml

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.config.upstreams import UpstreamCache, derived_cache_port
from charms.layer.docker_registry.errors import ConfigError
from charms.layer.docker_registry.host import container, paths, workload
from charms.layer.docker_registry.pipeline import caches, plan, render, status
from tests.unit.test_handlers import PASSWORD, charm  # noqa: F401 - the hook harness fixture


def _ours(name: str) -> container.ContainerState:
    """A running container this unit created."""
    labels = {container.OWNER_LABEL: container.owner()}
    return container.ContainerState(name, "1", True, "running", "", labels)


SECRET = "Up-Stream-Secret-9"
TWO = "docker.io=https://registry-1.docker.io,port=5002 ghcr.io=https://ghcr.io,port=5003"


def problems(config) -> str:
    with pytest.raises(ConfigError) as err:
        settings.parse(config)
    assert SECRET not in str(err.value)
    return str(err.value)


# --- the option ----------------------------------------------------------------------------


def test_entries_give_one_cache_per_upstream_with_pinned_ports(config):
    # GIVEN two upstreams with pinned ports, separated by a newline and spaces
    config["caches"] = (
        "docker.io=https://registry-1.docker.io/,port=5002\n  ghcr.io=https://ghcr.io,port=5003"
    )
    # WHEN parsed THEN each is a cache of its own, the URL without a trailing slash
    parsed = settings.parse(config).caches
    assert [(c.host, c.url, c.port) for c in parsed] == [
        ("docker.io", "https://registry-1.docker.io", 5002),
        ("ghcr.io", "https://ghcr.io", 5003),
    ]


def test_an_unpinned_port_does_not_move_when_other_caches_come_and_go(config):
    # GIVEN quay.io alone, then with two more caches around it
    config["caches"] = "quay.io=https://quay.io"
    alone = settings.parse(config).caches[0].port
    config["caches"] = "docker.io=https://registry-1.docker.io quay.io=https://quay.io " + (
        "registry.k8s.io=https://registry.k8s.io"
    )
    crowded = {c.host: c.port for c in settings.parse(config).caches}
    # THEN its port is the same, derived from its host alone, in the documented range
    assert crowded["quay.io"] == alone == derived_cache_port("quay.io")
    assert all(5100 <= port <= 5999 for port in crowded.values())
    assert len(set(crowded.values())) == 3


def test_hosts_with_a_port_and_upper_case_are_registry_names(config):
    config["caches"] = "Registry.Local:5443=http://10.1.2.3:5000,port=5010"
    (cache,) = settings.parse(config).caches
    assert (cache.host, cache.port) == ("registry.local:5443", 5010)


def test_empty_means_no_caches(config):
    assert settings.parse(config).caches == ()


@pytest.mark.parametrize(
    "value,why",
    [
        ("docker.io", "entry 1 must be <host>=<url>[,port=<n>]"),
        ("bad_host=https://x", "entry 1 must be <host>=<url>[,port=<n>]"),
        ("a/b=https://x", "entry 1 must be <host>=<url>[,port=<n>]"),
        ("docker.io=ftp://x", "the URL of docker.io must be a URL starting with"),
        ("docker.io=https://", "the URL of docker.io must be a URL with a host name"),
        ("docker.io=https://x?y=1", "the URL of docker.io must not have a query"),
        ("docker.io=https://x,port=0", "docker.io: what follows the URL must be ,port="),
        ("docker.io=https://x,prt=5002", "docker.io: what follows the URL must be ,port="),
        ("docker.io=https://a docker.io=https://b", "docker.io is listed twice"),
        ("Docker.io=https://a docker.io=https://b", "docker.io is listed twice"),
        ("docker.io=https://a,port=5000", "docker.io: port 5000 is taken by registry-port"),
        ("docker.io=https://a,port=5001", "docker.io: port 5001 is taken by debug-port"),
        (
            "docker.io=https://a,port=5005 ghcr.io=https://b,port=5005",
            "ghcr.io: port 5005 is taken by docker.io",
        ),
    ],
)
def test_bad_entries_block_naming_the_option_and_why(config, value, why):
    assert f"caches: {why}" in problems(config | {"caches": value})


def test_a_url_with_credentials_is_refused_without_showing_them(config):
    message = problems(config | {"caches": f"docker.io=https://me:{SECRET}@registry-1.docker.io"})
    assert "caches: the URL of docker.io must not contain credentials" in message


def test_credentials_attach_to_their_upstream_and_count_as_secrets(config):
    config["caches"] = TWO
    config["caches-credentials"] = json.dumps(
        {"docker.io": {"username": "me", "password": SECRET}}
    )
    parsed = settings.parse(config)
    hub, ghcr = parsed.caches
    assert (hub.username, hub.password) == ("me", SECRET)
    assert (ghcr.username, ghcr.password) == ("", "")
    assert SECRET in parsed.secret_values
    assert SECRET not in repr(parsed)


@pytest.mark.parametrize(
    "value,why",
    [
        ("not json " + SECRET, "must be a JSON object"),
        (json.dumps([SECRET]), "must be a JSON object"),
        (json.dumps({"docker.io": {"username": "me"}}), "entry 1 must be a JSON object"),
        (
            json.dumps({"docker.io": {"username": "me", "password": ""}}),
            "entry 1: username and password must be non-empty text",
        ),
        (
            json.dumps({SECRET: {"username": "me", "password": SECRET}}),
            "entry 1 names a host that is not in caches",
        ),
    ],
)
def test_bad_credentials_block_without_echoing_them(config, value, why):
    message = problems(config | {"caches": TWO, "caches-credentials": value})
    assert f"caches-credentials: {why}" in message


def test_a_cache_of_the_registry_itself_blocks(config):
    # GIVEN a cache whose host is where clients reach the push registry
    config["caches"] = "10.0.0.10:5000=https://upstream.example"
    parsed = settings.parse(config)
    inputs = plan_inputs(config)
    # WHEN the hook decides THEN it is refused naming the option
    with pytest.raises(ConfigError) as err:
        plan.decide(parsed, inputs)
    assert err.value.problems == [("caches", "10.0.0.10:5000 is this registry's own address")]


def test_every_cache_port_is_opened(config):
    config["caches"] = TWO
    decided = plan.decide(settings.parse(config), plan_inputs(config))
    assert decided.ports == {"5000/TCP", "5002/TCP", "5003/TCP"}


def plan_inputs(config) -> plan.Inputs:
    return plan.Inputs(
        config=config,
        address="10.0.0.10",
        public_address="",
        hostname="unit-0",
        leader=True,
        stopped=False,
        tls_joined=False,
        issued={},
        ca="",
        chain="",
        client_cert=(None, None),
        proxies=[],
        peers={},
        clients=False,
        nrpe=[],
    )


# --- where clients reach them ---------------------------------------------------------------


def test_cache_endpoints_map_each_upstream_host_to_its_cache(config):
    parsed = settings.parse(config | {"caches": TWO})
    assert caches.cache_endpoints(parsed, "registry.example.com", "https") == {
        "docker.io": "https://registry.example.com:5002",
        "ghcr.io": "https://registry.example.com:5003",
    }
    assert caches.cache_endpoints(parsed, "fd00::5", "http")["ghcr.io"] == "http://[fd00::5]:5003"
    assert caches.cache_endpoints(settings.parse(config), "h", "http") == {}


# --- each cache's files and container -------------------------------------------------------

TLS = render.TlsMaterial(cert="CERT-PEM\n", key="KEY-PEM\n", ca="CA-PEM\n", source="relation")


def cache_desired(config, *, offline=False, tls=TLS, index=0) -> render.Desired:
    parsed = settings.parse(config)
    return render.desired(
        parsed,
        host=paths.Host(),
        unit_address="10.0.0.10",
        tls=tls,
        http_secret="shared",
        htpasswd="admin:$2y$04$hash\n",
        realm="docker-registry",
        cache=parsed.caches[index],
        offline=offline,
    )


def test_a_cache_proxies_its_upstream_with_the_registry_tls_and_auth(config):
    config |= {
        "caches": TWO,
        "auth-basic-password": PASSWORD,
        "caches-credentials": json.dumps({"docker.io": {"username": "me", "password": SECRET}}),
        "http-host": "https://registry.example.com/",
        "prometheus-metrics": True,
        "tls-client-auth": True,
    }
    desired = cache_desired(config)
    doc = yaml.safe_load(desired.config_yaml)
    base = "/etc/docker/registry/caches/docker.io"
    assert doc["proxy"] == {
        "remoteurl": "https://registry-1.docker.io",
        "username": "me",
        "password": SECRET,
    }
    assert doc["http"]["tls"] == {
        "certificate": f"{base}/registry.crt",
        "key": f"{base}/registry.key",
        "clientcas": [f"{base}/ca.crt"],
    }
    assert doc["auth"]["htpasswd"]["path"] == f"{base}/htpasswd"
    assert doc["storage"]["filesystem"]["rootdirectory"] == "/var/lib/registry"
    assert doc["storage"]["delete"]["enabled"] is True  # expiry and emptying delete
    assert not doc["storage"]["maintenance"]["readonly"]["enabled"]
    # the push registry's external URL and debug listener are its own
    assert "host" not in doc["http"] and "debug" not in doc["http"]
    assert desired.config_dir == base
    assert {f.path: f.mode for f in desired.files} == {
        f"{base}/config.yml": 0o600,
        f"{base}/htpasswd": 0o600,
        f"{base}/registry.crt": 0o644,
        f"{base}/registry.key": 0o600,
        f"{base}/ca.crt": 0o644,
    }
    assert desired.run.name == "registry-cache-docker.io"
    # the image reads /etc/docker/registry/config.yml: the cache's own is mounted there
    assert (f"{base}/config.yml", "/etc/docker/registry/config.yml") in desired.run.mounts
    assert desired.run.ports == (("", 5002, 5000),)
    assert desired.run.storage_mount == ("/srv/registry/caches/docker.io", "/var/lib/registry")
    assert SECRET not in " ".join(desired.run.argv({}))


def test_offline_a_cache_serves_what_it_holds_read_only(config):
    # GIVEN the upstream cannot be reached (a 2.8 proxy would not start)
    doc = yaml.safe_load(cache_desired(config | {"caches": TWO}, offline=True).config_yaml)
    # THEN the same storage is served as a read-only registry, no proxy section
    assert "proxy" not in doc
    assert doc["storage"]["maintenance"]["readonly"]["enabled"] is True


def test_in_the_local_model_a_cache_is_named_after_the_unit_too(config):
    parsed = settings.parse(config | {"caches": "registry.local:5443=http://x,port=5010"})
    desired = render.desired(
        parsed,
        host=paths.Host(sandbox="/sb", unit_name="docker-registry/1"),
        unit_address="127.0.0.3",
        tls=None,
        http_secret="s",
        htpasswd="",
        realm="r",
        cache=parsed.caches[0],
    )
    assert desired.run.name == "registry-cache-registry.local_5443-docker-registry-1"
    assert desired.run.ports == (("127.0.0.3", 5010, 5000),)
    assert desired.run.storage_mount[0] == "/sb/srv/registry/caches/registry.local_5443"
    assert desired.scheme == "http"


def test_on_s3_and_swift_each_cache_has_its_own_prefix(config):
    s3 = config | {
        "caches": TWO,
        "storage-s3-region": "us-east-1",
        "storage-s3-bucket": "b",
        "storage-s3-rootdirectory": "/reg/",
    }
    doc = yaml.safe_load(cache_desired(s3, index=1).config_yaml)
    assert doc["storage"]["s3"]["rootdirectory"] == "/reg/caches/ghcr.io"
    swift = config | {
        "caches": TWO,
        "storage-swift-authurl": "https://keystone.example/v3",
        "storage-swift-username": "u",
        "storage-swift-password": "p",
    }
    doc = yaml.safe_load(cache_desired(swift).config_yaml)
    assert doc["storage"]["swift"]["prefix"] == "caches/docker.io"
    # the push registry keeps its own root
    parsed = settings.parse(s3)
    main = render.config_context(parsed, tls=None, http_secret="s", realm="r")
    assert main["storage"]["params"]["rootdirectory"] == "/reg/"


# --- the upstream probe ---------------------------------------------------------------------


@pytest.fixture
def upstream_answering_401():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            scheme = "Basic" if self.path.startswith("/basic/") else "Bearer"
            self.send_header("WWW-Authenticate", f'{scheme} realm="https://auth.example/token"')
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_an_upstream_that_wants_a_token_is_reachable(upstream_answering_401):
    cache = UpstreamCache("docker.io", upstream_answering_401, 5002)
    assert caches.probe_upstream(cache) == caches.Verdict(True)


def test_an_upstream_asking_for_basic_auth_is_told_apart(upstream_answering_401):
    cache = UpstreamCache("quay.io", upstream_answering_401 + "/basic", 5004)
    assert caches.probe_upstream(cache) == caches.Verdict(True, basic_auth=True)


def test_credentials_2_8_will_not_send_are_said(charm, upstreams, monkeypatch):  # noqa: F811
    # GIVEN ghcr.io's upstream asks for basic auth and has caches-credentials
    monkeypatch.setattr(
        caches,
        "probe_upstream",
        lambda cache, **kw: caches.Verdict(True, basic_auth=cache.host == "ghcr.io"),
    )
    charm.config |= {
        "caches": TWO,
        "caches-credentials": json.dumps({"ghcr.io": {"username": "me", "password": SECRET}}),
    }
    # WHEN the hook runs THEN the status says they are not sent, and never shows them
    charm.hook("install")
    assert charm.status == (
        "active",
        "Ready at 10.0.0.10:5000 (http); caches: docker.io, ghcr.io. Note: registry 2.8 does "
        "not send caches-credentials to ghcr.io (it asks for basic auth).",
    )
    assert not any(SECRET in line for line in charm.logs)


def test_an_upstream_nobody_listens_on_is_unreachable():
    cache = UpstreamCache("quay.io", "http://127.0.0.1:9", 5004)
    verdict = caches.probe_upstream(cache)
    assert not verdict.reachable and verdict.why


# --- the status -----------------------------------------------------------------------------


def test_status_names_serving_caches_and_the_unreachable_ones():
    report = status.Report(ready_at="10.0.0.10:5000", scheme="https")
    report.caches += ["docker.io", "ghcr.io"]
    report.caches_down.append("quay.io unreachable")
    assert status.decide(report) == (
        "active",
        "Ready at 10.0.0.10:5000 (https); caches: docker.io, ghcr.io; quay.io unreachable.",
    )
    assert status.decide(status.Report(ready_at="h:5000")) == ("active", "Ready at h:5000 (http).")


# --- the hooks ------------------------------------------------------------------------------


@pytest.fixture
def upstreams(charm, monkeypatch):  # noqa: F811 - the harness fixture
    """Which upstream hosts answer; the cache containers as docker would report them."""
    down: set[str] = set()
    monkeypatch.setattr(
        caches,
        "probe_upstream",
        lambda cache, **kw: caches.Verdict(cache.host not in down, "ConnectionRefusedError"),
    )
    monkeypatch.setattr(container, "image_id", lambda ref: "sha256:" + "i" * 64)
    monkeypatch.setattr(container, "inspect", lambda name: None)
    removed: list[str] = []
    monkeypatch.setattr(container, "stop", lambda name: None)
    monkeypatch.setattr(container, "remove", removed.append)
    return down, removed


def cache_configs(charm) -> dict[str, dict]:  # noqa: F811
    """Upstream URL (or "offline") of each cache container the hook applied last."""
    latest = {}
    for desired, _ in charm.applied:
        if desired.config_dir.startswith("/etc/docker/registry/caches/"):
            doc = yaml.safe_load(desired.config_yaml)
            latest[desired.run.name] = doc.get("proxy", {}).get("remoteurl", "offline")
    return latest


def test_hook_runs_every_cache_opens_its_port_and_says_so(charm, upstreams):  # noqa: F811
    charm.config["caches"] = TWO
    charm.hook("install")
    assert charm.status == (
        "active",
        "Ready at 10.0.0.10:5000 (http); caches: docker.io, ghcr.io.",
    )
    assert charm.ports == {"5000/TCP", "5002/TCP", "5003/TCP"}
    assert cache_configs(charm) == {
        "registry-cache-docker.io-docker-registry-0": "https://registry-1.docker.io",
        "registry-cache-ghcr.io-docker-registry-0": "https://ghcr.io",
    }


def test_an_unreachable_upstream_is_reported_and_its_cache_serves_offline(charm, upstreams):  # noqa: F811
    down, _ = upstreams
    down.add("ghcr.io")
    charm.config["caches"] = TWO
    charm.hook("install")
    # THEN the push registry and the other cache are Ready, ghcr.io's is named
    assert charm.status == (
        "active",
        "Ready at 10.0.0.10:5000 (http); caches: docker.io; ghcr.io unreachable.",
    )
    assert cache_configs(charm)["registry-cache-ghcr.io-docker-registry-0"] == "offline"
    # WHEN it answers again THEN its cache proxies again
    down.clear()
    charm.hook("update-status")
    assert charm.status[1].endswith("caches: docker.io, ghcr.io.")
    assert cache_configs(charm)["registry-cache-ghcr.io-docker-registry-0"] == "https://ghcr.io"


def test_a_failing_cache_never_blocks_the_push_registry(charm, upstreams, monkeypatch):  # noqa: F811
    # GIVEN ghcr.io's cache does not answer, docker.io's cache keeps its last good config
    fake_apply = charm.apply

    def apply(desired, **kw):
        outcome, managed = fake_apply(desired, **kw)
        if "ghcr.io" in desired.run.name:
            outcome = dataclasses.replace(outcome, answering=False)
        if "docker.io" in desired.run.name:
            outcome = dataclasses.replace(outcome, problem="The new config did not start")
        return outcome, managed

    monkeypatch.setattr(workload, "apply", apply)
    charm.config["caches"] = TWO
    # WHEN the hook runs THEN the push registry is Ready and both caches are named
    charm.hook("install")
    assert charm.status == (
        "active",
        "Ready at 10.0.0.10:5000 (http); docker.io kept its last good config "
        "(the new one did not start); ghcr.io not answering.",
    )


def test_bad_caches_block_and_touch_nothing(charm, upstreams):  # noqa: F811
    charm.config["caches"] = TWO
    charm.hook("install")
    applied = len(charm.applied)
    charm.config["caches"] = TWO + " docker.io=https://elsewhere.example"
    charm.hook("config-changed")
    assert charm.status == ("blocked", "Invalid charm config: caches: docker.io is listed twice")
    assert len(charm.applied) == applied
    assert charm.ports == {"5000/TCP", "5002/TCP", "5003/TCP"}


def test_a_cache_taken_out_goes_and_its_port_closes(charm, upstreams, monkeypatch):  # noqa: F811
    _, removed = upstreams
    charm.config["caches"] = TWO
    charm.hook("install")
    monkeypatch.setattr(
        container,
        "inspect",
        lambda name: _ours(name) if name.endswith("ghcr.io-docker-registry-0") else None,
    )
    charm.config["caches"] = "docker.io=https://registry-1.docker.io,port=5002"
    charm.hook("config-changed")
    assert removed == ["registry-cache-ghcr.io-docker-registry-0"]
    assert charm.status[1] == "Ready at 10.0.0.10:5000 (http); caches: docker.io."
    assert charm.ports == {"5000/TCP", "5002/TCP"}


def test_behind_haproxy_each_cache_is_a_further_service_on_its_own_port(charm, upstreams):  # noqa: F811
    # GIVEN two caches WHEN haproxy relates on website
    charm.config["caches"] = TWO
    charm.hook("install")
    web = charm.relate("website", {"haproxy/0": {"public-address": "10.0.0.99"}})
    charm.hook("website-relation-changed", web, "haproxy/0")
    # THEN the push registry and each cache are services, each on its own frontend port
    services = yaml.safe_load(charm.local[web]["services"])
    assert [(s["service_name"], s["service_port"], s["servers"][0][1:3]) for s in services] == [
        ("docker-registry", 5000, ["10.0.0.10", 5000]),
        ("docker-registry-cache-docker.io", 5002, ["10.0.0.10", 5002]),
        ("docker-registry-cache-ghcr.io", 5003, ["10.0.0.10", 5003]),
    ]
    assert charm.status == (
        "active",
        "Ready at 10.0.0.99:5000 (http, proxied); caches: docker.io, ghcr.io.",
    )


def test_the_stop_hook_removes_every_cache_container_too(charm, upstreams, monkeypatch):  # noqa: F811
    # GIVEN a unit running two caches WHEN it goes away (stop)
    _, removed = upstreams
    charm.config["caches"] = TWO
    charm.hook("install")
    monkeypatch.setattr(
        container, "inspect", lambda name: None if name.endswith(".last-good") else _ours(name)
    )
    charm.hook("stop")
    # THEN the push registry and both caches are removed (their storage stays)
    assert removed == [
        "registry-docker-registry-0",
        "registry-cache-docker.io-docker-registry-0",
        "registry-cache-ghcr.io-docker-registry-0",
    ]


def test_upstreams_are_probed_together(upstream_answering_401):
    found = caches.probe_upstreams(
        (
            UpstreamCache("docker.io", upstream_answering_401, 5002),
            UpstreamCache("quay.io", "http://127.0.0.1:9", 5004),
        )
    )
    assert found["docker.io"].reachable and not found["quay.io"].reachable
    assert caches.probe_upstreams(()) == {}
