"""A real S3 endpoint for tests: `moto_server` on a free port, buckets made over plain HTTP.

    with moto_s3(host=docker_bridge_gateway()) as s3:
        s3.create_bucket("registry")
        config = s3.charm_options("registry")  # storage-s3-region/bucket/keys/endpoint/secure

Reaching it from a registry *container* (default bridge network): bind moto on the bridge
gateway address (`docker_bridge_gateway()`, usually 172.17.0.1). That address belongs to the
host, so host-side clients (tests, skopeo) use the same URL, and the registry container keeps
its normal `--publish` networking (`--network host` would make every registry listen on :5000 of
the host, clashing with other units/tests). `host="0.0.0.0"` works as well (then `url` names
127.0.0.1; use `url_for(address)` for containers).

moto checks every request's signature (SigV4 by moto itself, SigV2 by
tests/support/moto_server.py, both with botocore's signers) against the one IAM user it is
started with, who owns `access_key`/`secret_key`: a client holding another secret is refused
(403 SignatureDoesNotMatch). `create_bucket`, `buckets`, `keys` and `get` send SigV4-signed
urllib requests (no boto3 in the main venv). The registry must run
without `AWS_CA_BUNDLE` in its environment (its S3 client then fails on moto): it gets none unless
passed.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.utils
import hashlib
import hmac
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def moto_command() -> list[str]:
    """moto_server, through tests/support/moto_server.py (fixes moto's SigV2 dispatch) run by
    the python of moto's own venv."""
    script = Path(moto_server_path()).resolve()
    first = script.read_text(errors="replace").split("\n", 1)[0]
    python = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    return [python, str(Path(__file__).with_name("moto_server.py"))]


def moto_server_path() -> str:
    local = REPO_ROOT / ".venv" / "bin" / "moto_server"
    if local.exists():
        return str(local)
    found = shutil.which("moto_server")
    if not found:
        raise FileNotFoundError("moto_server not found (.venv/bin/moto_server or PATH)")
    return found


def docker_bridge_gateway(network: str = "bridge") -> str:
    """The host's address on a Docker network (what containers reach the host through).

    Read from the bridge interface itself: after dockerd reloads, `docker network inspect` may
    list the IPAM config without its Gateway field, while the interface keeps its address."""
    inspect = json.loads(
        subprocess.run(
            ["docker", "network", "inspect", network, "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    )
    bridge = (inspect.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    addresses = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", bridge], capture_output=True, text=True
    ).stdout.split()
    if "inet" in addresses:
        return addresses[addresses.index("inet") + 1].split("/")[0]
    for entry in (inspect.get("IPAM") or {}).get("Config") or []:
        if entry.get("Gateway") and ":" not in entry["Gateway"]:
            return entry["Gateway"]
        if entry.get("Subnet") and ":" not in entry["Subnet"]:
            return str(next(ipaddress.ip_network(entry["Subnet"]).hosts()))
    raise RuntimeError(f"docker network {network} has no IPv4 address on the host")


def sigv4_headers(
    method: str, url: str, region: str, access_key: str, secret_key: str, payload: bytes = b""
) -> dict[str, str]:
    """AWS Signature Version 4 headers for one S3 request (stdlib only)."""
    parts = urllib.parse.urlsplit(url)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(payload).hexdigest()
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in query
    )
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(parts.path or "/", safe="/-_.~"),
            canonical_query,
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed,
            payload_hash,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload_hash,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        ),
    }


def sigv2_headers(method: str, url: str, access_key: str, secret_key: str) -> dict[str, str]:
    """AWS Signature Version 2 headers for one S3 request (stdlib only): HMAC-SHA1 over the
    method, an empty Content-MD5, the Content-Type, the Date and the resource."""
    date, content_type = email.utils.formatdate(usegmt=True), "application/octet-stream"
    to_sign = f"{method}\n\n{content_type}\n{date}\n{urllib.parse.urlsplit(url).path}"
    digest = hmac.new(secret_key.encode(), to_sign.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    return {
        "Date": date,
        "Content-Type": content_type,
        "Authorization": f"AWS {access_key}:{signature}",
    }


def http_request(
    method: str, url: str, data: bytes | None = None, headers: dict | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class S3Endpoint:
    url: (
        str  # http://host:port, what host-side clients (and, bound on the gateway, containers) use
    )
    region: str = "us-east-1"
    access_key: str = "moto-access-key"
    secret_key: str = field(default="moto-secret-key", repr=False)
    port: int = 0
    log: object = field(default=None, repr=False)  # moto_server's stdout+stderr (a file)

    def charm_options(self, bucket: str) -> dict:
        """The charm's storage-s3-* options for ``bucket`` on this endpoint (plain http)."""
        return {
            "storage-s3-region": self.region,
            "storage-s3-bucket": bucket,
            "storage-s3-accesskey": self.access_key,
            "storage-s3-secretkey": self.secret_key,
            "storage-s3-regionendpoint": self.url,
            "storage-s3-secure": False,
        }

    def url_for(self, address: str) -> str:
        """The endpoint as reached through another address of the host (e.g. the gateway)."""
        return f"http://{address}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        """The end of moto_server's log (tracebacks name moto-side failures)."""
        if self.log is None:
            return ""
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])

    def request(
        self, method: str, path: str, data: bytes | None = None, secret_key: str = ""
    ) -> tuple[int, bytes]:
        """A SigV4-signed request (``path`` starts with ``/``, may carry a query), signed with
        the endpoint's secret key unless another is given."""
        url = f"{self.url}{path}"
        headers = sigv4_headers(
            method, url, self.region, self.access_key, secret_key or self.secret_key, data or b""
        )
        return http_request(method, url, data, headers)

    def create_bucket(self, name: str) -> None:
        status, body = self.request("PUT", f"/{name}")
        if status != 200:
            raise RuntimeError(f"create bucket {name}: HTTP {status} {body[:200]!r}")

    def buckets(self) -> list[str]:
        _, body = self.request("GET", "/")
        return [e.text or "" for e in ET.fromstring(body).iter(f"{S3_NS}Name")]

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` (under ``prefix``), following continuation tokens."""
        keys: list[str] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            status, body = self.request("GET", f"/{bucket}?{urllib.parse.urlencode(query)}")
            if status != 200:
                raise RuntimeError(f"list {bucket}: HTTP {status} {body[:200]!r}")
            root = ET.fromstring(body)
            keys += [e.text or "" for e in root.iter(f"{S3_NS}Key")]
            token = root.findtext(f"{S3_NS}NextContinuationToken") or ""
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return keys

    def get(self, bucket: str, key: str) -> bytes:
        status, body = self.request("GET", f"/{bucket}/{urllib.parse.quote(key)}")
        if status != 200:
            raise RuntimeError(f"get {bucket}/{key}: HTTP {status}")
        return body


@contextlib.contextmanager
def moto_s3(
    host: str = "127.0.0.1", timeout: float = 30, secret_key: str = ""
) -> Iterator[S3Endpoint]:
    """Start moto_server on ``host``:<free port>, wait until it answers, stop it afterwards.
    Its user's secret key is ``secret_key`` when given (a value to look for in logs)."""
    port = free_port(host)
    url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url_host = f"[{url_host}]" if ":" in url_host else url_host
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    credentials = S3Endpoint(url="", **({"secret_key": secret_key} if secret_key else {}))
    env |= {
        "INITIAL_NO_AUTH_ACTION_COUNT": "0",  # every request's signature is checked
        "MOTO_S3_USER": f"{credentials.access_key}:{credentials.secret_key}",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [*moto_command(), "-H", host, "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    endpoint = S3Endpoint(
        url=f"http://{url_host}:{port}", port=port, log=log, secret_key=credentials.secret_key
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"moto_server exited {proc.returncode}: {log.read()[-2000:]!r}")
            try:
                if endpoint.request("GET", "/")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"moto_server did not answer on {endpoint.url}")
            time.sleep(0.1)
        yield endpoint
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()
