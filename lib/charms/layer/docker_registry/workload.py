"""Apply a desired state to this host, health-gated: files, image, container, readiness (few
side effects, all through ``files`` and ``container``).

A change never takes down a serving registry for good: after every apply whose registry
answers, its run arguments and files are kept as the *last good* state (files copied to a
private directory, the rest in the unit kv). A recreated container that does not answer /v2/
within a bound is replaced by the last good one, and the same new config is not tried again
until something in it changes.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass, field

from charms.layer.docker_registry import clients, container, files, paths
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.render import PRIVATE, Desired, HostFile

LAST_GOOD_DIR = f"{paths.CONFIG_DIR}/.last-good"  # private copies of the last good files
START_BOUND = 20  # seconds a recreated registry has to answer before it is rolled back


@dataclass(frozen=True)
class Outcome:
    action: str  # see container.converge; also "rolled-back" and "held"
    answering: bool
    probe_url: str
    run_argv: list[str]  # holds no secret: they live in mounted files
    problem: str = ""  # why the new config was not applied (rolled back / held)
    last_good: dict = field(default_factory=dict)  # to pass back as ``last_good`` next time
    failed: dict = field(default_factory=dict)  # to pass back as ``failed`` next time


def probe_url(desired: Desired, host: paths.Host, unit_address: str) -> str:
    bind, port, _ = desired.run.ports[0]
    address = clients.bracket(bind or (unit_address if host.sandbox else "127.0.0.1"))
    return f"{desired.scheme}://{address}:{port}"


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


def _check_ports(desired: Desired, last_good: dict, current) -> None:
    """Ports another program holds would leave the new container stuck in Created; ports our
    own containers (the one being replaced, the last good one) publish are not in the way."""
    ours = {tuple(p) for p in last_good.get("ports", [])} | set(current.ports if current else ())
    for bind, port, container_port in desired.run.ports:
        if (bind, port) not in ours and port_in_use(bind, port):
            option = "registry-port" if container_port == desired.run.ports[0][2] else "debug-port"
            raise RegistryCharmError(f"{option} {port} is already in use on this host.")


def _backup_name(path: str) -> str:
    return path.strip("/").replace("/", "__")


def _remember(host: paths.Host, desired: Desired, argv: list[str], url: str) -> dict:
    """Keep what just answered as the last good state."""
    backup = host.path(LAST_GOOD_DIR)
    files.ensure_dir(backup, 0o700)
    kept: list[tuple[str, int]] = []
    for f in desired.files:
        files.write_if_changed(backup / _backup_name(f.path), f.content, PRIVATE)
        kept.append((f.path, f.mode))
    wanted = {_backup_name(path) for path, _ in kept}
    for stale in backup.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return {
        "name": desired.run.name,
        "argv": argv,
        "files": kept,
        "url": url,
        "ports": [[bind, port] for bind, port, _ in desired.run.ports],
    }


def _restore(host: paths.Host, last_good: dict, managed: list[str]) -> list[str]:
    """Put the last good files back (removing what only the new config had)."""
    backup = host.path(LAST_GOOD_DIR)
    restored = [
        HostFile(path, (backup / _backup_name(path)).read_text(), mode)
        for path, mode in last_good["files"]
    ]
    files.sync(host, restored, managed)
    return [f.path for f in restored]


def _scrub(line: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line[:300]


def apply(
    desired: Desired,
    *,
    host: paths.Host,
    unit_address: str,
    managed_files: list[str],
    allow_start: bool,
    wait: float = START_BOUND,
    announce=None,
    last_good: dict | None = None,
    failed: dict | None = None,
    secrets: tuple[str, ...] = (),
) -> tuple[Outcome, list[str]]:
    """Write files, converge the container and wait for /v2/ to answer; roll back to
    ``last_good`` when a recreated registry does not answer within ``wait``.

    ``failed`` ({"hash", "problem"}) is the new config that was rolled back before: it is not
    tried again. Returns the outcome and the list of files the charm now manages.
    """
    last_good = last_good or {}
    url = probe_url(desired, host, unit_address)
    config_hash = container.config_hash(desired, image=desired.run.image)
    if failed and failed.get("hash") == config_hash and last_good:
        running = container.inspect(last_good["name"])
        if running and running.running:
            return _held(last_good, failed), managed_files
    files.ensure_dir(host.path(paths.CONFIG_DIR), 0o700)
    if desired.run.storage_mount:
        files.ensure_dir(host.path(paths.STORAGE_DIR))
    current = container.inspect(desired.run.name)
    if not (current and current.labels.get(container.HASH_LABEL) == config_hash):
        _check_ports(desired, last_good, current)
    files.sync(host, desired.files, managed_files)
    managed = [f.path for f in desired.files]
    action, argv = container.converge(
        desired,
        image=desired.run.image,
        allow_start=allow_start,
        announce=announce,
        previous_name=last_good.get("name", ""),
        looked=container.Looked(config_hash, current),
    )
    if action == "stopped-by-operator":
        return Outcome(action, False, url, argv, last_good=last_good), managed
    answering = wait_answering(url, wait if action != "unchanged" else 2)
    if answering:
        return Outcome(
            action, True, url, argv, last_good=_remember(host, desired, argv, url)
        ), managed
    if action not in ("created", "recreated") or not last_good or last_good["argv"] == argv:
        return Outcome(action, False, url, argv, last_good=last_good), managed
    return _roll_back(desired, host, last_good, managed, config_hash, wait, secrets)


def _held(last_good: dict, failed: dict) -> Outcome:
    """The new config was rolled back before and has not changed since: leave it be."""
    answering = wait_answering(last_good["url"], 2)
    return Outcome(
        "held",
        answering,
        last_good["url"],
        last_good["argv"],
        failed["problem"],
        last_good,
        failed,
    )


def _roll_back(
    desired: Desired,
    host: paths.Host,
    last_good: dict,
    managed: list[str],
    config_hash: str,
    wait: float,
    secrets: tuple[str, ...],
) -> tuple[Outcome, list[str]]:
    """The new config does not come up: bring the last good registry back."""
    why = _scrub(container.last_log_line(desired.run.name), secrets) or "no output"
    container.remove(desired.run.name)
    managed = _restore(host, last_good, managed)
    container.run(last_good["argv"])
    answering = wait_answering(last_good["url"], wait)
    problem = f"The new config did not start (the registry said: {why})"
    return Outcome(
        "rolled-back",
        answering,
        last_good["url"],
        last_good["argv"],
        problem,
        last_good,
        {"hash": config_hash, "problem": problem},
    ), managed
