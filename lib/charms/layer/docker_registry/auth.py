"""Basic auth: bcrypt htpasswd entries made by `htpasswd`, the password only ever on stdin."""

from __future__ import annotations

import subprocess
from pathlib import Path

from charms.layer.docker_registry.errors import InstallError

HTPASSWD = "htpasswd"


def _htpasswd(args: list[str], password: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [HTPASSWD, *args],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError as exc:
        raise InstallError("the htpasswd tool (apache2-utils) is not installed") from exc


def verifies(existing: Path, user: str, password: str) -> bool:
    """Whether ``existing`` already holds a hash of this user's password."""
    if not existing.is_file():
        return False
    return _htpasswd(["-v", "-i", str(existing), user], password).returncode == 0


def htpasswd_line(user: str, password: str, existing: Path | None = None) -> str:
    """The htpasswd content for one user; reuses the current hash when it still verifies,
    so that an unchanged password never changes the file (and never restarts the registry)."""
    if existing is not None and verifies(existing, user, password):
        lines = existing.read_text().splitlines()
        if len(lines) == 1 and lines[0].startswith(f"{user}:"):
            return lines[0] + "\n"
    proc = _htpasswd(["-n", "-i", "-B", user], password)
    if proc.returncode != 0:
        raise InstallError("htpasswd could not hash the basic auth password")
    line = proc.stdout.strip().splitlines()[0]
    return line + "\n"
