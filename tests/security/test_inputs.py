"""Hostile or careless inputs: nothing outside the charm's own files is touched, nothing
secret leaks. Each test names the hole it closes."""

from __future__ import annotations

import base64
import errno
import json
import os

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import ConfigError
from charms.layer.docker_registry.host import files, paths, trust
from charms.layer.docker_registry.host.paths import Host
from charms.layer.docker_registry.pipeline import runspec
from tests.support import certs

SECRET = "Sec-Ur1ty-Passw0rd"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def problems(config, **changes) -> dict:
    with pytest.raises(ConfigError) as err:
        settings.parse({**config, **changes})
    assert SECRET not in str(err.value)
    return dict(err.value.problems)


# ---------------------------------------------------------------- path options


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",  # was overwritten with a certificate (0644)
        "/etc/docker/daemon.json",
        "/etc/docker/registry",  # the directory itself
        "/etc/docker/registry/sub/ca.crt",
        "/root/.ssh/authorized_keys",
    ],
)
@pytest.mark.parametrize("option", ["tls-ca-path", "tls-cert-path", "tls-key-path"])
def test_path_options_only_name_files_in_the_charms_own_directories(config, option, path):
    assert (
        "must name a file directly in /etc/docker/registry"
        in problems(config, **{option: path})[option]
    )


def test_path_options_in_the_charms_directories_are_accepted(config):
    parsed = settings.parse({**config, "tls-cert-path": "/etc/docker-registry/server.pem"})
    assert parsed.tls_paths.cert == "/etc/docker-registry/server.pem"


def test_a_ca_blob_writes_only_its_pem_blocks(config):
    # GIVEN a CA blob whose decoded text holds an ssh key line before the PEM block
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.1", ["10.0.0.1"])
    junk = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISECRET operator@laptop\n"
    parsed = settings.parse(
        {
            **config,
            "tls-ca-blob": b64(junk + ca.cert + "trailing words\n"),
            "tls-cert-blob": b64("Certificate:\n  dump\n" + server.cert),
            "tls-key-blob": b64("comment\n" + server.key),
        }
    )
    # THEN only PEM is kept (that is what render writes to the tls-*-path files)
    assert parsed.tls_blobs.ca == ca.cert
    assert parsed.tls_blobs.cert.startswith("-----BEGIN CERTIFICATE-----")
    assert parsed.tls_blobs.key.startswith("-----BEGIN ") and "comment" not in parsed.tls_blobs.key


# ---------------------------------------------------------------- http-host and netlocs


@pytest.mark.parametrize("image", ["-q.x/registry:2", "--help", "-/registry:2"])
def test_registry_image_never_starts_with_a_dash(config, image):
    # docker read "-q.x/registry:2" as an option ("Run 'docker image inspect --help'")
    assert problems(config, **{"registry-image": image}) == {
        "registry-image": "is not a valid image reference"
    }


@pytest.mark.parametrize(
    "value",
    [
        "https://../",  # netloc '..': certs.d/../ca.crt, then rm -r /etc/docker
        "https://./",  # certs.d itself
        "https://reg_istry.example/",  # '_' goes into daemon.json, which dockerd rejects
        "https://régistry.example/",  # non-ASCII likewise
        "https://-bad.example/",
    ],
)
def test_http_host_must_name_a_real_host(config, value):
    assert "must name a host" in problems(config, **{"http-host": value})["http-host"]


def test_trust_removes_only_what_the_charm_wrote(tmp_path):
    # GIVEN the charm trusted its CA for one netloc, next to an operator's own file
    host = Host(sandbox=str(tmp_path), unit_name="docker-registry/0")
    state = trust.trust(host, netloc="old.example:5000", ca="CA\n", previous=None)
    own = tmp_path / "etc/docker/certs.d/old.example:5000/operator.crt"
    own.write_text("mine")
    # WHEN the netloc changes
    trust.trust(host, netloc="new.example:5000", ca="CA\n", previous=state)
    # THEN the charm's ca.crt is gone, the operator's file and its directory stay
    assert own.read_text() == "mine"
    assert not (own.parent / "ca.crt").exists()
    assert (tmp_path / "etc/docker/certs.d/new.example:5000/ca.crt").exists()


# ---------------------------------------------------------------- credentials


@pytest.mark.parametrize("user", ["-D", "-b", "--", "a:b", "ad min", ".hidden", "x" * 65])
def test_user_names_htpasswd_would_misread_are_refused(config, user):
    found = problems(config, **{"auth-basic-user": user, "auth-basic-password": SECRET})
    assert found["auth-basic-user"].startswith("must be 1-64 of letters")
    assert user not in found["auth-basic-user"]


