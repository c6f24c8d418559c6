"""clients: the netloc clients dial, the data they get, probe() against loopback servers."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.pipeline import clients
from tests.support import certs


def parse(config: dict, **overrides):
    return settings.parse(config | overrides)


# ---------------------------------------------------------------- bracket / netloc


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("fd00::1", "[fd00::1]"),
        ("[fd00::1]", "[fd00::1]"),
        ("registry.example.com", "registry.example.com"),
        ("", ""),
    ],
)
def test_bracket_wraps_only_ipv6_literals_once(address, expected):
    assert clients.bracket(address) == expected


def test_netloc_is_http_host_when_set_even_behind_a_proxy(config):
    s = parse(config, **{"http-host": "https://registry.example.com:8443/"})
    got = clients.netloc(s, ingress_address="10.0.0.1", proxy_netloc="proxy.example.com:443")
    assert got == "registry.example.com:8443"


def test_netloc_is_the_proxy_when_proxied_without_http_host(config):
    got = clients.netloc(parse(config), ingress_address="10.0.0.1", proxy_netloc="10.9.9.9:80")
    assert got == "10.9.9.9:80"


def test_netloc_is_our_own_address_and_port_otherwise(config):
    s = parse(config, **{"registry-port": 5050})
    assert clients.netloc(s, ingress_address="10.0.0.1") == "10.0.0.1:5050"


def test_netloc_brackets_an_ipv6_ingress_address(config):
    assert clients.netloc(parse(config), ingress_address="fd00::7") == "[fd00::7]:5000"


# ---------------------------------------------------------------- client_data


def test_client_data_without_basic_auth_has_neither_user_nor_password(config):
    data = clients.client_data(parse(config), netloc="10.0.0.1:5000", scheme="http", tls_ca="")
    assert data.as_dict() == {
        "registry_netloc": "10.0.0.1:5000",
        "registry_url": "http://10.0.0.1:5000",
        "basic_user": None,
        "basic_password": None,
        "tls_ca": None,
    }


def test_client_data_with_basic_auth_has_both_and_hides_the_password_in_repr(config):
    s = parse(config, **{"auth-basic-user": "ops", "auth-basic-password": "hunter2"})
    data = clients.client_data(s, netloc="reg:5000", scheme="https", tls_ca="CA-PEM\n")
    assert (data.basic_user, data.basic_password) == ("ops", "hunter2")
    assert data.registry_url == "https://reg:5000"
    assert data.tls_ca == "CA-PEM\n"
    assert "hunter2" not in repr(data)


def test_user_without_password_publishes_no_credentials(config):
    s = parse(config, **{"auth-basic-user": "ops", "auth-basic-password": ""})
    data = clients.client_data(s, netloc="reg:5000", scheme="http", tls_ca="")
    assert (data.basic_user, data.basic_password) == (None, None)


# ---------------------------------------------------------------- certificate_names


def test_certificate_names_keep_the_unit_address_as_cn_and_list_every_dialled_name(config):
    # units sharing one http-host must not share a common name: easyrsa re-issues per CN and
    # revokes the previous certificate of that name
    s = parse(config, **{"http-host": "https://registry.example.com/"})
    cn, sans = clients.certificate_names(
        s, addresses=["10.0.0.1", "[fd00::1]", ""], hostname="node-1", proxies=["10.0.0.1"]
    )
    assert cn == "10.0.0.1"
    assert sans == sorted(["registry.example.com", "10.0.0.1", "fd00::1", "node-1"])


def test_certificate_names_without_http_host_use_the_first_address(config):
    cn, sans = clients.certificate_names(parse(config), addresses=["10.0.0.1"], hostname="node-1")
    assert (cn, sans) == ("10.0.0.1", ["10.0.0.1", "node-1"])


# ---------------------------------------------------------------- probe


class _Handler(http.server.BaseHTTPRequestHandler):
    status: int | dict[str, int] = 200  # for every path, or by path (without the query)
    paths: list[str]

    def do_GET(self):
        self.paths.append(self.path)
        status = self.status
        self.send_response(status if isinstance(status, int) else status[self.path.split("?")[0]])
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args):
        pass


@contextmanager
def serve(
    status: int | dict[str, int], tls_context: ssl.SSLContext | None = None
) -> Iterator[tuple[str, list]]:
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"status": status, "paths": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls_context:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls_context else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(("status", "answers"), [(200, True), (401, True), (404, False)])
def test_probe_asks_v2_and_accepts_200_or_401(status, answers):
    with serve(status) as (url, seen):
        assert clients.probe(url, timeout=5) is answers
    assert seen == ["/v2/"]


@pytest.mark.parametrize(
    ("catalog", "v2", "answers"),
    [
        (200, 200, True),  # listed: the storage answered
        (500, 200, False),  # the storage failed
        (503, 503, False),  # the registry's storage health check fails: every request
        (401, 401, True),  # token auth: the health check's verdict is in and passed
        (401, 503, False),  # ... and failed
        (404, 200, None),  # something else: no claim
    ],
)
def test_storage_answers_from_the_catalog_else_from_the_health_check(catalog, v2, answers):
    waits: list[bool] = []

    def health_after() -> float:
        waits.append(True)
        return 0.0

    with serve({"/v2/_catalog": catalog, "/v2/": v2}) as (url, seen):
        assert clients.storage_answers(url, health_after=health_after, timeout=5) is answers
    # only where the catalog is not the charm's to list is the health check waited for
    asked_health = catalog == 401
    assert seen == ["/v2/_catalog?n=1"] + (["/v2/"] if asked_health else [])
    assert waits == ([True] if asked_health else [])


def test_storage_answers_presents_the_client_certificate_it_is_given(tmp_path):
    # an unreadable pair is no answer (never a traceback)
    missing = (str(tmp_path / "client.cert"), str(tmp_path / "client.key"))
    with serve(200) as (url, seen):
        assert clients.storage_answers(url, client_pair=missing, timeout=5) is None
    assert seen == []


def test_probe_of_a_server_error_is_false():
    with serve(503) as (url, _seen):
        assert clients.probe(url, timeout=5) is False


def test_probe_of_a_closed_port_is_false():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert clients.probe(f"http://127.0.0.1:{port}", timeout=2) is False


def test_probe_of_a_malformed_url_is_false():
    assert clients.probe("not-a-url", timeout=1) is False


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory):
    _ca_pair, ca_key, ca_cert = certs.make_ca()
    pair = certs.make_server_cert(ca_key, ca_cert, "127.0.0.1", ["127.0.0.1"])
    directory = tmp_path_factory.mktemp("tls")
    (directory / "cert.pem").write_text(pair.cert)
    (directory / "key.pem").write_text(pair.key)
    (directory / "ca.pem").write_text(_ca_pair.cert)
    return directory


def test_probe_over_tls_does_not_verify_the_certificate(server_tls):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_tls / "cert.pem", server_tls / "key.pem")
    with serve(200, context) as (url, seen):
        assert clients.probe(url, timeout=5) is True
    assert seen == ["/v2/"]


def test_probe_of_a_registry_requiring_client_certificates_is_true(server_tls):
    # GIVEN a TLS server that, like the registry with tls-client-auth, requires a client
    # certificate: the handshake fails on its side, it sends the alert and closes
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_tls / "cert.pem", server_tls / "key.pem")
    context.load_verify_locations(server_tls / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    server_errors: list[str] = []

    def accept_one():
        conn, _ = listener.accept()
        tls_conn = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        try:
            tls_conn.do_handshake()
        except ssl.SSLError as exc:
            server_errors.append(exc.reason)
        done.wait(5)  # keep the socket until the client has read the alert
        tls_conn.close()

    done = threading.Event()
    thread = threading.Thread(target=accept_one, daemon=True)
    thread.start()
    try:
        # WHEN probing without a client certificate
        answered = clients.probe(f"https://127.0.0.1:{listener.getsockname()[1]}", timeout=5)
    finally:
        done.set()
        thread.join(5)
        listener.close()
    # THEN the registry counts as up
    assert server_errors == ["PEER_DID_NOT_RETURN_A_CERTIFICATE"]
    assert answered is True


@pytest.mark.parametrize(
    "alert,answering",
    [
        ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required", True),
        ("[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate", True),  # Go, TLS 1.2
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number", False),
    ],
)
def test_probe_reads_tls_alerts(monkeypatch, alert, answering):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError(ssl.SSLError(1, alert))

    monkeypatch.setattr(clients.urllib.request, "urlopen", refuse)
    assert clients.probe("https://127.0.0.1:1") is answering


@pytest.mark.parametrize(
    "text",
    ["10.0.0.1", "fd00::1", "[fd00::1]", "haproxy-0", "registry.example.com", "a.b.c."],
)
def test_is_host_accepts_addresses_and_dns_names(text):
    assert clients.is_host(text)


@pytest.mark.parametrize(
    "text",
    ["", "not an address", "-lead.example", "x" * 64, "a..b", "10.0.0.1:5000", "h/p", "é.com"],
)
def test_is_host_refuses_anything_else(text):
    assert not clients.is_host(text)
