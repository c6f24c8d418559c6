"""Offline image helpers for tests: tiny distinct test images, the engine, the registry image.

Nothing here pulls from Docker Hub: images are made with `docker import` from files on the host.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_IMAGE_REF = "docker-registry-charm/registry:2.8.2"
REGISTRY_IMAGE_TAR = "registry-image.tar"
BUSYBOX = Path("/bin/busybox")


def registry_image_ref() -> str:
    """The tag scripts/build-registry-image.sh gives the offline registry:2-compatible image."""
    return REGISTRY_IMAGE_REF


def registry_image_tar(build_dir: str | Path) -> Path:
    """Where `make image` (scripts/build-registry-image.sh BUILD/images) saves that image.

    ``build_dir`` is the Makefile's BUILD directory (``build``); a directory that already holds
    the tar (BUILD/images itself) is accepted too.
    """
    build_dir = Path(build_dir)
    direct = build_dir / REGISTRY_IMAGE_TAR
    if direct.exists():
        return direct
    return build_dir / "images" / REGISTRY_IMAGE_TAR


def ensure_engine() -> None:
    """Make sure a Docker engine answers (starts dockerd without systemd if needed)."""
    subprocess.run(["bash", str(REPO_ROOT / "scripts" / "dockerd.sh"), "start"], check=True)


def payload_for(payload_bytes: int, seed: str) -> bytes:
    """Deterministic pseudo-random bytes: sha256 in counter mode over ``seed``."""
    out = bytearray()
    counter = 0
    seed_b = seed.encode()
    while len(out) < payload_bytes:
        out += hashlib.sha256(seed_b + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:payload_bytes])


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def make_test_image(ref: str, payload_bytes: int = 4096, seed: str = "") -> str:
    """Build a tiny image offline with `docker import`, tag it ``ref``, return its image id.

    The image holds busybox-static as /bin/sh (plus /bin/busybox) and /payload.bin with
    ``payload_bytes`` deterministic pseudo-random bytes derived from ``seed`` (default: ``ref``),
    so images with different seeds have different layers and digests.
    """
    if not BUSYBOX.exists():
        raise FileNotFoundError(f"{BUSYBOX} missing: apt-get install busybox-static")
    seed = seed or ref
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("bin", "tmp"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        _add_file(tar, "bin/busybox", BUSYBOX.read_bytes(), 0o755)
        link = tarfile.TarInfo("bin/sh")
        link.type = tarfile.SYMTYPE
        link.linkname = "busybox"
        link.mode = 0o777
        tar.addfile(link)
        _add_file(tar, "payload.bin", payload_for(payload_bytes, seed))
        _add_file(tar, "seed.txt", seed.encode() + b"\n")
    subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", ref],
        input=buf.getvalue(),
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
