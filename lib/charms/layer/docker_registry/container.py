"""The only place that runs the docker CLI for the registry container and its image.

Containers are found by exact name (``docker inspect --type container NAME``), never
by matching text in ``docker ps`` output.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field

from charms.layer.docker_registry.errors import DockerError
from charms.layer.docker_registry.render import HASH_LABEL, Desired

DOCKER = "docker"
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
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise DockerError(
            f"docker {args[0]} failed: {message[-1] if message else proc.returncode}"
        )
    return proc.stdout


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
        out = docker("image", "inspect", "--format", "{{.Id}}", ref, timeout=30)
    except DockerError as exc:
        if "no such" in str(exc).lower():
            return None
        raise
    return out.strip() or None


def pull(ref: str) -> None:
    docker("pull", ref, timeout=900)


def load(tarball: str) -> list[str]:
    """`docker load` a `docker save` tarball; returns the image names/ids it loaded."""
    out = docker("load", "--input", tarball, timeout=900)
    return _LOADED_RE.findall(out)


def tag(source: str, target: str) -> None:
    docker("tag", source, target, timeout=30)


def start(name: str) -> None:
    docker("start", name, timeout=60)


def stop(name: str, timeout: int = 10) -> None:
    docker("stop", "--time", str(timeout), name, timeout=timeout + 60)


def remove(name: str) -> None:
    docker("rm", "--force", name, timeout=60)


def run(argv: list[str]) -> str:
    return docker(*argv, timeout=120).strip()


def config_hash(desired: Desired, *, image: str) -> str:
    wanted_image = image_id(image)
    if not wanted_image:
        raise DockerError(f"image {image} is not present")
    return desired.config_hash(wanted_image)


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


@dataclass(frozen=True)
class Looked:
    """What the caller already asked docker (a reconfigure's every docker call before the
    old container stops delays serving again): the wanted config hash, the current container."""

    wanted_hash: str
    current: ContainerState | None


def converge(
    desired: Desired,
    *,
    image: str,
    allow_start: bool = True,
    announce=None,
    previous_name: str = "",
    looked: Looked | None = None,
) -> tuple[str, list[str]]:
    """Make the container match ``desired``; returns what was done and the run arguments.

    "unchanged" (nothing touched), "started" (existing stopped container with the same
    config), "created", "recreated" (config changed: exactly one restart of the registry),
    or "stopped-by-operator" when ``allow_start`` is False and the container is not running.
    ``announce(current_state_or_None)`` is called just before the container is touched.
    ``previous_name``: the container the charm ran before under another name (registry-name
    changed): it is replaced too, never left running unmanaged.
    """
    if looked is None:
        looked = Looked(config_hash(desired, image=image), inspect(desired.run.name))
    wanted_hash, current = looked.wanted_hash, looked.current
    argv = desired.run.argv({HASH_LABEL: wanted_hash})
    name = desired.run.name
    if current and current.labels.get(HASH_LABEL) == wanted_hash:
        if current.running:
            return "unchanged", argv
        if not allow_start:
            return "stopped-by-operator", argv
        if announce:
            announce(current)
        start(name)
        return "started", argv
    if not allow_start and (current is None or not current.running):
        return "stopped-by-operator", argv
    if announce:
        announce(current)
    if current:
        stop(name)
        remove(name)
    renamed = previous_name and previous_name != name and inspect(previous_name)
    if renamed:
        stop(previous_name)
        remove(previous_name)
    run(argv)
    return ("recreated" if current or renamed else "created"), argv
