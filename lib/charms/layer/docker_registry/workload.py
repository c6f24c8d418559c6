"""Apply a desired state to this host, health-gated: files, image, container, readiness (few
side effects, all through ``files`` and ``container``).

A change never takes down a serving registry for good: after every apply whose registry
answers, its run arguments and files are kept as the *last good* state (files copied to a
private directory, the rest in the unit kv). A recreated container that does not answer /v2/
within a bound is replaced by the last good one, and the same new config is not tried again
until something in it changes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charms.layer.docker_registry import clients, container, files, paths
from charms.layer.docker_registry.errors import DockerError, RegistryCharmError
from charms.layer.docker_registry.render import (
    HASH_LABEL,
    PRIVATE,
    ContainerRun,
    Desired,
    HostFile,
)

LAST_GOOD = ".last-good"  # in a registry's config dir: private copies of its last good files
LAST_GOOD_DIR = f"{paths.CONFIG_DIR}/{LAST_GOOD}"
START_BOUND = 20  # seconds a recreated registry has to answer before it is rolled back
LOCK_FILE = "/var/lib/docker-registry-charm/registry.lock"  # see registry_lock
LOCK_WAIT = 300  # seconds a hook or start/stop waits for a garbage collection to end


class LockBusy(RegistryCharmError):
    """Another holder of the registry lock did not let go in time."""


@contextlib.contextmanager
def registry_lock(
    host: paths.Host, wait: float = LOCK_WAIT, busy: type[RegistryCharmError] = LockBusy
) -> Iterator[None]:
    """One holder at a time of the registry's containers: garbage-collect (which stops the
    registry), hooks that recreate it, and the start/stop actions. ``wait`` 0: fail at once
    with ``busy`` when it is held; else wait up to ``wait`` seconds."""
    path = host.path(LOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy(
                        "another garbage-collect, start/stop or hook is working on the registry"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Outcome:
    action: str  # see converge; also "rolled-back" and "held"
    answering: bool
    probe_url: str
    run: ContainerRun  # what runs now (or would, when stopped by the operator)
    problem: str = ""  # why the new config was not applied (rolled back / held)
    last_good: dict = field(default_factory=dict)  # to pass back as ``last_good`` next time
    failed: dict = field(default_factory=dict)  # to pass back as ``failed`` next time


def probe_url(desired: Desired) -> str:
    """Where this unit reaches its own registry: the published address, else loopback."""
    bind, port, _ = desired.run.ports[0]
    return f"{desired.scheme}://{clients.bracket(bind or '127.0.0.1')}:{port}"


def wait_answering(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if clients.probe(url):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def port_in_use(bind: str, port: int) -> bool:
    """Whether something on this host already listens on ``bind:port``."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as every server binds: connections of a registry just removed, left in TIME_WAIT on
        # that address, do not make the port "in use"; a listener still does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))  # noqa: S104
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _last_run(last_good: dict) -> ContainerRun | None:
    return ContainerRun.from_record(last_good.get("run"))


def _check_ports(desired: Desired, before: ContainerRun | None, current) -> None:
    """Ports another program holds would leave the new container stuck in Created; ports our
    own containers (the one being replaced, the last good one) publish are not in the way."""
    ours = {(b, p) for b, p, _ in before.spec.ports} if before else set()
    ours |= set(current.ports if current else ())
    for bind, port, container_port in desired.run.ports:
        if (bind, port) not in ours and port_in_use(bind, port):
            first = container_port == desired.run.ports[0][2]
            option = desired.port_option if first else "debug-port"
            raise RegistryCharmError(f"{option} {port} is already in use on this host.")


def ours(state: container.ContainerState, recorded: tuple[str, ...] = ()) -> bool:
    """Whether the charm created this container: it carries this unit as owner, or it is one
    an earlier charm revision ran (its config-hash label, under a name the unit kv recorded)."""
    owner = state.labels.get(container.OWNER_LABEL)
    if owner is not None:
        return owner == container.owner()
    return HASH_LABEL in state.labels and state.name in recorded


