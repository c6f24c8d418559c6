"""`make bench`: the registry actions' speed, one run, figures and ratios printed.

1. mirror of 20 small images (upstream registry -> charm registry: the action's own plan and
   copies, skopeo, concurrency 4) vs `skopeo sync` of the same list (the tool an operator
   would pick) vs the sequential `docker pull` / `docker tag` / `docker push` an operator would
   script; each writes into its own fresh registry, every image starts absent locally.
   mirror and skopeo sync run in ROUNDS interleaved pairs (medians reported);
   `--only mirror` runs just those pairs.
2. `images` (catalog + tag lists through registry_api) on a registry holding 1,000
   repositories, plain http and the charm's production set-up (TLS + htpasswd basic auth).
   The 1,000 repositories are made by pushing one tiny image with skopeo, then copying its
   repository directory (links only: blobs are shared) 1,000 times in the filesystem storage.
3. a reconfigure: health-gated apply vs stop/rm/run (tests/bench/reconfigure.py);
   `--only reconfigure` runs just that part.
4. a no-op update-status hook in the local model: hook-tool calls, docker CLI calls and wall
   time, this branch's charm vs the baseline commit's (tests/bench/noop_hook.py);
   `--only noop` runs just that part.
5. a pull-through cache: warm and cold pulls through it vs directly from its upstream
   (tests/bench/caches.py); `--only caches` runs just that part.
6. a config change on 2 units on S3 behind haproxy while clients pull through it: failed
   requests with every unit changing at once vs in turns (rolling changes), haproxy's options
   before and now (tests/bench/rolling.py); `--only rolling` runs just that part.

Targets: mirror <= 1.0x skopeo sync's wall time and >= 3x faster than sequential; images on
1,000 repos <= 2 s.
No Docker Hub: images are built offline (tests/support/images.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "lib", ROOT):
    sys.path.insert(0, str(extra))


from charms.layer.docker_registry.actions import copies  # noqa: E402
from charms.layer.docker_registry.config import settings  # noqa: E402
from charms.layer.docker_registry.host import auth, container, paths, workload  # noqa: E402
from charms.layer.docker_registry.images import (  # noqa: E402
    plans,
    references,
    registry_api,
    transfer,
)
from charms.layer.docker_registry.pipeline import layout, render  # noqa: E402
from tests.bench import caches, noop_hook, reconfigure, rolling  # noqa: E402
from tests.support import certs  # noqa: E402
from tests.support.config import charm_defaults  # noqa: E402
from tests.support.images import ensure_engine, make_test_image, registry_image_ref  # noqa: E402
from tests.support.net import free_port  # noqa: E402

RUN = uuid.uuid4().hex[:6]
IMAGES = 20
PAYLOAD = 512 * 1024  # per image, plus busybox (~1-2 MB): "small images"
REPOS = 1000
PASSWORD = "Bench-Secret-1"
ROUNDS = 3  # mirror / skopeo sync pairs


def sh(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(
        argv, check=True, capture_output=True, text=True, input=stdin
    ).stdout.strip()


class Registries:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.names: list[str] = []

    def plain(self, label: str) -> tuple[str, Path]:
        """A plain http registry without auth on 127.0.0.1; (netloc, storage dir)."""
        port = free_port()
        name = f"bench-{label}-{RUN}"
        storage = self.tmp / name
        storage.mkdir()
        sh(
            "docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:5000",
            "--volume", f"{storage}:/var/lib/registry", registry_image_ref(),
        )  # fmt: skip
        self.names.append(name)
        netloc = f"127.0.0.1:{port}"
        assert workload.wait_answering(f"http://{netloc}", 20), f"{name} does not answer"
        return netloc, storage

    def charm(self) -> tuple[str, Path, str, Path]:
        """The charm's own set-up (render + workload): TLS + basic auth;
        (netloc, storage, ca, htpasswd file)."""
        host = paths.Host(sandbox=str(self.tmp / "unit"), unit_name=f"bench-{RUN}/0")
        config = charm_defaults() | {
            "registry-image": registry_image_ref(),
            "registry-port": free_port(),
            "auth-basic-password": PASSWORD,
        }
        s = settings.parse(config)
        ca, ca_key, ca_cert = certs.make_ca()
        server = certs.make_server_cert(ca_key, ca_cert, "localhost", ["127.0.0.1"])
        desired = render.desired(
            s,
            host=host,
            unit_address="127.0.0.1",
            tls=render.TlsMaterial(cert=server.cert, key=server.key, ca=ca.cert),
            http_secret="bench",
            htpasswd=auth.htpasswd_line("admin", PASSWORD),
            realm="bench",
        )
        self.names.append(desired.run.name)
        outcome, _ = workload.apply(
            desired,
            image_id=container.image_id(desired.run.image),
            host=host,
            managed_files=[],
            allow_start=True,
        )
        assert outcome.answering, "the charm registry does not answer"
        return (
            f"127.0.0.1:{s.registry_port}",
            host.path(paths.STORAGE_DIR),
            str(host.path(s.tls_paths.ca)),
            host.path(layout.HTPASSWD_FILE),
        )

    def cleanup(self) -> None:
        for name in self.names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def seed_upstream(netloc: str) -> list[str]:
    """20 distinct small images in the upstream registry, none left in the local docker."""
    images = [f"{netloc}/bench/app{i:02d}:1" for i in range(IMAGES)]

    def one(i: int) -> None:
        local = f"bench-src-{RUN}/app{i:02d}:1"
        make_test_image(local, payload_bytes=PAYLOAD, seed=f"{RUN}-{i}")
        sh("skopeo", "copy", "--dest-tls-verify=false", f"docker-daemon:{local}",
           f"docker://{images[i]}")  # fmt: skip
        sh("docker", "rmi", local)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(IMAGES)))
    return images


def time_mirror(regs: Registries, images: list[str], label: str) -> tuple[float, Path]:
    """The action's plan, digest check ("already there?") and copies, its default
    concurrency, into a fresh registry; (seconds, storage)."""
    mirror_netloc, storage = regs.plain(label)
    target = transfer.Target(mirror_netloc, tls=False)
    start = time.monotonic()
    items, _ = plans.plan_mirror(images, netloc=mirror_netloc)
    api = registry_api.Registry(f"http://{mirror_netloc}")
    transfer.run_copies(
        items,
        target,
        concurrency=4,
        src_args=["--src-tls-verify=false"],
        present=copies.present_check(api, target, tls_verify=False),
    )
    mirror_s = time.monotonic() - start
    failed = [i for i in items if i.status != "copied"]
    assert not failed, failed
    return mirror_s, storage


def time_sync(regs: Registries, images: list[str], label: str) -> float:
    """`skopeo sync` of the same list into a fresh registry, skopeo's defaults otherwise."""
    sync_netloc, _ = regs.plain(label)
    # a YAML source naming every repository and tag
    upstream = references.parse_reference(images[0]).host
    listing: dict[str, list[str]] = {}
    for image in images:
        ref = references.parse_reference(image)
        listing.setdefault(ref.path, []).append(ref.tag)
    source = regs.tmp / "sync.yaml"
    source.write_text(
        json.dumps({upstream: {"images": listing, "tls-verify": False}})  # JSON is YAML
    )
    # not --scoped: it puts the source's host:port into the path, which is not a valid
    # reference; syncing into <dest>/bench gives mirror's layout (<dest>/bench/appNN:1)
    start = time.monotonic()
    sh("skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
       str(source), f"{sync_netloc}/bench")  # fmt: skip
    elapsed = time.monotonic() - start
    copied = sh("curl", "-sf", f"http://{sync_netloc}/v2/_catalog?n=1000")
    assert len(json.loads(copied)["repositories"]) == len(images), copied
    return elapsed


