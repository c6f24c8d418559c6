"""The reactive layer through charms.reactive's real dispatch: real flags, real interface
layers, the lib's side effects (engine, container) replaced at the module boundary."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from charmhelpers.core import hookenv, unitdata
from charms.reactive import clear_flag, is_flag_set, set_flag

from charms.layer.docker_registry.config import tls
from charms.layer.docker_registry.errors import InstallError
from charms.layer.docker_registry.host import auth, engine, workload
from charms.layer.docker_registry.pipeline import runspec
from tests.support import certs
from tests.support.config import charm_defaults
from tests.support.fakejuju import (
    FakeJuju,
    _load_interfaces,
    fresh_hook_process,
    patch_hook_tools,
)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Handler-Secret-77"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Charm(FakeJuju):
    def __init__(self):
        super().__init__()
        self.config = charm_defaults()
        self.statuses: list[tuple[str, str]] = []
        self.leader = True
        self.leader_data: dict[str, str] = {}
        self.ports: set[str] = set()
        self.applied = []  # Desired objects given to workload.apply
        self.answering = True
        self.storage: bool | None = None  # what the catalog probe finds of object storage
        self.action = "created"
        self.install_error = None
        self.problem = ""  # set: workload.apply rolled the new config back
        self.owned_secrets: dict[str, dict[str, str]] | None = {}  # None: secret-add fails
        self.owned_unreadable = False  # True: secret-get fails

    @property
    def status(self):
        return self.statuses[-1]

    # lib side effects ----------------------------------------------------------------------
    def apply(self, desired, **kw):
        self.applied.append((desired, kw))
        action = self.action if kw["allow_start"] else "stopped-by-operator"
        if kw.get("hold"):  # (as if a serving container were to change: left as it is)
            action = workload.WAITING_TURN
        outcome = workload.Outcome(
            action=action,
            answering=self.answering and action != "stopped-by-operator",
            probe_url=f"{desired.scheme}://10.0.0.10:5000",
            run=runspec.ContainerRun(desired.run, "h"),
            problem=self.problem,
            failed={"hash": "h", "problem": self.problem} if self.problem else {},
        )
        return outcome, [f.path for f in desired.files]

    def add_owned(self, content, description):
        if self.owned_secrets is None:
            return ""
        uri = f"secret:owned{len(self.owned_secrets)}"
        self.owned_secrets[uri] = dict(content)
        return uri

    def read_owned(self, uri, key):
        if self.owned_unreadable:
            return ""
        return (self.owned_secrets or {}).get(uri, {}).get(key, "")

    def ensure_engine(self, install):
        if self.install_error:
            raise InstallError(self.install_error)


@pytest.fixture
def charm(tmp_path, monkeypatch) -> Charm:
    fake = Charm()
    fresh_hook_process(monkeypatch, tmp_path, yaml.safe_load((ROOT / "metadata.yaml").read_text()))
    monkeypatch.setenv("JUJU_UNIT_NAME", fake.local_unit)
    # every host path the charm writes (daemon.json, certs.d, …) stays inside tmp_path
    monkeypatch.setenv("DOCKER_REGISTRY_SANDBOX", str(tmp_path / "host"))
    monkeypatch.setattr("charms.layer.docker_registry.host.trust.reload_daemon", lambda: True)
    patch_hook_tools(
        monkeypatch,
        fake,
        application_name=lambda: "docker-registry",
        service_name=lambda: "docker-registry",
        unit_private_ip=lambda: fake.unit_private_address,
        unit_public_ip=lambda: "203.0.113.7",
        config=lambda key=None: dict(fake.config) if key is None else fake.config.get(key),
        status_set=lambda state, message, **kw: fake.statuses.append((state, message)),
        is_leader=lambda: fake.leader,
        leader_get=lambda key=None: fake.leader_data.get(key),
        leader_set=lambda data=None, **kw: fake.leader_data.update(data or {}, **kw),
        resource_get=lambda name: False,
        opened_ports=lambda: sorted(fake.ports),
        open_port=lambda port, protocol="TCP": fake.ports.add(f"{port}/{protocol}"),
        close_port=lambda port, protocol="TCP": fake.ports.discard(f"{port}/{protocol}"),
    )
    monkeypatch.setattr(engine, "ensure_engine", fake.ensure_engine)
    monkeypatch.setattr(engine, "ensure_tools", lambda install: None)
    monkeypatch.setattr(
        engine,
        "ensure_image",
        lambda ref, resource, digest="", recheck=True: engine.LocalImage("", "sha256:" + "i" * 64),
    )
    monkeypatch.setattr(auth, "htpasswd_line", lambda user, pw, existing=None: f"{user}:$2y$x\n")
    monkeypatch.setattr(workload, "apply", fake.apply)
    monkeypatch.setattr(
        "charms.layer.docker_registry.config.credentials.add_owned", fake.add_owned
    )
    monkeypatch.setattr(
        "charms.layer.docker_registry.config.credentials.read_owned", fake.read_owned
    )
    # no registry runs here: whether it reaches object storage cannot be told
    monkeypatch.setattr(
        "charms.layer.docker_registry.pipeline.clients.storage_answers",
        lambda *a, **kw: fake.storage,
    )

    def load():
        _load_interfaces(monkeypatch)
        spec = importlib.util.spec_from_file_location(
            "reactive.docker_registry", ROOT / "reactive" / "docker_registry.py"
        )
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "reactive.docker_registry", module)
        spec.loader.exec_module(module)

    fake.load_interfaces = load
    return fake


def test_install_then_ready(charm):
    # GIVEN a new unit WHEN install runs THEN the registry is configured and reported ready
    flags = charm.hook("install")
    assert {"docker-registry.installed", "docker-registry.configured"} <= flags
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (http).")
    assert charm.ports == {"5000/TCP"}
    assert len(charm.applied) == 1


def test_install_failure_blocks_and_retries(charm):
    charm.install_error = "Failed to install docker.io"
    flags = charm.hook("install")
    assert "docker-registry.installed" not in flags
    assert charm.status == ("blocked", "Failed to install docker.io.")
    assert charm.applied == []
    charm.install_error = None
    assert "docker-registry.installed" in charm.hook("update-status")
    assert charm.status[0] == "active"


def test_invalid_config_blocks_without_touching_the_registry(charm):
    charm.hook("install")
    charm.config |= {"registry-port": 0, "auth-basic-password": PASSWORD + "\nx"}
    charm.hook("config-changed")
    state, message = charm.status
    assert state == "blocked"
    assert message.startswith("Invalid charm config: ")
    assert "registry-port: must be between 1 and 65535" in message
    assert "auth-basic-password: must be a single line" in message
    assert PASSWORD not in message
    assert len(charm.applied) == 1  # only the install-time apply


def test_not_answering_waits_with_the_reason(charm):
    charm.answering = False
    flags = charm.hook("install")
    assert "docker-registry.configured" not in flags
    assert charm.status == (
        "waiting",
        "Waiting for the registry to answer at http://10.0.0.10:5000/v2/.",
    )


def test_metrics_listener_never_opens_its_port(charm):
    # GIVEN prometheus-metrics WHEN the unit is configured
    charm.config["prometheus-metrics"] = True
    charm.hook("install")
    # THEN the debug listener runs, published on the unit's loopback only (pprof and expvar are
    # on it too, without auth), and its port is not opened
    desired = charm.applied[-1][0]
    assert "debug:" in desired.config_yaml
    assert (charm.unit_private_address, 5001, 5001) in desired.run.ports  # the sandbox's loopback
    assert charm.ports == {"5000/TCP"}


def relation_data_model():
    """The interface layer's own pydantic model of the unit data, as loaded for this hook."""
    return sys.modules["relations.cos_agent.provides"].CosAgentProviderUnitData


