"""Image references and where their images land in this registry (pure: no skopeo, docker or
network, so the archive tool can run it on any machine with python3).

Layout: kubernetes-control-plane pulls ``{image-registry}/<path>``, where ``<path>`` is the
upstream name without its registry host (and Docker Hub's ``library/``), or the rocks name
without ``rocks.canonical.com/cdk/``. ``prefix`` puts the images under ``<netloc>/<prefix>/``
(``cdk``: the layout cdk-shrinkwrap makes, with ``image-registry=<netloc>/cdk``). The
``mirror`` layout keeps the path whole (``library/`` and ``cdk/`` included): what containerd
asks this registry for when it mirrors the image's host (client-config ``mirror-for``), as
Canonical K8s is configured.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass

from charms.layer.docker_registry.errors import RegistryCharmError

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


class ListError(RegistryCharmError):
    """An image list cannot be used; the message never repeats a file's content."""


class TransferError(RegistryCharmError):
    """A push or copy failed, or an image reference is wrong; the message says which and why.

    Defined here (re-exported by transfer) so that reference parsing needs no skopeo code."""


class BadReference(TransferError):
    """Not an image reference; ``why`` says what is wrong without repeating the text."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


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
