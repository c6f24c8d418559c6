"""Copy plans: which image goes where, each destination once (pure); the digest a copy leaves."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from charms.layer.docker_registry.images.references import (
    IMAGE_REGISTRY,
    destination,
    identity,
    parse_reference,
    rewrite,
)

_LIST_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


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
