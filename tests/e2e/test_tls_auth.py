"""End to end: TLS from a CA (the real easyrsa charm; a fault-injection fake for
rotation and a broken CA) or from config, basic auth, and the
docker-registry relation, proven with real clients (docker CLI, skopeo, urllib) against the
built charm's real hooks, driven through jubilant. Tests run in order, like an operator's
session.

Local model only: the registry's clients (containerd, nrpe) and the faulty CA are the local
model's fakes, whose workload (a docker client, the checks nrpe would run) is on the test host.
Files on the unit are read through `juju exec`."""

from __future__ import annotations

import base64
import json
import secrets
import shlex
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import jubilant
import pytest
import yaml

from tests.support import certs
from tests.support.execspy import exec_spy
from tests.support.images import make_test_image
from tests.support.net import free_port, get_status
from tests.support.s3 import docker_bridge_gateway, moto_s3

APP = "docker-registry"
UNIT = f"{APP}/0"
NETLOC = "127.0.0.2:5000"
PASSWORD = "e2e-" + secrets.token_urlsafe(12)
NEW_PASSWORD = "e2e-new-" + secrets.token_urlsafe(12)
SECRETS_SEEN: list[str] = [PASSWORD, NEW_PASSWORD]
READY_HTTP, READY_HTTPS = f"Ready at {NETLOC} (http).", f"Ready at {NETLOC} (https)."

pytestmark = pytest.mark.local_only(
    "the registry's clients and the faulty CA are the local model's fakes, on the test host"
)


def unit_status(juju: jubilant.Juju, unit=UNIT) -> jubilant.statustypes.StatusInfo:
    return juju.status().get_units(unit.split("/")[0])[unit].workload_status


def client_dir(juju: jubilant.Juju) -> Path:
    """Where the containerd fake keeps its docker client (the local model's directory)."""
    assert juju.model is not None
    return Path(juju.model) / "clients" / NETLOC


def on_unit(path: str) -> str:
    """``path`` as the charm wrote it on the unit, for a shell command run by `juju exec`."""
    return f'"${{DOCKER_REGISTRY_SANDBOX:-}}"{shlex.quote(path)}'


def exists_on_unit(juju: jubilant.Juju, path: str) -> bool:
    test = f"test -e {on_unit(path)} && echo yes || true"
    return juju.exec(test, unit=UNIT).stdout == "yes\n"


def client_data(juju: jubilant.Juju) -> dict:
    return json.loads((client_dir(juju) / "registry.json").read_text())


def docker_cli(juju: jubilant.Juju, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "--config", str(client_dir(juju) / "docker"), *args],
        capture_output=True,
        text=True,
    )


