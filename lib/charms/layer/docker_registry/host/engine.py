"""The Docker engine, the htpasswd tool and the registry image on this machine."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from charms.layer.docker_registry.errors import DockerError, InstallError
from charms.layer.docker_registry.host import container

InstallPackages = Callable[[list[str]], None]


def engine_answers() -> bool:
    try:
        container.docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except DockerError:
        return False
    return True


def _start_daemon() -> None:
    for argv in (["systemctl", "start", "docker"], ["service", "docker", "start"]):
        if shutil.which(argv[0]):
            subprocess.run(argv, capture_output=True, timeout=120, check=False)
            return


def ensure_engine(install_packages: InstallPackages, wait: float = 60) -> None:
    """A Docker engine that answers: installed (docker.io) when missing, started when stopped."""
    if engine_answers():
        return
    if not shutil.which("dockerd"):
        try:
            install_packages(["docker.io"])
        except Exception as exc:
            raise InstallError("Failed to install docker.io") from exc
    _start_daemon()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(1)
    raise InstallError("The Docker engine does not answer (docker info)")


# command -> Debian/Ubuntu package
TOOLS = {"htpasswd": "apache2-utils", "openssl": "openssl", "skopeo": "skopeo"}


def ensure_tools(install_packages: InstallPackages) -> None:
    """htpasswd (basic auth hashing), openssl (TLS checks) and skopeo (push/mirror actions),
    installed when missing (openssl is on every Ubuntu image but the most minimal)."""
    missing = [package for command, package in TOOLS.items() if not shutil.which(command)]
    if not missing:
        return
    try:
        install_packages(missing)
    except Exception as exc:
        raise InstallError(f"Failed to install {', '.join(missing)}") from exc


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resource_token(path: Path, previous: str = "") -> str:
    """``<sha256>@<size>:<mtime_ns>`` of the resource tarball. The sha256 (~50 ms for a 24 MB
    image) is taken from ``previous`` when the file's size and mtime did not change, so a hook
    that changes nothing does not read the whole tarball again."""
    info = path.stat()
    stamp = f"{info.st_size}:{info.st_mtime_ns}"
    digest, _, previous_stamp = previous.partition("@")
    if digest and previous_stamp == stamp:
        return previous
    return f"{file_digest(path)}@{stamp}"


@dataclass(frozen=True)
class LocalImage:
    token: str  # the resource token to pass back as ``loaded_digest`` ("" without a resource)
    id: str  # the local image id ``ref`` names


def ensure_image(
    ref: str,
    resource: Callable[[], Path | None],
    loaded_digest: str = "",
    *,
    recheck: bool = True,
) -> LocalImage:
    """Make ``ref`` present locally.

    With a resource (a `docker save` tarball) it is loaded when its content changed (sha256),
    and ``ref`` is tagged onto what it holds when the tarball names another image. Else ``ref``
    is pulled when it is not present. ``resource`` is asked for only when needed: the resource
    changes only with upgrade-charm (``juju attach-resource``), so with ``recheck`` False a
    loaded image that is still there is kept without asking Juju.
    """
    present = container.image_id(ref)
    if present and loaded_digest and not recheck:
        return LocalImage(loaded_digest, present)
    path = resource()
    if path is not None:
        token = resource_token(path, loaded_digest)
        changed = token.partition("@")[0] != loaded_digest.partition("@")[0]
        if changed or not present:
            try:
                loaded = container.load(str(path))
            except DockerError as exc:
                raise InstallError(f"Failed to load the registry-image resource: {exc}") from exc
            if not loaded:
                raise InstallError("The registry-image resource holds no image")
            if ref not in loaded:
                container.tag(loaded[0], ref)
            present = container.image_id(ref)
        return LocalImage(token, _required(ref, present))
    if not present:
        try:
            container.pull(ref)
        except DockerError as exc:
            raise InstallError(f"Failed to pull {ref}: {exc}") from exc
        present = container.image_id(ref)
    return LocalImage("", _required(ref, present))


def _required(ref: str, image_id: str | None) -> str:
    if not image_id:
        raise InstallError(f"The image {ref} is not present after loading it")
    return image_id
