"""haproxy-like reverse proxy on the http interface (requires `reverseproxy`), real haproxy.

Wire format (as the haproxy charm reads it): every remote unit writes raw `hostname`,
`private-address`,
`port` and `services`, a YAML list of
`{service_name, service_host, service_port, service_options: [...], servers: [[name, ip, port,
options]]}`. Like the haproxy charm this fake

* merges entries with the same `service_name` across units: first seen wins for every key
  except `servers`, which are unioned (strict duplicates dropped); units are read in relation
  order, then unit-number order;
* adds a unit that wrote `port` but no `services` to the default service `haproxy_service`
  (port 80), as the haproxy charm does with its default `services` config;
* renders `frontend <haproxy-unit>-<service_port>` (bind, default_backend, frontend-only
  options) + `backend <service_name>` (the other options, then one `server <name> <ip>:<port>
  <options>` line per server); `mode …` and `option httplog|tcplog` go to both.

Local-model differences: the frontend binds this fake unit's own address (127.0.0.x) instead of
`service_host` (several proxy units share one host). Config `enable_monitoring=true` (as in the
haproxy charm) adds a stats listener on `<unit address>:<monitoring_port>` (default 10000;
`/;csv` gives every server's state, handy to see which backend is up).

Per unit, under <model>/fakes/<app>/<unit>/: haproxy.cfg, haproxy.pid, haproxy.log (haproxy's
own output). The config is checked with `haproxy -c` before it replaces the running one; the
process is started with `-D -p haproxy.pid` and reloaded with `-sf <old pids>`. It writes back
`public-address` (its own address). Relation broken with no backend left, `stop` and `remove`
(so also `destroy`) stop haproxy; `remove` deletes the unit's directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import yaml

from ..model import unit_dirname
from .base import Fake, FakeContext

HAPROXY = os.environ.get("LOCALJUJU_HAPROXY", "haproxy")
DEFAULT_SERVICE = {
    "service_name": "haproxy_service",
    "service_host": "0.0.0.0",
    "service_port": 80,
    "service_options": ["mode http", "balance leastconn", "option httpchk GET / HTTP/1.0"],
    "server_options": "check inter 2000 rise 2 fall 5 maxconn 100",
}

# as in the haproxy charm: options in both sections, and options only a frontend takes
DUPE_OPTIONS = ("mode tcp", "option tcplog", "mode http", "option httplog")
FRONTEND_ONLY_OPTIONS = (
    "acl",
    "backlog",
    "bind",
    "capture cookie",
    "capture request header",
    "capture response header",
    "clitimeout",
    "default_backend",
    "http-request",
    "maxconn",
    "monitor fail",
    "monitor-net",
    "monitor-uri",
    "option accept-invalid-http-request",
    "option clitcpka",
    "option contstats",
    "option dontlog-normal",
    "option dontlognull",
    "option http-use-proxy-header",
    "option log-separate-errors",
    "option logasap",
    "option socket-stats",
    "option tcp-smart-accept",
    "rate-limit sessions",
    "redirect",
    "tcp-request content accept",
    "tcp-request content reject",
    "tcp-request inspect-delay",
    "timeout client",
    "timeout clitimeout",
    "use_backend",
)

GLOBAL_DEFAULTS = """\
global
    maxconn 4096
    spread-checks 0

defaults
    mode http
    option httplog
    option dontlognull
    retries 3
    timeout queue 20000ms
    timeout client 50000ms
    timeout connect 5000ms
    timeout server 50000ms
"""


# ------------------------------------------------------------------------ pure: merge / render
def parse_services(raw: str | None) -> list[dict]:
    """The `services` YAML of one unit (a list of dicts; anything else -> [])."""
    if not raw:
        return []
    value = yaml.safe_load(raw)
    if isinstance(value, dict):
        value = [value]
    return [s for s in value or [] if isinstance(s, dict) and s.get("service_name")]


def merge_service(old: dict, new: dict) -> dict:
    """haproxy charm's merge: `old` wins for every key, `servers` are unioned."""
    service = {**new, **old}
    servers = [list(s) for s in old.get("servers") or []]
    for server in new.get("servers") or []:
        if list(server) not in servers:
            servers.append(list(server))
    service["servers"] = servers
    return service