def served_cert_serial(host="127.0.0.2", port=5000) -> int:
    from cryptography import x509

    pem = ssl.get_server_certificate((host, port))
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def dockerd_identity() -> list[tuple[int, str]]:
    """Each running dockerd: its PID and start time (clock ticks since boot), so a restart that
    happened to reuse the PID still shows."""
    pids = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout
    return [
        (int(pid), Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        for pid in pids.split()
    ]


@pytest.fixture(scope="module", autouse=True)
def dockerd_before() -> list[tuple[int, str]]:
    """The engine as it was before the module's first hook (autouse: taken before `session`)."""
    identity = dockerd_identity()
    assert identity, "no dockerd running"
    return identity


@pytest.fixture(scope="module")
def session(juju, charm_dir, registry_image_tar, helpers):
    helpers.deploy_registry(
        juju, charm_dir, registry_image_tar, APP, {"auth-basic-password": PASSWORD}
    )
    helpers.deploy_ca(juju)
    juju.deploy("fake:containerd", "containerd")
    helpers.wait_for_unit(juju, UNIT, "active", READY_HTTP)
    ref = f"e2e-tls-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref, seed=ref)
    yield juju, ref
    subprocess.run(["docker", "rmi", ref, f"{NETLOC}/e2e/tls:1"], capture_output=True)


def test_client_gets_http_data_and_logs_in(session, helpers):
    model, _ = session
    model.integrate(APP, "containerd")
    assert unit_status(model, "containerd/0").message == f"Logged in to {NETLOC}."
    data = client_data(model)
    assert data["registry_url"] == f"http://{NETLOC}" and data["tls_ca"] is None
    assert data["basic_user"] == "admin"
    url = f"http://{NETLOC}/v2/"
    assert get_status(url) == 401
    assert get_status(url, user="admin", password="wrong") == 401
    assert get_status(url, user="admin", password=PASSWORD) == 200
    # the unit's own docker treats the plain-http registry as insecure
    daemon = json.loads(helpers.unit_file(model, UNIT, "/etc/docker/daemon.json"))
    assert daemon["insecure-registries"] == [NETLOC]


def test_https_from_the_ca_relation_with_a_real_docker_client(session, helpers):
    model, ref = session
    mark = len(helpers.hooks_ran(model))
    model.integrate(f"{APP}:cert-provider", "easyrsa:client")
    # the hooks Juju fires for the relation are enough: https in the hook the cert arrives
    hooks = helpers.hooks_ran(model)[mark:]
    assert hooks and not [h for h in hooks if "update-status" in h], hooks
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    print(f"integrate easyrsa -> Ready (https): {len(hooks)} hooks, all relation hooks")
    data = client_data(model)
    ca_file = client_dir(model) / "ca.crt"
    assert data["registry_url"] == f"https://{NETLOC}"
    assert ca_file.read_text() == data["tls_ca"]
    assert "BEGIN CERTIFICATE" in data["tls_ca"]
    # the published CA verifies the served certificate: anonymous 401, wrong 401, right 200
    url = f"https://{NETLOC}/v2/"
    assert get_status(url, ca=str(ca_file)) == 401
    assert get_status(url, user="admin", password="nope", ca=str(ca_file)) == 401
    assert get_status(url, user="admin", password=PASSWORD, ca=str(ca_file)) == 200
    # a real docker client (logged in by the client fake, password on stdin) pushes and pulls
    assert unit_status(model, "containerd/0").message == f"Logged in to {NETLOC}."
    target = f"{NETLOC}/e2e/tls:1"
    subprocess.run(["docker", "tag", ref, target], check=True)
    push = docker_cli(model, "push", target)
    assert push.returncode == 0, push.stderr
    subprocess.run(["docker", "rmi", target], capture_output=True)
    pull = docker_cli(model, "pull", target)
    assert pull.returncode == 0, pull.stderr
    # skopeo verifies TLS strictly with only the published CA
    inspect = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--cert-dir",
            str(client_dir(model)),
            "--authfile",
            str(client_dir(model) / "docker" / "config.json"),
            f"docker://{target}",
        ],
        capture_output=True,
        text=True,
    )
    assert inspect.returncode == 0, inspect.stderr
    # the unit's own docker trusts the registry through certs.d, not insecure-registries
    ca_on_unit = helpers.unit_file(model, UNIT, f"/etc/docker/certs.d/{NETLOC}/ca.crt")
    assert ca_on_unit == data["tls_ca"]
    assert json.loads(helpers.unit_file(model, UNIT, "/etc/docker/daemon.json")) == {}
    key = "/etc/docker/registry/registry.key"
    assert model.exec(f"stat -c %a {on_unit(key)}", unit=UNIT).stdout == "600\n"
    key_text = helpers.unit_file(model, UNIT, key)
    SECRETS_SEEN.append(key_text.split("-----")[2].strip().splitlines()[1])


def run_nrpe_check(juju: jubilant.Juju, helpers) -> tuple[int, str, str]:
    """Run the check on the unit exactly as nrpe would, from the command the charm wrote."""
    cfg = helpers.unit_file(juju, UNIT, "/etc/nagios/nrpe.d/check_docker_registry.cfg")
    command = next(line for line in cfg.splitlines() if line.startswith("command["))
    argv = shlex.split(command.split("=", 1)[1])
    try:
        task = juju.exec(f"{on_unit(argv[0])} {shlex.join(argv[1:])}", unit=UNIT)
    except jubilant.TaskError as exc:
        task = exc.task
    return task.return_code, task.stdout, command


def test_nrpe_check_works_over_tls_with_auth(session, helpers):
    model, _ = session
    model.deploy("fake:nrpe", "nrpe")
    model.integrate(f"{APP}:nrpe-external-master", "nrpe:nrpe-external-master")
    assert model.model is not None
    checks = json.loads((Path(model.model) / "fakes" / "nrpe" / "checks.json").read_text())
    assert checks == {f"{UNIT}:docker_registry": {"command": "check_docker_registry"}}
    rc, out, command = run_nrpe_check(model, helpers)
    assert "--url https://127.0.0.2:5000" in command and "--ca-file" in command
    assert rc == 0 and "answered 200" in out, out  # logged in with the charm's credentials
    assert "--credentials-file" in command and PASSWORD not in command


