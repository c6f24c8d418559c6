"""Image references, image lists and where their images land in this registry (pure: no
skopeo, docker or network, so the archive tool can run it on any machine with python3).

Lists come in three forms:
- Charmed Kubernetes' ``container-images.txt``: one ``KEY: image image ...`` line per key
  (``ci-static``, ``vX.Y-static``, ``vX.Y.Z-upstream``), upstream names with ``{{ arch }}`` and
  ``{{ multiarch_workaround }}`` templates;
- its per-release files (``rocks.canonical.com/cdk/<path>:<tag>``, one a line);
- plain lists: images separated by spaces or newlines, ``#`` comments.

Layout: kubernetes-control-plane pulls ``{image-registry}/<path>``, where ``<path>`` is the
upstream name without its registry host (and Docker Hub's ``library/``), or the rocks name
without ``rocks.canonical.com/cdk/``. ``prefix`` puts the images under ``<netloc>/<prefix>/``
(``cdk``: the layout cdk-shrinkwrap makes, with ``image-registry=<netloc>/cdk``). The
``mirror`` layout keeps the path whole (``library/`` and ``cdk/`` included): what containerd
asks this registry for when it mirrors the image's host (client-config ``mirror-for``), as
Canonical K8s is configured.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import stat
import sys
from dataclasses import dataclass, field

from charms.layer.docker_registry.errors import RegistryCharmError

MAX_LIST_FILE = 1024 * 1024
DOCKER_HUB = "docker.io"
DOCKER_HUB_HOSTS = ("docker.io", "index.docker.io", "registry-1.docker.io")
ROCKS = "rocks.canonical.com"
IMAGE_REGISTRY, MIRROR = "image-registry", "mirror"  # the layouts (see the module docstring)
LAYOUTS = (IMAGE_REGISTRY, MIRROR)
ARCHES = ("amd64", "arm64", "ppc64le", "s390x")
_MACHINES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9][a-zA-Z0-9.-]*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$")
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ARCH_MARK = "\x00"  # stands for {{ arch }} between splitting a line and expanding it
_STATIC_RE = re.compile(r"^(?:ci|v(\d+)\.(\d+))-static$")
_UPSTREAM_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.]+))?-upstream$")
_RELEASE_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+)(?:-([0-9A-Za-z.]+))?)?$")
_LIST_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


class TransferError(RegistryCharmError):
    """A push or copy failed, or an image reference is wrong; the message says which and why.

    Defined here (re-exported by transfer) so that reference parsing needs no skopeo code."""


class BadReference(TransferError):
    """Not an image reference; ``why`` says what is wrong without repeating the text."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


class ListError(RegistryCharmError):
    """An image list cannot be used; the message never repeats a file's content."""


# -- references -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: [host[:port]/]path[:tag][@digest]."""

    host: str  # "" when none was given (Docker Hub)
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def registry_path(self) -> str:
        """The path without its source registry (Docker Hub's library/ dropped)."""
        if self.host in ("", *DOCKER_HUB_HOSTS) and self.path.startswith("library/"):
            return self.path[len("library/") :]
        return self.path

    def __str__(self) -> str:
        out = f"{self.host}/{self.path}" if self.host else self.path
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def retarget(self, netloc: str) -> Reference:
        """The same image in the registry at ``netloc``, keeping its repository path.

        Tag kept; a digest-only reference stays a digest reference (pushed by digest);
        no tag and no digest means latest, as docker does.
        """
        tag = self.tag or ("" if self.digest else "latest")
        return Reference(netloc, self.registry_path, tag, "" if tag else self.digest)


def parse_reference(text: str) -> Reference:
    """Parse an image reference the way docker does; BadReference says what is wrong."""
    ref = (text or "").strip()
    if not ref or any(c.isspace() for c in ref):
        raise BadReference(f"not an image reference: {ref[:200]!r}", "empty or has spaces")
    if ref.startswith("-"):
        raise BadReference(f"not an image reference: {ref[:200]!r}", "starts with '-'")
    rest, _, digest = ref.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise BadReference(f"{ref[:200]}: the digest must be sha256:<64 hex digits>", "bad digest")
    host = ""
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST_RE.match(first):
            raise BadReference(f"{ref[:200]}: bad registry host {first[:100]!r}", "bad host")
        host, rest = first, remainder
    path, tag = rest, ""
    if ":" in rest.rsplit("/", 1)[-1]:
        path, _, tag = rest.rpartition(":")
        if not _TAG_RE.match(tag):
            raise BadReference(f"{ref[:200]}: bad tag {tag[:130]!r}", "bad tag")
    if not _PATH_RE.match(path) or len(path) > 255:
        raise BadReference(
            f"{ref[:200]}: bad repository path (lower-case letters, digits, . _ - and /)",
            "bad repository path",
        )
    return Reference(host, path, tag, digest)