def mirror_rounds(regs: Registries, images: list[str]) -> tuple[list[float], list[float], int]:
    """ROUNDS interleaved mirror / skopeo sync pairs, the first side alternating so load
    drifting on the shared machine hits both alike; (mirror s, sync s, bytes stored)."""
    mirror_runs: list[float] = []
    sync_runs: list[float] = []
    stored = 0
    for n in range(ROUNDS):
        sides = ["mirror", "sync"] if n % 2 == 0 else ["sync", "mirror"]
        for side in sides:
            if side == "mirror":
                seconds, storage = time_mirror(regs, images, f"mirror{n}")
                mirror_runs.append(seconds)
                stored = sum(p.stat().st_size for p in storage.rglob("data"))
            else:
                sync_runs.append(time_sync(regs, images, f"sync{n}"))
        print(f"   round {n + 1}: mirror {mirror_runs[-1]:.2f} s, "
              f"skopeo sync {sync_runs[-1]:.2f} s", flush=True)  # fmt: skip
    return mirror_runs, sync_runs, stored


def time_sequential(regs: Registries, images: list[str]) -> float:
    """docker pull / tag / push, one image after the other, as an operator would script."""
    seq_netloc, _ = regs.plain("seq")
    start = time.monotonic()
    for image in images:
        ref = references.parse_reference(image)
        dest = str(ref.retarget(seq_netloc))
        sh("docker", "pull", "-q", image)
        sh("docker", "tag", image, dest)
        sh("docker", "push", "-q", dest) if _push_has_quiet() else sh("docker", "push", dest)
    seq_s = time.monotonic() - start
    for image in images:
        ref = references.parse_reference(image)
        subprocess.run(
            ["docker", "rmi", image, str(ref.retarget(seq_netloc))],
            capture_output=True,
            check=False,
        )
    return seq_s


