"""Juju storage in the local model: the filesystem stores a charm declares (metadata `storage:`).

Each storage instance (``<store>/<n>``, numbered model-wide as Juju numbers them) is a real,
size-limited filesystem: a tmpfs mounted with ``size=`` at ``<model>/storage/<store>-<n>`` (the
volume; it outlives its attachments, so a detached instance keeps its files, as a cloud volume
does). Attaching it to a unit bind-mounts the volume at the store's location on the unit's
machine: ``<location>`` under the unit's sandbox (``$DOCKER_REGISTRY_SANDBOX<location>``, where
the charm's host-path seam puts that path), in the host's mount namespace, so the hooks (whose
private namespaces copy the host's mounts when they start) and the Docker engine (which
bind-mounts the location into containers) see it. ``storage-get location`` answers the
location as the metadata gives it, as Juju does for a singleton store.

The verbs queue the hooks in Juju's order (scheduler.py): ``deploy --storage``: the volume is
mounted before the unit's first hook and ``<store>-storage-attached`` runs before ``install``;
``add-storage`` / ``attach-storage``: mounted, then ``-storage-attached``;
``detach-storage`` and unit removal: ``-storage-detaching`` while it is still mounted, then the
attachment goes (the volume stays, detached). ``destroy`` unmounts every volume.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from .model import Model, ModelError, iso
from .state import CharmMeta, ModelState

JSON = dict[str, Any]
DEFAULT_POOL = "tmpfs"
POOLS = ("tmpfs", "rootfs", "loop")  # what a directive may name; every instance is a tmpfs
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([MGT]?)(?:i?B)?$", re.IGNORECASE)
_SCALE = {"": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_size(text: str) -> int:
    """A Juju size (``512M``, ``10G``, ``1.5G``; a bare number is MiB) in MiB."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ModelError(f'invalid storage size "{text}" (e.g. 512M, 10G)')
    return max(1, int(float(match.group(1)) * _SCALE[match.group(2).upper()]))


def parse_directive(text: str) -> tuple[str, int | None, int]:
    """``[pool,][size][,count]`` as ``juju deploy --storage NAME=...`` takes it."""
    pool, size, count = DEFAULT_POOL, None, 1
    for part in [p for p in text.split(",") if p]:
        if part.isdigit() and size is not None:
            count = int(part)
        elif part in POOLS:
            pool = part
        else:
            size = parse_size(part)
    return pool, size, count


def human(mib: int) -> str:
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib} MiB"


def store_spec(meta_storage: JSON, app: str, name: str) -> JSON:
    spec = meta_storage.get(name)
    if not isinstance(spec, dict):
        raise ModelError(f'charm storage "{name}" not found for application "{app}"')
    if spec.get("type") != "filesystem":
        raise ModelError(f'storage "{name}": the local model has filesystem storage only')
    return spec


def count_range(spec: JSON) -> tuple[int, int | None]:
    """(min, max) instances of a store: ``multiple: range: 0-1``, ``2``, ``1-``; 1..1 without."""
    multiple = spec.get("multiple") or {}
    text = str(multiple.get("range", "1")) if isinstance(multiple, dict) else "1"
    low, dash, high = text.partition("-")
    if not dash:
        return int(low), int(low)
    return int(low or 0), (int(high) if high else None)


def minimum_mib(spec: JSON) -> int:
    return parse_size(str(spec["minimum-size"])) if spec.get("minimum-size") else 1


def instance(st: ModelState, sid: str) -> JSON:
    if sid not in st.storage:
        raise ModelError(f'storage "{sid}" not found')
    return st.storage[sid]


def instances_of(st: ModelState, unit: str, name: str | None = None) -> list[str]:
    """Storage ids attached to ``unit`` (of store ``name``), in id order."""
    return sorted(
        (sid for sid, s in st.storage.items() if s.get("unit") == unit)
        if name is None
        else (sid for sid, s in st.storage.items() if s.get("unit") == unit and s["name"] == name),
        key=lambda sid: int(sid.split("/")[1]),
    )


def new_instances(
    st: ModelState, app: str, unit: str, directives: dict[str, str]
) -> list[tuple[str, int, str]]:
    """Checks ``NAME=[pool,][size][,count]`` for ``unit`` against the charm's stores as Juju
    does (known store, at least its minimum size, no more instances than its range allows):
    (name, size in MiB, pool) for each instance to make."""
    out: list[tuple[str, int, str]] = []
    for name, directive in directives.items():
        pool, size, count = check_directive(st.app(app).meta, app, name, directive)
        check_count(st, unit, name, count)
        out += [(name, size, pool)] * count
    return out


