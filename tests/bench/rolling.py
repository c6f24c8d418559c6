"""`make bench`, part 6: a config change on 2 units behind haproxy while clients pull through it.

Two sandboxed units on the real engine (127.0.0.201 and .202, plain http) share S3 storage
(moto on the Docker bridge, as tests/e2e/test_ha.py runs it) and the http secret; a real haproxy
runs the services the leader publishes (``proxy.services``, rendered as the haproxy charm lays
them out by the local model's fake: tools/localjuju/fakes/haproxy.py). An image is pushed once;
CLIENTS threads then pull it in a loop through haproxy (the manifest, then every blob; one
urllib connection per request, as a fresh client). Each change flips ``log-level``, so every
unit's registry container is recreated. Four ways, CHANGES changes each:

- at once: both units' hooks apply the change at the same moment (``workload.apply`` in two
  threads): what every unit's own config-changed did before rolling changes;
- in turns: both units' hooks start at the same moment and each asks ``rolling.decide`` with
  what the other reported on the (in-process) peer relation; the one that must wait returns
  holding (``workload.apply(hold=True)``) and runs again when the other reports, as its
  peer-relation-changed hook would. Juju's own hook start-up (≈2 s) is not added;

each with haproxy's options from before (no l7 retries) and now (``retry-on`` for GET/HEAD).
Between changes both servers are UP again in haproxy's stats. Failed: a request that got no
2xx (connection error, 5xx); a pull fails when any of its requests does. The slowest pull is
printed too (a replayed request waits for its retries).
"""

from __future__ import annotations

import collections
import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import container, paths, workload
from charms.layer.docker_registry.pipeline import proxy, render, rolling
from tests.support.config import charm_defaults
from tests.support.images import make_test_image, registry_image_ref
from tests.support.net import free_port
from tests.support.s3 import docker_bridge_gateway, moto_s3
from tools.localjuju.fakes import haproxy as haproxy_charm

ADDRESSES = ("127.0.0.201", "127.0.0.202")
CLIENTS = 4
CHANGES = 5
BACKOFF = 0.1  # seconds a client waits after a failed pull
BUCKET = "bench-rolling"
ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
HAPROXY_BEFORE = list(proxy.L7_RETRY)  # what the services did not have before


class Unit:
    def __init__(self, tmp: Path, number: int, port: int, s3: dict, run: str):
        self.name = f"bench-rolling-{run}/{number}"
        self.address = ADDRESSES[number]
        self.host = paths.Host(sandbox=str(tmp / f"unit{number}"), unit_name=self.name)
        self.options = (
            charm_defaults()
            | s3
            | {
                "registry-image": registry_image_ref(),
                "registry-port": port,
                "storage-s3-skip-v4-auth": False,
            }
        )
        self.managed: list[str] = []
        self.last_good: dict = {}
        self.container = ""

    def apply(self, log_level: str, hold: bool = False) -> workload.Outcome:
        desired = render.desired(
            settings.parse(self.options | {"log-level": log_level}),
            host=self.host,
            unit_address=self.address,
            tls=None,
            http_secret="bench-rolling-shared",
            htpasswd="",
            realm="bench",
        )
        self.container = desired.run.name
        outcome, self.managed = workload.apply(
            desired,
            image_id=container.image_id(desired.run.image),
            host=self.host,
            managed_files=self.managed,
            allow_start=True,
            last_good=self.last_good,
            hold=hold,
        )
        self.last_good = outcome.last_good
        return outcome

    def hook(self, log_level: str, peers: dict[str, dict]) -> str:
        """One hook of the charm's rolling path: decide with what the others reported, apply
        (held or not), report (returns the state it reported)."""
        wanted = rolling.token({"log-level": log_level}, "", "", "bench")
        others = {unit: dict(said) for unit, said in peers.items() if unit != self.name}
        verdict = rolling.decide(self.name, wanted, others, None, time.time())
        outcome = self.apply(log_level, hold=not verdict.go)
        held = outcome.action == workload.WAITING_TURN
        state = rolling.state(held, outcome.answering, outcome.problem)
        peers[self.name] = {rolling.TOKEN: wanted, rolling.STATE: state}
        return state

    def cleanup(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.container], capture_output=True, check=False)


