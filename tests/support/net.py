"""Small network helpers shared by the tests: a free TCP port, an HTTP GET's status code."""

from __future__ import annotations

import base64
import socket
import ssl
import urllib.error
import urllib.request


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now ("" means all addresses)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def get_status(url: str, *, user=None, password=None, ca=None, timeout: float = 10) -> int:
    """GET ``url`` and return the HTTP status (error statuses too, never raised).

    ``user``/``password`` add a basic-auth header; ``ca`` is a CA file to verify TLS against.
    """
    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=ca) if ca else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