def _check_ours(desired: Desired, current, recorded: tuple[str, ...]) -> None:
    if current and not ours(current, recorded):
        raise RegistryCharmError(
            f"{desired.name_option}: a container named {desired.run.name} exists that this charm "
            "did not create; choose another name or remove that container."
        )


def _check_foreign_files(host: paths.Host, desired: Desired, managed: list[str]) -> None:
    """A file already at a path an option names, which the charm did not write (it is not in
    its record), is another program's: never overwritten (nor, later, removed)."""
    for f in desired.files:
        if f.option and f.path not in managed and host.path(f.path).exists():
            raise RegistryCharmError(
                f"{f.option}: {f.path} exists and was not written by this charm; "
                "name another path or move that file away."
            )


def _backup_name(path: str) -> str:
    return path.strip("/").replace("/", "__")


def _remember(host: paths.Host, desired: Desired, run: ContainerRun, url: str) -> dict:
    """Keep what just answered as the last good state."""
    backup = host.path(f"{desired.config_dir}/{LAST_GOOD}")
    files.ensure_dir(backup, 0o700)
    kept: list[tuple[str, int]] = []
    for f in desired.files:
        files.write_if_changed(backup / _backup_name(f.path), f.content, PRIVATE)
        kept.append((f.path, f.mode))
    wanted = {_backup_name(path) for path, _ in kept}
    for stale in backup.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return {"run": run.as_record(), "files": kept, "url": url}


def _restore(host: paths.Host, config_dir: str, last_good: dict, managed: list[str]) -> list[str]:
    """Put the last good files back (removing what only the new config had)."""
    backup = host.path(f"{config_dir}/{LAST_GOOD}")
    restored = [
        HostFile(path, (backup / _backup_name(path)).read_text(), mode)
        for path, mode in last_good["files"]
    ]
    files.sync(host, restored, managed)
    return [f.path for f in restored]