def canonical_host(host: str) -> str:
    """``""`` and Docker Hub's aliases are docker.io; https' default port is dropped."""
    host = host.lower()
    if host.endswith(":443"):
        host = host[: -len(":443")]
    return DOCKER_HUB if host in ("", *DOCKER_HUB_HOSTS) else host


def _hub_path(host: str, path: str) -> str:
    return f"library/{path}" if host == DOCKER_HUB and "/" not in path else path


def identity(ref: Reference) -> str:
    """One spelling per image: docker.io/library/nginx:latest for nginx, nginx:latest, ..."""
    host = canonical_host(ref.host)
    tag = ref.tag or ("" if ref.digest else "latest")
    out = f"{host}/{_hub_path(host, ref.path)}" + (f":{tag}" if tag else "")
    return out + (f"@{ref.digest}" if ref.digest else "")


def destination_path(ref: Reference, layout: str = IMAGE_REGISTRY) -> str:
    """Where a client looks for ``ref``: under CK's image-registry (see the module docstring),
    or, in the ``mirror`` layout, at the path its own registry has it (containerd's request
    when this registry mirrors that host: ``docker.io/nginx`` -> ``library/nginx``)."""
    host = canonical_host(ref.host)
    path = ref.path
    if layout == MIRROR:
        return _hub_path(host, path)
    if host == ROCKS and path.startswith("cdk/"):
        return path[len("cdk/") :]
    if host == DOCKER_HUB and path.startswith("library/"):
        return path[len("library/") :]
    return path


def destination(
    ref: Reference, netloc: str, prefix: str = "", layout: str = IMAGE_REGISTRY
) -> Reference:
    """``ref`` in this registry: tag kept (latest when neither tag nor digest), else digest."""
    path = destination_path(ref, layout)
    if prefix:
        path = f"{prefix}/{path}"
    tag = ref.tag or ("" if ref.digest else "latest")
    return Reference(netloc, path, tag, "" if tag else ref.digest)


def image_registry(netloc: str, prefix: str = "") -> str:
    """The kubernetes-control-plane ``image-registry`` value for this layout."""
    return f"{netloc}/{prefix}" if prefix else netloc


def check_layout(layout: str, prefix: str) -> str:
    layout = (layout or IMAGE_REGISTRY).strip().lower()
    if layout not in LAYOUTS:
        raise ListError(f"layout: one of {', '.join(LAYOUTS)}")
    if layout == MIRROR and prefix:
        raise ListError("prefix: not with layout=mirror (containerd asks for the path as it is)")
    return layout


def mirrored_hosts(sources: list[str]) -> list[str]:
    """The registry hosts of these images, as client-config's mirror-for takes them."""
    hosts = set()
    for source in sources:
        try:
            hosts.add(canonical_host(parse_reference(source).host))
        except BadReference:
            continue
    return sorted(hosts)


def check_prefix(prefix: str) -> str:
    prefix = (prefix or "").strip().strip("/")
    if prefix and (not _PATH_RE.match(prefix) or len(prefix) > 128):
        raise ListError("prefix: a repository path such as cdk (lower-case, digits, . _ - /)")
    return prefix


def parse_rewrites(text: str) -> dict[str, str]:
    """``a=b,c=d``: read images named ``a/...`` from registry ``b`` (host[:port]) instead."""
    out: dict[str, str] = {}
    for part in (text or "").replace("\n", ",").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, other = (s.strip() for s in part.partition("="))
        for host in (name, other):
            if not sep or not host or host.startswith("-") or not _HOST_RE.match(host):
                raise ListError(
                    "source: give registry=host[:port] pairs separated by commas, e.g. "
                    "rocks.canonical.com=mirror.example:5000"
                )
        out[canonical_host(name)] = other
    return out


