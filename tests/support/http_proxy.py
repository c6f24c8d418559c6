"""A tiny forwarding HTTP proxy that asks for credentials and logs what it is asked for: the
egress proxy a registry's `registry-http-proxy` names, to show that the registry really
goes through it (with the credentials the option holds).

    with auth_proxy("172.17.0.1", "user", "password") as proxy:
        url = proxy.url_with_credentials          # http://user:password@172.17.0.1:<port>
        ...
        proxy.requests                            # [(method, absolute URL, authorized), ...]

Plain http only (no CONNECT): what a client sends an http:// proxy for an http:// URL. A
request without the right `Proxy-Authorization` gets 407 and goes nowhere.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.net import free_port

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te"}


@dataclass
class AuthProxy:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def url_with_credentials(self) -> str:
        return f"http://{self.user}:{self.password}@{self.host}:{self.port}"

    def forwarded(self) -> list[str]:
        """The URLs it forwarded (asked with the right credentials)."""
        return [url for _method, url, authorized in self.requests if authorized]


def _handler(proxy: AuthProxy) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{proxy.user}:{proxy.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):
            pass

        def _forward(self) -> None:
            authorized = self.headers.get("Proxy-Authorization", "") == expected
            # the absolute URI it was asked for (the request line may hold only the path)
            target = urllib.parse.urlsplit(self.path)
            if not target.netloc:
                target = urllib.parse.urlsplit(f"http://{self.headers['Host']}{self.path}")
            proxy.requests.append((self.command, target.geturl(), authorized))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if not authorized:
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="egress"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
            path = target.path + (f"?{target.query}" if target.query else "")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, path or "/", body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP | {"transfer-encoding", "content-length"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler


@contextlib.contextmanager
def auth_proxy(host: str, user: str, password: str) -> Iterator[AuthProxy]:
    proxy = AuthProxy(host, free_port(host), user, password)
    server = ThreadingHTTPServer((host, proxy.port), _handler(proxy))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
