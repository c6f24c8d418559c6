"""The charm's workload functions (render -> files -> container -> probe) against a real Docker
engine and the registry image built offline from Debian's docker-registry binary."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import auth, container, paths, workload
from charms.layer.docker_registry.pipeline import layout, render, runspec
from tests.support import certs
from tests.support.config import charm_defaults
from tests.support.images import ensure_engine, make_test_image, registry_image_ref
from tests.support.net import free_port, get_status

PASSWORD = "Int3gration-Secret!"


@pytest.fixture(scope="module")
def engine():
    ensure_engine()
    assert container.image_id(registry_image_ref()), "run `make image` first"


@pytest.fixture
def unit(engine, tmp_path):
    """A sandboxed unit on 127.0.0.1 with its own container name; removed afterwards."""
    host = paths.Host(sandbox=str(tmp_path / "root"), unit_name=f"it-{uuid.uuid4().hex[:8]}/0")
    defaults = charm_defaults()
    state = {"managed": []}

    def apply(overrides=None, tls=None, tweak=None, image_id=None):
        config = defaults | {
            "registry-image": registry_image_ref(),
            "registry-port": state.setdefault("port", free_port()),
        }
        s = settings.parse(config | (overrides or {}))
        htpasswd = ""
        if s.basic_auth:
            htpasswd = auth.htpasswd_line(
                s.basic_auth.user, s.basic_auth.password, host.path(layout.HTPASSWD_FILE)
            )
        desired = render.desired(
            s,
            host=state.get("host", host),
            unit_address="127.0.0.1",
            tls=tls,
            http_secret="it-secret",
            htpasswd=htpasswd,
            realm="docker-registry",
        )
        desired = tweak(desired) if tweak else desired
        outcome, state["managed"] = workload.apply(
            desired,
            image_id=image_id or container.image_id(desired.run.image),
            host=host,
            managed_files=state["managed"],
            allow_start=state.get("allow_start", True),
            last_good=state.get("last_good"),
            failed=state.get("failed"),
            secrets=s.secret_values,
            wait=state.get("wait", workload.START_BOUND),
        )
        state["name"] = desired.run.name
        state["last_good"], state["failed"] = outcome.last_good, outcome.failed
        return outcome

    yield host, apply, state
    if "name" in state:
        subprocess.run(["docker", "rm", "-f", state["name"]], capture_output=True, check=False)


def test_create_then_noop_then_one_restart_per_change(unit):
    host, apply, state = unit
    # GIVEN a fresh unit WHEN applied THEN the container is created and answers
    first = apply()
    assert (first.action, first.answering) == ("created", True)
    before = container.inspect(state["name"])
    # WHEN nothing changed THEN nothing is touched
    assert apply().action == "unchanged"
    after = container.inspect(state["name"])
    assert (after.id, after.started_at) == (before.id, before.started_at)
    # WHEN a value changes THEN exactly one recreate, then stable again
    assert apply({"log-level": "debug"}).action == "recreated"
    assert apply({"log-level": "debug"}).action == "unchanged"
    config = host.path(runspec.CONFIG_FILE)
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert yaml.safe_load(config.read_text())["log"]["level"] == "debug"
    assert get_status(f"http://127.0.0.1:{state['port']}/v2/", timeout=5) == 200


def test_images_survive_reconfiguration(unit):
    _, apply, state = unit
    apply()
    ref = f"it-img-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, seed=ref)
    dest = f"127.0.0.1:{state['port']}/keep/me:1"
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"docker-daemon:{ref}", f"docker://{dest}"],
        check=True,
        capture_output=True,
    )
    apply({"storage-delete": True})
    tags = urllib.request.urlopen(f"http://127.0.0.1:{state['port']}/v2/keep/me/tags/list")
    assert json.load(tags)["tags"] == ["1"]
    subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)


def test_basic_auth_and_tls_from_real_certificates(unit, tmp_path):
    host, apply, state = unit
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "localhost", ["localhost", "127.0.0.1"])
    tls = render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert)
    outcome = apply({"auth-basic-password": PASSWORD}, tls)
    assert outcome.answering and outcome.probe_url.startswith("https://")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca.cert)
    url = f"https://127.0.0.1:{state['port']}/v2/"
    assert get_status(url, ca=str(ca_file), timeout=5) == 401
    assert get_status(url, user="admin", password="wrong", ca=str(ca_file), timeout=5) == 401
    assert get_status(url, user="admin", password=PASSWORD, ca=str(ca_file), timeout=5) == 200
    key = host.path("/etc/docker/registry/registry.key")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    # the same password again re-uses the hash: nothing restarts
    assert apply({"auth-basic-password": PASSWORD}, tls).action == "unchanged"
    # the password never reaches the container's arguments or environment
    inspected = subprocess.run(
        ["docker", "inspect", state["name"]], capture_output=True, text=True, check=True
    ).stdout
    assert PASSWORD not in inspected
    # auth off: htpasswd removed, anonymous access, plain http again
    outcome = apply({"auth-basic-password": ""})
    assert outcome.action == "recreated" and outcome.probe_url.startswith("http://")
    assert not host.path(layout.HTPASSWD_FILE).exists()
    assert not key.exists()
    assert get_status(f"http://127.0.0.1:{state['port']}/v2/", timeout=5) == 200


def test_operator_stop_is_respected(unit):
    _, apply, state = unit
    apply()
    container.stop(state["name"])
    state["allow_start"] = False
    assert apply().action == "stopped-by-operator"
    assert not container.inspect(state["name"]).running
    state["allow_start"] = True
    assert apply().action == "started"


def test_a_cache_whose_upstream_does_not_resolve_is_rolled_back_and_images_stay(unit):
    # GIVEN a registry serving a pushed image
    _host, apply, state = unit
    assert apply().answering
    port = state["port"]
    image = make_test_image("it/rollback:1", seed="rollback")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"docker-daemon:{image}",
            f"docker://127.0.0.1:{port}/it/rollback:1",
        ],
        check=True,
        capture_output=True,
    )
    serving = container.inspect(state["name"])
    # WHEN it becomes a pull-through cache of a host that does not resolve (registry 2.8
    # panics at start-up and restarts forever: noticed at once, not at the bound)
    outcome = apply(
        {
            "cache-remoteurl": "https://upstream.invalid",
            "cache-password": PASSWORD,
            "cache-username": "u",
        }
    )
    # THEN the last good registry is back (the very container), with its images, and the
    # cause is named
    assert outcome.action == "rolled-back" and outcome.answering
    assert container.inspect(state["name"]).id == serving.id
    assert "did not start" in outcome.problem and PASSWORD not in outcome.problem
    assert get_status(f"http://127.0.0.1:{port}/v2/it/rollback/tags/list") == 200
    # AND the same config is not tried again; another change is
    again = apply(
        {
            "cache-remoteurl": "https://upstream.invalid",
            "cache-password": PASSWORD,
            "cache-username": "u",
        }
    )
    assert again.action == "held"
    assert apply({"log-level": "debug"}).action == "recreated"


def test_the_registry_logs_json_lines_naming_its_service(unit):
    # the reference's log format, which operators parse
    _host, apply, state = unit
    assert apply().answering
    logs = subprocess.run(
        ["docker", "logs", state["name"]], capture_output=True, text=True, check=True
    )
    lines = [json.loads(line) for line in logs.stderr.splitlines() if line.startswith("{")]
    # registry 2.8 adds log.fields to its own lines; per-request lines carry http.request.*.
    # Its upload purger starts a random 0-59 minutes after start-up, so now and then within
    # this test, and logs without the fields (seen in CI): not a line of the config's making.
    own = [
        line
        for line in lines
        if "http.request.id" not in line and not line.get("msg", "").startswith("PurgeUploads")
    ]
    unnamed = [line for line in own if line.get("service") != "registry"]
    assert own and not unnamed, unnamed[:2]


def test_a_registry_name_another_program_holds_is_refused_and_its_container_left_alone(unit):
    # GIVEN a container the charm did not create, under the name registry-name gives this unit
    host, apply, _state = unit
    victim = host.container_name("registry")
    subprocess.run(
        ["docker", "create", "--name", victim, registry_image_ref()],
        check=True,
        capture_output=True,
    )
    try:
        before = container.inspect(victim)
        # WHEN the charm applies THEN it refuses, naming the option, and touches nothing
        with pytest.raises(RegistryCharmError, match=r"^registry-name: a container named"):
            apply()
        after = container.inspect(victim)
        assert (after.id, after.running) == (before.id, False)
    finally:
        subprocess.run(["docker", "rm", "-f", victim], capture_output=True, check=False)


def test_a_container_an_earlier_charm_revision_ran_is_adopted(unit):
    # GIVEN the registry as an earlier revision ran it: its config-hash label, no owner label
    _host, apply, state = unit
    first = apply()
    subprocess.run(["docker", "rm", "-f", state["name"]], check=True, capture_output=True)
    subprocess.run(["docker", *first.run.argv()], check=True, capture_output=True)
    assert container.OWNER_LABEL not in container.inspect(state["name"]).labels
    # WHEN the upgraded charm applies a new config THEN it replaces its own container
    assert apply({"log-level": "debug"}).action == "recreated"
    assert container.OWNER_LABEL in container.inspect(state["name"]).labels


# The debug listener's documented exposure (README, "Exposure"): this machine's loopback only
# (the unit in these tests is at 127.0.0.1). The one place to change should that promise change.
def debug_listener_answers_on(unit_address: str) -> set[str]:
    return {"127.0.0.1"}


class ProductionBinding(paths.Host):
    """A sandboxed unit whose ports are published as in production (the sandbox publishes every
    port on the unit's address, as the local model's units share one host)."""

    def publish_address(self, unit_address: str) -> str:
        return ""


def host_addresses() -> set[str]:
    """Every IPv4 address of this host (loopback, the docker bridge gateway, the NICs)."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True)
    words = out.stdout.split()
    return {words[i + 1].split("/")[0] for i, w in enumerate(words) if w == "inet"}


