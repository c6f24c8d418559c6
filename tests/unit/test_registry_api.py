"""registry_api against a small in-process HTTP server speaking the registry's v2 API."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from charms.layer.docker_registry.images import registry_api
from charms.layer.docker_registry.images.registry_api import Registry, RegistryApiError

SECRET = "api-s3cr3t"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


class FakeRegistry:
    def __init__(self):
        self.repos = {"a/x": {"1": DIGEST_A, "2": DIGEST_A, "3": DIGEST_B}, "b": {}, "c/y": {}}
        self.requests: list[tuple[str, str, dict]] = []
        self.auth: str | None = None  # expected Authorization header
        self.challenge = 'Basic realm="r"'
        self.delete_enabled = True


@pytest.fixture
def fake():
    state = FakeRegistry()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status, body=None, headers=None):
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _route(self):
            state.requests.append((self.command, self.path, dict(self.headers)))
            if state.auth and self.headers.get("Authorization") != state.auth:
                return self._send(
                    401,
                    {"errors": [{"code": "UNAUTHORIZED"}]},
                    {"WWW-Authenticate": state.challenge},
                )
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if parts.path == "/v2/":
                return self._send(200, {})
            if parts.path == "/v2/_catalog":
                n = int(query.get("n", ["100"])[0])
                if n > 1000:
                    return self._send(400, {"errors": [{"code": "PAGINATION_NUMBER_INVALID"}]})
                names = sorted(state.repos)
                last = query.get("last", [""])[0]
                names = [r for r in names if r > last]
                page, more = names[:n], len(names) > n
                headers = {}
                if more:
                    headers["Link"] = f'</v2/_catalog?last={page[-1]}&n={n}>; rel="next"'
                return self._send(200, {"repositories": page}, headers)
            repo, _, _rest = parts.path[len("/v2/") :].partition("/tags/list")
            if parts.path.endswith("/tags/list"):
                if repo not in state.repos or not state.repos[repo]:
                    return self._send(404, {"errors": [{"code": "NAME_UNKNOWN"}]})
                return self._send(200, {"name": repo, "tags": sorted(state.repos[repo])})
            repo, _, ref = parts.path[len("/v2/") :].partition("/manifests/")
            tags = state.repos.get(repo, {})
            if self.command == "HEAD":
                digest = tags.get(ref) or (ref if ref in tags.values() else None)
                if not digest:
                    return self._send(404)
                return self._send(200, headers={"Docker-Content-Digest": digest})
            if self.command == "DELETE":
                if not state.delete_enabled:
                    return self._send(405, {"errors": [{"code": "UNSUPPORTED"}]})
                if ref not in tags.values():
                    return self._send(404)
                state.repos[repo] = {t: d for t, d in tags.items() if d != ref}
                return self._send(202)
            return self._send(404)

        do_GET = do_HEAD = do_DELETE = _route

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def test_catalog_follows_link_pages(fake):
    api = Registry(fake.url)
    assert api.catalog(page_size=1) == ["a/x", "b", "c/y"]
    catalog_calls = [p for m, p, _ in fake.requests if p.startswith("/v2/_catalog")]
    assert catalog_calls == [
        "/v2/_catalog?n=1",
        "/v2/_catalog?last=a/x&n=1",
        "/v2/_catalog?last=b&n=1",
    ]


def test_catalog_falls_back_to_a_smaller_page_when_the_registry_refuses(fake):
    assert Registry(fake.url).catalog(page_size=5000) == ["a/x", "b", "c/y"]


def test_list_images_with_filters_and_missing_tag_lists(fake):
    api = Registry(fake.url)
    assert api.list_images() == {"a/x": ["1", "2", "3"], "b": [], "c/y": []}
    assert list(api.list_images("a")) == ["a/x"]
    assert list(api.list_images("*/y")) == ["c/y"]
    assert api.list_images("nothing") == {}


def test_digest_asks_for_every_manifest_type(fake):
    api = Registry(fake.url)
    assert api.digest("a/x", "1") == DIGEST_A
    accept = fake.requests[-1][2]["Accept"]
    for media_type in registry_api.MANIFEST_TYPES:
        assert media_type in accept
    assert api.digest("a/x", "nope") is None
    assert api.tag_digests("a/x") == {"1": DIGEST_A, "2": DIGEST_A, "3": DIGEST_B}


def test_delete_by_digest_and_its_errors(fake):
    api = Registry(fake.url)
    with pytest.raises(RegistryApiError, match="not a sha256 digest"):
        api.delete_manifest("a/x", "1")
    api.delete_manifest("a/x", DIGEST_A)
    assert fake.repos["a/x"] == {"3": DIGEST_B}
    with pytest.raises(RegistryApiError, match="is not in the registry"):
        api.delete_manifest("a/x", DIGEST_A)
    fake.delete_enabled = False
    with pytest.raises(RegistryApiError, match="storage-delete=true"):
        api.delete_manifest("a/x", DIGEST_B)


def test_basic_auth_header_and_errors_without_the_secret(fake):
    fake.auth = "Basic " + base64.b64encode(f"admin:{SECRET}".encode()).decode()
    Registry(fake.url, "admin", SECRET).ping()
    with pytest.raises(RegistryApiError) as exc:
        Registry(fake.url, "admin", "wrong").ping()
    assert "refused the charm's credentials" in str(exc.value)
    assert exc.value.status == 401
    with pytest.raises(RegistryApiError, match="requires authentication"):
        Registry(fake.url).catalog()
    fake.challenge = 'Bearer realm="https://auth"'
    with pytest.raises(RegistryApiError, match="token auth"):
        Registry(fake.url, "admin", "bad").ping()
    assert SECRET not in repr(Registry(fake.url, "admin", SECRET))


def test_keep_alive_reuses_one_connection_per_thread(fake):
    api = Registry(fake.url)
    api.ping()
    first = api._local.conn
    api.ping()
    assert api._local.conn is first


def test_no_answer_is_a_clear_error():
    with pytest.raises(RegistryApiError, match="no answer from the registry") as exc:
        Registry("http://127.0.0.1:9", timeout=2).ping()
    assert exc.value.status == 0


def test_bad_urls_are_refused():
    with pytest.raises(RegistryApiError):
        Registry("ftp://x")


@pytest.mark.parametrize(
    ("repo", "pattern", "expected"),
    [
        ("cdk/pause", "", True),
        ("cdk/pause", "cdk", True),
        ("cdk/pause", "cdk/", True),
        ("cdkx/pause", "cdk", False),
        ("cdk/coredns/coredns", "cdk/*/coredns", True),
        ("cdk", "cdk", True),
    ],
)
def test_matches(repo, pattern, expected):
    assert registry_api.matches(repo, pattern) is expected


def test_format_listing():
    assert registry_api.format_listing({}) == "no repositories"
    text = registry_api.format_listing({"a": ["1", "2"], "long/name": []})
    assert text.splitlines() == ["a          1, 2", "long/name  (no tags)"]


def test_next_link_is_relative_to_the_request():
    assert registry_api._next_link('</v2/_catalog?last=b&n=2>; rel="next"', "/v2/_catalog") == (
        "/v2/_catalog?last=b&n=2"
    )
    assert registry_api._next_link("", "/v2/_catalog") == ""


# -- mutual TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtls(tmp_path_factory):
    """A TLS server that, like the registry with tls-client-auth, requires a client cert."""
    import ssl

    from tests.support import certs

    ca, ca_key, ca_cert = certs.make_ca()
    server = certs.make_server_cert(ca_key, ca_cert, "127.0.0.1", ["127.0.0.1"])
    client = certs.make_client_cert(ca_key, ca_cert)
    _other, other_key, other_cert = certs.make_ca("other-ca")
    stranger = certs.make_client_cert(other_key, other_cert)
    d = tmp_path_factory.mktemp("mtls")
    for name, text in {
        "ca.pem": ca.cert,
        "server.pem": server.cert,
        "server.key": server.key,
        "client.cert": client.cert,
        "client.key": client.key,
        "stranger.cert": stranger.cert,
        "stranger.key": stranger.key,
    }.items():
        (d / name).write_text(text)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "server.pem", d / "server.key")
    context.load_verify_locations(d / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED

    class MutualTlsServer(ThreadingHTTPServer):
        def finish_request(self, request, client_address):
            conn = context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                conn.do_handshake()
            except (ssl.SSLError, OSError):
                time.sleep(0.5)  # like the registry: the alert reaches the client, then close
                return
            Handler(conn, client_address, self)

    httpd = MutualTlsServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield d, f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_the_client_certificate_is_presented(mtls):
    d, url = mtls
    api = Registry(
        url, ca_file=str(d / "ca.pem"), client_pair=(d / "client.cert", d / "client.key")
    )
    api.ping()


def test_without_a_client_certificate_the_error_says_so(mtls):
    d, url = mtls
    with pytest.raises(RegistryApiError, match="requires a client certificate") as exc:
        Registry(url, ca_file=str(d / "ca.pem"), timeout=5).ping()
    assert "this unit has none" in str(exc.value)


def test_a_refused_client_certificate_is_named(mtls):
    d, url = mtls
    api = Registry(
        url, ca_file=str(d / "ca.pem"), client_pair=(d / "stranger.cert", d / "stranger.key")
    )
    with pytest.raises(RegistryApiError, match="refused this unit's"):
        api.ping()


def test_an_unreadable_client_certificate_is_a_clear_error(mtls, tmp_path):
    _, url = mtls
    with pytest.raises(RegistryApiError, match="cannot load the client certificate") as exc:
        Registry(url, client_pair=(str(tmp_path / "none.cert"), str(tmp_path / "none.key")))
    assert "PRIVATE" not in str(exc.value)
