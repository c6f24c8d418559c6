"""`make bench`, part 3: what an operator sees of a reconfigure (one config change that
recreates the registry container), health-gated apply vs a plain stop/rm/run.

Both sides drive the same sandboxed unit on the real engine (127.0.0.1, plain http, the charm's
defaults) and flip `log-level` between two values, so every change rewrites config.yml and
recreates the container from the same run spec:
- health-gated: ``workload.apply`` (port check, files, converge, wait for /v2/, last good kept);
- stop/rm/run: the same files written, then `docker stop`, `docker rm`, `docker run` of the run
  spec ``apply`` would use (what the charm did before the health gate).
A probe thread GETs /v2/ every 20 ms throughout. Per change: time to serving = from the change
being applied to the first answer after the outage; unavailability window = from the first
unanswered probe to the next answer. Median of 5 changes each.

Beside them, a bad-but-valid change through the health-gated apply: a config that passes
validation but makes the registry exit at start (registry 2.8 as a pull-through cache of a host
that does not resolve panics), rolled back to the last good container. Its outage should be
restart times, not the start bound.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import container, files, paths, workload
from charms.layer.docker_registry.pipeline import clients, render, runspec
from tests.support.config import charm_defaults
from tests.support.images import registry_image_ref
from tests.support.net import free_port

CHANGES = 5
POLL = 0.02  # seconds between probes


class Probe(threading.Thread):
    """GETs ``url``/v2/ every POLL seconds; ``outage(since)`` reads what it saw."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, bool]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            sent = time.monotonic()  # a probe sent into a starting container can hang: its
            # start time, and a short timeout, keep the window from growing by the wait
            self.seen.append((sent, clients.probe(self.url, timeout=0.5)))
            time.sleep(max(0.0, POLL - (time.monotonic() - sent)))

    def outage(self, since: float) -> tuple[float, float]:
        """(seconds from ``since`` to serving again, seconds unanswered) after ``since``;
        (0, 0) when no probe went unanswered."""
        deadline = time.monotonic() + 5  # a probe sent while it was down may still be waiting
        while True:
            down, seen = None, [s for s in self.seen if s[0] >= since]
            for at, ok in seen:
                if not ok and down is None:
                    down = at
                elif ok and down is not None:
                    return at - since, at - down
            if down is None and seen and seen[-1][1] and time.monotonic() >= deadline:
                return 0.0, 0.0
            assert time.monotonic() < deadline + 5, "the registry did not answer again"
            time.sleep(POLL)


class Unit:
    def __init__(self, tmp: Path):
        self.host = paths.Host(
            sandbox=str(tmp / "unit"), unit_name=f"bench-{uuid.uuid4().hex[:6]}/0"
        )
        self.port = free_port()
        self.managed: list[str] = []
        self.last_good: dict = {}
        self.name = ""

    def desired(self, log_level: str, **extra) -> render.Desired:
        config = charm_defaults() | {
            "registry-image": registry_image_ref(),
            "registry-port": self.port,
            "log-level": log_level,
            **extra,
        }
        desired = render.desired(
            settings.parse(config),
            host=self.host,
            unit_address="127.0.0.1",
            tls=None,
            http_secret="bench",
            htpasswd="",
            realm="bench",
        )
        self.name = desired.run.name
        return desired

    def health_gated(self, log_level: str, **extra) -> workload.Outcome:
        desired = self.desired(log_level, **extra)
        outcome, self.managed = workload.apply(
            desired,
            image_id=container.image_id(desired.run.image),
            host=self.host,
            managed_files=self.managed,
            allow_start=True,
            last_good=self.last_good,
        )
        assert outcome.answering, outcome
        self.last_good = outcome.last_good
        return outcome

    def exits_at_start(self, i: int) -> None:
        """The i-th bad-but-valid change (each a new one: a rolled-back config is held)."""
        outcome = self.health_gated("info", **{"cache-remoteurl": f"https://bad-{i}.invalid"})
        assert outcome.action == "rolled-back", outcome

    def stop_rm_run(self, log_level: str) -> None:
        desired = self.desired(log_level)
        files.sync(self.host, desired.files, self.managed)
        argv = desired.run.argv(
            {runspec.HASH_LABEL: desired.config_hash(container.image_id(desired.run.image))}
        )
        if container.inspect(self.name):
            container.stop(self.name)
            container.remove(self.name)
        container.run(argv)

    def cleanup(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True, check=False)


def measure(unit: Unit, change, step=None) -> tuple[float, float]:
    """Medians over CHANGES changes of (time to serving, unavailability window): from
    ``change("info")``, ``step(i)`` (by default flipping the log level with ``change``)."""
    url = f"http://127.0.0.1:{unit.port}"
    change("info")
    assert workload.wait_answering(url, 20)
    step = step or (lambda i: change("debug" if i % 2 == 0 else "info"))
    probe = Probe(url)
    probe.start()
    serving, unavailable = [], []
    try:
        for i in range(CHANGES):
            time.sleep(0.5)  # settled, answering
            since = time.monotonic()
            step(i)
            assert workload.wait_answering(url, 20)
            to_serving, window = probe.outage(since)
            serving.append(to_serving)
            unavailable.append(window)
    finally:
        probe.done.set()
        probe.join()
    return statistics.median(serving), statistics.median(unavailable)


def bench(tmp: Path) -> list[tuple[str, bool]]:
    """Print the figures; returns verdicts (what, met)."""
    gated_unit, plain_unit = Unit(tmp / "gated"), Unit(tmp / "plain")
    try:
        gated = measure(gated_unit, gated_unit.health_gated)
        plain = measure(plain_unit, plain_unit.stop_rm_run)
        bad = measure(gated_unit, gated_unit.health_gated, gated_unit.exits_at_start)
    finally:
        gated_unit.cleanup()
        plain_unit.cleanup()
    print(f"\n3. reconfigure (a change that recreates the registry); median of {CHANGES}, "
          f"/v2/ probed every {POLL * 1000:.0f} ms")  # fmt: skip
    print(f"   health-gated apply: serving again after {gated[0]:5.2f} s, "
          f"unavailable {gated[1]:5.2f} s")  # fmt: skip
    print(f"   stop/rm/run:        serving again after {plain[0]:5.2f} s, "
          f"unavailable {plain[1]:5.2f} s")  # fmt: skip
    print(f"   unavailability, health-gated / stop-rm-run: {gated[1] / plain[1]:.2f}x")
    print(f"   bad-but-valid change, rolled back: serving again after {bad[0]:5.2f} s, "
          f"unavailable {bad[1]:5.2f} s (start bound {workload.START_BOUND} s)")  # fmt: skip
    print(f"   unavailability, bad change / good change: {bad[1] / gated[1]:.2f}x")
    return [
        ("reconfigure unavailability <= stop/rm/run's (+10%)", gated[1] <= plain[1] * 1.1),
        ("bad-but-valid change unavailability <= 3x a good change's", bad[1] <= gated[1] * 3),
    ]


if __name__ == "__main__":
    from tests.bench import standalone

    standalone.run(bench, "bench-reconfigure-")