_QUIET: list[bool] = []


def _push_has_quiet() -> bool:
    if not _QUIET:
        out = subprocess.run(["docker", "push", "--help"], capture_output=True, text=True)
        _QUIET.append("--quiet" in out.stdout)
    return _QUIET[0]


def populate_repos(netloc: str, storage: Path, *, tls_target: transfer.Target) -> float:
    """One skopeo push, then its repository directory copied REPOS times; returns seconds."""
    local = f"bench-repo-{RUN}:1"
    make_test_image(local, payload_bytes=1024, seed=f"{RUN}-repo")
    start = time.monotonic()
    with transfer.skopeo_auth(tls_target) as a:
        transfer.skopeo_copy(
            f"docker-daemon:{local}",
            f"docker://{netloc}/seed/img:1",
            auth=a,
            target=tls_target,
        )
    repos = storage / "docker" / "registry" / "v2" / "repositories"
    seed = repos / "seed" / "img"
    for i in range(REPOS):
        shutil.copytree(seed, repos / "bench" / f"repo{i:04d}")
    shutil.rmtree(repos / "seed")
    subprocess.run(["docker", "rmi", local], capture_output=True, check=False)
    return time.monotonic() - start


RUNS = 3  # `images` timings: the median of this many runs (each a fresh client)


def bench_images(make_api) -> tuple[float, int, int]:
    """Median seconds of RUNS listings, each by a fresh client (new connections and TLS
    handshakes; the ping before the clock starts only checks the registry answers)."""
    runs = []
    for _ in range(RUNS):
        api = make_api()
        api.ping()
        start = time.monotonic()
        listing = api.list_images()
        runs.append(time.monotonic() - start)
        api.close()
    return statistics.median(runs), len(listing), sum(len(t) for t in listing.values())


