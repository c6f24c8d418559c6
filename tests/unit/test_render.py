"""render: the real template against checked-in golden files, and the container's run arguments."""

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import paths
from charms.layer.docker_registry.pipeline import render, runspec
from tests.support import certs

GOLDEN = Path(__file__).parent / "golden"
SECRET = 'p@ss: "word" {x}\n#not-a-comment'  # hostile to YAML on purpose


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


TOKEN_CA = "-----BEGIN CERTIFICATE-----\nMIIBfakefakefake\n-----END CERTIFICATE-----\n"
TLS = render.TlsMaterial(cert="CERT-PEM\n", key="KEY-PEM\n", ca="CA-PEM\n", source="relation")

CASES = {
    "default": ({}, None),
    "basic-tls": ({"auth-basic-password": "pw", "http-host": "https://reg.example.com/"}, TLS),
    "basic-tls-clientauth-custom-paths": (
        {
            "auth-basic-password": "pw",
            "tls-client-auth": True,
            "tls-ca-path": "/etc/docker-registry/ca.pem",
            "tls-cert-path": "/etc/docker-registry/server.pem",
            "tls-key-path": "/etc/docker-registry/server.key",
        },
        TLS,
    ),
    "token-metrics-readonly": (
        {
            "auth-token-realm": "https://auth.example.com/token",
            "auth-token-service": "registry",
            "auth-token-issuer": "issuer",
            "auth-token-root-certs": b64(TOKEN_CA),
            "prometheus-metrics": True,
            "storage-read-only": True,
            "storage-delete": True,
            "storage-cache": "disabled",
            "log-level": "DEBUG",
        },
        None,
    ),
    "s3-full": (
        {
            "storage-s3-region": "us-east-1",
            "storage-s3-bucket": "images",
            "storage-s3-accesskey": "AKIAEXAMPLE",
            "storage-s3-secretkey": "secret/key+value",
            "storage-s3-regionendpoint": "http://127.0.0.1:9000",
            "storage-s3-forcepathstyle": True,
            "storage-s3-encrypt": True,
            "storage-s3-keyid": "kms-key",
            "storage-s3-secure": False,
            "storage-s3-skip-verify": True,
            "storage-s3-skip-v4-auth": True,
            "storage-s3-chunksize": 5242880,
            "storage-s3-multipartcopychunksize": 5242880,
            "storage-s3-multipartcopymaxconcurrency": 4,
            "storage-s3-multipartcopythresholdsize": 0,
            "storage-s3-rootdirectory": "/registry",
            "storage-s3-storageclass": "REDUCED_REDUNDANCY",
            "storage-s3-useragent": "charm",
            "storage-s3-usedualstack": True,
            "storage-s3-accelerate": True,
            "storage-s3-objectacl": "bucket-owner-full-control",
            "storage-s3-loglevel": "debug",
            "storage-redirect-disable": False,
        },
        None,
    ),
    "s3-minimal-aws": ({"storage-s3-region": "eu-west-1", "storage-s3-bucket": "b"}, None),
    "swift": (
        {
            "storage-swift-authurl": "https://keystone.example.com/v3",
            "storage-swift-username": "user",
            "storage-swift-password": "pass",
            "storage-swift-container": "images",
            "storage-swift-region": "RegionOne",
            "storage-swift-tenant": "project",
            "storage-swift-domain": "Default",
        },
        None,
    ),
    "swift-no-domain": (
        {
            "storage-swift-authurl": "https://keystone.example.com/v2.0",
            "storage-swift-username": "user",
            "storage-swift-password": "pass",
        },
        None,
    ),
    "cache-proxy-env": (
        {
            "cache-remoteurl": "https://upstream.example.com",
            "cache-username": "u",
            "cache-password": "p",
            "registry-http-proxy": "http://proxy:3128",
        },
        None,
    ),
}


PRODUCTION = paths.Host()


