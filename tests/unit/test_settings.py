"""settings.parse: every option's type, range and combination; messages never echo values."""

import base64
import subprocess

import pytest

from charms.layer.docker_registry.config import settings, storage
from charms.layer.docker_registry.errors import ConfigError
from tests.support import certs
from tests.support.config import charm_options

SECRET = "s3cr3t-Value-42"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def problems(config) -> dict:
    with pytest.raises(ConfigError) as err:
        settings.parse(config)
    assert SECRET not in str(err.value)
    return dict(err.value.problems)


def test_defaults_give_a_plain_filesystem_registry(config):
    s = settings.parse(config)
    assert s.registry_image == "registry:2" and s.registry_name == "registry"
    assert (s.registry_port, s.debug_port) == (5000, 5001)
    assert s.storage == storage.FilesystemStorage()
    assert s.auth is None and s.cache is None and s.tls_blobs is None
    assert s.storage_cache and s.storage_redirect_disable and not s.storage_delete


@pytest.mark.parametrize(
    "option,value,why",
    [
        ("registry-port", 0, "between 1 and 65535"),
        ("registry-port", 70000, "between 1 and 65535"),
        ("registry-port", "5000", "integer"),
        ("registry-port", True, "integer"),
        ("debug-port", -1, "between"),
        ("log-level", "verbose", "one of error, warn, info, debug"),
        ("storage-cache", "redis", "inmemory, disabled"),
        ("registry-image", "Bad Image!", "not a valid image reference"),
        ("registry-image", "--privileged", "not a valid image reference"),
        ("registry-image", "", "not a valid image reference"),
        ("registry-name", "-rm", "container name"),
        ("registry-name", "a/b", "container name"),
        ("http-host", "example.com", "http://"),
        ("http-host", "ftp://example.com/", "http://"),
        ("http-host", "https://example.com/registry", 'end with "/"'),
        ("http-host", "https://u:p@example.com/", "credentials"),
        ("http-host", "https://example.com/?q=1", "query"),
        ("http-host", "https://example.com:99999/", "not a valid URL"),
        ("registry-http-proxy", "proxy:3128", "http://"),
        ("registry-https-proxy", "http://", "host name"),
        ("cache-remoteurl", "registry-1.docker.io", "http://"),
        ("storage-delete", "yes", "boolean"),
        ("prometheus-metrics", 1, "boolean"),
        ("storage-read-only", None, None),
        ("auth-basic-user", 5, "string"),
        ("tls-ca-path", "relative/ca.crt", "absolute file path"),
        ("tls-cert-path", "/etc/docker/registry/", "absolute file path"),
        ("tls-key-path", "/etc/../etc/shadow", "normalised"),
        ("tls-key-path", "/etc/docker/registry/config.yml", "something else"),
        ("tls-cert-path", "/etc/docker/registry/a:b.crt", "must be a file name"),
        ("tls-ca-path", "/etc/docker-registry/a,b.crt", "must be a file name"),
        ("storage-s3-chunksize", 1024, "between 5242880"),
        ("storage-s3-multipartcopychunksize", 6 * 1024**3, "between"),
        ("storage-s3-multipartcopymaxconcurrency", 0, "between 1"),
        ("storage-s3-multipartcopythresholdsize", -5, "between 0"),
        ("storage-s3-storageclass", "GLACIER", "STANDARD, REDUCED_REDUNDANCY, NONE"),
        ("storage-s3-objectacl", "everyone", "private, public-read"),
        ("storage-s3-loglevel", "loud", "off, debug"),
        ("storage-s3-secure", "no", "boolean"),
        ("storage-s3-regionendpoint", "s3.local:9000", "http://"),
        ("tls-client-auth", "true", "boolean"),
    ],
)
def test_bad_values_are_named(config, option, value, why):
    config[option] = value
    if why is None:  # None means "unset": the default applies
        settings.parse(config)
        return
    found = problems(config)
    assert option in found, found
    assert why in found[option]