def rehash_cost5(htpasswd: Path) -> None:
    """Replace the charm's htpasswd line with one at htpasswd's default cost (5); the registry
    re-reads the file when its mtime changes, without a restart."""
    line = sh("htpasswd", "-n", "-i", "-B", "admin", stdin=PASSWORD).strip()
    assert line.startswith("admin:$2y$05$"), "htpasswd did not make a cost-5 bcrypt hash"
    time.sleep(1.1)  # a new mtime even on coarse-grained filesystems
    htpasswd.write_text(line + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        choices=["mirror", "reconfigure", "noop", "caches", "rolling"],
        help="run only this part",
    )
    only = parser.parse_args(argv).only
    ensure_engine()
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    regs = Registries(tmp)
    verdicts = []
    try:
        if only == "reconfigure":
            return report(reconfigure.bench(tmp))
        if only == "noop":
            return report(noop_hook.bench())
        if only == "caches":
            return report(caches.bench(tmp))
        if only == "rolling":
            return report(rolling.bench(tmp))
        upstream, _ = regs.plain("upstream")
        print(f"seeding {IMAGES} images into the upstream registry ...", flush=True)
        images = seed_upstream(upstream)

        print(f"\n1. {IMAGES} small images, upstream -> a fresh registry per run, "
              f"{ROUNDS} interleaved rounds")  # fmt: skip
        mirror_runs, sync_runs, stored = mirror_rounds(regs, images)
        mirror_s = statistics.median(mirror_runs)
        sync_s = statistics.median(sync_runs)
        vs_sync = mirror_s / sync_s
        print(f"   ({stored / 1e6:.1f} MB stored per registry); medians:")
        print(f"   mirror (the action's copies, concurrency 4): {mirror_s:6.2f} s")
        print(f"   skopeo sync of the same list:                {sync_s:6.2f} s")
        print(f"   mirror / skopeo sync: {vs_sync:.2f}x   (target <= 1.0x)")
        verdicts.append(("mirror <= 1.0x skopeo sync's wall time", vs_sync <= 1.0))
        if only != "mirror":
            seq_s = time_sequential(regs, images)
            ratio = seq_s / mirror_s
            print(f"   sequential docker pull/tag/push:             {seq_s:6.2f} s")
            print(f"   speed-up over sequential: {ratio:.1f}x   (target >= 3x)")
            verdicts.append(("mirror >= 3x faster than sequential", ratio >= 3))
        if only != "mirror":
            bench_images_part(regs, verdicts)
            verdicts += reconfigure.bench(tmp)
            verdicts += noop_hook.bench()
            verdicts += caches.bench(tmp)
            verdicts += rolling.bench(tmp)
    finally:
        regs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(verdicts)


def bench_images_part(regs: Registries, verdicts: list[tuple[str, bool]]) -> None:
    """Part 2: `images` on 1,000 repositories, plain and the charm's set-up."""
    plain_netloc, plain_storage = regs.plain("repos")
    fill_plain = populate_repos(
        plain_netloc, plain_storage, tls_target=transfer.Target(plain_netloc, tls=False)
    )
    plain_s, n_plain, tags_plain = bench_images(
        lambda: registry_api.Registry(f"http://{plain_netloc}")
    )

    charm_netloc, charm_storage, ca, htpasswd = regs.charm()
    target = transfer.Target(charm_netloc, True, ca, "admin", PASSWORD)
    fill_charm = populate_repos(charm_netloc, charm_storage, tls_target=target)

    def charm_api():
        return registry_api.Registry(f"https://{charm_netloc}", "admin", PASSWORD, ca)

    charm_s, n_charm, tags_charm = bench_images(charm_api)
    seq_api = charm_api()
    seq_api.ping()
    start = time.monotonic()
    for repo in seq_api.catalog():
        seq_api.tags(repo)
    serial_s = time.monotonic() - start
    rehash_cost5(htpasswd)
    cost5_s, n_cost5, _ = bench_images(charm_api)

    print(f"\n2. images on {REPOS} repositories (populated in {fill_plain:.1f} s / "
          f"{fill_charm:.1f} s: one skopeo push + copies of its repository dir); "
          f"median of {RUNS} runs")  # fmt: skip
    print(f"   http, no auth:                 {plain_s:6.2f} s  ({n_plain} repos, "
          f"{tags_plain} tags)")  # fmt: skip
    print(f"   https + basic auth (charm):    {charm_s:6.2f} s  ({n_charm} repos, "
          f"{tags_charm} tags; bcrypt cost {auth.BCRYPT_COST})")  # fmt: skip
    print(f"   same, tag lists one by one:    {serial_s:6.2f} s  "
          f"(concurrency gains {serial_s / charm_s:.1f}x)")  # fmt: skip
    print(f"   same, bcrypt cost 5 (htpasswd -B default): {cost5_s:6.2f} s")
    verdicts.append(("images on 1,000 repos <= 2 s (https + auth)", charm_s <= 2))
    assert n_plain == n_charm == n_cost5 == REPOS


def report(verdicts: list[tuple[str, bool]]) -> int:
    print()
    for what, ok in verdicts:
        print(f"{'MET ' if ok else 'MISS'}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
