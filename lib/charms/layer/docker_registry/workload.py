"""Apply a desired state to this host: files, image, container, readiness (few side effects,
all through ``files`` and ``container``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from charms.layer.docker_registry import clients, container, files, paths
from charms.layer.docker_registry.render import Desired


@dataclass(frozen=True)
class Outcome:
    action: str  # see container.converge
    answering: bool
    probe_url: str
    run_argv: list[str]  # holds no secret: they live in mounted files


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


def apply(
    desired: Desired,
    *,
    host: paths.Host,
    unit_address: str,
    managed_files: list[str],
    allow_start: bool,
    wait: float = 20,
    announce=None,
) -> tuple[Outcome, list[str]]:
    """Write files, converge the container and wait for /v2/ to answer.

    Returns the outcome and the list of files the charm now manages.
    """
    files.ensure_dir(host.path(paths.CONFIG_DIR), 0o700)
    if desired.run.storage_mount:
        files.ensure_dir(host.path(paths.STORAGE_DIR))
    files.sync(host, desired.files, managed_files)
    action, argv = container.converge(
        desired, image=desired.run.image, allow_start=allow_start, announce=announce
    )
    url = probe_url(desired, host, unit_address)
    answering = False
    if action != "stopped-by-operator":
        answering = wait_answering(url, wait if action != "unchanged" else 2)
    return Outcome(action=action, answering=answering, probe_url=url, run_argv=argv), [
        f.path for f in desired.files
    ]