def test_same_tls_path_twice_is_refused(config):
    config["tls-key-path"] = config["tls-cert-path"]
    assert "differ" in problems(config)["tls-key-path"]


def test_debug_port_clash_only_matters_with_metrics(config):
    config["debug-port"] = 5000
    settings.parse(config)
    config["prometheus-metrics"] = True
    assert "differ from registry-port" in problems(config)["debug-port"]


def test_all_problems_are_reported_at_once(config):
    config |= {"registry-port": 0, "log-level": "loud", "storage-cache": "x"}
    assert set(problems(config)) == {"registry-port", "log-level", "storage-cache"}


def test_http_host_netloc_and_ipv6(config):
    config["http-host"] = "https://[fd00::1]:8443/reg/"
    s = settings.parse(config)
    assert s.http_host.netloc == "[fd00::1]:8443"
    assert s.http_host.url == "https://[fd00::1]:8443/reg/"
    config["http-host"] = "http://Registry.Example.com"
    assert settings.parse(config).http_host.url == "http://registry.example.com/"


# --- auth -------------------------------------------------------------------------------


def test_basic_auth_needs_only_a_password(config):
    config["auth-basic-password"] = SECRET
    s = settings.parse(config)
    assert s.basic_auth.user == "admin" and s.basic_auth.password == SECRET
    assert SECRET not in repr(s)


@pytest.mark.parametrize("user", ["", "a:b", "with space"])
def test_basic_auth_user_must_be_usable(config, user):
    config |= {"auth-basic-password": SECRET, "auth-basic-user": user}
    assert "auth-basic-user" in problems(config)


def test_multi_line_password_is_refused_without_echo(config):
    config["auth-basic-password"] = SECRET + "\nmore"
    assert (
        problems(config)["auth-basic-password"] == "must be a single line of printable characters"
    )


def token_config(config, ca_pem):
    return config | {
        "auth-token-realm": "https://auth.example.com/token",
        "auth-token-service": "registry",
        "auth-token-issuer": "issuer",
        "auth-token-root-certs": b64(ca_pem),
    }


def test_token_auth_all_four(config):
    ca, _, _ = certs.make_ca()
    s = settings.parse(token_config(config, ca.cert))
    assert s.token_auth.service == "registry" and "BEGIN CERTIFICATE" in s.token_auth.root_certs


def test_token_root_certs_keep_only_the_pem_blocks(config):
    (one, _, _), (two, _, _) = certs.make_ca("one"), certs.make_ca("two")
    blob = "Root certificates:\n" + one.cert + "\nand also\n" + two.cert + "-- end\n"
    assert settings.parse(token_config(config, blob)).token_auth.root_certs == one.cert + two.cert


def test_token_auth_half_configured_names_a_missing_option(config):
    config["auth-token-realm"] = "https://auth.example.com/token"
    found = problems(config)
    assert "auth-token-service" in found and "needs all of" in found["auth-token-service"]


def test_basic_and_token_together_are_refused(config):
    ca, _, _ = certs.make_ca()
    config = token_config(config, ca.cert) | {"auth-basic-password": SECRET}
    assert "cannot both be set" in problems(config)["auth-basic-password"]


@pytest.mark.parametrize(
    "value,why",
    [
        ("!!!notbase64", "not valid base64"),
        (b64("hello"), "PEM"),
        (b64("-----BEGIN X-----"), "does not decode to PEM data"),  # no END: not PEM
    ],
)
def test_token_root_certs_must_be_pem(config, value, why):
    ca, _, _ = certs.make_ca()
    config = token_config(config, ca.cert) | {"auth-token-root-certs": value}
    assert why in problems(config)["auth-token-root-certs"]


def test_token_realm_must_be_a_url(config):
    ca, _, _ = certs.make_ca()
    config = token_config(config, ca.cert) | {"auth-token-realm": "auth.example.com"}
    assert "http://" in problems(config)["auth-token-realm"]