def rewrite(ref: Reference, rewrites: dict[str, str]) -> Reference:
    """Where to read ``ref`` from: its own registry, or the one ``rewrites`` names for it."""
    host = canonical_host(ref.host)
    if host not in rewrites:
        return ref
    return Reference(rewrites[host], _hub_path(host, ref.path), ref.tag, ref.digest)


# -- architectures ----------------------------------------------------------------------------


def machine_arch(machine: str | None = None) -> str:
    """This machine's architecture as images name it ("" when not one CK builds for)."""
    machine = platform.machine() if machine is None else machine
    return _MACHINES.get(machine.lower(), "")


def resolve_arch(value: str, machine: str | None = None) -> tuple[str, ...]:
    """``arch=``: "" (this unit's), one of ARCHES, or "all"."""
    value = (value or "").strip().lower()
    if value == "all":
        return ARCHES
    if not value:
        arch = machine_arch(machine)
        if not arch:
            raise ListError(
                f"arch: this unit's machine type is not one of {', '.join(ARCHES)}; give arch="
            )
        return (arch,)
    if value not in ARCHES:
        raise ListError(f"arch: one of {', '.join(ARCHES)} or all")
    return (value,)


# -- releases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    major: int
    minor: int
    patch: int | None = None
    pre: str = ""  # "rc.0", "alpha.2": before the final patch release

    @property
    def series(self) -> tuple[int, int]:
        return self.major, self.minor

    def order(self) -> tuple:
        """Numeric order: 1.35.10 after 1.35.9; 1.35.0-rc.1 after -rc.0 and before 1.35.0."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre.split("."))
        return (self.major, self.minor, self.patch or 0, 0 if self.pre else 1, pre)

    def __str__(self) -> str:
        out = f"{self.major}.{self.minor}"
        if self.patch is not None:
            out += f".{self.patch}" + (f"-{self.pre}" if self.pre else "")
        return out


def release_param(value: object) -> str:
    """The mirror action's release= as text. Juju reads `release=1.35` on the command line as
    YAML, so a release typed without its v arrives as a number: 1.35 is taken as 1.35, but a
    minor of one digit is refused, because `release=1.30` arrives as 1.3 too."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):
        text = repr(value)  # the shortest form that reads back: 1.35, never 1.3500000000000001
        major, dot, minor = text.partition(".")
        if dot and major.isdigit() and minor.isdigit() and len(minor) == 1:
            raise ListError(
                f"release: Juju read it as the number {text}, which drops a trailing zero "
                f"(release={text}0 reads as {text} too): write release=v{text}0, or "
                f"release=v{text} if {text} is meant"
            )
        return text
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ListError("release: a Kubernetes release such as 1.35 or 1.35.3")


def parse_release(text: str) -> Release:
    match = _RELEASE_RE.match((text or "").strip())
    if not match:
        raise ListError("release: a Kubernetes release such as 1.35 or 1.35.3")
    major, minor, patch, pre = match.groups()
    return Release(int(major), int(minor), None if patch is None else int(patch), pre or "")


# -- lists ------------------------------------------------------------------------------------