def build(config, overrides, tls=None, host=PRODUCTION, secret="the-http-secret"):
    s = settings.parse(config | overrides)
    return render.desired(
        s,
        host=host,
        unit_address="10.1.2.3",
        tls=tls,
        http_secret=secret,
        htpasswd="admin:$2y$05$hash\n" if s.basic_auth else "",
        realm="docker-registry",
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_config_matches_golden(config, case):
    overrides, tls = CASES[case]
    rendered = build(config, overrides, tls).config_yaml
    golden = GOLDEN / f"{case}.yml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert rendered == golden.read_text()
    assert yaml.safe_load(rendered)["version"] == "0.1"


def test_hostile_values_stay_values(config):
    d = build(
        config,
        {"auth-basic-password": "x", "cache-remoteurl": "https://u.example/"},
        secret=SECRET,
    )
    parsed = yaml.safe_load(d.config_yaml)
    assert parsed["http"]["secret"] == SECRET
    assert parsed["auth"]["htpasswd"] == {
        "realm": "docker-registry",
        "path": "/etc/docker/registry/htpasswd",
    }


def test_s3_values_keep_their_types(config):
    parsed = yaml.safe_load(build(config, CASES["s3-full"][0]).config_yaml)
    s3 = parsed["storage"]["s3"]
    assert s3["chunksize"] == 5242880 and s3["secure"] is False and s3["v4auth"] is False
    assert s3["objectacl"] == "bucket-owner-full-control" and s3["skipverify"] is True
    assert "filesystem" not in parsed["storage"]


def test_client_cas_only_when_asked(config):
    no = yaml.safe_load(build(config, CASES["basic-tls"][0], TLS).config_yaml)
    assert "clientcas" not in no["http"]["tls"]
    yes = yaml.safe_load(
        build(config, CASES["basic-tls-clientauth-custom-paths"][0], TLS).config_yaml
    )
    assert yes["http"]["tls"]["clientcas"] == ["/etc/docker-registry/ca.pem"]


def test_files_modes_and_mounts_follow_custom_tls_paths(config):
    d = build(config, CASES["basic-tls-clientauth-custom-paths"][0], TLS)
    modes = {f.path: f.mode for f in d.files}
    assert modes == {
        "/etc/docker/registry/config.yml": 0o600,
        "/etc/docker/registry/htpasswd": 0o600,
        "/etc/docker-registry/server.pem": 0o644,
        "/etc/docker-registry/server.key": 0o600,
        "/etc/docker-registry/ca.pem": 0o644,
    }
    assert (
        "/etc/docker-registry/server.pem",
        "/etc/docker-registry/server.pem",
    ) in d.run.mounts  # reference bug
    assert d.scheme == "https"


def test_run_argv_production(config):
    d = build(config, {"prometheus-metrics": True, "registry-port": 5443, "debug-port": 9100})
    assert d.run.argv({"l": "v"}) == [
        "run",
        "--detach",
        "--name",
        "registry",
        "--restart",
        "unless-stopped",
        "--label",
        "l=v",
        "--publish",
        "5443:5000",
        "--publish",
        "127.0.0.1:9100:5001",
        "--volume",
        "/etc/docker/registry/config.yml:/etc/docker/registry/config.yml:ro",
        "--volume",
        "/srv/registry:/var/lib/registry",
        # the log goes to journald, tagged with the container name (COS collectors read it)
        "--log-driver",
        "journald",
        "--log-opt",
        "tag=registry",
        "registry:2",
    ]


def test_debug_port_only_with_metrics(config):
    assert [p[1] for p in build(config, {}).run.ports] == [5000]


def test_run_argv_sandboxed_unit(config, tmp_path):
    host = paths.Host(sandbox=str(tmp_path), unit_name="docker-registry/3")
    d = build(config, {"registry-http-proxy": "http://user:pw@proxy:3128"}, host=host)
    argv = d.run.argv({})
    assert argv[argv.index("--name") + 1] == "registry-docker-registry-3"
    assert "10.1.2.3:5000:5000" in argv
    assert f"{tmp_path}/srv/registry:/var/lib/registry" in argv
    # the proxy (credentials and all) is read inside the container from the 0600 env file,
    # mounted read-only: in no argument, and not in the container's config (no --env-file)
    env_mount = f"{tmp_path}/etc/docker/registry/registry.env:/etc/docker/registry/registry.env:ro"
    assert env_mount in argv and "--env-file" not in argv
    assert argv[argv.index("--entrypoint") + 1] == "/bin/sh"
    image = argv.index("registry:2")
    assert argv[image + 1] == "-c"
    assert argv[image + 3 :] == ["sh", "/etc/docker/registry/config.yml"]
    assert "exec /entrypoint.sh" in argv[image + 2]
    assert not any("pw" in a for a in argv)
    env = next(f for f in d.files if f.path.endswith("registry.env"))
    assert (
        env.mode == 0o600
        and not env.mount
        and "HTTP_PROXY=http://user:pw@proxy:3128" in env.content
    )


def test_ipv6_publish_address():
    spec = runspec.RunSpec(name="r", image="i", ports=(("fd00::2", 5000, 5000),), mounts=())
    assert "[fd00::2]:5000:5000" in spec.argv({})


def test_config_hash_tracks_every_input(config):
    base = build(config, {})
    assert base.config_hash("img1") == build(config, {}).config_hash("img1")
    assert base.config_hash("img1") != base.config_hash("img2")
    assert base.config_hash("a") != build(config, {"log-level": "debug"}).config_hash("a")
    assert base.config_hash("a") != build(config, {"registry-port": 5001}).config_hash("a")
    tls_a = build(config, {}, TLS)
    tls_b = build(config, {}, render.TlsMaterial(cert="OTHER\n", key="KEY-PEM\n", ca="CA-PEM\n"))
    assert tls_a.config_hash("a") != tls_b.config_hash("a")


def test_real_certificates_render(config):
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "r", ["r"])
    d = build(config, {}, render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert))
    assert yaml.safe_load(d.config_yaml)["http"]["tls"]["certificate"].endswith("registry.crt")


def test_the_run_spec_survives_the_kv_as_a_record(config):
    s = settings.parse(config | {"auth-basic-password": "pw", "prometheus-metrics": True})
    desired = render.desired(
        s,
        host=paths.Host(sandbox="/sb", unit_name="docker-registry/0"),
        unit_address="10.0.0.1",
        tls=None,
        http_secret="x",
        htpasswd="admin:$2y$05$h\n",
        realm="r",
    )
    run = runspec.ContainerRun(desired.run, "c0ffee")
    again = runspec.ContainerRun.from_record(json.loads(json.dumps(run.as_record())))
    assert again == run
    assert again.argv() == desired.run.argv({runspec.HASH_LABEL: "c0ffee"})
    assert runspec.ContainerRun.from_record({"argv": ["run"]}) is None  # an older record