def test_certificate_rotation_reaches_the_registry(session, helpers):
    # the real easyrsa reissues only when the SANs change: rotation and a broken CA come from
    # the fault-injection fake, related instead of easyrsa for this test and the next
    model, _ = session
    model.remove_relation(f"{APP}:cert-provider", "easyrsa:client")
    model.deploy("fake:faulty-easyrsa", "faulty-ca")
    model.integrate(f"{APP}:cert-provider", "faulty-ca:client")
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    before = served_cert_serial()
    model.config("faulty-ca", {"generation": 1})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    assert served_cert_serial() != before
    ca_file = client_dir(model) / "ca.crt"
    assert (
        get_status(f"https://{NETLOC}/v2/", user="admin", password=PASSWORD, ca=str(ca_file))
        == 200
    )


def test_a_broken_certificate_from_the_ca_blocks_and_keeps_serving(session, helpers):
    model, _ = session
    before = served_cert_serial()
    # the CA answers with a key that is not the certificate's: the registry could not start
    model.config("faulty-ca", {"mismatched-key": True})
    helpers.wait_for_unit(
        model,
        UNIT,
        "blocked",
        "cert-provider sent an unusable server certificate: "
        "the key does not match the certificate.",
    )
    # the running registry keeps its last good certificate and keeps serving
    assert served_cert_serial() == before
    ca = str(client_dir(model) / "ca.crt")
    assert get_status(f"https://{NETLOC}/v2/", user="admin", password=PASSWORD, ca=ca) == 200
    model.config("faulty-ca", {"mismatched-key": False})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    assert served_cert_serial() == before
    # back to the real easyrsa (the same CA and certificate as before the fake)
    model.remove_relation(f"{APP}:cert-provider", "faulty-ca:client")
    model.integrate(f"{APP}:cert-provider", "easyrsa:client")
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)


def test_mutual_tls_is_opt_in(session, helpers, tmp_path):
    model, _ = session
    ca = str(client_dir(model) / "ca.crt")
    url = f"https://{NETLOC}/v2/"
    model.config(APP, {"tls-client-auth": True})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    # a client without a certificate is turned away during the handshake
    with pytest.raises(OSError):  # ssl.SSLError or URLError, by TLS version
        urllib.request.urlopen(url, timeout=10, context=ssl.create_default_context(cafile=ca))
    # one with a certificate from the same CA (easyrsa's client certificate) gets in
    cert, key = helpers.easyrsa_client_pair_of(model, UNIT)
    (tmp_path / "client.crt").write_text(cert)
    (tmp_path / "client.key").write_text(key)
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(tmp_path / "client.crt", tmp_path / "client.key")
    request = urllib.request.Request(url)
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10, context=context) as resp:
        assert resp.status == 200
    # the unit's own tools present that client certificate too: push (skopeo), images (the
    # registry API) and the nrpe check all pass the handshake
    ref = f"e2e-mtls-{uuid.uuid4().hex[:6]}:1"
    make_test_image(ref)
    try:
        model.run(UNIT, "push", {"image": ref, "pull": False})
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)
    listed = model.run(UNIT, "images", {"repository": ref.split(":")[0]})
    assert ref.split(":")[0] in json.dumps(listed.results)
    rc, out, command = run_nrpe_check(model, helpers)
    assert "--client-cert" in command and rc == 0, out
    model.config(APP, {"tls-client-auth": False})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    assert get_status(url, user="admin", password=PASSWORD, ca=ca) == 200


def test_password_change_reaches_clients(session, helpers):
    model, _ = session
    model.config(APP, {"auth-basic-password": NEW_PASSWORD})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    ca = str(client_dir(model) / "ca.crt")
    assert get_status(f"https://{NETLOC}/v2/", user="admin", password=PASSWORD, ca=ca) == 401
    assert get_status(f"https://{NETLOC}/v2/", user="admin", password=NEW_PASSWORD, ca=ca) == 200
    assert unit_status(model, "containerd/0").message == f"Logged in to {NETLOC}."
    assert docker_cli(model, "pull", f"{NETLOC}/e2e/tls:1").returncode == 0