# --- storage ----------------------------------------------------------------------------


def test_s3_needs_region_and_bucket(config):
    config["storage-s3-region"] = "us-east-1"
    assert "both" in problems(config)["storage-s3-bucket"]


def test_s3_credentials_without_bucket_are_half_configured(config):
    config["storage-s3-accesskey"] = "AKIA"
    assert "needs storage-s3-region" in problems(config)["storage-s3-accesskey"]


def test_s3_keys_go_together(config):
    config |= {"storage-s3-region": "r", "storage-s3-bucket": "b", "storage-s3-secretkey": SECRET}
    assert "go together" in problems(config)["storage-s3-accesskey"]


def test_s3_full(config):
    config |= {
        "storage-s3-region": "us-east-1",
        "storage-s3-bucket": "images",
        "storage-s3-accesskey": "AKIA",
        "storage-s3-secretkey": SECRET,
        "storage-s3-regionendpoint": "http://127.0.0.1:9000",
        "storage-s3-skip-verify": True,
        "storage-s3-skip-v4-auth": False,
        "storage-s3-storageclass": "reduced_redundancy",
        "storage-s3-objectacl": "bucket-owner-read",
    }
    s3 = settings.parse(config).storage
    assert isinstance(s3, storage.S3Storage)
    assert s3.skipverify and s3.v4auth and s3.storageclass == "REDUCED_REDUNDANCY"
    assert s3.objectacl == "bucket-owner-read" and SECRET not in repr(s3)


def test_s3_skip_v4_auth_is_honoured_off_aws_and_impossible_on_aws(config):
    config |= {"storage-s3-region": "r", "storage-s3-bucket": "b"}
    assert settings.parse(config).storage.v4auth  # AWS itself: only v4 exists
    config["storage-s3-regionendpoint"] = "http://minio.local:9000"
    assert not settings.parse(config).storage.v4auth  # default skip-v4-auth=true
    config["storage-s3-skip-v4-auth"] = False
    assert settings.parse(config).storage.v4auth


@pytest.mark.parametrize("missing", ["username", "password", "container"])
def test_swift_needs_credentials_and_container(config, missing):
    config |= {
        "storage-swift-authurl": "https://keystone.example.com/v3",
        "storage-swift-username": "u",
        "storage-swift-password": SECRET,
        "storage-swift-container": "c",
    }
    config[f"storage-swift-{missing}"] = ""
    assert f"storage-swift-{missing}" in problems(config)


def test_swift_wins_over_s3(config):
    config |= {
        "storage-swift-authurl": "https://keystone.example.com/v3",
        "storage-swift-username": "u",
        "storage-swift-password": SECRET,
        "storage-s3-region": "r",
        "storage-s3-bucket": "b",
    }
    assert settings.parse(config).storage.kind == "swift"


def test_swift_authurl_must_be_a_url(config):
    config["storage-swift-authurl"] = "keystone:5000"
    assert "storage-swift-authurl" in problems(config)


# --- pull-through cache -------------------------------------------------------------------


def test_cache_credentials_go_together(config):
    config |= {"cache-remoteurl": "https://upstream.example.com", "cache-username": "u"}
    assert "go together" in problems(config)["cache-password"]


def test_cache_credentials_without_url(config):
    config |= {"cache-username": "u", "cache-password": SECRET}
    assert "only used with cache-remoteurl" in problems(config)["cache-username"]


def test_cache(config):
    config |= {"cache-remoteurl": "https://upstream.example.com"}
    assert settings.parse(config).cache.remoteurl == "https://upstream.example.com"


# --- TLS by config ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki():
    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "registry", ["registry.example", "10.0.0.1"])
    _other_ca, other_key, other_cert = certs.make_ca("other")
    foreign = certs.make_server_cert(other_key, other_cert, "x", ["x"])
    expired = certs.make_server_cert(ca_key, ca_cert, "old", ["old"], days=1, not_before_days=-10)
    return {"ca": ca, "server": server, "foreign": foreign, "expired": expired}


