"""Images carried in as files, for the ``import`` action: what an archive holds and how
skopeo reads each image from it.

Accepted: a ``docker save`` archive (docker-archive, any number of images and tags), an
``oci-archive`` (a tar of an OCI layout), an OCI layout directory, or a directory of those.
Names come from the archive: docker-archive RepoTags; OCI ``io.containerd.image.name`` or
``org.opencontainers.image.ref.name`` annotations holding a full reference
(``registry.k8s.io/pause:3.9``, as scripts/ck-images-archive.sh writes them).

Digests: an OCI manifest is pushed as it is (``--preserve-digests`` where skopeo has it), so the
registry holds the archive's digest. A docker save archive holds no registry manifest (only
the image config and uncompressed layers): the push writes a new manifest, the config digest
(the image ID) is what stays the same and what a re-run compares.

An oci-archive is extracted once into a private directory (regular files of an OCI layout only)
instead of letting skopeo unpack the whole archive again for every image in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.images.plans import Item, assign
from charms.layer.docker_registry.images.references import (
    IMAGE_REGISTRY,
    BadReference,
    destination,
    parse_reference,
)

MAX_INDEX = 16 * 1024 * 1024  # index.json / manifest.json: far more than thousands of images
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_NAME_KEYS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_BLOB_RE = re.compile(r"^blobs/[a-z0-9]+/[a-f0-9]{32,128}$")
_COMPRESSED = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"\xfd7zXZ": "xz"}


class ArchiveError(RegistryCharmError):
    """Files that are not (usable) image archives; never quotes their content."""


@dataclass(frozen=True)
class ArchiveImage:
    name: str  # the image's full reference, from the archive
    origin: str  # the archive file or layout directory
    kind: str  # "docker-archive", "oci-archive" or "oci"
    ref_name: str = ""  # OCI: the ref.name annotation skopeo selects it by
    index: int = 0  # docker-archive: its position in manifest.json
    digest: str = ""  # OCI: manifest (or index) digest
    config: str = ""  # docker-archive: config digest (the image ID)
    multi: bool = False  # an image index: copied with every platform


@dataclass
class Scan:
    images: list[ArchiveImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    archives: int = 0


def scan(path: str) -> Scan:
    """Every image under ``path`` (an archive, a layout or a directory of them)."""
    if not os.path.isabs(path):
        raise ArchiveError("path: must be an absolute path on the unit")
    if ":" in path:  # skopeo splits transport:path:name at the first ':'
        raise ArchiveError("path: must not contain ':'")
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise ArchiveError(f"path: cannot read {path}: {exc.strerror or 'unreadable'}") from None
    out = Scan()
    if stat.S_ISREG(info.st_mode):
        _scan_file(path, out, strict=True)
    elif stat.S_ISDIR(info.st_mode) and _is_layout(path):
        _scan_layout(path, out)
    elif stat.S_ISDIR(info.st_mode):
        _scan_directory(path, out)
    else:
        raise ArchiveError(f"path: {path} is not a regular file or a directory")
    if not out.archives:
        raise ArchiveError(f"path: no image archive or OCI layout at {path}")
    return out


def _scan_directory(path: str, out: Scan) -> None:
    """Each archive and layout directly in ``path``; anything else is skipped with a note."""
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        child = os.path.join(path, entry.name)
        if ":" in entry.name:
            out.notes.append(f"skipped {child}: its name has ':'")
        elif entry.is_file(follow_symlinks=False):
            _scan_file(child, out, strict=False)
        elif entry.is_dir(follow_symlinks=False) and _is_layout(child):
            _scan_layout(child, out)
        else:
            out.notes.append(f"skipped {child}: not an image archive or OCI layout")


def _is_layout(directory: str) -> bool:
    return all(
        os.path.isfile(os.path.join(directory, n))
        and not os.path.islink(os.path.join(directory, n))
        for n in ("oci-layout", "index.json")
    )


def _scan_file(path: str, out: Scan, *, strict: bool) -> None:
    try:
        images = _archive(path)
    except ArchiveError as exc:
        if strict:
            raise
        out.notes.append(f"skipped {path}: {exc}")
        return
    out.archives += 1
    out.images += images
    if not images:
        out.notes.append(f"{path} holds no image")


def _open_regular(path: str) -> BinaryIO:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY)
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise ArchiveError("not a regular file")
    return handle


def _archive(path: str) -> list[ArchiveImage]:
    try:
        handle = _open_regular(path)
    except OSError as exc:
        raise ArchiveError(f"cannot read it ({exc.strerror or 'unreadable'})") from None
    with handle:
        magic = handle.read(6)
        for prefix, name in _COMPRESSED.items():
            if magic.startswith(prefix):
                raise ArchiveError(f"{name}-compressed: decompress it first")
        handle.seek(0)
        try:
            with tarfile.open(fileobj=handle, mode="r:") as tar:
                members = {_clean(m.name): m for m in tar.getmembers()}
                if "manifest.json" in members:
                    return _docker_archive(path, tar, members)
                if "oci-layout" in members and "index.json" in members:
                    index = _read_json(tar, members["index.json"], "index.json")
                    return _oci_images(path, "oci-archive", index)
        except (tarfile.TarError, OSError, EOFError):
            raise ArchiveError("not a docker save or OCI archive (not a tar file)") from None
    raise ArchiveError("not a docker save or OCI archive (no manifest.json or oci-layout)")


def _clean(name: str) -> str:
    return posixpath.normpath(name).lstrip("/") if name not in ("", ".", "./") else "."


def _member_file(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tar.extractfile(member)
    if handle is None:  # not a regular file: callers checked, this keeps it so
        raise ArchiveError(f"{member.name} is not a regular file")
    return handle


def _read_json(tar: tarfile.TarFile, member: tarfile.TarInfo, what: str) -> Any:
    if not member.isreg() or member.size > MAX_INDEX:
        raise ArchiveError(f"its {what} is not a small regular file")
    data = _member_file(tar, member).read()
    try:
        return json.loads(data)
    except ValueError:
        raise ArchiveError(f"its {what} is not valid JSON") from None


def _docker_archive(path: str, tar: tarfile.TarFile, members: dict) -> list[ArchiveImage]:
    manifest = _read_json(tar, members["manifest.json"], "manifest.json")
    if not isinstance(manifest, list):
        raise ArchiveError("its manifest.json is not a docker save manifest")
    images = []
    for position, entry in enumerate(manifest):
        if not isinstance(entry, dict):
            raise ArchiveError("its manifest.json is not a docker save manifest")
        config = members.get(_clean(str(entry.get("Config", ""))))
        if config is None or not config.isreg() or config.size > MAX_INDEX:
            raise ArchiveError(f"image {position} has no config in the archive")
        digest = "sha256:" + hashlib.sha256(_member_file(tar, config).read()).hexdigest()
        for tag in entry.get("RepoTags") or [""]:  # "": untagged, noted when planning
            images.append(
                ArchiveImage(str(tag), path, "docker-archive", index=position, config=digest)
            )
    return images


def _scan_layout(directory: str, out: Scan) -> None:
    try:
        with _open_regular(os.path.join(directory, "index.json")) as handle:
            data = handle.read(MAX_INDEX + 1)
    except OSError as exc:
        raise ArchiveError(f"{directory}: cannot read index.json ({exc.strerror})") from None
    if len(data) > MAX_INDEX:
        raise ArchiveError(f"{directory}: index.json is too large")
    try:
        index = json.loads(data)
    except ValueError:
        raise ArchiveError(f"{directory}: index.json is not valid JSON") from None
    out.archives += 1
    out.images += _oci_images(directory, "oci", index)


def _oci_images(origin: str, kind: str, index: Any) -> list[ArchiveImage]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ArchiveError("its index.json lists no manifests")
    images = []
    for descriptor in manifests:
        if not isinstance(descriptor, dict):
            continue
        annotations = descriptor.get("annotations") or {}
        ref_name = str(annotations.get("org.opencontainers.image.ref.name", ""))
        name = next((str(annotations[k]) for k in _NAME_KEYS if annotations.get(k)), "")
        media = descriptor.get("mediaType", "")
        images.append(
            ArchiveImage(
                name,
                origin,
                kind,
                ref_name=ref_name,
                digest=str(descriptor.get("digest", "")),
                multi=media in (OCI_INDEX, DOCKER_LIST),
            )
        )
    return images


# -- plan -------------------------------------------------------------------------------------


def plan(
    images: list[ArchiveImage],
    *,
    netloc: str,
    prefix: str = "",
    layout: str = IMAGE_REGISTRY,
    preserve: bool = True,
) -> tuple[list[Item], list[str], int]:
    """(items, notes, repeats dropped): one item per named image, in the mirror's layout."""
    items: list[Item] = []
    notes: list[str] = []
    for image in images:
        where = image.origin
        if image.kind == "docker-archive":
            where += f" (image {image.index})"
        if not image.name:
            notes.append(f"skipped an image in {where}: the archive gives it no name")
            continue
        try:
            ref = parse_reference(image.name)
        except BadReference as exc:
            notes.append(f"skipped an image in {where}: its name is not a reference ({exc.why})")
            continue
        oci = image.kind != "docker-archive"
        if not (ref.tag or ref.digest) or (oci and not image.ref_name):
            notes.append(f"skipped {image.name} in {where}: no tag or ref.name to select it by")
            continue
        extra: tuple[str, ...] = ()
        if oci:
            extra = ("--preserve-digests",) if preserve else ()
            extra += ("--all",) if image.multi else ()
        items.append(
            Item(
                source=image.name,
                dest=str(destination(ref, netloc, prefix, layout)),
                read=read_ref(image),
                identity=image.digest or image.config,
                extra=extra,
                expect=image.digest if oci else "",
                config=image.config,
            )
        )
    kept, repeats = assign(items)
    return kept, notes, repeats


