"""The credentials option: a Juju user secret standing in for the secret options.

The merge is pure (effective_config); the read goes through a `secret-get` on PATH that
answers as Juju's does (content as JSON, or Juju's error on stderr); the handlers run through
charms.reactive's real dispatch (the `charm` fixture of test_handlers)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest
import yaml

from charms.layer.docker_registry.config import credentials, settings
from charms.layer.docker_registry.config.credentials import SecretRead, effective_config
from charms.layer.docker_registry.errors import ConfigError
from tests.support import certs
from tests.unit.test_handlers import charm  # noqa: F401 - the fixture

URI = "secret:d4a1k0bt2rqc73c4b5e0"


@pytest.fixture(scope="module")
def server():
    _ca, ca_key, ca_cert = certs.make_ca()
    return certs.make_server_cert(ca_key, ca_cert, "10.0.0.10", ["10.0.0.10"])


SECRET_PASSWORD = "From-The-Secret-31"


def _problems(config, secret) -> str:
    with pytest.raises(ConfigError) as exc:
        effective_config(config, secret)
    return exc.value.summary()


# --- the merge (pure) ----------------------------------------------------------------------


def test_secret_keys_stand_in_for_their_options(config):
    # GIVEN a secret with the password and S3 keys, the plain options unset
    content = {
        "auth-basic-password": SECRET_PASSWORD,
        "storage-s3-accesskey": "AKIA",
        "storage-s3-secretkey": "s3-secret",
    }
    # WHEN merged THEN each key is its option's value, nothing else changes
    merged = effective_config(config, SecretRead(URI, content))
    assert {k: merged[k] for k in content} == content
    assert merged == config | content


def test_no_secret_leaves_the_config_as_it_is(config):
    assert effective_config(config, None) == config


def test_a_key_also_set_as_an_option_blocks_naming_both(config):
    config["auth-basic-password"] = "plain"
    found = _problems(config, SecretRead(URI, {"auth-basic-password": SECRET_PASSWORD}))
    assert "credentials: key auth-basic-password is in the secret" in found
    assert "option auth-basic-password is set too" in found
    assert SECRET_PASSWORD not in found and "plain" not in found


def test_a_key_the_charm_does_not_read_is_named(config):
    found = _problems(config, SecretRead(URI, {"auth-basic-pasword": SECRET_PASSWORD}))
    assert "the secret has key auth-basic-pasword which the charm does not read" in found
    assert SECRET_PASSWORD not in found


def test_an_unreadable_secret_blocks_with_why(config):
    found = _problems(config, SecretRead(URI, problem="the secret was not found (removed?)"))
    assert found == "credentials: the secret was not found (removed?)"


def test_tls_key_may_be_the_pem_itself(config, server):
    merged = effective_config(config, SecretRead(URI, {"tls-key-blob": server.key}))
    assert base64.b64decode(merged["tls-key-blob"]).decode() == server.key


def test_a_key_the_last_accepted_revision_had_may_not_vanish(config):
    # GIVEN the unit accepted a revision with the password and the TLS key
    first = SecretRead(URI, {"auth-basic-password": SECRET_PASSWORD, "tls-key-blob": "k"})
    record = credentials.record_of(first)
    assert record == {"uri": URI, "keys": ["auth-basic-password", "tls-key-blob"]}
    # WHEN a new revision holds only the TLS key (update-secret replaces the whole content)
    second = credentials.with_record(SecretRead(URI, {"tls-key-blob": "k"}), record)
    # THEN it blocks naming the key, rather than turn basic auth off
    found = _problems(config, second)
    assert "the secret's new revision has no key auth-basic-password (the last one had)" in found
    # a record of another secret, or none (credentials reset and set again), checks nothing
    other = credentials.with_record(SecretRead(URI, {"tls-key-blob": "k"}), record | {"uri": "x"})
    assert effective_config(config, other)["tls-key-blob"] == "k"
    assert credentials.record_of(None) is None


def test_a_bad_value_in_the_secret_is_refused_by_its_option_and_never_echoed(config):
    merged = effective_config(
        config, SecretRead(URI, {"auth-basic-password": "a\n" + SECRET_PASSWORD})
    )
    with pytest.raises(ConfigError) as exc:
        settings.parse(merged)
    assert "auth-basic-password: must be a single line" in exc.value.summary()
    assert SECRET_PASSWORD not in exc.value.summary()


def test_the_secret_content_is_not_in_its_repr():
    assert SECRET_PASSWORD not in repr(SecretRead(URI, {"auth-basic-password": SECRET_PASSWORD}))


# --- the read: secret-get as Juju answers --------------------------------------------------


@pytest.fixture
def secret_get(tmp_path, monkeypatch):
    """A `secret-get` on PATH: prints ``answer["content"]`` as JSON, or fails with
    ``answer["error"]`` on stderr as Juju's does; records each argv."""
    answer = tmp_path / "answer.json"
    calls = tmp_path / "calls.jsonl"
    tool = tmp_path / "bin" / "secret-get"
    tool.parent.mkdir()
    tool.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"answer = json.load(open({str(answer)!r}))\n"
        "if 'error' in answer:\n"
        "    sys.stderr.write('ERROR ' + answer['error'] + '\\n'); sys.exit(1)\n"
        "print(json.dumps(answer['content']))\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")

    class SecretGet:
        def set(self, content=None, error=None):
            answer.write_text(json.dumps({"error": error} if error else {"content": content}))

        def calls(self):
            return [json.loads(line) for line in calls.read_text().splitlines()]

    return SecretGet()


