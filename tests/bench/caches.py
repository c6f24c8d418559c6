"""`make bench` part 5: pulls through a pull-through cache (the charm's own render + workload,
as the ``caches`` option runs it) vs directly from its upstream, same machine, same run.

Per round a new image (ROUNDS of them, PAYLOAD bytes each) is in the upstream; the round
pulls it directly, through the cache cold (the cache fetches it from the upstream as it
serves it) and through the cache warm (served from the cache's storage), each with `skopeo
copy` into a fresh directory; the order of direct and warm alternates between rounds.
Targets: warm through the cache >= 0.95x the direct pull's speed; cold <= 1.2x its time.
"""

from __future__ import annotations

import statistics
import subprocess
import time
import uuid
from pathlib import Path

from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import container, paths, workload
from charms.layer.docker_registry.pipeline import render
from tests.support.config import charm_defaults
from tests.support.images import make_test_image, registry_image_ref
from tests.support.net import free_port
from tests.support.s3 import docker_bridge_gateway

RUN = uuid.uuid4().hex[:6]
ROUNDS = 5
PAYLOAD = 64 * 1024 * 1024  # one layer of this many bytes, plus busybox


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def _pull_seconds(source: str, dest: Path) -> float:
    start = time.monotonic()
    _sh("skopeo", "copy", "--src-tls-verify=false", f"docker://{source}", f"dir:{dest}")
    return time.monotonic() - start


def _upstream(names: list[str]) -> str:
    """A plain registry on the docker bridge gateway (the cache container reaches it there)."""
    netloc = f"{docker_bridge_gateway()}:{free_port()}"
    name = f"bench-cache-upstream-{RUN}"
    _sh("docker", "run", "-d", "--name", name, "-p", f"{netloc}:5000", registry_image_ref())
    names.append(name)
    assert workload.wait_answering(f"http://{netloc}", 20), "the upstream does not answer"
    return netloc


def _cache(tmp: Path, upstream: str, names: list[str]) -> str:
    """The charm's cache of ``upstream`` (http, no auth: like for like with the upstream)."""
    host = paths.Host(sandbox=str(tmp / "unit"), unit_name=f"bench-{RUN}/0")
    port = free_port()
    config = charm_defaults() | {
        "registry-image": registry_image_ref(),
        "registry-port": free_port(),
        "caches": f"bench.example=http://{upstream},port={port}",
    }
    s = settings.parse(config)
    desired = render.desired(
        s,
        host=host,
        unit_address="127.0.0.1",
        tls=None,
        http_secret="bench",
        htpasswd="",
        realm="bench",
        cache=s.caches[0],
    )
    names.append(desired.run.name)
    outcome, _ = workload.apply(
        desired,
        image_id=container.image_id(desired.run.image) or "",
        host=host,
        managed_files=[],
        allow_start=True,
    )
    assert outcome.answering, "the cache does not answer"
    return f"127.0.0.1:{port}"


def bench(tmp: Path) -> list[tuple[str, bool]]:
    names: list[str] = []
    try:
        upstream = _upstream(names)
        cache = _cache(tmp, upstream, names)
        direct, cold, warm = [], [], []
        for n in range(ROUNDS):
            local = f"bench-cache-src-{RUN}:{n}"
            make_test_image(local, payload_bytes=PAYLOAD, seed=f"{RUN}-{n}")
            _sh("skopeo", "copy", "--dest-tls-verify=false", f"docker-daemon:{local}",
                f"docker://{upstream}/bench/big:{n}")  # fmt: skip
            _sh("docker", "rmi", local)
            path = f"bench/big:{n}"
            cold.append(_pull_seconds(f"{cache}/{path}", tmp / f"cold-{n}"))
            pair = [("direct", upstream), ("warm", cache)]
            for label, source in pair if n % 2 == 0 else reversed(pair):
                seconds = _pull_seconds(f"{source}/{path}", tmp / f"{label}-{n}")
                (direct if label == "direct" else warm).append(seconds)
        d, c, w = (statistics.median(x) for x in (direct, cold, warm))
        mb = PAYLOAD / 1e6
        print(f"\n5. pull-through cache: a {mb:.0f} MB image, skopeo copy to a directory, "
              f"median of {ROUNDS} rounds (one new image per round)")  # fmt: skip
        print(f"   direct from the upstream:    {d:6.2f} s")
        print(f"   through the cache, cold:     {c:6.2f} s  ({c / d:.2f}x direct's time)")
        print(f"   through the cache, warm:     {w:6.2f} s  ({d / w:.2f}x direct's speed)")
        return [
            ("warm pull through a cache >= 0.95x direct speed", d / w >= 0.95),
            ("cold pull through a cache <= 1.2x direct time", c / d <= 1.2),
        ]
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
