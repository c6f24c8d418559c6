"""client-config: the JSON for Canonical K8s' containerd-custom-registries and charm-containerd's
custom_registries, checked by the consumers' own code (k8s-operator's parse_registries and
hosts.toml writer, charm-containerd's parser, merge and config template), and the action.
"""

from __future__ import annotations

import base64
import itertools
import json
import shlex
from pathlib import Path

import pytest
import tomllib
from charmhelpers.core import hookenv, unitdata
from charms.reactive import set_flag

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.actions import client_config, custom_registries
from charms.layer.docker_registry.actions.custom_registries import Access, ClientConfigError
from charms.layer.docker_registry.pipeline import clients, status
from tests.support import certs, peers

CA = certs.make_ca()[0].cert
CLIENT_CERT, CLIENT_KEY = (
    "-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n",
    ("-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n"),
)
PASSWORD = "pa'ss wo$rd"


def access(*, tls: bool, auth: bool, mtls: bool = False, netloc: str = "10.0.0.5:5000"):
    return Access(
        url=f"{'https' if tls else 'http'}://{netloc}",
        username="admin" if auth else "",
        password=PASSWORD if auth else "",
        ca_pem=CA if tls else "",
        client_cert_pem=CLIENT_CERT if mtls else "",
        client_key_pem=CLIENT_KEY if mtls else "",
    )


COMBINATIONS = [
    pytest.param(
        {"tls": tls, "auth": auth, "mtls": mtls, "netloc": netloc},
        id=f"{tls=}-{auth=}-{mtls=}-{netloc}",
    )
    for tls, auth, mtls in itertools.product([False, True], [False, True], [False, True])
    if tls or not mtls
    for netloc in ["10.0.0.5:5000", "haproxy.example:5000", "[fd00::5]:5000"]
]
MIRRORS = ("docker.io", "ghcr.io", "registry.k8s.io", "quay.io")


# ------------------------------------------------------------------ k8s-operator's own code


@pytest.mark.parametrize("kind", COMBINATIONS)
@pytest.mark.parametrize("mirror_for", [(), MIRRORS])
def test_k8s_charm_writes_hosts_toml_for_the_registry_and_each_mirrored_host(
    tmp_path, kind, mirror_for
):
    # GIVEN the registry as clients reach it (TLS, auth, mutual TLS, proxy, IPv6)
    reach = access(**kind)
    entries = custom_registries.k8s_registries(reach, dict.fromkeys(mirror_for, reach.url))
    # WHEN the k8s charm parses the JSON and writes containerd's hosts.d with its own code
    k8s = peers.k8s_containerd(tmp_path / "containerd")
    registries = k8s.parse_registries(custom_registries.as_json(entries))
    k8s.ensure_registry_configs(registries)
    # THEN every host (this registry's netloc, each mirrored upstream) is served by our URL
    hostsd = tmp_path / "containerd" / "hosts.d"
    assert sorted(p.name for p in hostsd.iterdir()) == sorted([reach.netloc, *mirror_for])
    for host in [reach.netloc, *mirror_for]:
        toml = tomllib.loads((hostsd / host / "hosts.toml").read_text())
        assert toml["server"] == reach.url
        conf = toml["host"][reach.url]
        assert conf["capabilities"] == ["pull", "resolve"]
        assert "skip_verify" not in conf
        # https: the CA file holds our CA; auth: the header carries user:password
        if kind["tls"]:
            assert (hostsd / host / "ca.crt").read_text() == CA
            assert conf["ca"] == str(hostsd / host / "ca.crt")
        else:
            assert "ca" not in conf
        if kind["auth"]:
            token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
            assert conf["header"] == {"Authorization": f"Basic {token}"}
        else:
            assert "header" not in conf
        if kind["mtls"]:
            assert (hostsd / host / "client.key").read_text() == CLIENT_KEY
            assert conf["client"] == [
                [str(hostsd / host / "client.crt"), str(hostsd / host / "client.key")]
            ]


# ------------------------------------------------------------------ charm-containerd's own code