def test_tls_by_config_wins_over_the_relation(session, helpers, tmp_path):
    model, _ = session
    ca, ca_key, ca_cert = certs.make_ca("blob-ca")
    server = certs.make_server_cert(ca_key, ca_cert, "127.0.0.2", ["127.0.0.2"])
    model.config(
        APP,
        {
            "tls-ca-blob": base64.b64encode(ca.cert.encode()).decode(),
            "tls-cert-blob": base64.b64encode(server.cert.encode()).decode(),
            "tls-key-blob": base64.b64encode(server.key.encode()).decode(),
        },
    )
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    SECRETS_SEEN.append(server.key.split("-----")[2].strip().splitlines()[1])
    assert client_data(model)["tls_ca"] == ca.cert  # clients get the blob CA
    (tmp_path / "ca.crt").write_text(ca.cert)
    assert (
        get_status(
            f"https://{NETLOC}/v2/",
            user="admin",
            password=NEW_PASSWORD,
            ca=str(tmp_path / "ca.crt"),
        )
        == 200
    )
    # without the blobs the relation's certificate is used again
    model.config(APP, reset=["tls-ca-blob", "tls-cert-blob", "tls-key-blob"])
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)
    assert client_data(model)["tls_ca"] != ca.cert


def test_invalid_blob_blocks_without_echo_and_keeps_serving(session, helpers):
    model, _ = session
    model.config(APP, {"tls-cert-blob": "bm90IGEgY2VydA==", "tls-key-blob": "%%%"})
    status = helpers.wait_for_unit(model, UNIT, "blocked").workload_status
    assert "tls-key-blob: is not valid base64" in status.message
    assert "tls-cert-blob: does not decode to PEM data" in status.message
    ca = str(client_dir(model) / "ca.crt")
    assert get_status(f"https://{NETLOC}/v2/", user="admin", password=NEW_PASSWORD, ca=ca) == 200
    model.config(APP, reset=["tls-cert-blob", "tls-key-blob"])
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTPS)


def test_losing_the_ca_under_basic_auth_keeps_https_until_the_operator_turns_auth_off(
    session, helpers
):
    # GIVEN https with basic auth WHEN the CA goes away THEN the unit blocks saying what to do,
    # and the registry and its clients stay on https: no password is ever sent in clear
    model, _ = session
    model.remove_relation(f"{APP}:cert-provider", "easyrsa:client")
    status = helpers.wait_for_unit(model, UNIT, "blocked").workload_status
    assert status.message.startswith("TLS is gone while auth-basic-password is set")
    data = client_data(model)
    assert data["registry_url"] == f"https://{NETLOC}" and data["tls_ca"]
    ca = str(client_dir(model) / "ca.crt")
    assert get_status(f"https://{NETLOC}/v2/", user="admin", password=NEW_PASSWORD, ca=ca) == 200
    # WHEN the operator turns auth off THEN plain http is served and told, without credentials
    model.config(APP, {"auth-basic-password": ""})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTP)
    data = client_data(model)
    assert data["registry_url"] == f"http://{NETLOC}" and data["tls_ca"] is None
    assert data["basic_user"] is None
    assert not exists_on_unit(model, "/etc/docker/registry/registry.key")
    assert not exists_on_unit(model, f"/etc/docker/certs.d/{NETLOC}")
    assert get_status(f"http://{NETLOC}/v2/") == 200
    rc, out, command = run_nrpe_check(model, helpers)
    assert "--url http://127.0.0.2:5000" in command and rc == 0, out


def test_auth_off_removes_the_htpasswd_file(session, helpers):
    model, _ = session
    model.config(APP, {"auth-basic-password": ""})
    helpers.wait_for_unit(model, UNIT, "active", READY_HTTP)
    assert get_status(f"http://{NETLOC}/v2/") == 200
    assert not exists_on_unit(model, "/etc/docker/registry/htpasswd")
    assert client_data(model)["basic_user"] is None


def config_from_file(juju: jubilant.Juju, tmp_path: Path, values: dict) -> None:
    """`juju config --file`, as an operator passes secrets: never on a command line."""
    path = tmp_path / f"config-{uuid.uuid4().hex[:6]}.yaml"
    path.touch(mode=0o600)
    path.write_text(json.dumps({APP: values}))
    juju.cli("config", APP, "--file", str(path))