class Haproxy:
    def __init__(self, tmp: Path, units: list[Unit], port: int):
        self.process = haproxy_charm.HaproxyProcess(tmp / "haproxy")
        self.units = units
        self.port, self.stats = free_port(), free_port()
        self.registry_port = port

    def run(self, l7_retries: bool) -> None:
        (service,) = proxy.services(
            {u.name: u.address for u in self.units}, self.registry_port, tls=False, shared=True
        )
        service["service_port"] = self.port
        if not l7_retries:
            service["service_options"] = [
                o for o in service["service_options"] if o not in HAPROXY_BEFORE
            ]
        cfg = haproxy_charm.render({service["service_name"]: service}, "bench/0", "127.0.0.1")
        cfg += f"\nlisten stats\n    bind 127.0.0.1:{self.stats}\n    mode http\n"
        cfg += "    stats enable\n    stats uri /\n"
        self.process.apply(cfg)

    def all_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.stats}/;csv", timeout=2) as r:
                    rows = [line.split(",") for line in r.read().decode().splitlines()]
                servers = [row for row in rows if row[1].startswith("bench-rolling")]
                if len(servers) == len(self.units) and all(s[17] == "UP" for s in servers):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("haproxy did not see every unit UP")


class Clients:
    """CLIENTS threads pulling ``repo:tag`` through ``netloc`` in a loop."""

    def __init__(self, netloc: str, repo: str, tag: str):
        self.base = f"http://{netloc}/v2/{repo}"
        self.tag = tag
        self.lock = threading.Lock()
        self.pulls = self.failed_pulls = self.requests = self.failed_requests = 0
        self.stop = threading.Event()
        self.why: collections.Counter = collections.Counter()  # what failed requests got
        self.slowest = 0.0  # seconds, the slowest pull (a replayed request waits its retries)

    def get(self, path: str, accept: str = "") -> bytes | None:
        request = urllib.request.Request(f"{self.base}/{path}", headers={"Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = response.read()
            ok = True
        except (OSError, http.client.HTTPException) as exc:  # refused, 5xx, a body cut short
            body, ok = None, False
            with self.lock:
                self.why[
                    f"{path.split('/')[0]}: {getattr(exc, 'code', '') or type(exc).__name__}"
                ] += 1
        with self.lock:
            self.requests += 1
            self.failed_requests += not ok
        return body

    def pull(self) -> bool:
        manifest = self.get(f"manifests/{self.tag}", ACCEPT)
        if manifest is None:
            return False
        parsed = json.loads(manifest)
        digests = [parsed["config"]["digest"], *(layer["digest"] for layer in parsed["layers"])]
        return all(self.get(f"blobs/{digest}") is not None for digest in digests)

    def loop(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            ok = self.pull()
            with self.lock:
                self.pulls += 1
                self.failed_pulls += not ok
                self.slowest = max(self.slowest, time.monotonic() - began)
            if not ok:
                time.sleep(BACKOFF)  # as a client backs off before it tries again

    def counts(self) -> tuple[int, int, int, int]:
        with self.lock:
            return self.pulls, self.failed_pulls, self.requests, self.failed_requests


def at_once(units: list[Unit], level: str) -> None:
    with ThreadPoolExecutor(len(units)) as pool:
        outcomes = list(pool.map(lambda unit: unit.apply(level), units))
    assert all(o.answering for o in outcomes), outcomes


def in_turns(units: list[Unit], level: str) -> None:
    peers: dict[str, dict] = {}
    for unit in units:  # what each reported of the previous change
        wanted = rolling.token({"log-level": other_level(level)}, "", "", "bench")
        peers[unit.name] = {rolling.TOKEN: wanted, rolling.STATE: rolling.APPLIED}
    with ThreadPoolExecutor(len(units)) as pool:  # every unit's config-changed, at once
        states = list(pool.map(lambda unit: unit.hook(level, peers), units))
    for _ in units:  # then peer-relation-changed wakes who waited, as the others report
        waiting = [u for u, state in zip(units, states, strict=True) if state == rolling.WAITING]
        if not waiting:
            break
        states = [u.hook(level, peers) if u in waiting else rolling.APPLIED for u in units]
    assert all(s == rolling.APPLIED for s in states), peers


def other_level(level: str) -> str:
    return "info" if level == "debug" else "debug"


def measure(units, haproxy, clients, change, l7_retries: bool) -> tuple[int, int, int, int]:
    haproxy.run(l7_retries)
    haproxy.all_up()
    start = clients.counts()
    for i in range(CHANGES):
        time.sleep(1.0)  # pulls before the change
        change(units, "debug" if i % 2 == 0 else "info")
        haproxy.all_up()
    time.sleep(1.0)
    end = clients.counts()
    return tuple(b - a for a, b in zip(start, end, strict=True))  # type: ignore[return-value]


def bench(tmp: Path) -> list[tuple[str, bool]]:
    """Print the figures; returns verdicts (what, met)."""
    run = uuid.uuid4().hex[:6]
    port = free_port(ADDRESSES[0])
    with moto_s3(host=docker_bridge_gateway()) as s3:
        s3.create_bucket(BUCKET)
        units = [Unit(tmp, n, port, s3.charm_options(BUCKET), run) for n in range(2)]
        haproxy = Haproxy(tmp, units, port)
        ref = f"bench-rolling-{run}:1"
        make_test_image(ref, payload_bytes=2_000_000, seed=ref)
        try:
            for unit in units:
                assert unit.apply("info").answering
            subprocess.run(
                ["skopeo", "copy", "--dest-tls-verify=false", f"docker-daemon:{ref}",
                 f"docker://{ADDRESSES[0]}:{port}/bench/img:1"],
                check=True, capture_output=True,
            )  # fmt: skip
            clients = Clients(f"127.0.0.1:{haproxy.port}", "bench/img", "1")
            threads = [threading.Thread(target=clients.loop, daemon=True) for _ in range(CLIENTS)]
            for thread in threads:
                thread.start()
            figures = {}
            try:
                for name, change, l7 in (
                    ("at once, haproxy before", at_once, False),
                    ("in turns, haproxy before", in_turns, False),
                    ("at once, haproxy now", at_once, True),
                    ("in turns, haproxy now (the charm now)", in_turns, True),
                ):
                    clients.why.clear()
                    clients.slowest = 0.0
                    figures[name] = measure(units, haproxy, clients, change, l7)
                    print(f"   {name}: failed requests got {dict(clients.why)}; slowest pull "
                          f"{clients.slowest:.2f} s", flush=True)  # fmt: skip
            finally:
                clients.stop.set()
                for thread in threads:
                    thread.join(60)
        finally:
            haproxy.process.stop()
            for unit in units:
                unit.cleanup()
            subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)
    print(f"\n6. a config change on 2 units behind haproxy (S3), {CLIENTS} clients pulling "
          f"through it; {CHANGES} changes each")  # fmt: skip
    for name, (pulls, failed_pulls, requests, failed_requests) in figures.items():
        print(f"   {name:40s} pulls failed {failed_pulls:3d} of {pulls:4d}, "
              f"requests failed {failed_requests:3d} of {requests:5d}")  # fmt: skip
    now = figures["in turns, haproxy now (the charm now)"]
    return [("rolling change behind haproxy: 0 failed requests", now[3] == 0)]


if __name__ == "__main__":
    from tests.bench import standalone

    standalone.run(bench, "bench-rolling-")