def test_a_collector_turns_metrics_on_and_gets_job_rules_and_dashboard(
    charm, tmp_path, monkeypatch
):
    (tmp_path / "cos").symlink_to(ROOT / "cos")  # the charm directory holds them
    monkeypatch.setenv("JUJU_MODEL_NAME", "lab")
    monkeypatch.setenv("JUJU_MODEL_UUID", "f1b2c3d4-1111-4222-8333-444455556666")
    charm.config["debug-port"] = 5099
    charm.hook("install")
    assert "debug:" not in charm.applied[-1][0].config_yaml  # prometheus-metrics is off
    # WHEN a COS collector (a subordinate) joins over cos-agent
    rid = charm.relate("cos-agent", {"grafana-agent/0": {}})
    charm.hook("cos-agent-relation-joined", rid, "grafana-agent/0")
    # THEN the metrics listener is on, on the loopback only
    desired = charm.applied[-1][0]
    assert "debug:" in desired.config_yaml
    assert (charm.unit_private_address, 5099, 5001) in desired.run.ports
    assert charm.ports == {"5000/TCP"}
    # AND the unit data passes the interface's own model: the localhost job, the charm's alert
    # rules for this application, its dashboard
    data = relation_data_model().model_validate_json(charm.local[rid]["config"])
    assert data.metrics_scrape_jobs == [
        {
            "job_name": "cos-agent_0_registry",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["localhost:5099"]}],
        }
    ]
    rules = [r for g in data.metrics_alert_rules["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} >= {"DockerRegistryDown", "DockerRegistryStorageErrors"}
    assert all('juju_application="docker-registry"' in r["expr"] for r in rules)
    assert len(data.dashboards) == 1
    # WHEN the collector goes THEN the listener goes back to what the config says: off
    charm.depart(rid, "grafana-agent/0")
    charm.hook("cos-agent-relation-departed", rid, "grafana-agent/0")
    assert "debug:" not in charm.applied[-1][0].config_yaml
    assert all(port != 5099 for _, port, _ in charm.applied[-1][0].run.ports)


def test_collector_with_debug_port_on_registry_port_blocks(charm):
    charm.config |= {"debug-port": 5000}
    charm.hook("install")
    rid = charm.relate("cos-agent", {"grafana-agent/0": {}})
    charm.hook("cos-agent-relation-joined", rid, "grafana-agent/0")
    assert charm.status == (
        "blocked",
        "Invalid charm config: debug-port: must differ from registry-port while cos-agent is"
        " related",
    )
    assert len(charm.applied) == 1  # only the install-time apply


def test_stopped_by_operator_is_reported_and_respected(charm):
    charm.hook("install")
    unitdata.kv()  # the stop action sets this flag in its own process
    set_flag("docker-registry.stopped")
    charm.hook("update-status")
    assert charm.status == ("blocked", "registry-docker-registry-0 container is stopped.")
    assert charm.applied[-1][1]["allow_start"] is False
    clear_flag("docker-registry.stopped")
    charm.hook("update-status")
    assert charm.status[0] == "active"


def test_clients_get_everything_when_they_join(charm):
    charm.config["auth-basic-password"] = PASSWORD
    charm.hook("install")
    rid = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", rid, "containerd/0")
    bag = charm.local[rid]
    assert json.loads(bag["registry_netloc"]) == "10.0.0.10:5000"
    assert json.loads(bag["registry_url"]) == "http://10.0.0.10:5000"
    assert json.loads(bag["basic_user"]) == "admin"
    assert json.loads(bag["basic_password"]) == PASSWORD
    assert json.loads(bag["tls_ca"]) is None
    assert not any(PASSWORD in line for line in charm.logs)
    assert not any(PASSWORD in message for _, message in charm.statuses)


def test_certificate_requested_and_used(charm):
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    request = charm.local[rid]
    assert request["common_name"] == "10.0.0.10"
    assert {"10.0.0.10", "203.0.113.7"} <= set(json.loads(request["sans"]))
    assert charm.status[0] == "waiting"
    assert "certificate from cert-provider" in charm.status[1]
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    charm.set_remote(
        rid,
        "easyrsa/0",
        ca=ca.cert,
        **{
            "docker-registry_0.server.cert": server.cert,
            "docker-registry_0.server.key": server.key,
        },
    )
    applied = len(charm.applied)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    desired, _ = charm.applied[-1]
    assert desired.scheme == "https"
    # the interface layer's flags changing mid-hook re-ran nothing that was already done
    assert len(charm.applied) == applied + 1
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (https).")


def test_a_certificate_takes_effect_in_the_hook_that_brings_it_text_dump_and_all(charm):
    # GIVEN a unit waiting for its certificate from easyrsa, which puts an `openssl x509
    # -text` dump before every PEM block
    charm.config["http-host"] = "https://registry.example.com"
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    # THEN the common name is the unit's own (units sharing http-host must not share one)
    assert charm.local[rid]["common_name"] == "10.0.0.10"
    assert "registry.example.com" in json.loads(charm.local[rid]["sans"])
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(
        ca_key, ca_cert, "10.0.0.10", ["10.0.0.10", "registry.example.com"]
    )
    dump = "Certificate:\n    Data:\n        Version: 3 (0x2)\n        Subject: CN=10.0.0.10\n"
    charm.set_remote(
        rid,
        "easyrsa/0",
        ca=dump + ca.cert,
        **{
            "docker-registry_0.server.cert": dump + server.cert,
            "docker-registry_0.server.key": server.key,
        },
    )
    # WHEN the one hook Juju fires for it runs (cert-provider-relation-changed)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    # THEN https is served in that hook, from the PEM blocks alone
    desired, _ = charm.applied[-1]
    assert desired.scheme == "https"
    written = {f.path: f.content for f in desired.files}
    assert all("Certificate:" not in content for content in written.values())
    assert charm.status == ("active", "Ready at registry.example.com (https).")
    clients = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", clients, "containerd/0")
    assert json.loads(charm.local[clients]["tls_ca"]) == ca.cert


def served_http_secret(charm) -> str:
    desired, _ = charm.applied[-1]
    return yaml.safe_load(desired.config_yaml)["http"]["secret"]


def test_http_secret_shared_through_a_juju_secret_leader_data_holds_only_its_uri(charm):
    # GIVEN a new leader WHEN install runs
    charm.hook("install")
    # THEN the shared secret is in a secret the application owns; leader data names it only
    uri = charm.leader_data["http-secret-id"]
    secret = charm.owned_secrets[uri]["http-secret"]
    assert len(secret) >= 32 and secret not in charm.leader_data.values()
    assert served_http_secret(charm) == secret
    # AND it stays, and another unit (not the leader) serves with the same one
    charm.hook("update-status")
    assert charm.leader_data["http-secret-id"] == uri and len(charm.owned_secrets) == 1
    charm.leader = False
    charm.hook("config-changed")
    assert served_http_secret(charm) == secret


def test_an_unreadable_http_secret_is_never_replaced_by_a_new_one(charm):
    # GIVEN the leader made the shared secret
    charm.hook("install")
    uri = charm.leader_data["http-secret-id"]
    # WHEN secret-get fails in one hook (the secret is there, the read is not)
    charm.owned_unreadable = True
    charm.hook("update-status")
    # THEN no second secret is made and leader data still names the first
    assert list(charm.owned_secrets) == [uri] and charm.leader_data["http-secret-id"] == uri


def test_an_earlier_revisions_http_secret_moves_into_a_juju_secret_unchanged(charm):
    # GIVEN leader data as an earlier revision left it: the value itself
    charm.leader_data["http-secret"] = "s" * 43
    # WHEN the upgraded leader runs a hook
    charm.hook("upgrade-charm")
    # THEN the same value is served, now from a Juju secret, and gone from leader data
    assert served_http_secret(charm) == "s" * 43
    assert charm.owned_secrets[charm.leader_data["http-secret-id"]]["http-secret"] == "s" * 43
    assert not charm.leader_data["http-secret"]


def test_without_secret_add_each_unit_keeps_its_own_http_secret(charm):
    # GIVEN a Juju whose secret-add fails
    charm.owned_secrets = None
    # WHEN the leader installs THEN it serves with a secret of its own, never in leader data
    charm.hook("install")
    first = served_http_secret(charm)
    assert len(first) >= 32 and first not in charm.leader_data.values()
    charm.hook("update-status")
    assert served_http_secret(charm) == first


def test_stop_hook_removes_the_container_and_configures_nothing(charm, monkeypatch):
    from charms.layer.docker_registry.host import container

    removed = []
    ours = container.ContainerState(
        name="registry-docker-registry-0",
        id="1",
        running=True,
        status="running",
        image_id="",
        labels={container.OWNER_LABEL: container.owner()},
    )
    monkeypatch.setattr(container, "inspect", lambda name: ours if name == ours.name else None)
    monkeypatch.setattr(container, "stop", lambda name: removed.append(("stop", name)))
    monkeypatch.setattr(container, "remove", lambda name: removed.append(("rm", name)))
    charm.hook("install")
    applied = len(charm.applied)
    flags = charm.hook("stop")
    assert removed == [
        ("stop", "registry-docker-registry-0"),
        ("rm", "registry-docker-registry-0"),
    ]
    assert len(charm.applied) == applied
    assert "docker-registry.removed" in flags
    assert is_flag_set("docker-registry.removed")


@pytest.mark.parametrize(("owner", "removed_aside"), [("own", True), ("other", False)])
def test_stop_hook_removes_a_last_good_container_left_aside_when_it_is_ours(
    charm, monkeypatch, owner, removed_aside
):
    from charms.layer.docker_registry.host import container

    # GIVEN a hook killed mid-change left the last good container set aside (renamed, stopped)
    aside = "registry-docker-registry-0.last-good"
    labels = {container.OWNER_LABEL: container.owner() if owner == "own" else "someone/else"}
    left = container.ContainerState(
        name=aside, id="2", running=False, status="exited", image_id="", labels=labels
    )
    monkeypatch.setattr(container, "inspect", lambda name: left if name == aside else None)
    gone = []
    monkeypatch.setattr(container, "stop", lambda name: gone.append(("stop", name)))
    monkeypatch.setattr(container, "remove", lambda name: gone.append(("rm", name)))
    charm.hook("install")
    # WHEN the unit goes away
    charm.hook("stop")
    # THEN it goes too when the charm made it; another program's container is left alone
    assert gone == ([("stop", aside), ("rm", aside)] if removed_aside else [])


def test_own_docker_trusts_the_registry_without_restarting_it(charm, tmp_path):
    host = tmp_path / "host"
    charm.hook("install")
    daemon = json.loads((host / "etc/docker/daemon.json").read_text())
    assert daemon == {"insecure-registries": ["10.0.0.10:5000"]}
    charm.config["tls-cert-blob"] = ""  # unchanged: nothing rewritten
    mtime = (host / "etc/docker/daemon.json").stat().st_mtime_ns
    charm.hook("update-status")
    assert (host / "etc/docker/daemon.json").stat().st_mtime_ns == mtime


def test_behind_haproxy_the_leader_publishes_every_unit_and_clients_get_the_proxy(charm):
    charm.hook("install")
    peer = charm.relate(
        "peer", {"docker-registry/10": {"ingress-address": "10.0.0.20", "private-address": "x"}}
    )
    charm.hook("peer-relation-changed", peer, "docker-registry/10")
    web = charm.relate("website", {"haproxy/0": {"public-address": "10.0.0.99"}})
    flags = charm.hook("website-relation-changed", web, "haproxy/0")
    assert "website.available" in flags
    services = yaml.safe_load(charm.local[web]["services"])
    servers = services[0]["servers"]
    assert [s[:3] for s in servers] == [
        ["docker-registry-0", "10.0.0.10", 5000],
        ["docker-registry-10", "10.0.0.20", 5000],
    ]
    assert "backup" not in servers[0][3] and "backup" in servers[1][3]
    # filesystem storage on two units behind one proxy: the leader records the primary (the
    # lowest unit number, none being recorded), which the backups replicate
    assert charm.leader_data["replica-primary"] == "docker-registry/0"
    assert charm.status == ("active", "Ready at 10.0.0.99:5000 (http, proxied); primary.")
    assert charm.local[peer]["registry-url"] == "http://10.0.0.10:5000"
    charm.config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    charm.hook("config-changed")
    assert charm.status == ("active", "Ready at 10.0.0.99:5000 (http, proxied).")
    clients = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", clients, "containerd/0")
    assert json.loads(charm.local[clients]["registry_netloc"]) == "10.0.0.99:5000"
    # a non-leader withdraws, so a stale server list never lingers in haproxy
    charm.leader = False
    charm.hook("leader-settings-changed")
    assert "services" not in charm.local[web] and "port" not in charm.local[web]


def test_nrpe_check_follows_the_scheme_served(charm, tmp_path):
    charm.hook("install")
    rid = charm.relate("nrpe-external-master", {"nrpe/0": {}})
    charm.hook("nrpe-external-master-relation-joined", rid, "nrpe/0")
    monitors = yaml.safe_load(charm.local[rid]["monitors"])
    assert monitors["monitors"]["remote"]["nrpe"] == {
        "docker_registry": {"command": "check_docker_registry"}
    }
    cfg = (tmp_path / "host/etc/nagios/nrpe.d/check_docker_registry.cfg").read_text()
    assert "--url http://10.0.0.10:5000" in cfg
    assert (tmp_path / "host/usr/local/lib/nagios/plugins/check_docker_registry").exists()


def test_cache_credentials_limitation_is_said(charm):
    charm.config |= {
        "cache-remoteurl": "https://upstream.example.com",
        "cache-username": "u",
        "cache-password": PASSWORD,
    }
    charm.hook("install")
    assert charm.status == (
        "active",
        "Ready at 10.0.0.10:5000 (http). "
        "Note: registry 2.8 does not send cache-username upstream.",
    )


def test_tls_blobs_that_do_not_cover_the_address_warn(charm):
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "elsewhere", ["elsewhere.example"])
    charm.config |= {
        "tls-ca-blob": _b64(ca.cert),
        "tls-cert-blob": _b64(server.cert),
        "tls-key-blob": _b64(server.key),
    }
    charm.hook("install")
    assert charm.status == (
        "active",
        "Ready at 10.0.0.10:5000 (https). Warning: the certificate does not cover 10.0.0.10.",
    )
    covered = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    charm.config |= {"tls-cert-blob": _b64(covered.cert), "tls-key-blob": _b64(covered.key)}
    charm.hook("config-changed")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (https).")


def test_tls_blobs_without_openssl_block_naming_it(charm, monkeypatch):
    _ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    charm.config |= {"tls-cert-blob": _b64(server.cert), "tls-key-blob": _b64(server.key)}
    monkeypatch.setattr(tls, "OPENSSL", "/nonexistent/openssl")
    tls._certificate.cache_clear()
    charm.hook("install")
    assert charm.status == ("blocked", "the openssl tool is not installed.")
    assert not charm.applied


def test_new_names_get_a_reissued_certificate_and_https_never_stops(charm):
    # GIVEN https from cert-provider for the unit's address
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    ca, ca_key, ca_cert = certs.make_ca()
    first = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    charm.set_remote(
        rid,
        "easyrsa/0",
        ca=ca.cert,
        **{"docker-registry_0.server.cert": first.cert, "docker-registry_0.server.key": first.key},
    )
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (https).")
    # WHEN http-host names the registry
    charm.config["http-host"] = "https://registry.example.com/"
    charm.hook("config-changed")
    # THEN the same common name is requested with the new SAN, and until it is re-issued the
    # registry keeps serving https with the certificate it has (never falls back to http)
    assert charm.local[rid]["common_name"] == "10.0.0.10"
    assert "registry.example.com" in json.loads(charm.local[rid]["sans"])
    assert charm.applied[-1][0].scheme == "https"
    assert charm.status == (
        "active",
        "Ready at registry.example.com (https). "
        "Warning: the certificate does not cover registry.example.com.",
    )
    second = certs.make_server_cert(
        ca_key, ca_cert, "10.0.0.10", ["10.0.0.10", "registry.example.com"]
    )
    charm.set_remote(
        rid,
        "easyrsa/0",
        **{
            "docker-registry_0.server.cert": second.cert,
            "docker-registry_0.server.key": second.key,
        },
    )
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    assert charm.status == ("active", "Ready at registry.example.com (https).")
    assert any(f.content == second.cert for f in charm.applied[-1][0].files)


def _issue(charm, rid, *, client: certs.Pair | None):
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10", "10.0.0.99"])
    data = {
        "docker-registry_0.server.cert": server.cert,
        "docker-registry_0.server.key": server.key,
    }
    if client is None:
        client = certs.make_client_cert(ca_key, ca_cert)
    if client:
        data |= {"client.cert": client.cert, "client.key": client.key}
    charm.set_remote(rid, "easyrsa/0", ca=ca.cert, **data)
    return client


def test_mutual_tls_gives_the_unit_tools_the_provider_client_certificate(charm, tmp_path):
    # GIVEN tls-client-auth with easyrsa, which also hands out a shared client certificate
    charm.config["tls-client-auth"] = True
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    nrpe_rid = charm.relate("nrpe-external-master", {"nrpe/0": {}})
    charm.hook("nrpe-external-master-relation-joined", nrpe_rid, "nrpe/0")  # as Juju fires it
    web = charm.relate("website", {"haproxy/0": {"public-address": "10.0.0.99"}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    client = _issue(charm, rid, client=None)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    charm.hook("website-relation-changed", web, "haproxy/0")
    # THEN the registry requires client certs, the unit is ready without a note
    desired, _ = charm.applied[-1]
    assert desired.scheme == "https"
    assert charm.status == ("active", "Ready at 10.0.0.99:5000 (https, proxied).")
    # the unit's docker, skopeo and the actions find the pair next to the CA
    certs_d = tmp_path / "host/etc/docker/certs.d/10.0.0.99:5000"
    assert (certs_d / "client.cert").read_text() == client.cert
    assert (certs_d / "client.key").stat().st_mode & 0o777 == 0o600
    endpoint = unitdata.kv().get("docker-registry.endpoint")
    assert endpoint["client_cert_file"] == str(certs_d / "client.cert")
    assert endpoint["client_key_file"] == str(certs_d / "client.key")
    # the nrpe check presents it; haproxy, which has none, checks with a TCP connect
    cfg = (tmp_path / "host/etc/nagios/nrpe.d/check_docker_registry.cfg").read_text()
    assert f"--client-cert {tmp_path}/host/etc/nagios/docker-registry-check.client.cert" in cfg
    # AND WHEN nrpe's relation changes (its data wiped meanwhile) THEN the check is published
    # again, still presenting the pair, and the unit stays ready
    charm.local[nrpe_rid].clear()
    flags = charm.hook("nrpe-external-master-relation-changed", nrpe_rid, "nrpe/0")
    assert "nrpe-external-master.available" in flags
    monitors = yaml.safe_load(charm.local[nrpe_rid]["monitors"])
    assert monitors["monitors"]["remote"]["nrpe"] == {
        "docker_registry": {"command": "check_docker_registry"}
    }
    cfg = (tmp_path / "host/etc/nagios/nrpe.d/check_docker_registry.cfg").read_text()
    assert "--client-cert" in cfg and charm.status[0] == "active"
    services = yaml.safe_load(charm.local[web]["services"])
    assert not any("httpchk" in o for o in services[0]["service_options"])
    assert "check-ssl" not in services[0]["servers"][0][3]
    # AND WHEN mutual TLS is turned off THEN the pair is gone again
    charm.config["tls-client-auth"] = False
    charm.hook("config-changed")
    assert not (certs_d / "client.cert").exists()
    assert unitdata.kv().get("docker-registry.endpoint")["client_cert_file"] == ""


def _text_dump(pem: str) -> str:
    """easyrsa's shape: `openssl x509 -text` output, then the PEM block."""
    return subprocess.run(
        ["openssl", "x509", "-text"], input=pem, capture_output=True, text=True, check=True
    ).stdout


def test_only_the_pem_blocks_of_easyrsa_material_are_written(charm, tmp_path):
    # GIVEN a provider that puts a text dump before every certificate, like easyrsa
    charm.config["tls-client-auth"] = True
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    client = certs.make_client_cert(ca_key, ca_cert)
    charm.set_remote(
        rid,
        "easyrsa/0",
        ca=_text_dump(ca.cert),
        **{
            "docker-registry_0.server.cert": _text_dump(server.cert),
            "docker-registry_0.server.key": server.key,
            "client.cert": _text_dump(client.cert),
            "client.key": client.key,
        },
    )
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    # THEN it is served, and the files hold the PEM blocks alone
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (https).")
    contents = [f.content for f in charm.applied[-1][0].files]
    assert server.cert in contents and ca.cert in contents
    assert not any("Certificate:" in content for content in contents)
    certs_d = tmp_path / "host/etc/docker/certs.d/10.0.0.10:5000"
    assert (certs_d / "ca.crt").read_text() == ca.cert
    assert (certs_d / "client.cert").read_text() == client.cert


@pytest.mark.parametrize("which", ["none", "foreign"])
def test_mutual_tls_without_a_usable_client_certificate_is_said(charm, which):
    charm.config["tls-client-auth"] = True
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    _other, other_key, other_cert = certs.make_ca("other-ca")
    foreign = certs.make_client_cert(other_key, other_cert)
    _issue(charm, rid, client=foreign if which == "foreign" else False)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    state, message = charm.status
    why = "cert-provider gave none" if which == "none" else "is not signed by the CA"
    assert state == "active" and message.startswith("Ready at 10.0.0.10:5000 (https).")
    assert why in message and "cannot pass tls-client-auth" in message
    assert "PRIVATE KEY" not in message


def test_an_unusable_certificate_from_cert_provider_blocks_and_keeps_the_registry(charm):
    # GIVEN a registry serving https with easyrsa's certificate
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    _issue(charm, rid, client=False)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (https).")
    applied = len(charm.applied)
    # WHEN the provider sends a key that does not belong to the certificate
    _other, other_key, other_cert = certs.make_ca("other-ca")
    stray = certs.make_server_cert(other_key, other_cert, "10.0.0.10", ["10.0.0.10"])
    charm.set_remote(rid, "easyrsa/0", **{"docker-registry_0.server.key": stray.key})
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    # THEN the unit blocks naming the problem, and the running registry is not touched
    assert charm.status == (
        "blocked",
        "cert-provider sent an unusable server certificate: "
        "the key does not match the certificate.",
    )
    assert len(charm.applied) == applied
    # AND a client joining meanwhile gets nothing half-made (no traceback either)
    clients = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", clients, "containerd/0")


def test_a_garbage_proxy_address_blocks_and_is_not_used(charm):
    charm.config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    charm.hook("install")
    web = charm.relate("website", {"haproxy/0": {"public-address": "not an address"}})
    charm.hook("website-relation-changed", web, "haproxy/0")
    assert charm.status == (
        "blocked",
        "The proxy sent an invalid public-address on website: 'not an address'.",
    )
    clients = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", clients, "containerd/0")
    assert json.loads(charm.local[clients]["registry_netloc"]) == "10.0.0.10:5000"


def test_nrpe_check_logs_in_with_the_charm_credentials_from_a_private_file(charm, tmp_path):
    charm.config |= {"auth-basic-user": "admin", "auth-basic-password": PASSWORD}
    charm.hook("install")
    rid = charm.relate("nrpe-external-master", {"nrpe/0": {}})
    charm.hook("nrpe-external-master-relation-joined", rid, "nrpe/0")
    cfg = (tmp_path / "host/etc/nagios/nrpe.d/check_docker_registry.cfg").read_text()
    creds = tmp_path / "host/etc/nagios/docker-registry-check.credentials"
    assert f"--credentials-file {creds}" in cfg and PASSWORD not in cfg
    assert creds.read_text() == f"admin:{PASSWORD}\n"
    assert creds.stat().st_mode & 0o777 == 0o600
    # auth off: the check no longer sends credentials and the file is gone
    charm.config["auth-basic-password"] = ""
    charm.hook("config-changed")
    assert not creds.exists()
    cfg = (tmp_path / "host/etc/nagios/nrpe.d/check_docker_registry.cfg").read_text()
    assert "--credentials-file" not in cfg


def test_a_rolled_back_change_blocks_and_clients_keep_the_last_good_data(charm):
    # GIVEN a client told where the registry is
    charm.hook("install")
    clients = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", clients, "containerd/0")
    told = dict(charm.local[clients])
    # WHEN a change (a new port) is rolled back because the new registry never answered
    charm.problem = "The new config did not start (the registry said: panic: x)"
    charm.config["registry-port"] = 5050
    charm.hook("config-changed")
    # THEN the unit says so, and the client still has the address that serves
    assert charm.status == (
        "blocked",
        "The new config did not start (the registry said: panic: x); "
        "serving the last good config.",
    )
    assert charm.local[clients] == told
    assert unitdata.kv().get("docker-registry.failed-config")["hash"] == "h"


def _on_s3_behind_haproxy(charm) -> tuple[str, str]:
    """/0 (this unit, installed) and /1 on S3, related to each other and to haproxy: (the peer
    relation, the website relation)."""
    charm.config |= {"storage-s3-region": "us-east-1", "storage-s3-bucket": "b"}
    charm.hook("install")
    peer = charm.relate("peer", {"docker-registry/1": {"ingress-address": "10.0.0.11"}})
    charm.hook("peer-relation-changed", peer, "docker-registry/1")
    web = charm.relate("website", {"haproxy/0": {"public-address": "10.0.0.99"}})
    charm.hook("website-relation-changed", web, "haproxy/0")
    return peer, web


def test_behind_haproxy_units_on_shared_storage_are_all_active(charm):
    # GIVEN two units on S3 behind haproxy
    _, web = _on_s3_behind_haproxy(charm)
    # THEN the leader publishes both as active servers, balanced
    (service,) = yaml.safe_load(charm.local[web]["services"])
    assert [("backup" in s[3]) for s in service["servers"]] == [False, False]
    assert "balance roundrobin" in service["service_options"]
    assert charm.status == ("active", "Ready at 10.0.0.99:5000 (http, proxied).")


def test_a_rollback_is_told_the_options_changed_since_the_last_good_config(charm):
    # GIVEN a registry that answered
    charm.hook("install")
    # WHEN two options change (one a secret)
    charm.config |= {"log-level": "debug", "auth-basic-password": "s3cr3t-Value"}
    charm.hook("config-changed")
    # THEN the apply is told their names (for a rollback to name), and no value is kept
    assert charm.applied[-1][1]["changed"] == ("auth-basic-password", "log-level")
    kept = unitdata.kv().get("docker-registry.last-good-options")
    assert all(re.fullmatch(r"[0-9a-f]{16}", digest) for digest in kept.values())
    assert "s3cr3t-Value" not in json.dumps(kept)
    # AND once that config answered, nothing is changed from it any more
    charm.hook("update-status")
    assert charm.applied[-1][1]["changed"] == ()


def test_a_rollback_whose_last_good_registry_did_not_come_back_says_not_serving(charm):
    charm.hook("install")
    charm.problem = (
        "registry-port: a port (5050) was taken on this host while the registry restarted"
    )
    charm.answering = False
    charm.config["log-level"] = "debug"
    charm.hook("config-changed")
    assert charm.status == ("blocked", f"{charm.problem}; not serving.")


def test_clients_are_not_told_http_while_a_certificate_is_expected(charm):
    # GIVEN a CA related but no certificate issued yet, and a client joining
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    clients = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", clients, "containerd/0")
    # THEN the client is told nothing yet (never http://, with the password, in the clear)
    assert "registry_netloc" not in charm.local[clients]
    assert charm.status == ("waiting", "Waiting for a server certificate from cert-provider.")
    # AND once the certificate arrives it gets https in that same hook
    _issue(charm, rid, client=False)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    assert json.loads(charm.local[clients]["registry_url"]) == "https://10.0.0.10:5000"


def test_a_new_common_name_keeps_https_with_the_certificate_issued_before(charm):
    # GIVEN https from cert-provider
    charm.hook("install")
    rid = charm.relate("cert-provider", {"easyrsa/0": {}})
    charm.hook("cert-provider-relation-joined", rid, "easyrsa/0")
    _issue(charm, rid, client=False)
    charm.hook("cert-provider-relation-changed", rid, "easyrsa/0")
    # WHEN the unit's address (its common name) changes
    charm.unit_private_address = "10.0.0.11"
    charm.hook("config-changed")
    # THEN a certificate is requested for it, and https goes on meanwhile
    assert "10.0.0.11" in json.loads(charm.local[rid]["cert_requests"])
    assert charm.applied[-1][0].scheme == "https"
    assert charm.status == ("waiting", "Waiting for a server certificate from cert-provider.")


def _two_units_behind_haproxy(charm) -> tuple[str, str]:
    """/0 (this unit) and /1 on S3 behind haproxy, both serving the same config: the peer
    relation and the token both reported."""
    peer, _ = _on_s3_behind_haproxy(charm)
    serving = charm.local[peer]["rolling-token"]
    assert charm.local[peer]["rolling-state"] == "applied"
    charm.set_remote(peer, "docker-registry/1", **{"rolling-token": serving})
    charm.set_remote(peer, "docker-registry/1", **{"rolling-state": "applied"})
    charm.hook("peer-relation-changed", peer, "docker-registry/1")
    assert not charm.applied[-1][1]["hold"]
    return peer, serving


def test_behind_haproxy_a_change_waits_for_the_unit_before_it_in_turn(charm):
    # GIVEN two units on S3 behind haproxy, both serving the same config
    peer, serving = _two_units_behind_haproxy(charm)
    # WHEN the config changes: /1 goes first (highest unit number), it has not applied yet
    charm.config["log-level"] = "debug"
    charm.hook("config-changed")
    # THEN /0 keeps its registry as it is, says whom it waits for, and tells its peers
    assert charm.applied[-1][1]["hold"]
    assert charm.status == (
        "waiting",
        "Waiting for docker-registry/1 to apply the new config first (rolling change); "
        "serving the previous config.",
    )
    wanted = charm.local[peer]["rolling-token"]
    assert wanted != serving and charm.local[peer]["rolling-state"] == "waiting"
    # WHEN /1 reports that it runs the new config and answers
    charm.set_remote(peer, "docker-registry/1", **{"rolling-token": wanted})
    charm.hook("peer-relation-changed", peer, "docker-registry/1")
    # THEN it is /0's turn: it applies, serves and reports it
    assert not charm.applied[-1][1]["hold"]
    assert charm.status == ("active", "Ready at 10.0.0.99:5000 (http, proxied).")
    assert charm.local[peer]["rolling-state"] == "applied"
    assert charm.local[peer]["rolling-token"] == wanted


def test_a_unit_without_a_proxy_or_peers_applies_at_once_and_tells_no_one(charm):
    charm.hook("install")
    peer = charm.relate("peer", {"docker-registry/1": {"ingress-address": "10.0.0.11"}})
    charm.config["log-level"] = "debug"
    charm.hook("config-changed")
    assert not charm.applied[-1][1]["hold"]
    assert "rolling-token" not in charm.local[peer]


class Volume:
    """The registry-data store as the hook tools and statvfs tell it."""

    def __init__(self, monkeypatch, tmp_path):
        self.attached: list[str] = []
        self.percent = 50
        self.data = tmp_path / "host" / "srv" / "registry"
        self.data.mkdir(parents=True)
        real_statvfs = os.statvfs

        def statvfs(path):
            if Path(path) != self.data:
                return real_statvfs(path)
            blocks = 1 << 20  # 4 GiB of 4 KiB blocks
            free = blocks - blocks * self.percent // 100
            return os.statvfs_result((4096, 4096, blocks, free, free, 0, 0, 0, 0, 255))

        monkeypatch.setattr(os, "statvfs", statvfs)
        monkeypatch.setattr(hookenv, "storage_list", lambda name=None: list(self.attached))
        monkeypatch.setattr(hookenv, "storage_get", lambda attr=None, sid=None: "/srv/registry")
        # (no registry runs yet when a volume first comes: nothing to move onto it)
        monkeypatch.setattr(
            "charms.layer.docker_registry.host.container.inspect", lambda name: None
        )


def ours_running():
    from charms.layer.docker_registry.host import container

    return container.ContainerState(
        name="registry-docker-registry-0",
        id="1",
        running=True,
        status="running",
        image_id="",
        labels={container.OWNER_LABEL: container.owner()},
    )


def test_a_detached_volume_stops_the_registry_until_it_is_attached_again(
    charm, monkeypatch, tmp_path
):
    from charms.layer.docker_registry.host import container

    volume = Volume(monkeypatch, tmp_path)
    volume.attached = ["registry-data/0"]
    running = ours_running()
    stopped = []
    monkeypatch.setattr(container, "stop", lambda name: stopped.append(name))
    # GIVEN the registry serving from the volume (deployed with it)
    charm.hook("registry-data-storage-attached")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (http).")
    applied = len(charm.applied)
    monkeypatch.setattr(container, "inspect", lambda name: running)
    # WHEN its storage-detaching hook runs (the volume still attached)
    monkeypatch.setenv("JUJU_STORAGE_ID", "registry-data/0")
    flags = charm.hook("registry-data-storage-detaching")
    # THEN the registry is stopped and nothing else applied; blocked until attached again
    assert stopped == ["registry-docker-registry-0"]
    assert len(charm.applied) == applied and "docker-registry.configured" not in flags
    assert charm.status[0] == "blocked" and charm.status[1].startswith(
        "Storage detached (registry-data/0): the registry is stopped"
    )
    volume.attached = []
    monkeypatch.delenv("JUJU_STORAGE_ID")
    charm.hook("update-status")
    assert len(charm.applied) == applied and charm.status[1].startswith("Storage detached")
    volume.attached = ["registry-data/0"]
    charm.hook("registry-data-storage-attached")
    assert len(charm.applied) == applied + 1
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (http).")


def test_a_full_volume_makes_the_registry_read_only_until_space_is_freed(
    charm, monkeypatch, tmp_path
):
    volume = Volume(monkeypatch, tmp_path)
    volume.attached = ["registry-data/0"]

    def read_only() -> bool:
        config = yaml.safe_load(charm.applied[-1][0].config_yaml)
        return config["storage"]["maintenance"]["readonly"]["enabled"]

    charm.hook("install")
    assert not read_only()
    volume.percent = 93
    charm.hook("update-status")
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (http); storage 93 % full.")
    volume.percent = 98
    charm.hook("update-status")
    assert read_only() and charm.status[0] == "blocked"
    volume.percent = 96  # freed a little: still above the lower mark
    charm.hook("update-status")
    assert read_only() and charm.status[0] == "blocked"
    volume.percent = 80
    charm.hook("update-status")
    assert not read_only()
    assert charm.status == ("active", "Ready at 10.0.0.10:5000 (http).")


def test_an_unreadable_store_blocks_and_touches_nothing(charm, monkeypatch, tmp_path):
    Volume(monkeypatch, tmp_path).attached = ["registry-data/0"]
    charm.hook("install")
    applied = len(charm.applied)

    def fails(attr=None, sid=None):
        raise subprocess.CalledProcessError(1, ["storage-get", "--format=json"])

    monkeypatch.setattr(hookenv, "storage_get", fails)
    charm.hook("update-status")
    assert len(charm.applied) == applied
    assert charm.status == (
        "blocked",
        "Cannot read storage registry-data: storage-get failed; the registry is left as it is.",
    )


def test_a_volume_detaching_under_an_invalid_config_still_stops_the_registry(
    charm, monkeypatch, tmp_path
):
    from charms.layer.docker_registry.host import container

    volume = Volume(monkeypatch, tmp_path)
    volume.attached = ["registry-data/0"]
    charm.hook("registry-data-storage-attached")
    charm.config["registry-port"] = 0  # refused: the last good registry serves on
    running = ours_running()
    stopped = []
    monkeypatch.setattr(container, "inspect", lambda name: running)
    monkeypatch.setattr(container, "stop", lambda name: stopped.append(name))
    monkeypatch.setenv("JUJU_STORAGE_ID", "registry-data/0")
    charm.hook("registry-data-storage-detaching")
    assert stopped == ["registry-docker-registry-0"]
    assert charm.status[0] == "blocked"
    assert "Invalid charm config: registry-port" in charm.status[1]
    assert "Storage detached (registry-data/0)" in charm.status[1]


def test_a_charm_upgrade_is_a_change_the_units_take_in_turns(charm, tmp_path):
    # GIVEN two units behind haproxy serving the same config, with this charm build
    (tmp_path / ".build.manifest").write_text('{"signatures": {"a": "1"}}')
    peer, serving = _two_units_behind_haproxy(charm)
    # WHEN the charm is upgraded (another build) and /1 has not applied it yet
    (tmp_path / ".build.manifest").write_text('{"signatures": {"a": "2"}}')
    charm.hook("upgrade-charm")
    # THEN /0 waits for /1, with the new build's token
    assert charm.applied[-1][1]["hold"]
    assert charm.status[0] == "waiting"
    assert charm.local[peer]["rolling-token"] not in ("", serving)