def read_list_file(path: str, limit: int = MAX_LIST_FILE, what: str = "file") -> str:
    """A list file's text: a regular file (no FIFO, device, directory or final symlink), at
    most ``limit`` bytes, UTF-8. Messages name the path, never the content."""
    if not os.path.isabs(path):
        raise ListError(f"{what}: must be an absolute path on the unit")
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # before open: opening a device may act
            raise ListError(f"{what}: {path} is not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY)
    except OSError as exc:
        raise ListError(f"{what}: cannot read {path}: {exc.strerror or 'unreadable'}") from None
    try:
        info = os.fstat(fd)  # the file opened, whatever the path points at by now
        if not stat.S_ISREG(info.st_mode):
            raise ListError(f"{what}: {path} is not a regular file")
        data = _read_at_most(fd, limit, declared=info.st_size)
    except OSError as exc:
        raise ListError(f"{what}: cannot read {path}: {exc.strerror or 'unreadable'}") from None
    finally:
        os.close(fd)
    if data is None:
        raise ListError(f"{what}: larger than {limit // 1024 // 1024} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ListError(f"{what}: {path} is not UTF-8 text, so not an image list") from None


def _read_at_most(fd: int, limit: int, declared: int) -> bytes | None:
    """Up to ``limit`` bytes of an open file; None when it holds more (whatever its size said
    when opened: a file may grow while read)."""
    if declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, min(65536, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


@dataclass
class ImageList:
    images: list[str]
    form: str  # "container-images.txt", "per-release list" or "list"
    lines: tuple[str, ...] = ()  # the container-images.txt keys used
    notes: list[str] = field(default_factory=list)


def _where(what: str, lineno: int) -> str:
    return f"{what} line {lineno}"


def _check_image(word: str, what: str, lineno: int, *, echo: bool, require_host: bool) -> None:
    probe = word.replace(_ARCH_MARK, ARCHES[0])
    try:
        ref = parse_reference(probe)
    except BadReference as exc:
        shown = f" {probe[:100]!r}" if echo else ""
        raise ListError(
            f"{_where(what, lineno)}:{shown} not an image reference ({exc.why})"
        ) from None
    if require_host and not ref.host:
        raise ListError(
            f"{_where(what, lineno)}: not an image reference with its registry "
            "(a list file names each image as registry/path:tag)"
        )


def _words(line: str, what: str, lineno: int) -> list[str]:
    def template(match: re.Match) -> str:
        name = match.group(1)
        if name == "arch":
            return _ARCH_MARK
        if name == "multiarch_workaround":
            return ""  # what CK's own image jobs replace it with
        raise ListError(f"{_where(what, lineno)}: a {{{{ … }}}} template other than arch")

    return _TEMPLATE_RE.sub(template, line.split("#", 1)[0]).split()


def _expand(words: list[str], arches: tuple[str, ...]) -> list[str]:
    out: dict[str, None] = {}  # ordered, without repeats
    for word in words:
        expanded = [word.replace(_ARCH_MARK, a) for a in arches] if _ARCH_MARK in word else [word]
        out.update(dict.fromkeys(expanded))
    return list(out)


def parse_list(
    text: str,
    *,
    release: str = "",
    arches: tuple[str, ...] = ("amd64",),
    what: str = "file",
    echo: bool = False,
    require_host: bool = False,
) -> ImageList:
    """Images of a list in any of the three forms, templates expanded, duplicates dropped.

    Every line is checked before anything is used; a bad line is named by its number and what
    is wrong with it, its text only when ``echo`` (the operator's own parameter, not a file).
    ``require_host``: plain lists must name every image's registry (lists from files: a
    ``user:password`` line would otherwise pass for a Docker Hub image).
    """
    keyed: list[tuple[int, str, list[str]]] = []
    plain: list[str] = []
    form = ""
    for lineno, line in enumerate((text or "").splitlines(), 1):
        entry = _list_line(line, what, lineno)
        if entry is None:
            continue
        key, images = entry
        form = form or ("keyed" if key else "plain")
        if (form == "keyed") != bool(key):
            expected = "a `KEY: image …` line" if form == "keyed" else "images, not a `KEY:` line"
            raise ListError(f"{_where(what, lineno)}: expected {expected} like the lines before")
        _check_line(key, images, what, lineno, echo=echo, require_host=require_host)
        if key:
            keyed.append((lineno, key, images))
        else:
            plain += images
    if form == "keyed":
        return _select(keyed, release, arches)
    result = ImageList(_expand(plain, arches), "list")
    if result.images and all(
        canonical_host(parse_reference(i).host) == ROCKS for i in result.images
    ):
        result.form = "per-release list"
    if release:
        result.notes.append(f"release= applies to container-images.txt only; this {what} is not")
    return result


def _list_line(line: str, what: str, lineno: int) -> tuple[str, list[str]] | None:
    """A line as (its container-images.txt key or "", its images); None when blank."""
    if "\x00" in line:
        raise ListError(f"{_where(what, lineno)}: binary data, not an image list")
    words = _words(line, what, lineno)
    if not words:
        return None
    key = words[0][:-1] if words[0].endswith(":") else ""
    return key, (words[1:] if key else words)


def _check_line(
    key: str, images: list[str], what: str, lineno: int, *, echo: bool, require_host: bool
) -> None:
    for word in images:
        _check_image(word, what, lineno, echo=echo, require_host=require_host and not key)
    if key and not (_STATIC_RE.match(key) or _UPSTREAM_RE.match(key)):
        raise ListError(
            f"{_where(what, lineno)}: a key that is neither vX.Y-static, ci-static "
            "nor vX.Y.Z-upstream"
        )


def _by_release(
    keyed: list[tuple[int, str, list[str]]],
) -> tuple[dict[tuple[int, int], list[str]], dict[Release, list[str]]]:
    """container-images.txt's lines as (static images by minor, upstream images by patch)."""
    statics: dict[tuple[int, int], list[str]] = {}
    upstreams: dict[Release, list[str]] = {}
    for _, key, entries in keyed:
        static = _STATIC_RE.match(key)
        if static and static.group(1) is not None:
            statics.setdefault((int(static.group(1)), int(static.group(2))), []).extend(entries)
        upstream = _UPSTREAM_RE.match(key)
        if upstream:
            major, minor, patch, pre = upstream.groups()
            found = Release(int(major), int(minor), int(patch), pre or "")
            upstreams.setdefault(found, []).extend(entries)
    return statics, upstreams


def _select(
    keyed: list[tuple[int, str, list[str]]], release: str, arches: tuple[str, ...]
) -> ImageList:
    statics, upstreams = _by_release(keyed)
    series = sorted(set(statics) | {r.series for r in upstreams})
    known = ", ".join(f"{a}.{b}" for a, b in series) or "none"
    if not release:
        newest = f"{series[-1][0]}.{series[-1][1]}" if series else "1.35"
        raise ListError(
            "this is Charmed Kubernetes' container-images.txt: give release= (a release in it, "
            f"e.g. release=v{newest}, or an exact patch); releases in it: {known}"
        )
    wanted = parse_release(release)
    patches = sorted((r for r in upstreams if r.series == wanted.series), key=Release.order)
    if wanted.series not in statics and not patches:
        closest = sorted(
            series, key=lambda s: (abs(s[0] - wanted.major), abs(s[1] - wanted.minor))
        )
        names = ", ".join(f"{a}.{b}" for a, b in closest[:3]) or "none"
        raise ListError(f"release {wanted} is not in the list; the closest: {names}")
    notes: list[str] = []
    lines: list[str] = []
    images: list[str] = []
    minor = f"v{wanted.major}.{wanted.minor}"
    if wanted.series in statics:
        lines.append(f"{minor}-static")
        images += statics[wanted.series]
    else:
        notes.append(f"no {minor}-static line: only the upstream images")
    if wanted.patch is None:
        finals = [r for r in patches if not r.pre]
        chosen = (finals or patches)[-1] if patches else None
        if chosen is not None and chosen.pre:
            notes.append(f"{minor} has only pre-release lines: using {chosen}")
    else:
        chosen = wanted if wanted in upstreams else None
        if chosen is None:
            near = sorted(patches, key=lambda r: abs((r.patch or 0) - (wanted.patch or 0)))
            named = ", ".join(str(r) for r in near[:3])
            notes.append(
                f"no v{wanted}-upstream line: only the {minor}-static images"
                + (f" (patches with upstream lines: {named})" if named else "")
            )
    if chosen is not None:
        lines.append(f"v{chosen}-upstream")
        images += upstreams[chosen]
    return ImageList(_expand(images, arches), "container-images.txt", tuple(lines), notes)


# -- plans ------------------------------------------------------------------------------------


@dataclass
class Item:
    """One image to copy: where it comes from, where it goes, and (afterwards) what happened."""

    source: str  # the image as the list or the archive names it
    dest: str  # <netloc>/<prefix>/<path>:<tag>
    read: str = ""  # what skopeo reads: docker://..., oci:DIR:NAME, docker-archive:FILE:@N
    identity: str = ""  # the same image, however spelled (or the same archive content)
    extra: tuple[str, ...] = ()  # skopeo copy options for this image (--all, ...)
    expect: str = ""  # manifest digest a copy keeps, when known (OCI archives)
    config: str = ""  # config digest (docker save archives: no manifest digest to keep)
    status: str = "planned"  # planned, copied, present, failed, refused
    reason: str = ""
    digest: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "copied", "present")

    @property
    def digest_kept(self) -> bool | None:
        """Whether the registry holds the manifest the archive had (None: nothing to keep)."""
        if not self.expect or self.status != "copied":
            return None
        return self.digest == self.expect

    def as_dict(self) -> dict:
        out = {
            "source": self.source,
            "target": self.dest,
            "status": self.status,
            "ok": self.ok,
            "digest": self.digest,
            "reason": self.reason,
            "seconds": round(self.seconds, 2),
        }
        if self.digest_kept is not None:
            out["digest-kept"] = self.digest_kept
        return out

    def line(self) -> str:
        if self.status == "copied":
            return f"copied {self.source} -> {self.dest} {self.digest} ({self.seconds:.1f}s)"
        if self.status == "present":
            return f"skipped {self.source}: {self.reason}"
        if self.status == "planned":
            return f"plan {self.source} -> {self.dest}"
        return f"{self.status.upper()} {self.source}: {self.reason}"


def assign(items: list[Item]) -> tuple[list[Item], int]:
    """Drop repeats of the same image to the same place; refuse every image whose destination
    another image also has (neither may silently overwrite the other). Returns (items kept,
    number of repeats dropped)."""
    kept: list[Item] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        if (item.identity, item.dest) not in seen:
            seen.add((item.identity, item.dest))
            kept.append(item)
    by_dest: dict[str, list[Item]] = {}
    for item in kept:
        by_dest.setdefault(item.dest, []).append(item)
    for group in by_dest.values():
        if len(group) > 1:
            for item in group:
                others = [i.source for i in group if i is not item]
                more = f" and {len(others) - 3} more" if len(others) > 3 else ""
                item.status = "refused"
                item.reason = f"{', '.join(others[:3])}{more} also goes to {item.dest}"
    return kept, len(items) - len(kept)


def plan_mirror(
    images: list[str],
    *,
    netloc: str,
    prefix: str = "",
    layout: str = IMAGE_REGISTRY,
    rewrites: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[list[Item], int]:
    items = []
    for image in images:
        ref = parse_reference(image)
        read = rewrite(ref, rewrites or {})
        items.append(
            Item(
                source=image,
                dest=str(destination(ref, netloc, prefix, layout)),
                read=f"docker://{read}",
                identity=identity(ref),
                extra=extra,
            )
        )
    return assign(items)


def manifest_digest(raw: bytes, *, arch: str = "", all_platforms: bool = True) -> str:
    """The digest a copy of this manifest leaves in the registry: its own for one image (or a
    whole list with ``all_platforms``), else that of the list's linux/``arch`` image."""
    top = "sha256:" + hashlib.sha256(raw).hexdigest()
    if all_platforms:
        return top
    try:
        doc = json.loads(raw)
    except ValueError:
        return top
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        return top
    if doc.get("mediaType", _LIST_TYPES[1]) not in _LIST_TYPES:
        return top
    matches = [
        m
        for m in doc["manifests"]
        if isinstance(m, dict)
        and (m.get("platform") or {}).get("os") == "linux"
        and (m.get("platform") or {}).get("architecture") == arch
    ]
    # arm64 images carry variant v8 or none; either is what a copy for arm64 picks
    matches.sort(key=lambda m: (m["platform"].get("variant") or "") not in ("", "v8"))
    return str(matches[0].get("digest", "")) if matches else ""


# -- results ----------------------------------------------------------------------------------


def bounded_json(rows: list[dict], limit: int) -> tuple[str, int]:
    """As many ``rows`` as fit in ``limit`` characters of JSON; (json, how many)."""
    out: list[str] = []
    size = 2
    for row in rows:
        text = json.dumps(row)
        if size + len(text) + 2 > limit:
            break
        out.append(text)
        size += len(text) + 2
    return "[" + ", ".join(out) + "]", len(out)


def bounded_lines(lines: list[str], limit: int) -> str:
    out: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        if size + len(line) + 1 > limit - 80:
            out.append(f"... and {len(lines) - index} more (see the report file)")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


# -- command line: the archive tool's planner --------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python3 -m charms.layer.docker_registry.images.imagelists LIST [--release R] [--arch A]
    [--source a=b,...]``: one ``<read from>\\t<name>`` line per image (for the archive tool)."""
    import argparse

    parser = argparse.ArgumentParser(prog="imagelists", description=main.__doc__)
    parser.add_argument("list")
    parser.add_argument("--release", default="")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--source", default="")
    args = parser.parse_args(argv)
    try:
        text = read_list_file(os.path.abspath(args.list), what=args.list)
        parsed = parse_list(
            text, release=args.release, arches=resolve_arch(args.arch), require_host=True
        )
        rewrites = parse_rewrites(args.source)
    except RegistryCharmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in parsed.notes:
        print(f"note: {note}", file=sys.stderr)
    seen: set[str] = set()
    for image in parsed.images:
        ref = parse_reference(image)
        if identity(ref) not in seen:
            seen.add(identity(ref))
            print(f"{rewrite(ref, rewrites)}\t{image}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
