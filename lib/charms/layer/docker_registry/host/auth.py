"""Basic auth: bcrypt htpasswd entries made by `htpasswd`, the password only ever on stdin.

Cost: registry 2.8 checks the bcrypt hash on every request (no session), so the cost is paid by
every pull, push and API call: measured 2.3 ms of registry CPU per request at cost 5
(`htpasswd -B`'s default), 1.15 ms at cost 4, against about 1 ms for the rest of a tag-list
request. The charm hashes at cost 4, bcrypt's minimum: the same password is handed in plain
text to every related client (``basic_password`` on the docker-registry relation) and sits in
the charm config, so a slower hash of the root-only htpasswd file protects nothing those do not
already expose, while halving the registry's auth CPU. An existing hash that still verifies is
kept as it is, whatever its cost.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from charms.layer.docker_registry.errors import InstallError

HTPASSWD = "htpasswd"
BCRYPT_COST = 4


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
    proc = _htpasswd(["-n", "-i", "-B", "-C", str(BCRYPT_COST), user], password)
    if proc.returncode != 0:
        raise InstallError("htpasswd could not hash the basic auth password")
    line = proc.stdout.strip().splitlines()[0]
    return line + "\n"