def test_read_follows_the_latest_revision_in_hooks_only(secret_get):
    secret_get.set({"auth-basic-password": SECRET_PASSWORD})
    assert credentials.read(URI, refresh=True).content == {"auth-basic-password": SECRET_PASSWORD}
    assert credentials.read(URI, refresh=False).content == {"auth-basic-password": SECRET_PASSWORD}
    assert secret_get.calls() == [
        [URI, "--format", "json", "--refresh"],
        [URI, "--format", "json"],
    ]


@pytest.mark.parametrize(
    "error, why",
    [
        ("permission denied", "the secret is not granted to this application"),
        (f'secret "{URI[7:]}" not found', "the secret was not found (removed?)"),
    ],
)
def test_read_failures_say_why_in_the_operators_words(secret_get, error, why):
    secret_get.set(error=error)
    read = credentials.read(URI, refresh=True)
    assert read.content is None and read.problem.startswith(why)


def test_unset_option_reads_nothing(secret_get):
    assert credentials.read("", refresh=True) is None


def test_add_owned_gives_the_content_in_a_private_file_never_as_an_argument(tmp_path, monkeypatch):
    # GIVEN a `secret-add` on PATH that records its argv and the file it was given
    seen = tmp_path / "seen.json"
    tool = tmp_path / "bin" / "secret-add"
    tool.parent.mkdir()
    tool.write_text(
        "#!/usr/bin/env python3\nimport json, os, stat, sys\n"
        "path = sys.argv[sys.argv.index('--file') + 1]\n"
        "mode = stat.S_IMODE(os.stat(path).st_mode)\n"
        f"json.dump({{'argv': sys.argv[1:], 'mode': mode, 'file': open(path).read()}}, "
        f"open({str(seen)!r}, 'w'))\n"
        "print('secret:cu0abc')\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    # WHEN a secret is added
    uri = credentials.add_owned({"http-secret": SECRET_PASSWORD}, "shared")
    # THEN its URI comes back; the value went through a 0600 file, not the command line
    record = json.loads(seen.read_text())
    assert uri == "secret:cu0abc"
    assert SECRET_PASSWORD not in " ".join(record["argv"]) and record["mode"] == 0o600
    assert yaml.safe_load(record["file"]) == {"http-secret": SECRET_PASSWORD}


def test_add_owned_without_secret_add_gives_no_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert credentials.add_owned({"http-secret": "x"}, "shared") == ""


def test_read_owned_gives_one_key(secret_get):
    secret_get.set({"http-secret": SECRET_PASSWORD})
    assert credentials.read_owned(URI, "http-secret") == SECRET_PASSWORD
    secret_get.set(error="permission denied")
    assert credentials.read_owned(URI, "http-secret") == ""


# --- the hooks ----------------------------------------------------------------------------


def _clients_password(charm) -> str:  # noqa: F811 - the fixture
    rid = next(r for r in charm.local if r.startswith("docker-registry:"))
    return json.loads(charm.local[rid]["basic_password"])


def test_the_secret_password_reaches_clients_and_follows_a_new_revision(
    charm,  # noqa: F811 - the fixture
    secret_get,
):
    # GIVEN a granted secret holding the password and a related client
    secret_get.set({"auth-basic-password": SECRET_PASSWORD})
    charm.config["credentials"] = URI
    charm.hook("install")
    rid = charm.relate("docker-registry", {"containerd/0": {}})
    charm.hook("docker-registry-relation-joined", rid, "containerd/0")
    assert charm.status[0] == "active"
    assert _clients_password(charm) == SECRET_PASSWORD
    # WHEN the operator updates the secret and Juju fires secret-changed
    secret_get.set({"auth-basic-password": "Second-Revision-42"})
    applied = len(charm.applied)
    charm.hook("secret-changed")
    # THEN the registry and the clients get the new password in that hook
    assert len(charm.applied) == applied + 1
    assert _clients_password(charm) == "Second-Revision-42"
    assert charm.status[0] == "active"
    for text in (SECRET_PASSWORD, "Second-Revision-42"):
        assert not any(text in line for line in charm.logs)
        assert not any(text in message for _, message in charm.statuses)


def test_a_revoked_secret_blocks_and_the_registry_keeps_its_last_good_config(
    charm,  # noqa: F811 - the fixture
    secret_get,
):
    secret_get.set({"auth-basic-password": SECRET_PASSWORD})
    charm.config["credentials"] = URI
    charm.hook("install")
    applied = len(charm.applied)
    # WHEN the grant is revoked and the next hook runs
    secret_get.set(error="permission denied")
    charm.hook("update-status")
    # THEN blocked, naming the option; nothing was applied
    assert charm.status == (
        "blocked",
        "Invalid charm config: credentials: the secret is not granted to this application "
        "(juju grant-secret)",
    )
    assert len(charm.applied) == applied


def test_a_revision_that_drops_the_password_blocks_until_reset_and_set_again(
    charm,  # noqa: F811 - the fixture
    secret_get,
):
    charm.config |= {"cache-remoteurl": "https://upstream.example", "cache-username": "me"}
    secret_get.set({"auth-basic-password": SECRET_PASSWORD, "cache-password": "c"})
    charm.config["credentials"] = URI
    charm.hook("install")
    assert charm.status[0] == "active"
    applied = len(charm.applied)
    # WHEN a new revision forgets the password
    secret_get.set({"cache-password": "c"})
    charm.hook("secret-changed")
    # THEN blocked naming the key; the registry keeps its auth
    assert charm.status[0] == "blocked"
    assert "new revision has no key auth-basic-password" in charm.status[1]
    assert len(charm.applied) == applied
    # WHEN the operator resets credentials and sets it again THEN it goes on without auth
    charm.config["credentials"] = ""
    charm.hook("config-changed")
    charm.config["credentials"] = URI
    charm.hook("config-changed")
    assert charm.status[0] == "active", charm.status
    assert len(charm.applied) == applied + 1


def test_a_conflict_between_secret_and_option_blocks(charm, secret_get):  # noqa: F811
    secret_get.set({"auth-basic-password": SECRET_PASSWORD})
    charm.config |= {"credentials": URI, "auth-basic-password": "plain-one"}
    charm.hook("install")
    state, message = charm.status
    assert state == "blocked"
    assert "key auth-basic-password is in the secret and option auth-basic-password" in message
    assert charm.applied == []


def test_the_tls_key_from_the_secret_serves_https(charm, secret_get, server):  # noqa: F811
    secret_get.set({"tls-key-blob": server.key})
    charm.config |= {
        "credentials": URI,
        "tls-cert-blob": base64.b64encode(server.cert.encode()).decode(),
    }
    charm.hook("install")
    assert charm.status[0] == "active" and "(https)" in charm.status[1]
    desired = charm.applied[-1][0]
    assert any(f.content == server.key for f in desired.files)


def test_without_the_option_no_secret_is_read(charm, secret_get):  # noqa: F811
    charm.hook("install")
    assert charm.status[0] == "active"
    with pytest.raises(FileNotFoundError):  # secret-get never ran
        secret_get.calls()
