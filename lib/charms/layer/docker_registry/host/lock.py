"""One lock for everything that stops or recreates the registry: hooks that apply, the start and
stop actions, and garbage collection (which must never run beside a registry that writes).
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator

from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import paths

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