@pytest.mark.parametrize("kind", COMBINATIONS)
@pytest.mark.parametrize("mirror_for", [(), MIRRORS])
@pytest.mark.parametrize("related", [False, True])
def test_charm_containerd_accepts_the_json_and_renders_a_valid_config(
    tmp_path, kind, mirror_for, related
):
    # GIVEN charm-containerd, related to docker-registry or not (the relation's own entry is
    # kept in its kv as its configure_registry handler keeps it)
    reach = access(**kind)
    module = peers.charm_containerd(tmp_path / "unit-state.db")
    if related:
        entry = module.Registry(url=reach.netloc, username="admin", password=PASSWORD)
        module.DB.set("registry", __import__("dataclasses").asdict(entry))
    entries = custom_registries.containerd_registries(
        reach, dict.fromkeys(mirror_for, reach.url), related=related
    )
    # WHEN its own parser reads the JSON and its template renders config.toml
    parsed = module.RegistryList.from_json(custom_registries.as_json(entries)).registries
    tls_dir = tmp_path / "etc-containerd"
    tls_dir.mkdir()
    rendered = peers.charm_containerd_config(module, custom_registries.as_json(entries), tls_dir)
    # THEN it is valid TOML (no table twice) with a mirror for every host
    config = tomllib.loads(rendered)
    registry = config["plugins"]["io.containerd.grpc.v1.cri"]["registry"]
    hosts = [reach.netloc, *mirror_for]
    assert set(hosts) <= set(registry["mirrors"])
    for host in mirror_for:
        assert registry["mirrors"][host]["endpoint"] == [reach.url]
    assert [r.host for r in parsed] == ([] if related else [reach.netloc]) + list(mirror_for)
    if not related and kind["auth"]:
        assert registry["configs"][reach.url]["auth"] == {
            "username": "admin",
            "password": PASSWORD,
        }
    if not related and kind["tls"]:
        ca_file = registry["configs"][reach.url]["tls"]["ca_file"]
        assert Path(ca_file).read_text() == CA


def test_charm_containerd_would_refuse_a_key_only_the_k8s_charm_knows(tmp_path):
    # the reason the builder writes only the keys both parsers accept
    module = peers.charm_containerd(tmp_path / "unit-state.db")
    with pytest.raises(module.ValidationError, match="skip_verify may not be specified"):
        module.RegistryList.from_json('[{"url": "https://r:5000", "skip_verify": true}]')


# ------------------------------------------------------------------ mirror-for


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("", ()),
        ("docker.io,ghcr.io registry.k8s.io, quay.io", MIRRORS),
        ("Docker.IO", ("docker.io",)),
        (
            "localhost:5001 [fd00::1]:5000 10.1.1.1",
            ("localhost:5001", "[fd00::1]:5000", "10.1.1.1"),
        ),
    ],
)
def test_mirror_for_reads_hosts(text, hosts):
    assert custom_registries.parse_mirror_for(text, own_netloc="10.0.0.5:5000") == hosts


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("docker.io/library", "is not host[:port]"),
        ("https://ghcr.io", "is not host[:port]"),
        ("bad_host", "is not host[:port]"),
        ("ghcr.io:70000", "the port must be 1-65535"),
        ("ghcr.io:", "the port must be 1-65535"),
        ("fd00::1", "an IPv6 address needs brackets"),
        ("index.docker.io", "containerd looks it up as docker.io"),
        ("registry-1.docker.io", "containerd looks it up as docker.io"),
        ("10.0.0.5:5000", "is this registry itself"),
        ("ghcr.io ghcr.io", "ghcr.io is given twice"),
        (" ".join(f"h{i}.example" for i in range(33)), "at most 32 hosts"),
    ],
)
def test_mirror_for_refuses_what_containerd_could_not_use(text, why):
    with pytest.raises(ClientConfigError, match="^mirror-for: .*" + why.replace("[", r"\[")):
        custom_registries.parse_mirror_for(text, own_netloc="10.0.0.5:5000")