def check_directive(meta: CharmMeta, app: str, name: str, directive: str) -> tuple[str, int, int]:
    """(pool, size in MiB, count) of a known store, at least its minimum size."""
    spec = store_spec(meta.storage, app, name)
    pool, size, count = parse_directive(directive)
    size = size or minimum_mib(spec)
    if size < minimum_mib(spec):
        raise ModelError(
            f'charm "{meta.charm_name}" store "{name}": minimum storage size '
            f"is {human(minimum_mib(spec))}, {human(size)} specified"
        )
    return pool, size, count


def check_count(st: ModelState, unit: str, name: str, count: int) -> None:
    """Refuses more instances of store ``name`` on ``unit`` than its range allows."""
    spec = store_spec(st.app(st.unit(unit).app).meta.storage, st.unit(unit).app, name)
    _, most = count_range(spec)
    have = len(instances_of(st, unit, name))
    if most is not None and have + count > most:
        raise ModelError(
            f'cannot attach storage "{name}" to {unit}: it would exceed the store\'s '
            f"maximum of {most} instance(s) ({have} attached)"
        )


class Volumes:
    """The mounts behind the state: volumes (tmpfs) and attachments (bind mounts)."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def volume_dir(self, sid: str) -> Path:
        return self.model.root / "storage" / sid.replace("/", "-")

    def attach_point(self, unit: str, location: str) -> Path:
        return self.model.sandbox_dir(unit) / location.lstrip("/")

    def create(self, st: ModelState, name: str, size_mib: int, pool: str) -> str:
        sid = f"{name}/{st.next_storage}"
        st.next_storage += 1
        path = self.volume_dir(sid)
        path.mkdir(parents=True, exist_ok=True)
        options = f"size={size_mib}m,mode=0755"
        _mount(["-t", "tmpfs", "-o", options, "localjuju-storage", str(path)])
        st.storage[sid] = {
            "name": name,
            "kind": "filesystem",
            "pool": pool,
            "size": size_mib,
            "unit": None,
            "location": "",
            "since": iso(),
        }
        return sid

    def attach(self, st: ModelState, sid: str, unit: str) -> None:
        record = st.storage[sid]
        app = st.unit(unit).app
        spec = store_spec(st.app(app).meta.storage, app, record["name"])
        location = str(spec.get("location") or f"/var/lib/juju/storage/{sid}")
        point = self.attach_point(unit, location)
        point.mkdir(parents=True, exist_ok=True)
        _mount(["--bind", str(self.volume_dir(sid)), str(point)])
        record.update(unit=unit, location=location, since=iso())

    def detach(self, st: ModelState, sid: str) -> None:
        record = st.storage.get(sid)
        if not record or not record.get("unit"):
            return
        point = self.attach_point(record["unit"], record["location"])
        if point.is_mount():
            _umount(point)
        record.update(unit=None, location="", since=iso())

    def destroy_all(self, st: ModelState) -> None:
        for sid in list(st.storage):
            self.detach(st, sid)
            path = self.volume_dir(sid)
            if path.is_mount():
                _umount(path)
            del st.storage[sid]


def _mount(args: list[str]) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ModelError(f"cannot mount storage: {done.stderr.strip()}")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach lazily


def report(st: ModelState) -> JSON:
    """`juju storage --format json`: {storage: {id: ...}, filesystems: {n: ...}}."""
    storage: JSON = {}
    filesystems: JSON = {}
    for sid, s in sorted(st.storage.items(), key=lambda kv: int(kv[0].split("/")[1])):
        attached = bool(s.get("unit"))
        status = {"current": "attached" if attached else "detached", "since": s.get("since")}
        units = {}
        if attached:
            machine = st.units[s["unit"]].machine if s["unit"] in st.units else ""
            units = {s["unit"]: {"machine": machine, "location": s["location"], "life": "alive"}}
        storage[sid] = {
            "kind": s["kind"],
            "life": "alive",
            "status": status,
            "persistent": False,
            "attachments": {"units": units},
        }
        filesystems[sid.split("/")[1]] = {
            "provider-id": sid.replace("/", "-"),
            "storage": sid,
            "size": s["size"],
            "pool": s["pool"],
            "life": "alive",
            "status": status,
        }
    return {"storage": storage, "filesystems": filesystems}
