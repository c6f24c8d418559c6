#!/usr/bin/env python3
"""Nagios check installed by the docker-registry charm: does the registry answer /v2/?"""

from __future__ import annotations

import argparse
import base64
import ssl
import sys
import time
import urllib.error
import urllib.request


class Critical(Exception):
    """What the check prints before exiting 2."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="scheme://address:port of the registry")
    parser.add_argument("--ca-file", default="", help="CA certificate for https")
    parser.add_argument("--credentials-file", default="", help="file holding user:password")
    parser.add_argument("--client-cert", default="", help="client certificate (mutual TLS)")
    parser.add_argument("--client-key", default="", help="its private key")
    parser.add_argument("--timeout", type=float, default=10.0)
    return parser.parse_args(argv)


def _request(args: argparse.Namespace, url: str) -> urllib.request.Request:
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked by main
        url, headers={"User-Agent": "check_docker_registry"}
    )
    if args.credentials_file:
        try:
            with open(args.credentials_file, encoding="utf-8") as handle:
                secret = handle.read().strip()
        except OSError as exc:
            raise Critical(f"cannot read the credentials file: {exc.strerror}") from exc
        token = base64.b64encode(secret.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def _tls_context(args: argparse.Namespace, url: str) -> ssl.SSLContext | None:
    if not url.startswith("https://"):
        return None
    try:
        context = ssl.create_default_context(cafile=args.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise Critical(f"cannot load the CA file {args.ca_file}: {exc}") from exc
    if args.client_cert:
        try:
            context.load_cert_chain(args.client_cert, args.client_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise Critical(
                f"cannot load the client certificate {args.client_cert}: {exc}"
            ) from exc
    return context


def _get(
    request: urllib.request.Request, url: str, timeout: float, context: ssl.SSLContext | None
) -> tuple[int, float]:
    """(HTTP status, seconds taken)."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked by main
            request, timeout=timeout, context=context
        ) as resp:
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except urllib.error.URLError as exc:
        raise Critical(f"{url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise Critical(f"{url}: {exc}") from exc
    return code, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    url = args.url.rstrip("/") + "/v2/"
    try:
        if not url.startswith(("http://", "https://")):
            raise Critical(f"{args.url} is not an http(s) URL")
        code, took = _get(_request(args, url), url, args.timeout, _tls_context(args, url))
    except Critical as exc:
        print(f"CRITICAL: {exc}")
        return 2
    if code == 200:
        print(f"OK: {url} answered 200 in {took:.3f}s")
        return 0
    if code == 401 and not args.credentials_file:
        print(f"OK: {url} answered 401 (authentication required) in {took:.3f}s")
        return 0
    if code == 401:
        print(f"CRITICAL: {url} rejected the check's credentials (401)")
        return 2
    print(f"CRITICAL: {url} answered HTTP {code}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