def read_ref(image: ArchiveImage) -> str:
    """How skopeo reads ``image`` (``@N``: by position, whatever names it has)."""
    if image.kind == "docker-archive":
        return f"docker-archive:{image.origin}:@{image.index}"
    return f"{image.kind}:{image.origin}:{image.ref_name}"


def oci_archives(items: list[Item]) -> list[str]:
    """The oci-archives planned items are read from (extract them once: ``extracted``)."""
    return sorted({i.read.split(":", 2)[1] for i in items if i.read.startswith("oci-archive:")})


def use_extracted(items: list[Item], layouts: dict[str, str]) -> None:
    """Read from the extracted layouts instead of the archives."""
    for item in items:
        if item.read.startswith("oci-archive:"):
            _, archive, name = item.read.split(":", 2)
            if archive in layouts:
                item.read = f"oci:{layouts[archive]}:{name}"


# -- extraction -------------------------------------------------------------------------------


@contextmanager
def extracted(archives: list[str], workdir: Path) -> Iterator[dict[str, str]]:
    """{oci-archive: its OCI layout in a private directory under ``workdir``}; removed after."""
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    made: dict[str, str] = {}
    try:
        for archive in archives:
            target = tempfile.mkdtemp(prefix="import-", dir=workdir)
            made[archive] = target
            _extract(archive, Path(target))
        yield made
    finally:
        for target in made.values():
            shutil.rmtree(target, ignore_errors=True)


def _extract(archive: str, target: Path) -> None:
    """Only an OCI layout's regular files (oci-layout, index.json, blobs/<alg>/<hex>)."""
    with _open_regular(archive) as handle, tarfile.open(fileobj=handle, mode="r:") as tar:
        members = [m for m in tar.getmembers() if m.isreg() and _layout_member(_clean(m.name))]
        need = sum(m.size for m in members)
        free = shutil.disk_usage(target).free
        if need > free:
            raise ArchiveError(
                f"{archive}: extracting it needs {need // 2**20} MiB, {free // 2**20} MiB free "
                f"under {target.parent}"
            )
        (target / "blobs").mkdir(mode=0o700)
        for member in members:
            name = _clean(member.name)
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(_member_file(tar, member), out, 1024 * 1024)


def _layout_member(name: str) -> bool:
    return name in ("oci-layout", "index.json") or bool(_BLOB_RE.match(name))