def merge_units(units: list[tuple[str, dict]]) -> dict[str, dict]:
    """service_name -> merged service, from (unit name, raw databag) in reading order."""
    services: dict[str, dict] = {}
    for unit, data in units:
        entries = parse_services(data.get("services"))
        if not entries and data.get("port") and data.get("private-address"):
            entries = [
                {
                    **{k: v for k, v in DEFAULT_SERVICE.items() if k != "server_options"},
                    "servers": [
                        [
                            unit.replace("/", "-"),
                            data["private-address"],
                            data["port"],
                            DEFAULT_SERVICE["server_options"],
                        ]
                    ],
                }
            ]
        for entry in entries:
            name = entry["service_name"]
            services[name] = merge_service(services[name], entry) if name in services else entry
    return services


def split_options(options: list[str]) -> tuple[list[str], list[str]]:
    """(frontend options, backend options) as the haproxy charm splits them."""
    options = [str(o).strip() for o in options or []]
    front: list[str] = []
    back: list[str] = []
    for dupe in DUPE_OPTIONS:
        if dupe in options:
            front.append(dupe)
            back.append(dupe)
    for option in options:
        frontend_only = any(option.startswith(f) for f in FRONTEND_ONLY_OPTIONS)
        out = front if frontend_only else back
        if option not in out:
            out.append(option)
    return front, back


def _server_line(server) -> str:
    name, ip, port, *rest = list(server) + [None] * (4 - len(server))
    options = rest[0] if rest else None
    line = f"    server {name} {ip}:{port}"
    if options:
        line += " " + (options if isinstance(options, str) else " ".join(map(str, options)))
    return line


def render(
    services: dict[str, dict], haproxy_unit: str, bind_address: str, stats_port: int = 0
) -> str:
    """haproxy.cfg for the merged services (frontends bind `bind_address`)."""
    unit = haproxy_unit.replace("/", "-")
    parts = [GLOBAL_DEFAULTS]
    ports: dict[int, str] = {}
    for name, service in services.items():
        port = int(service["service_port"])
        if port in ports:
            raise ValueError(f"services {ports[port]!r} and {name!r} both use port {port}")
        ports[port] = name
        front, back = split_options(service.get("service_options") or [])
        lines = [
            f"frontend {unit}-{port}",
            f"    bind {bind_address}:{port}",
            f"    default_backend {name}",
            *(f"    {o}" for o in front),
            "",
            f"backend {name}",
            *(f"    {o}" for o in back),
            *(_server_line(s) for s in service.get("servers") or []),
        ]
        parts.append("\n".join(lines) + "\n")
    if stats_port:
        if stats_port in ports:
            raise ValueError(f"monitoring_port {stats_port} is used by {ports[stats_port]!r}")
        parts.append(
            "listen stats\n"
            f"    bind {bind_address}:{stats_port}\n"
            "    mode http\n"
            "    stats enable\n"
            "    stats uri /\n"
            "    stats refresh 5s\n"
        )
    return "\n".join(parts)


