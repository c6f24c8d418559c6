"""The docker CLI wrapper: the only place that runs docker for the registry container and
its image (what to run, and when, is ``workload``'s).

Containers are found by exact name (``docker inspect --type container NAME``), never
by matching text in ``docker ps`` output.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field

from charms.layer.docker_registry.errors import DockerError

DOCKER = "docker"
# every container the charm runs carries the unit that runs it (in its model): a container
# without it, or with another owner, is not the charm's to stop, remove or replace
OWNER_LABEL = "docker-registry.owner"
_HELP_HINT = re.compile(r"^(Run|See) 'docker [a-z]+ --help'")
_LOADED_RE = re.compile(r"^Loaded image(?: ID)?: (\S+)$", re.MULTILINE)


def docker(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    """Run one docker CLI command; DockerError names the sub-command and docker's message."""
    try:
        proc = subprocess.run(
            [DOCKER, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise DockerError("the docker CLI is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"docker {args[0]} timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise DockerError(f"docker {args[0]} failed: {_said(proc) or proc.returncode}")
    return proc.stdout


def _said(proc: subprocess.CompletedProcess) -> str:
    """docker's own error: its last line, less the "See 'docker run --help'" hints the CLI
    adds after a refused run; a run that had to look for its image says so first."""
    lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    lines = [line for line in lines if not _HELP_HINT.match(line)]
    missing = [line for line in lines[:-1] if line.startswith("Unable to find image")]
    return "; ".join(missing[:1] + lines[-1:])


@dataclass(frozen=True)
class ContainerState:
    name: str
    id: str
    running: bool
    status: str
    image_id: str
    labels: dict[str, str] = field(default_factory=dict)
    started_at: str = ""
    restart_count: int = 0
    ports: tuple[tuple[str, int], ...] = ()  # published (host address or "", host port)


def inspect(name: str) -> ContainerState | None:
    """The container with exactly this name, or None."""
    try:
        out = docker("inspect", "--type", "container", name, timeout=30)
    except DockerError as exc:
        if "no such" in str(exc).lower():
            return None
        raise
    data = json.loads(out)[0]
    if data.get("Name", "").lstrip("/") != name:  # docker also matches id prefixes
        return None
    state = data.get("State") or {}
    return ContainerState(
        name=name,
        id=data["Id"],
        running=bool(state.get("Running")),
        status=state.get("Status", ""),
        image_id=data.get("Image", ""),
        labels=(data.get("Config") or {}).get("Labels") or {},
        started_at=state.get("StartedAt", ""),
        restart_count=int(data.get("RestartCount") or 0),
        ports=_published(data),
    )


_STARTED_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$")


def running_for(state: ContainerState, now: float | None = None) -> float | None:
    """Seconds since the container last started (docker's StartedAt, UTC with nanoseconds),
    or None when it never did or docker said something else."""
    match = _STARTED_RE.match(state.started_at)
    if not (state.running and match):
        return None
    started = datetime.datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc
    )
    fraction = float(f"0.{match[2]}") if match[2] else 0.0
    return (time.time() if now is None else now) - started.timestamp() - fraction


def _published(data: dict) -> tuple[tuple[str, int], ...]:
    bindings = (data.get("HostConfig") or {}).get("PortBindings") or {}
    out = []
    for entries in bindings.values():
        for entry in entries or []:
            port = str(entry.get("HostPort") or "")
            if port.isdigit():
                out.append((entry.get("HostIp") or "", int(port)))
    return tuple(out)


def image_id(ref: str) -> str | None:
    try:
        out = docker("image", "inspect", "--format", "{{.Id}}", "--", ref, timeout=30)
    except DockerError as exc:
        if "no such" in str(exc).lower():
            return None
        raise
    return out.strip() or None


def pull(ref: str) -> None:
    docker("pull", "--", ref, timeout=900)  # "--": a reference is never an option


def load(tarball: str) -> list[str]:
    """`docker load` a `docker save` tarball; returns the image names/ids it loaded."""
    out = docker("load", "--input", tarball, timeout=900)
    return _LOADED_RE.findall(out)


def tag(source: str, target: str) -> None:
    docker("tag", "--", source, target, timeout=30)


def start(name: str) -> None:
    docker("start", name, timeout=60)


def stop(name: str, timeout: int = 10) -> None:
    docker("stop", "--time", str(timeout), name, timeout=timeout + 60)


def remove(name: str) -> None:
    docker("rm", "--force", name, timeout=60)


def owner() -> str:
    """This unit, as the owner label names it: ``<model uuid>/<unit name>``."""
    return f"{os.environ.get('JUJU_MODEL_UUID', '')}/{os.environ.get('JUJU_UNIT_NAME', '')}"


def rename(name: str, new_name: str) -> None:
    docker("rename", name, new_name, timeout=30)


def run(argv: list[str]) -> str:
    """`docker run` ``argv`` (which starts with "run"), labelled with this unit as owner."""
    return docker(argv[0], "--label", f"{OWNER_LABEL}={owner()}", *argv[1:], timeout=120).strip()


def last_log_line(name: str) -> str:
    """The registry's own last error-ish line (what it said before giving up)."""
    try:
        proc = subprocess.run(
            [DOCKER, "logs", "--tail", "30", name],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    for line in reversed(lines):
        if any(word in line for word in ("panic", "level=fatal", "level=error", "error")):
            return line
    return lines[-1] if lines else ""
