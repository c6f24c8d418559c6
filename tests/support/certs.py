"""Real X.509 material for tests (a CA and server certificates), made with `cryptography`.

The helpers live in tools/localjuju/certs.py, shared with the local model's faulty-easyrsa
fake (tools/ must not import tests/); this module keeps the names the tests use.
"""

from __future__ import annotations

from tools.localjuju.certs import (
    USAGES,
    Pair,
    make_ca,
    make_client_cert,
    make_server_cert,
)

__all__ = ["USAGES", "Pair", "make_ca", "make_client_cert", "make_server_cert"]