def test_password_length_limit_is_stated(config):
    found = problems(config, **{"auth-basic-password": SECRET * 20})
    assert found == {"auth-basic-password": "must be at most 255 characters"}


def test_password_with_control_characters_is_refused(config):
    found = problems(config, **{"auth-basic-password": SECRET + "\x00"})
    assert "printable" in found["auth-basic-password"]


# ---------------------------------------------------------------- exposure and faults


def test_tls_client_auth_without_a_ca_blocks_instead_of_serving_everyone(charm):
    # GIVEN TLS by config without a CA, and mutual TLS asked for
    _ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])
    charm.config |= {
        "tls-cert-blob": b64(server.cert),
        "tls-key-blob": b64(server.key),
        "tls-client-auth": True,
    }
    charm.hook("install")
    # THEN the unit says what is missing and starts no registry
    assert charm.status[0] == "blocked"
    assert "tls-client-auth needs a CA to verify clients" in charm.status[1]
    assert charm.applied == []


def test_the_debug_listener_binds_the_loopback_only(config):
    # pprof, expvar and /metrics answer without auth on it: never from another host
    from charms.layer.docker_registry.pipeline import render

    parsed = settings.parse({**config, "prometheus-metrics": True})
    desired = render.desired(
        parsed,
        host=Host(),
        unit_address="10.1.2.3",
        tls=None,
        http_secret="s",
        htpasswd="",
        realm="r",
    )
    binds = {port: bind for bind, port, _ in desired.run.ports}
    assert binds == {5000: "", 5001: "127.0.0.1"}


class _FullDisk:
    """The os module as files.py sees it, on a full filesystem: every write() fails with
    ENOSPC and, as a real write() error, names no file."""

    def __getattr__(self, name):
        return getattr(os, name)

    @staticmethod
    def fdopen(fd, *args, **kwargs):
        handle = os.fdopen(fd, *args, **kwargs)

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return Full()


def test_a_file_the_hook_cannot_write_blocks_naming_it(charm, monkeypatch, tmp_path):
    # GIVEN a hook that writes the registry's files for real, on a full filesystem
    def write_files(desired, **kw):
        files.sync(paths.current(), desired.files, [])

    monkeypatch.setattr("charms.layer.docker_registry.host.workload.apply", write_files)
    monkeypatch.setattr(files, "os", _FullDisk())
    # WHEN install runs
    charm.hook("install")
    # THEN the unit blocks naming the file the charm could not write (the error had no name)
    config_yml = tmp_path / "host/etc/docker/registry/config.yml"
    assert charm.status == ("blocked", f"Cannot write {config_yml}: No space left on device.")
    assert not config_yml.exists()


def test_no_secret_in_any_problem_message(config):
    found = problems(
        config,
        **{"auth-basic-user": "-D", "auth-basic-password": SECRET, "http-host": "https://../"},
    )
    assert SECRET not in json.dumps(found)


@pytest.mark.parametrize(
    ("netloc", "ok"),
    [
        ("10.0.0.1:5000", True),
        ("registry.example.com", True),
        ("[fd00::1]:5000", True),
        ("reg_istry:5000", False),  # dockerd refuses it, and then refuses to start
        ("../x:5000", False),
        ("host:99999", False),
    ],
)
def test_only_entries_dockerd_accepts_go_into_insecure_registries(
    tmp_path, monkeypatch, netloc, ok
):
    reloads: list = []
    monkeypatch.setattr(trust, "reload_daemon", lambda: reloads.append(netloc) or True)
    host = Host(sandbox=str(tmp_path), unit_name="docker-registry/0")
    trust.trust(host, netloc=netloc, ca="", previous=None)
    daemon = tmp_path / "etc/docker/daemon.json"
    entries = json.loads(daemon.read_text())["insecure-registries"] if daemon.exists() else []
    assert (netloc in entries) is ok
    assert reloads == ([netloc] if ok else [])  # dockerd is asked only to take an entry it accepts


def test_a_refused_dockerd_reload_is_said(charm, monkeypatch):
    monkeypatch.setattr("charms.layer.docker_registry.host.trust.reload_daemon", lambda: False)
    charm.hook("install")
    assert charm.status[0] == "active"
    assert "Warning: dockerd did not reload daemon.json" in charm.status[1]