def test_no_secret_anywhere(session, helpers, tmp_path, upstream_registry):
    """Secrets audit: the basic-auth password, the S3 secret key, the Swift password, the cache
    password, the egress proxy's password and the registry's http secret never appear in a
    process's arguments or environment (every program the hooks and actions start, recorded
    as the kernel runs it), in the registry container's arguments or environment, nor in the
    model's logs, status history, hook-tool audit trail or action output."""
    model, _ = session
    gateway = docker_bridge_gateway()
    upstream = upstream_registry("e2e-tls-up", [], loopback=False)
    s3_secret, swift_password, cache_password, proxy_password = (
        f"e2e-{name}-{secrets.token_hex(8)}" for name in ("s3", "swift", "cache", "proxy")
    )
    storage_and_cache = ["cache-remoteurl", "cache-username", "cache-password"]
    # an https egress proxy with credentials (S3 and the upstream are http: it is not asked)
    storage_and_cache.append("registry-https-proxy")
    https_proxy = f"http://e2e:{proxy_password}@{gateway}:{free_port(gateway)}"
    with moto_s3(host=gateway, secret_key=s3_secret) as s3:
        s3.create_bucket("e2e-secrets")
        storage_and_cache += list(s3.charm_options("e2e-secrets"))
        with exec_spy(model) as spied:
            # S3 storage and a pull-through cache with credentials, the password again
            config_from_file(
                model,
                tmp_path,
                {
                    "auth-basic-password": PASSWORD,
                    **s3.charm_options("e2e-secrets"),
                    "cache-remoteurl": f"http://{upstream.gateway_netloc}",
                    "cache-username": "e2e",
                    "cache-password": cache_password,
                    "registry-https-proxy": https_proxy,
                },
            )
            helpers.wait_for_unit(model, UNIT, "active")
            # the registry lists its repositories from S3: signed with the secret key
            catalog = f"http://{NETLOC}/v2/_catalog"
            assert get_status(catalog, user="admin", password=PASSWORD) == 200, s3.log_tail()
            helpers.fire_update_status(model, UNIT)
            model.run(UNIT, "stop", {"remove": False})
            model.run(UNIT, "start")
            # Swift (which wins over S3) behind an address that refuses: the registry cannot
            # start on it and the charm keeps the last good one
            swift = {
                "storage-swift-authurl": f"http://{gateway}:{free_port(gateway)}/v3",
                "storage-swift-username": "e2e",
                "storage-swift-password": swift_password,
                "storage-swift-container": "e2e",
            }
            config_from_file(model, tmp_path, swift)
            model.config(APP, reset=list(swift))
            helpers.wait_for_unit(model, UNIT, "active")
        name = f"registry-{APP}-0"
        container = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config}} {{json .Args}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
        rendered = yaml.safe_load(
            helpers.unit_file(model, UNIT, "/etc/docker/registry/config.yml") or "{}"
        )
        # the registry really ran on S3 and the cache, with their secrets (in its 0600 file)
        assert rendered["storage"]["s3"]["secretkey"] == s3_secret
        assert rendered["proxy"]["password"] == cache_password
        env = helpers.unit_file(model, UNIT, "/etc/docker/registry/registry.env") or ""
        assert f"HTTPS_PROXY={https_proxy}" in env.splitlines()
        model.config(APP, reset=storage_and_cache)
        helpers.wait_for_unit(model, UNIT, "active", READY_HTTP)
    http_secret = rendered["http"]["secret"]
    assert model.model is not None
    root = Path(model.model)
    audit = [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]
    haystacks = {
        "argv and environment of every process": spied[0],
        "the registry container's arguments and environment": container,
        "the registry's log": logs.stdout + logs.stderr,
        "debug.log": (root / "debug.log").read_text(),
        "audit.jsonl": json.dumps(audit),
        "status-history.jsonl": (root / "status-history.jsonl").read_text(),
        "actions": "\n".join(p.read_text() for p in (root / "actions").glob("*.json")),
    }
    assert {"config-get", "status-set"} <= {r["tool"] for r in audit}  # it records hook tools
    assert "execve(" in spied[0] and '"config-get"' in spied[0]  # the spy saw the hooks
    for where, text in haystacks.items():
        for secret in [*SECRETS_SEEN, s3_secret, swift_password, cache_password, proxy_password]:
            assert secret not in text, f"a secret leaked into {where}"
    # the http secret too: it is shared in a Juju secret, leader data holds only its URI
    assert "http-secret-id" in json.dumps([r for r in audit if r.get("tool") == "leader-set"])
    for where, text in haystacks.items():
        assert http_secret not in text, f"the http secret leaked into {where}"


def test_the_docker_daemon_was_never_restarted(session, dockerd_before):
    """The hooks above changed the unit's trust in its registry back and forth: daemon.json's
    insecure-registries (install over http, emptied for https, set again when the CA went) and
    certs.d (the CA relation, the config's TLS). Each change reloads dockerd (SIGHUP); none may
    restart it: the same dockerd process runs now as before the first hook."""
    assert dockerd_identity() == dockerd_before
