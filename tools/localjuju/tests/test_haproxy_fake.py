"""The haproxy-like fake: merge and render as the haproxy charm does, real haproxy runs."""

from __future__ import annotations

import http.server
import shutil
import socket
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.net import free_port
from tools.localjuju.fakes import FAKES
from tools.localjuju.fakes import haproxy as fake
from tools.localjuju.fakes.base import Fake

pytestmark = pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")

HTTP_SERVICE = {
    "service_name": "docker-registry",
    "service_host": "0.0.0.0",
    "service_port": 5000,
    "service_options": [
        "mode http",
        "option httplog",
        "balance leastconn",
        "option httpchk GET /v2/",
        "http-check expect rstatus (200|401)",
        "timeout client 60s",
    ],
    "servers": [
        ["docker-registry-0", "127.0.0.2", 5000, "check inter 2000 rise 2 fall 3"],
        ["docker-registry-1", "127.0.0.3", 5000, "check inter 2000 rise 2 fall 3 backup"],
    ],
}
TCP_SERVICE = {
    **HTTP_SERVICE,
    "service_options": [
        "mode tcp",
        "option tcplog",
        "balance leastconn",
        "option httpchk GET /v2/",
        "http-check expect rstatus (200|401)",
    ],
    "servers": [
        ["docker-registry-0", "127.0.0.2", 5000, "check check-ssl verify none"],
        ["docker-registry-1", "127.0.0.3", 5000, "check check-ssl verify none backup"],
    ],
}