def test_the_config_command_sets_exactly_the_json_whatever_the_password_holds():
    entries = custom_registries.k8s_registries(access(tls=True, auth=True), {})
    words = shlex.split(
        custom_registries.config_command("k8s", "containerd-custom-registries", entries)
    )
    assert words[:3] == ["juju", "config", "k8s"]
    option, _, value = words[3].partition("=")
    assert option == "containerd-custom-registries" and json.loads(value) == entries


def test_access_never_shows_the_password_or_key_in_its_repr():
    text = repr(access(tls=True, auth=True, mtls=True))
    assert PASSWORD not in text and CLIENT_KEY not in text


# ------------------------------------------------------------------ the action


class Hook:
    def __init__(self, config):
        self.params: dict = {}
        self.config = config
        self.results: dict = {}
        self.failures: list[str] = []
        self.logs: list[str] = []
        self.relations: dict[str, list[str]] = {}


@pytest.fixture
def hook(monkeypatch, tmp_path, defaults):
    h = Hook(dict(defaults) | {"auth-basic-user": "admin", "auth-basic-password": PASSWORD})
    monkeypatch.setenv("UNIT_STATE_DB", str(tmp_path / "unit-state.db"))
    monkeypatch.setattr(unitdata, "_KV", None)
    monkeypatch.setattr(hookenv, "action_get", lambda key=None: h.params)
    monkeypatch.setattr(hookenv, "action_set", h.results.update)
    monkeypatch.setattr(hookenv, "action_fail", h.failures.append)
    monkeypatch.setattr(hookenv, "log", lambda msg, level=None: h.logs.append(msg))
    monkeypatch.setattr(hookenv, "config", lambda key=None: h.config)
    monkeypatch.setattr(hookenv, "status_get", lambda: ("waiting", "Waiting for the registry."))
    monkeypatch.setattr(
        hookenv, "relation_ids", lambda name=None: [f"{name}:1"] if h.relations.get(name) else []
    )
    monkeypatch.setattr(
        hookenv, "related_units", lambda rid=None: h.relations.get(rid.split(":")[0], [])
    )
    yield h
    unitdata._KV = None


def serve(hook, tmp_path, *, netloc="10.0.0.5:5000", tls=True, proxied=False):
    ca = tmp_path / "ca.crt"
    ca.write_text(CA)
    scheme = "https" if tls else "http"
    endpoint = clients.Endpoint(
        netloc=netloc,
        url=f"{scheme}://{netloc}",
        local_url=f"{scheme}://10.0.0.5:5000",
        ca_file=str(ca) if tls else "",
    )
    records.save_endpoint(endpoint)
    serving = status.Report(ready_at=netloc, scheme=scheme, proxied=proxied)
    records.save_serving(serving)
    set_flag(records.CONFIGURED_FLAG)


def run(hook, **params):
    hook.params = params
    actions.run(client_config.client_config)
    return hook


def test_the_action_hands_out_both_jsons_and_commands(hook, tmp_path):
    # GIVEN a registry serving https with basic auth
    serve(hook, tmp_path)
    # WHEN client-config runs with mirror-for
    run(hook, **{"mirror-for": "docker.io,ghcr.io"})
    # THEN both JSONs describe it, with a mirror entry per host, and the commands set them
    assert not hook.failures
    k8s = json.loads(hook.results["k8s"])
    assert [(e["url"], e["host"]) for e in k8s] == [
        ("https://10.0.0.5:5000", "10.0.0.5:5000"),
        ("https://10.0.0.5:5000", "docker.io"),
        ("https://10.0.0.5:5000", "ghcr.io"),
    ]
    assert all(
        e["password"] == PASSWORD and base64.b64decode(e["ca_file"]).decode() == CA for e in k8s
    )
    assert hook.results["registry"] == "https://10.0.0.5:5000"
    assert shlex.split(hook.results["k8s-command"])[2] == "k8s"
    assert shlex.split(hook.results["containerd-command"])[3].startswith("custom_registries=")
    assert hook.results["notes"] == (
        "containerd: its CRI plugin does not apply custom_registries' CA and credentials "
        "(keyed by URL, looked up by host): relate it (juju integrate docker-registry "
        "containerd) and run client-config again."
    )
    # and nothing was logged (the output is the only place the password goes)
    assert not any(PASSWORD in line for line in hook.logs)