# ------------------------------------------------------------------------ the haproxy process
class HaproxyProcess:
    """One haproxy (daemon mode) per fake unit, driven by files in `directory`."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.cfg = self.dir / "haproxy.cfg"
        self.pidfile = self.dir / "haproxy.pid"
        self.logfile = self.dir / "haproxy.log"

    def pids(self) -> list[int]:
        """Live haproxy pids of this unit (stale pidfile entries are ignored)."""
        try:
            raw = self.pidfile.read_text().split()
        except FileNotFoundError:
            return []
        live = []
        for item in raw:
            if not item.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{item}/cmdline").read_bytes()
            except OSError:
                continue
            if b"haproxy" in cmdline and str(self.cfg).encode() in cmdline:
                live.append(int(item))
        return live

    @property
    def running(self) -> bool:
        return bool(self.pids())

    def check(self, path: Path) -> None:
        proc = subprocess.run(
            [HAPROXY, "-c", "-q", "-f", str(path)], capture_output=True, text=True, timeout=60
        )
        if proc.returncode != 0:
            raise RuntimeError(f"haproxy -c failed for {path}:\n{proc.stdout}{proc.stderr}")

    def apply(self, config: str) -> str:
        """Validate, install and (re)start; returns "started", "reloaded" or "unchanged"."""
        self.dir.mkdir(parents=True, exist_ok=True)
        old = self.pids()
        if old and self.cfg.exists() and self.cfg.read_text() == config:
            return "unchanged"
        candidate = self.dir / "haproxy.cfg.new"
        candidate.write_text(config)
        self.check(candidate)
        os.replace(candidate, self.cfg)
        argv = [HAPROXY, "-D", "-f", str(self.cfg), "-p", str(self.pidfile)]
        if old:
            argv += ["-sf", *map(str, old)]
        with self.logfile.open("a") as log:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60
            )
        if proc.returncode != 0:
            raise RuntimeError(f"haproxy failed to start (see {self.logfile})")
        return "reloaded" if old else "started"

    def stop(self, timeout: float = 10) -> None:
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
            time.sleep(0.05)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


# ------------------------------------------------------------------------ the fake
class HaproxyFake(Fake):
    ENDPOINTS = {"reverseproxy": ("requires", "http")}
    CHARM = "requirer"  # reads `website` through the upstream interface:http requires code
    CONFIG = {
        "enable_monitoring": {
            "type": "boolean",
            "default": False,
            "description": "stats page on <unit address>:<monitoring_port>",
        },
        "monitoring_port": {"type": "int", "default": 10000, "description": "stats port"},
    }

    def unit_dir(self, unit: str) -> Path:
        return self.model.fake_dir(self.app) / unit_dirname(unit)

    def process(self, unit: str) -> HaproxyProcess:
        return HaproxyProcess(self.unit_dir(unit))

    def on_install(self, ctx: FakeContext) -> None:
        ctx.set_status("waiting", "Waiting for backends.")

    def on_config_changed(self, ctx: FakeContext) -> None:
        if self.process(ctx.unit).running:
            self.reconfigure(ctx)

    def on_stop(self, ctx: FakeContext) -> None:
        self.process(ctx.unit).stop()

    def on_remove(self, ctx: FakeContext) -> None:
        self.process(ctx.unit).stop()
        shutil.rmtree(self.unit_dir(ctx.unit), ignore_errors=True)

    def on_relation(self, ctx: FakeContext) -> None:
        # the requirer charm wrote public-address back, as haproxy does
        if ctx.kind in ("joined", "changed", "departed", "broken"):
            self.reconfigure(ctx)

    def backends(self, ctx: FakeContext) -> list[tuple[str, dict]]:
        """(unit, raw data) of every backend unit, as the upstream layer's received_raw holds
        them (haproxy reads `services` from there), in relation then unit-number order."""
        reading = ctx.reading.get("reverseproxy") or {}
        return [(unit, data) for unit, data in reading.get("units", [])]

    def reconfigure(self, ctx: FakeContext) -> None:
        services = merge_units(self.backends(ctx))
        proc = self.process(ctx.unit)
        if not any(s.get("servers") for s in services.values()):
            if proc.running:
                proc.stop()
                ctx.log("haproxy stopped: no backends")
            proc.cfg.unlink(missing_ok=True)
            ctx.set_status("waiting", "Waiting for backends.")
            return
        config = ctx.config
        stats = int(config.get("monitoring_port") or 0) if config.get("enable_monitoring") else 0
        what = proc.apply(render(services, ctx.unit, ctx.address, stats))
        if what != "unchanged":
            ctx.log(f"haproxy {what}: {', '.join(sorted(services))}")
        ports = ", ".join(str(s["service_port"]) for s in services.values())
        ctx.set_status("active", f"Proxying {len(services)} service(s) on {ctx.address}:{ports}.")
