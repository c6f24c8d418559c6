"""Image lists and releases (pure: no skopeo, docker or network, so the archive tool can run
it on any machine with python3); where each image lands is references.py's.

Lists come in three forms:
- Charmed Kubernetes' ``container-images.txt``: one ``KEY: image image ...`` line per key
  (``ci-static``, ``vX.Y-static``, ``vX.Y.Z-upstream``), upstream names with ``{{ arch }}`` and
  ``{{ multiarch_workaround }}`` templates;
- its per-release files (``rocks.canonical.com/cdk/<path>:<tag>``, one a line);
- plain lists: images separated by spaces or newlines, ``#`` comments.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from dataclasses import dataclass, field

from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.images.references import (
    ARCHES,
    ROCKS,
    BadReference,
    ListError,
    canonical_host,
    identity,
    parse_reference,
    parse_rewrites,
    resolve_arch,
    rewrite,
)

MAX_LIST_FILE = 1024 * 1024
_TEMPLATE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ARCH_MARK = "\x00"  # stands for {{ arch }} between splitting a line and expanding it
_STATIC_RE = re.compile(r"^(?:ci|v(\d+)\.(\d+))-static$")
_UPSTREAM_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.]+))?-upstream$")
_RELEASE_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+)(?:-([0-9A-Za-z.]+))?)?$")


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


# -- command line: the archive tool's planner --------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python3 -m charms.layer.docker_registry.images.imagelists LIST [--release R] [--arch A]
    [--source a=b,...]``: one ``<read from>\\t<name>`` line per image (for the archive tool)."""

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