def connects(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=5):
        return True
    return False


def test_the_debug_listener_is_unreachable_on_other_addresses(unit):
    host, apply, state = unit
    # GIVEN a unit at 127.0.0.1 with its metrics on, its ports published as in production
    state["host"] = ProductionBinding(sandbox=host.sandbox, unit_name=host.unit_name)
    debug_port = free_port()
    outcome = apply({"prometheus-metrics": True, "debug-port": debug_port})
    assert outcome.answering
    expected = debug_listener_answers_on("127.0.0.1")
    others = host_addresses() - expected
    assert others, "this host has no address but the unit's"
    # THEN the metrics answer on the unit's address ...
    for address in expected:
        assert get_status(f"http://{address}:{debug_port}/metrics", timeout=5) == 200
    # ... and nothing listens on the debug port anywhere else, while the registry port does
    assert {a for a in others if connects(a, debug_port)} == set()
    assert {a for a in others if not connects(a, state["port"])} == set()


def test_custom_tls_paths_are_what_the_container_serves_tls_from(unit, tmp_path):
    host, apply, state = unit
    # GIVEN TLS from real certificates, kept at tls-*-path values of the operator's choosing
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "localhost", ["localhost", "127.0.0.1"])
    tls = render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert)
    custom = {
        "tls-cert-path": "/etc/docker-registry/site.crt",
        "tls-key-path": "/etc/docker-registry/site.key",
        "tls-ca-path": "/etc/docker/registry/site-ca.crt",
    }
    # WHEN applied
    outcome = apply(custom, tls)
    # THEN the registry container serves TLS with that certificate, verified against the CA
    assert outcome.answering and outcome.probe_url.startswith("https://")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca.cert)
    assert get_status(f"https://127.0.0.1:{state['port']}/v2/", ca=str(ca_file), timeout=5) == 200
    # AND the files are at those paths on the host and in the container, not at the defaults
    assert host.path(custom["tls-cert-path"]).read_text() == server.cert
    assert oct(host.path(custom["tls-key-path"]).stat().st_mode & 0o777) == "0o600"
    assert not host.path("/etc/docker/registry/registry.crt").exists()
    mounts = json.loads(
        subprocess.run(
            ["docker", "inspect", "--format", "{{json .Mounts}}", state["name"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    targets = {m["Destination"] for m in mounts}
    assert {custom["tls-cert-path"], custom["tls-key-path"]} <= targets
    config = yaml.safe_load(host.path(runspec.CONFIG_FILE).read_text())
    assert config["http"]["tls"]["certificate"] == custom["tls-cert-path"]
    assert config["http"]["tls"]["key"] == custom["tls-key-path"]


# ------------------------------------------------ docker refusing the new config's container


def _with_run(desired, **changes):
    return dataclasses.replace(desired, run=dataclasses.replace(desired.run, **changes))


def _serving_unit(apply, state):
    """A registry serving a pushed image: (its container, the image's tags URL)."""
    assert apply().answering
    image = make_test_image("it/refused:1", seed="refused")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"docker-daemon:{image}",
            f"docker://127.0.0.1:{state['port']}/it/refused:1",
        ],
        check=True,
        capture_output=True,
    )
    return container.inspect(
        state["name"]
    ), f"http://127.0.0.1:{state['port']}/v2/it/refused/tags/list"


def _assert_the_same_registry_serves(state, serving, tags_url):
    back = container.inspect(state["name"])
    assert back.id == serving.id and back.running
    assert not container.inspect(workload.aside_name(state["name"]))
    assert get_status(tags_url, timeout=5) == 200


def test_a_mount_docker_refuses_brings_the_last_good_registry_back(unit):
    # GIVEN a serving registry
    host, apply, state = unit
    serving, tags = _serving_unit(apply, state)
    # WHEN docker refuses the new container's volume spec (a ':' in a mounted path, which the
    # config check refuses before docker is asked: here it is forced through)
    source = str(host.path("/etc/docker/registry/config.yml"))
    outcome = apply(
        {"log-level": "debug"},
        tweak=lambda d: _with_run(d, mounts=(*d.run.mounts, (source, "/etc/a:b.crt"))),
    )
    # THEN the very container that served serves again, and the tls-*-path options are named
    assert (outcome.action, outcome.answering) == ("rolled-back", True)
    assert outcome.problem.startswith("docker refused to mount a file (tls-ca-path")
    _assert_the_same_registry_serves(state, serving, tags)


def test_a_port_taken_while_the_registry_restarts_brings_it_back(unit, monkeypatch):
    # GIVEN a serving registry
    _host, apply, state = unit
    serving, tags = _serving_unit(apply, state)
    # WHEN another program takes the registry's port the moment the old container stops
    taken = socket.socket()
    real_stop = container.stop

    def stop_and_lose_the_port(name, timeout=10):
        real_stop(name, timeout)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", state["port"]))
        taken.listen()

    monkeypatch.setattr(container, "stop", stop_and_lose_the_port)
    with taken:
        outcome = apply({"log-level": "debug"})
        # THEN the option is named, with no address; while the port is held nothing can
        # serve on it, and the status says so
        assert (outcome.action, outcome.answering) == ("rolled-back", False)
        assert outcome.problem.startswith("registry-port: a port")
        assert "the last good registry did not start again" in outcome.problem
        assert "127.0.0.1" not in outcome.problem
        assert outcome.failed == {}  # the cause may pass: the next hook tries again
    monkeypatch.setattr(container, "stop", real_stop)
    # WHEN the port is free again THEN the next hook applies the new config
    outcome = apply({"log-level": "debug"})
    assert (outcome.action, outcome.answering) == ("recreated", True)
    assert get_status(tags, timeout=5) == 200
    assert serving.id != container.inspect(state["name"]).id


def test_an_image_gone_under_the_charm_brings_the_last_good_registry_back(unit):
    # GIVEN a serving registry
    _host, apply, state = unit
    serving, tags = _serving_unit(apply, state)
    # WHEN the image the new config names is not there when docker runs it (the loopback
    # registry docker then asks refuses the connection at once)
    outcome = apply(
        {"log-level": "debug", "registry-image": "127.0.0.1:9/gone/registry:2"},
        image_id=serving.image_id,
    )
    # THEN the container set aside serves again (it needs no tag) and the option is named
    assert (outcome.action, outcome.answering) == ("rolled-back", True)
    assert (
        outcome.problem == "registry-image: 127.0.0.1:9/gone/registry:2 is no longer on this host"
    )
    _assert_the_same_registry_serves(state, serving, tags)
