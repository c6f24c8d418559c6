"""A journald for tests that check what the charm sends there: the machine's own when one
runs, else one this test session starts (systemd-journald runs without systemd as PID 1) and
stops again. dockerd's journald log driver writes to its socket whenever a container starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import prereq

SOCKET = Path("/run/systemd/journal/socket")
BINARIES = ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")


def _running() -> bool:
    return subprocess.run(["pgrep", "-x", "systemd-journal"], capture_output=True).returncode == 0


@contextmanager
def journald() -> Iterator[None]:
    binary = next((b for b in BINARIES if Path(b).exists()), "")
    if not binary or not shutil.which("journalctl"):
        prereq.missing("systemd-journald and journalctl are not installed (Debian's systemd)")
    if _running():
        yield
        return
    proc = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not SOCKET.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert SOCKET.exists(), "systemd-journald did not open its socket"
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def entries(**match: str) -> list[dict]:
    """The journal's entries with these fields (e.g. CONTAINER_NAME=...), as journalctl reads
    them."""
    argv = ["journalctl", "--no-pager", "--output", "json", "--all"]
    argv += [f"{field}={value}" for field, value in match.items()]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
