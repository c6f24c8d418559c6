#!/usr/bin/env python3
"""Nagios check installed by the docker-registry charm: does the registry answer /v2/?"""

import argparse
import base64
import ssl
import sys
import time
import urllib.error
import urllib.request


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="scheme://address:port of the registry")
    parser.add_argument("--ca-file", default="", help="CA certificate for https")
    parser.add_argument("--credentials-file", default="", help="file holding user:password")
    parser.add_argument("--client-cert", default="", help="client certificate (mutual TLS)")
    parser.add_argument("--client-key", default="", help="its private key")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    url = args.url.rstrip("/") + "/v2/"
    if not url.startswith(("http://", "https://")):
        print(f"CRITICAL: {args.url} is not an http(s) URL")
        return 2
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url, headers={"User-Agent": "check_docker_registry"}
    )
    with_credentials = bool(args.credentials_file)
    if with_credentials:
        try:
            with open(args.credentials_file, encoding="utf-8") as handle:
                secret = handle.read().strip()
        except OSError as exc:
            print(f"CRITICAL: cannot read the credentials file: {exc.strerror}")
            return 2
        token = base64.b64encode(secret.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = None
    if url.startswith("https://"):
        try:
            context = ssl.create_default_context(cafile=args.ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            print(f"CRITICAL: cannot load the CA file {args.ca_file}: {exc}")
            return 2
        if args.client_cert:
            try:
                context.load_cert_chain(args.client_cert, args.client_key or None)
            except (OSError, ssl.SSLError) as exc:
                print(f"CRITICAL: cannot load the client certificate {args.client_cert}: {exc}")
                return 2
    started = time.monotonic()
    try:
        with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked above
            request, timeout=args.timeout, context=context
        ) as resp:
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except urllib.error.URLError as exc:
        print(f"CRITICAL: {url}: {exc.reason}")
        return 2
    except (OSError, ValueError) as exc:
        print(f"CRITICAL: {url}: {exc}")
        return 2
    took = time.monotonic() - started
    if code == 200:
        print(f"OK: {url} answered 200 in {took:.3f}s")
        return 0
    if code == 401 and not with_credentials:
        print(f"OK: {url} answered 401 (authentication required) in {took:.3f}s")
        return 0
    if code == 401:
        print(f"CRITICAL: {url} rejected the check's credentials (401)")
        return 2
    print(f"CRITICAL: {url} answered HTTP {code}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