def test_http_with_a_password_says_it_crosses_in_clear(hook, tmp_path):
    serve(hook, tmp_path, tls=False)
    run(hook)
    assert "password crosses the network in clear" in hook.results["notes"]
    assert "ca_file" not in json.loads(hook.results["k8s"])[0]


def test_with_containerd_related_its_json_holds_only_the_mirrors(hook, tmp_path):
    serve(hook, tmp_path)
    hook.relations["docker-registry"] = ["containerd/0"]
    run(hook, **{"mirror-for": "docker.io"})
    assert [e["host"] for e in json.loads(hook.results["containerd"])] == ["docker.io"]
    assert "docker-registry relation" in hook.results["notes"]


def test_a_password_charm_containerds_template_cannot_carry_is_named(hook, tmp_path):
    hook.config["auth-basic-password"] = 'with"quote'
    serve(hook, tmp_path)
    run(hook)
    assert "writes the password into config.toml unescaped" in hook.results["notes"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"mirror-for": "docker.io/library"},
            "mirror-for: 'docker.io/library' is not host[:port]",
        ),
        ({"mirror-for": "10.0.0.5:5000"}, "mirror-for: '10.0.0.5:5000' is this registry itself"),
        ({"k8s-application": "K8s;rm"}, "k8s-application: not a Juju application name"),
    ],
)
def test_bad_parameters_fail_naming_them(hook, tmp_path, params, message):
    serve(hook, tmp_path)
    before = dict(unitdata.kv().getrange(""))
    run(hook, **params)
    assert hook.failures and hook.failures[0].startswith(message)
    assert not hook.results
    assert dict(unitdata.kv().getrange("")) == before  # nothing on the unit changed


def test_a_proxy_that_has_not_told_its_address_fails_the_action(hook, tmp_path):
    # GIVEN haproxy joined on website but the last hook still served at this unit's address
    serve(hook, tmp_path)
    hook.relations["website"] = ["haproxy/0"]
    run(hook)
    assert hook.failures == [
        "the proxy on the website relation has not told its address yet: "
        "run client-config again once the status says proxied"
    ]
    # WHEN the proxy told its address (the hook served proxied) THEN the proxy's is handed out
    hook.failures.clear()
    serve(hook, tmp_path, netloc="10.0.0.9:5000", proxied=True)
    run(hook)
    assert json.loads(hook.results["k8s"])[0]["url"] == "https://10.0.0.9:5000"


def test_not_ready_fails_with_the_status(hook):
    run(hook)
    assert hook.failures == ["the registry is not ready: Waiting for the registry."]


def test_each_cached_upstream_points_at_its_cache(hook, tmp_path):
    # GIVEN pull-through caches for docker.io and ghcr.io (ports pinned)
    hook.config["caches"] = (
        "docker.io=https://registry-1.docker.io,port=5101 ghcr.io=https://ghcr.io,port=5102"
    )
    serve(hook, tmp_path)
    # WHEN client-config runs with quay.io mirrored by the push registry
    run(hook, **{"mirror-for": "quay.io"})
    # THEN each cached host is served by its cache, quay.io by the push registry
    k8s = json.loads(hook.results["k8s"])
    assert [(e["host"], e["url"]) for e in k8s] == [
        ("10.0.0.5:5000", "https://10.0.0.5:5000"),
        ("quay.io", "https://10.0.0.5:5000"),
        ("docker.io", "https://10.0.0.5:5101"),
        ("ghcr.io", "https://10.0.0.5:5102"),
    ]
    assert all(e["password"] == PASSWORD for e in k8s)


def test_a_cached_upstream_in_mirror_for_is_refused_naming_it(hook, tmp_path):
    hook.config["caches"] = "docker.io=https://registry-1.docker.io,port=5101"
    serve(hook, tmp_path)
    run(hook, **{"mirror-for": "ghcr.io,docker.io"})
    assert hook.failures == [
        "mirror-for: docker.io has a pull-through cache (the caches option), which clients "
        "are pointed at already: leave it out of mirror-for"
    ]