def sections(cfg: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in cfg.splitlines():
        if line and not line.startswith(" "):
            current = line
            out[current] = []
        elif line.strip() and current:
            out[current].append(line.strip())
    return out


def haproxy_check(tmp_path: Path, cfg: str) -> None:
    path = tmp_path / "check.cfg"
    path.write_text(cfg)
    fake.HaproxyProcess(tmp_path).check(path)  # raises with haproxy's output


# ---------------------------------------------------------------- render


def test_render_http_service_like_the_haproxy_charm(tmp_path):
    cfg = fake.render({"docker-registry": HTTP_SERVICE}, "haproxy/0", "127.0.0.9")
    s = sections(cfg)
    assert s["frontend haproxy-0-5000"] == [
        "bind 127.0.0.9:5000",
        "default_backend docker-registry",
        "mode http",
        "option httplog",
        "timeout client 60s",
    ]
    assert s["backend docker-registry"] == [
        "mode http",
        "option httplog",
        "balance leastconn",
        "option httpchk GET /v2/",
        "http-check expect rstatus (200|401)",
        "server docker-registry-0 127.0.0.2:5000 check inter 2000 rise 2 fall 3",
        "server docker-registry-1 127.0.0.3:5000 check inter 2000 rise 2 fall 3 backup",
    ]
    assert "global" in s and "defaults" in s
    assert "listen stats" not in s
    haproxy_check(tmp_path, cfg)


def test_render_tcp_service_and_stats(tmp_path):
    cfg = fake.render({"docker-registry": TCP_SERVICE}, "haproxy/1", "127.0.0.9", 10000)
    s = sections(cfg)
    assert s["frontend haproxy-1-5000"][2:] == ["mode tcp", "option tcplog"]
    assert s["backend docker-registry"][:2] == ["mode tcp", "option tcplog"]
    assert "mode http" not in s["backend docker-registry"]
    assert any("check-ssl verify none backup" in line for line in s["backend docker-registry"])
    assert s["listen stats"][0] == "bind 127.0.0.9:10000"
    haproxy_check(tmp_path, cfg)


def test_render_refuses_two_services_on_one_port():
    other = {**HTTP_SERVICE, "service_name": "other"}
    with pytest.raises(ValueError, match="both use port 5000"):
        fake.render({"a": HTTP_SERVICE, "other": other}, "haproxy/0", "127.0.0.9")


def test_server_options_as_list_or_missing():
    service = {
        **HTTP_SERVICE,
        "servers": [["a", "10.0.0.1", 80, ["check", "backup"]], ["b", "10.0.0.2", 80]],
    }
    s = sections(fake.render({"x": service}, "haproxy/0", "127.0.0.9"))
    assert "server a 10.0.0.1:80 check backup" in s["backend x"]
    assert "server b 10.0.0.2:80" in s["backend x"]


# ---------------------------------------------------------------- merge


def test_merge_first_seen_wins_servers_unioned():
    leader = {**HTTP_SERVICE}
    other = {
        **HTTP_SERVICE,
        "service_port": 6000,
        "service_options": ["mode tcp"],
        "servers": [
            HTTP_SERVICE["servers"][1],  # strict duplicate: dropped
            ["docker-registry-2", "127.0.0.4", 5000, "check backup"],
        ],
        "extra": "kept",  # a key only the later unit has is kept
    }
    units = [
        ("docker-registry/0", {"services": yaml.safe_dump([leader])}),
        ("docker-registry/1", {"services": yaml.safe_dump([other])}),
    ]
    merged = fake.merge_units(units)["docker-registry"]
    assert merged["service_port"] == 5000
    assert merged["service_options"] == HTTP_SERVICE["service_options"]
    assert merged["extra"] == "kept"
    assert [s[0] for s in merged["servers"]] == [
        "docker-registry-0",
        "docker-registry-1",
        "docker-registry-2",
    ]


def test_merge_separate_services_and_bare_units():
    a = {**HTTP_SERVICE, "service_name": "a"}
    units = [
        ("x/0", {"services": yaml.safe_dump([a])}),
        ("y/0", {"private-address": "10.0.0.7", "port": "8080"}),  # no services
        ("y/1", {"services": ""}),  # nothing at all: ignored
    ]
    merged = fake.merge_units(units)
    assert list(merged) == ["a", "haproxy_service"]
    assert merged["haproxy_service"]["service_port"] == 80
    assert merged["haproxy_service"]["servers"][0][:3] == ["y-0", "10.0.0.7", "8080"]


def test_split_options_frontend_only_and_dupes():
    front, back = fake.split_options(
        ["mode http", "option httplog", "maxconn 10", "acl x path /", "balance roundrobin"]
    )
    assert front == ["mode http", "option httplog", "maxconn 10", "acl x path /"]
    assert back == ["mode http", "option httplog", "balance roundrobin"]


# ---------------------------------------------------------------- a real haproxy


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b"?"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@contextmanager
def backend(body: bytes, address: str = "127.0.0.1"):
    handler = type("H", (_Handler,), {"body": body})
    httpd = http.server.ThreadingHTTPServer((address, 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def get(url: str, attempts: int = 50) -> bytes:
    """GET with retries while haproxy starts / checks settle."""
    import time

    last = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.read()
        except (urllib.error.URLError, ConnectionError) as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"{url}: {last}")


def refused(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((address, port)) != 0


def service(port: int, servers: list) -> dict:
    return {
        **HTTP_SERVICE,
        "service_port": port,
        "service_options": ["mode http", "option httplog", "balance leastconn"],
        "servers": servers,
    }


def test_real_haproxy_start_reload_stop(tmp_path):
    proc = fake.HaproxyProcess(tmp_path / "h")
    front = free_port("")
    with backend(b"one") as p1, backend(b"two") as p2:
        try:
            cfg = fake.render(
                {"svc": service(front, [["one", "127.0.0.1", p1, None]])}, "haproxy/0", "127.0.0.1"
            )
            assert proc.apply(cfg) == "started"
            assert get(f"http://127.0.0.1:{front}/v2/") == b"one"
            assert proc.apply(cfg) == "unchanged"
            (first_pid,) = proc.pids()

            cfg2 = fake.render(
                {"svc": service(front, [["two", "127.0.0.1", p2, None]])}, "haproxy/0", "127.0.0.1"
            )
            assert proc.apply(cfg2) == "reloaded"
            assert get(f"http://127.0.0.1:{front}/v2/") == b"two"
            assert first_pid not in proc.pids()  # -sf: the old process finished

            with pytest.raises(RuntimeError, match="haproxy -c failed"):
                proc.apply(cfg2.replace("balance leastconn", "balance no-such-algo"))
            assert get(f"http://127.0.0.1:{front}/v2/") == b"two"  # still the valid config
        finally:
            proc.stop()
    assert not proc.running
    assert refused("127.0.0.1", front)


# ---------------------------------------------------------------- in the local model


class BackendFake(Fake):
    """Stands in for the registry charm: provides `website`, every unit publishes one server
    (pointing at a python http.server on 127.0.0.1) into the same service."""

    ENDPOINTS = {"website": ("provides", "http")}
    PORTS: dict[str, int] = {}
    FRONT = 0

    def on_relation(self, ctx):
        if ctx.kind not in ("joined", "changed"):
            return
        svc = service(
            self.FRONT,
            [[ctx.unit.replace("/", "-"), "127.0.0.1", self.PORTS[ctx.unit], "check inter 500"]],
        )
        ctx.set(ctx.relation_id, services=yaml.safe_dump([svc]), port=self.PORTS[ctx.unit])


@pytest.fixture
def backend_fake(monkeypatch):
    monkeypatch.setitem(FAKES, "backend", BackendFake)
    monkeypatch.setattr(BackendFake, "PORTS", {})
    monkeypatch.setattr(BackendFake, "FRONT", free_port(""))
    return BackendFake


def haproxy_cfg(ctl) -> str:
    path = ctl.model.fake_dir("haproxy") / "haproxy-0" / "haproxy.cfg"
    return path.read_text() if path.exists() else ""


def test_in_model_merge_update_public_address_and_destroy(ctl, backend_fake):
    with backend(b"zero") as p0, backend(b"one") as p1:
        backend_fake.PORTS.update({"web/0": p0, "web/1": p1})
        try:
            ctl.deploy("fake:backend", "web", num_units=2)
            ctl.deploy("fake:haproxy", "haproxy", config={"enable_monitoring": "true"})
            ctl.integrate("web:website", "haproxy:reverseproxy")
            state = ctl.model.read()
            address = state["units"]["haproxy/0"]["address"]
            front = backend_fake.FRONT
            cfg = haproxy_cfg(ctl)
            assert f"frontend haproxy-0-{front}" in cfg
            assert f"bind {address}:{front}" in cfg
            assert "server web-0 " in cfg and "server web-1 " in cfg  # merged across units
            assert get(f"http://{address}:{front}/v2/") in (b"zero", b"one")
            assert b"web-0" in get(f"http://{address}:10000/;csv")
            rel = next(iter(state["relations"].values()))
            assert rel["unit_data"]["haproxy/0"]["public-address"] == address
            status = ctl.status()["applications"]["haproxy"]["units"]["haproxy/0"]
            assert status["workload-status"]["current"] == "active"

            ctl.remove_unit("web/1")
            cfg = haproxy_cfg(ctl)
            assert "server web-0 " in cfg and "web-1" not in cfg
            assert get(f"http://{address}:{front}/v2/") == b"zero"

            pidfile = ctl.model.fake_dir("haproxy") / "haproxy-0" / "haproxy.pid"
            assert pidfile.exists()
            ctl.destroy()
            assert not (ctl.model.fake_dir("haproxy") / "haproxy-0").exists()
            assert refused(address, front)
            assert ctl.model.read()["units"] == {}
        finally:
            fake.HaproxyProcess(ctl.model.fake_dir("haproxy") / "haproxy-0").stop()


def test_in_model_relation_removed_stops_haproxy(ctl, backend_fake):
    with backend(b"zero") as p0:
        backend_fake.PORTS.update({"web/0": p0})
        try:
            ctl.deploy("fake:backend", "web")
            ctl.deploy("fake:haproxy", "haproxy")
            ctl.integrate("web", "haproxy")
            address = ctl.model.read()["units"]["haproxy/0"]["address"]
            assert get(f"http://{address}:{backend_fake.FRONT}/v2/") == b"zero"
            ctl.remove_relation("web", "haproxy")
            assert refused(address, backend_fake.FRONT)
            assert haproxy_cfg(ctl) == ""
            status = ctl.status()["applications"]["haproxy"]["units"]["haproxy/0"]
            assert status["workload-status"]["current"] == "waiting"
        finally:
            ctl.destroy()


# ---------------------------------------------------------------- the charm's services, for real


class _RegistryHandler(_Handler):
    status = 401

    def do_GET(self):
        body = self.body if self.path == "/v2/" or self.status == 200 else b"?"
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def registry_like(body: bytes, status: int = 401, tls=None, tmp: Path | None = None):
    """Answers /v2/ like a registry with auth (401), optionally over TLS."""
    import ssl

    handler = type("R", (_RegistryHandler,), {"body": body, "status": status})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        (tmp / f"{body.decode()}.crt").write_text(tls.cert)
        (tmp / f"{body.decode()}.key").write_text(tls.key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / f"{body.decode()}.crt", tmp / f"{body.decode()}.key")
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def server_states(stats_port: int) -> dict[str, str]:
    import csv
    import io

    raw = get(f"http://127.0.0.1:{stats_port}/;csv").decode().lstrip("# ")
    return {
        row["svname"]: row["status"]
        for row in csv.DictReader(io.StringIO(raw))
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


def wait_states(stats_port: int, want: dict[str, str], timeout: float = 15) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while True:
        states = server_states(stats_port)
        if all(states.get(k, "").startswith(v) for k, v in want.items()):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"server states {states}, wanted {want}")
        time.sleep(0.2)


def fetch(url: str, cafile: str | None = None) -> tuple[int, bytes]:
    import ssl

    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.parametrize("tls", [False, True], ids=["http", "tls-passthrough"])
def test_charm_services_active_passive_through_real_haproxy(tmp_path, tls):
    from charms.layer.docker_registry.pipeline import proxy
    from tests.support import certs

    pair = ca_file = None
    if tls:
        ca, ca_key, ca_cert = certs.make_ca()
        pair = certs.make_server_cert(ca_key, ca_cert, "127.0.0.1", ["127.0.0.1"])
        ca_file = tmp_path / "ca.crt"
        ca_file.write_text(ca.cert)
    scheme = "https" if tls else "http"
    front, stats = free_port(""), free_port("")
    proc = fake.HaproxyProcess(tmp_path / "h")
    with (
        registry_like(b"primary", tls=pair, tmp=tmp_path) as (p2, primary_handler),
        registry_like(b"backup", tls=pair, tmp=tmp_path) as (p10, _),
    ):
        units = {"docker-registry/10": "127.0.0.1", "docker-registry/2": "127.0.0.1"}
        (svc,) = proxy.services(units, 5000, tls=tls, service_port=front)
        for server in svc["servers"]:  # both registries share 127.0.0.1 here
            server[2] = {"docker-registry-2": p2, "docker-registry-10": p10}[server[0]]
        merged = fake.merge_units([("docker-registry/2", {"services": yaml.safe_dump([svc])})])
        try:
            proc.apply(fake.render(merged, "haproxy/0", "127.0.0.1", stats))
            # health checks (over TLS for tls) accept the registry's 401
            wait_states(stats, {"docker-registry-2": "UP", "docker-registry-10": "UP"})
            code, body = fetch(f"{scheme}://127.0.0.1:{front}/v2/", ca_file and str(ca_file))
            assert (code, body) == (401, b"primary")  # /2 is primary, not /10
            # the primary turns unhealthy (500 on /v2/): the check sees it, the backup serves
            primary_handler.status = 500
            wait_states(stats, {"docker-registry-2": "DOWN", "docker-registry-10": "UP"})
            code, body = fetch(f"{scheme}://127.0.0.1:{front}/v2/", ca_file and str(ca_file))
            assert (code, body) == (401, b"backup")
            primary_handler.status = 401
            wait_states(stats, {"docker-registry-2": "UP"})
            assert fetch(f"{scheme}://127.0.0.1:{front}/v2/", ca_file and str(ca_file))[1] == (
                b"primary"
            )
        finally:
            proc.stop()