# what the registry's error lines quote of the network: URLs, addresses and host:port pairs
# (a storage or upstream endpoint's internal address does not belong in the status)
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`]+", re.IGNORECASE)
_ADDRESS_RE = re.compile(
    r"\[[0-9a-f:.]+\](?::\d+)?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+:\d+\b",
    re.IGNORECASE,
)


def _scrub(line: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    line = _URL_RE.sub("<url>", line)
    return _ADDRESS_RE.sub("<address>", line)[:300]


def config_hash(desired: Desired) -> str:
    """The hash the container's label carries: run arguments, image id and mounted files."""
    wanted_image = container.image_id(desired.run.image)
    if not wanted_image:
        raise DockerError(f"image {desired.run.image} is not present")
    return desired.config_hash(wanted_image)


def apply(
    desired: Desired,
    *,
    image_id: str,
    host: paths.Host,
    managed_files: list[str],
    allow_start: bool,
    wait: float = START_BOUND,
    announce=None,
    last_good: dict | None = None,
    failed: dict | None = None,
    secrets: tuple[str, ...] = (),
    recorded: tuple[str, ...] = (),
) -> tuple[Outcome, list[str]]:
    """Write files, converge the container and wait for /v2/ to answer; roll back to
    ``last_good`` when a recreated registry does not answer within ``wait``.

    ``image_id``: the local image ``desired.run.image`` names (part of the config hash).
    ``failed`` ({"hash", "problem"}) is the new config that was rolled back before: it is not
    tried again. ``recorded``: container names the unit kv holds as run by the charm (an
    earlier revision's container there, without an owner label, is adopted). Returns the
    outcome and the list of files the charm now manages.
    """
    last_good = last_good or {}
    url = probe_url(desired)
    run = ContainerRun(desired.run, desired.config_hash(image_id))
    before = _last_run(last_good)
    if failed and failed.get("hash") == run.config_hash and before:
        running = container.inspect(before.spec.name)
        if running and running.running:
            return _held(last_good, before, failed), managed_files
    files.ensure_dir(host.path(desired.config_dir), 0o700)
    if desired.run.storage_mount:
        files.ensure_dir(Path(desired.run.storage_mount[0]))
    current = container.inspect(desired.run.name)
    recorded = (*recorded, *((before.spec.name,) if before else ()))
    _check_ours(desired, current, recorded)
    if not (current and current.labels.get(HASH_LABEL) == run.config_hash):
        _check_ports(desired, before, current)
    _check_foreign_files(host, desired, managed_files)
    files.sync(host, desired.files, managed_files)
    managed = [f.path for f in desired.files]
    action = converge(
        run,
        current,
        allow_start=allow_start,
        announce=announce,
        previous_name=before.spec.name if before else "",
    )
    if action == "stopped-by-operator":
        return Outcome(action, False, url, run, last_good=last_good), managed
    answering = wait_answering(url, wait if action != "unchanged" else 2)
    if answering:
        return Outcome(
            action, True, url, run, last_good=_remember(host, desired, run, url)
        ), managed
    if action not in ("created", "recreated") or before is None or before == run:
        return Outcome(action, False, url, run, last_good=last_good), managed
    return _roll_back(desired, host, last_good, before, managed, run, wait, secrets)


def converge(
    run: ContainerRun,
    current: container.ContainerState | None,
    *,
    allow_start: bool = True,
    announce=None,
    previous_name: str = "",
) -> str:
    """Make the container match ``run``, given ``current`` (what docker said of its name).

    "unchanged" (nothing touched), "started" (existing stopped container with the same
    config), "created", "recreated" (config changed: exactly one restart of the registry),
    or "stopped-by-operator" when ``allow_start`` is False and the container is not running.
    ``announce(current_state_or_None)`` is called just before the container is touched.
    ``previous_name``: the container the charm ran before under another name (registry-name
    changed): it is replaced too, never left running unmanaged.
    """
    name = run.spec.name
    if current and current.labels.get(HASH_LABEL) == run.config_hash:
        if current.running:
            return "unchanged"
        if not allow_start:
            return "stopped-by-operator"
        if announce:
            announce(current)
        container.start(name)
        return "started"
    if not allow_start and (current is None or not current.running):
        return "stopped-by-operator"
    if announce:
        announce(current)
    if current:
        container.stop(name)
        container.remove(name)
    renamed = previous_name and previous_name != name and container.inspect(previous_name)
    if renamed and ours(renamed, (previous_name,)):
        container.stop(previous_name)
        container.remove(previous_name)
    container.run(run.argv())
    return "recreated" if current or renamed else "created"


def _held(last_good: dict, before: ContainerRun, failed: dict) -> Outcome:
    """The new config was rolled back before and has not changed since: leave it be."""
    answering = wait_answering(last_good["url"], 2)
    return Outcome(
        "held", answering, last_good["url"], before, failed["problem"], last_good, failed
    )


def _roll_back(
    desired: Desired,
    host: paths.Host,
    last_good: dict,
    before: ContainerRun,
    managed: list[str],
    failed_run: ContainerRun,
    wait: float,
    secrets: tuple[str, ...],
) -> tuple[Outcome, list[str]]:
    """The new config does not come up: bring the last good registry back."""
    why = _scrub(container.last_log_line(desired.run.name), secrets) or "no output"
    container.remove(desired.run.name)
    managed = _restore(host, desired.config_dir, last_good, managed)
    container.run(before.argv())
    answering = wait_answering(last_good["url"], wait)
    problem = f"The new config did not start (the registry said: {why})"
    return Outcome(
        "rolled-back",
        answering,
        last_good["url"],
        before,
        problem,
        last_good,
        {"hash": failed_run.config_hash, "problem": problem},
    ), managed