def test_a_registry_error_quoted_in_the_status_names_no_internal_address(
    config, sandbox, world, monkeypatch
):
    # GIVEN a new storage endpoint the registry cannot reach: it dies naming the address
    from charms.layer.docker_registry.host import workload
    from tests.unit.test_workload import _apply, make_desired

    outcome, managed = _apply(make_desired(config, sandbox), sandbox)
    world.action = "recreated"
    # only the restored last good container answers
    monkeypatch.setattr(workload.clients, "probe", lambda url, timeout=3: bool(world.docker))
    world_line = (
        'level=fatal msg="s3aws: Put \\"http://10.20.30.40:9000/registry\\": dial tcp '
        '10.20.30.40:9000: connect: connection refused; lookup minio.internal:9000; [fd00::5]:443"'
    )
    monkeypatch.setattr(workload.container, "last_log_line", lambda name: world_line)
    bad = make_desired(config, sandbox, **{"log-level": "debug"})
    outcome, _ = _apply(bad, sandbox, managed_files=managed, last_good=outcome.last_good)
    # THEN the status quotes the cause, not where the storage lives
    assert outcome.action == "rolled-back"
    assert "connection refused" in outcome.problem
    for internal in ("10.20.30.40", "minio.internal", "fd00::5", "http://"):
        assert internal not in outcome.problem


def test_action_reports_are_readable_by_root_only(monkeypatch, tmp_path):
    from charms.layer.docker_registry import actions
    from charms.layer.docker_registry.host import paths

    monkeypatch.setenv(paths.SANDBOX_ENV, str(tmp_path))
    path = actions.write_report("images", {"repositories": {"team/app": ["1"]}}, [])
    assert (tmp_path.joinpath(path).stat().st_mode & 0o777) == 0o600


def test_ready_only_when_the_object_storage_answered(charm):
    # GIVEN S3 storage whose endpoint the registry cannot reach (its /v2/ still answers)
    charm.config |= {
        "storage-s3-region": "r",
        "storage-s3-bucket": "b",
        "storage-s3-regionendpoint": "http://10.99.0.1:9000",
    }
    charm.storage = False
    charm.hook("install")
    # THEN the unit blocks naming the options, and not the endpoint's address
    assert charm.status == (
        "blocked",
        "storage-s3-*: the registry cannot reach its storage backend.",
    )
    # WHEN the storage answers THEN Ready
    charm.storage = True
    charm.hook("update-status")
    assert charm.status[0] == "active"


def test_storage_down_under_token_auth_blocks_naming_the_options_not_waiting(charm):
    # GIVEN S3 storage and token auth (the hook holds no token: the registry's own storage
    # health check answers for the storage, failing every request with 503)
    ca, _, _ = certs.make_ca("token-issuer")
    charm.config |= {
        "storage-s3-region": "r",
        "storage-s3-bucket": "b",
        "storage-s3-regionendpoint": "http://10.99.0.1:9000",
        "auth-token-realm": "https://auth.example.com/token",
        "auth-token-service": "registry",
        "auth-token-issuer": "issuer",
        "auth-token-root-certs": base64.b64encode(ca.cert.encode()).decode(),
    }
    charm.storage, charm.answering = False, False
    charm.hook("install")
    # THEN blocked naming the options (not "waiting for the registry to answer"), no address
    assert charm.status == (
        "blocked",
        "storage-s3-*: the registry cannot reach its storage backend.",
    )


def test_proxy_credentials_reach_the_registry_through_a_private_mounted_file_never_argv(config):
    # GIVEN proxies with credentials WHEN the registry's run arguments are made THEN the
    # credentials are in none of them, nor handed to docker as environment (`-e`,
    # `--env-file`: `docker inspect` would show them): the container's shell reads them from a
    # 0600 file mounted read-only
    from charms.layer.docker_registry.pipeline import render

    proxy = f"http://user:{SECRET}@proxy.example:3128"
    parsed = settings.parse(
        {**config, "registry-http-proxy": proxy, "registry-https-proxy": proxy}
    )
    desired = render.desired(
        parsed,
        host=Host(),
        unit_address="10.1.2.3",
        tls=None,
        http_secret="s",
        htpasswd="",
        realm="r",
    )
    argv = runspec.ContainerRun(desired.run, "h").argv()
    assert SECRET not in " ".join(argv)
    assert not {"-e", "--env", "--env-file"} & set(argv)
    assert f"{runspec.ENV_FILE}:{runspec.ENV_FILE}:ro" in argv
    env = next(f for f in desired.files if f.path == runspec.ENV_FILE)
    assert (env.mode, env.mount) == (0o600, False) and SECRET in env.content