def tls_config(config, cert, key, ca=""):
    return config | {"tls-cert-blob": b64(cert), "tls-key-blob": b64(key), "tls-ca-blob": b64(ca)}


def test_tls_blobs(config, pki):
    s = settings.parse(tls_config(config, pki["server"].cert, pki["server"].key, pki["ca"].cert))
    assert "BEGIN CERTIFICATE" in s.tls_blobs.cert and "PRIVATE KEY" in s.tls_blobs.key
    assert "PRIVATE" not in repr(s)


def test_tls_blobs_keep_only_the_pem_blocks(config, pki):
    # GIVEN material as easyrsa gives it (an `openssl x509 -text` dump first) and junk around
    def dump(pem):
        return subprocess.run(
            ["openssl", "x509", "-text"], input=pem, capture_output=True, text=True, check=True
        ).stdout

    server, ca = pki["server"], pki["ca"]
    config = tls_config(
        config, dump(server.cert), "key:\n" + server.key + "--\n", "CA\n" + dump(ca.cert)
    )
    blobs = settings.parse(config).tls_blobs
    assert (blobs.cert, blobs.key, blobs.ca) == (server.cert, server.key, ca.cert)


def test_tls_key_must_match_cert(config, pki):
    config = tls_config(config, pki["server"].cert, pki["foreign"].key)
    assert "does not match" in problems(config)["tls-key-blob"]


def test_tls_cert_must_chain_to_ca(config, pki):
    config = tls_config(config, pki["foreign"].cert, pki["foreign"].key, pki["ca"].cert)
    assert "not signed by the CA" in problems(config)["tls-cert-blob"]


def test_tls_expired_cert(config, pki):
    config = tls_config(config, pki["expired"].cert, pki["expired"].key)
    assert "expired" in problems(config)["tls-cert-blob"]


def test_tls_half_given(config, pki):
    assert (
        "go together"
        in problems(config | {"tls-cert-blob": b64(pki["server"].cert)})["tls-key-blob"]
    )
    assert (
        "needs tls-cert-blob"
        in problems(config | {"tls-ca-blob": b64(pki["ca"].cert)})["tls-ca-blob"]
    )


def test_tls_garbage(config, pki):
    config = config | {"tls-cert-blob": "%%%", "tls-key-blob": b64(pki["server"].key)}
    assert "not valid base64" in problems(config)["tls-cert-blob"]
    bad_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    config = tls_config(config, bad_pem, pki["server"].key)
    assert "not a valid PEM certificate" in problems(config)["tls-cert-blob"]


def test_tls_key_garbage_never_echoed(config, pki):
    key = "-----BEGIN PRIVATE KEY-----\n" + b64(SECRET) + "\n-----END PRIVATE KEY-----\n"
    config = tls_config(config, pki["server"].cert, key)
    assert "not a valid unencrypted PEM private key" in problems(config)["tls-key-blob"]


@pytest.mark.parametrize(
    "option",  # (a secret option is read by the credentials module, not parsed as a value)
    sorted(o for o, spec in charm_options().items() if spec["type"] != "secret"),
)
def test_every_option_rejects_a_value_of_the_wrong_type(config, option):
    # GIVEN a value of the wrong type (Juju checks types, but config can come from anywhere)
    wrong = {"string": 12345, "int": "12345", "boolean": "yes"}[charm_options()[option]["type"]]
    config[option] = wrong
    # THEN the option is named, and the value never echoed
    found = problems(config)
    assert option in found
    assert "12345" not in found[option] and "yes" not in found[option]


@pytest.mark.parametrize(
    "option", sorted(o for o, spec in charm_options().items() if spec["type"] == "string")
)
def test_every_string_option_rejects_multiple_lines(config, option):
    config[option] = "first\nsecond" if not option.endswith(("-blob", "root-certs")) else "%%\n%%"
    found = problems(config)
    assert option in found
