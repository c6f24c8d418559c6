"""Keeps the unit and security suites away from the host's Docker daemon.

Every process they start goes through ``subprocess.Popen``; one that would run the machine's
own `systemctl`, `service`, `pkill`, `killall`, `kill`, `docker` or `dockerd` (found on the
system's directories, not a test's recording fake in its tmp_path) is refused and recorded, and
the test fails naming the command: reloading or signalling the shared dockerd is the business of
the integration and e2e suites only."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

DAEMON_COMMANDS = {"systemctl", "service", "pkill", "killall", "kill", "docker", "dockerd"}
SYSTEM_DIRS = ("/usr/", "/bin/", "/sbin/", "/snap/")


def _reaches_the_host_daemon(args, kwargs) -> bool:
    if kwargs.get("shell"):
        command = args if isinstance(args, str) else " ".join(map(str, args))
        return any(word in DAEMON_COMMANDS for word in command.split())
    first = str(args if isinstance(args, (str, bytes, os.PathLike)) else next(iter(args)))
    if os.path.basename(first) not in DAEMON_COMMANDS:
        return False
    env = kwargs.get("env") or os.environ
    found = first if os.sep in first else shutil.which(first, path=env.get("PATH"))
    return found is None or os.path.realpath(found).startswith(SYSTEM_DIRS)


@pytest.fixture(autouse=True)
def host_dockerd_out_of_reach(monkeypatch) -> Iterator[list]:
    reached: list = []
    real_init = subprocess.Popen.__init__

    def guarded(self, args, *more, **kwargs):
        if _reaches_the_host_daemon(args, kwargs):
            reached.append(args)
            raise PermissionError(f"a unit test ran the host's {args!r}")
        real_init(self, args, *more, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    yield reached
    assert not reached, f"the test reached for the host's Docker daemon: {reached}"
