"""The registry's data on a Juju storage volume: the optional ``registry-data`` store.

Juju mounts the store at its location (metadata.yaml: the registry's data directory,
``/srv/registry``) before ``registry-data-storage-attached`` (on a machine, before ``install``)
and takes it away after ``registry-data-storage-detaching``. Without the store the data stays
on the root disk, as it always did.

- gather (``juju.gather``, then ``observe``): which instance is attached (``storage-list``),
  where (``storage-get location``) and how full it is (``os.statvfs``); in the detaching hook,
  the instance going away (``JUJU_STORAGE_ID``).
- decide (``decide``, pure): whether the registry may run (not while its volume is away: it
  would write to the root disk under the mount point), whether it is read-only (the fill
  level, with hysteresis), and the status facts.
- apply (``stop_registry``, ``rebind``): stop the registry when its volume goes; restart it
  onto a volume that came (docker binds the mount point anew at every start), bringing the
  images the root disk held into a fresh volume first.
- record: the unit kv keeps the instance the data is on and the read-only mode (``Record``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from charmhelpers.core import unitdata

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config.settings import Settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import claims, container, paths
from charms.layer.docker_registry.pipeline import status

STORE = "registry-data"  # metadata.yaml's store
MINIMUM_BYTES = 1 << 30  # metadata.yaml's minimum-size (1G): smaller holds too few images
WARN_AT = 90  # % full: the status says how full
READ_ONLY_AT = 98  # % full: pushes are refused (a full volume corrupts uploads in flight) ...
WRITABLE_BELOW = 95  # ... until it is below this again (no flapping around one mark)
STAGING = ".root-disk-copy"  # on a fresh volume: the root disk's images while they are copied


@dataclass(frozen=True)
class Fill:
    """What statvfs says of the volume, in bytes (``avail``: what the registry may still use)."""

    total: int
    used: int
    avail: int

    @property
    def percent(self) -> int:
        """As df's Use%: used of what is usable (root's reserve left out), rounded up."""
        usable = self.used + self.avail
        return -(-self.used * 100 // usable) if usable else 100


@dataclass(frozen=True)
class Observed:
    """What gather read of the store in this hook."""

    attached: tuple[str, ...] = ()  # instances attached to this unit (storage-list)
    detaching: str = ""  # the instance this hook's storage-detaching is about
    location: str = ""  # where the attached instance is mounted (storage-get location)
    fill: Fill | None = None
    error: str = ""  # why the store could not be read (a hook tool failed)


@dataclass(frozen=True)
class Record:
    """What the last hook decided, kept in the unit kv (no secret)."""

    volume: str = ""  # the instance the data is on; "" = the root disk
    detached: bool = False  # that instance went away: the registry stays stopped
    read_only: bool = False

    @classmethod
    def from_dict(cls, data: object) -> Record:
        if not isinstance(data, dict):
            return cls()
        return cls(
            volume=str(data.get("volume") or ""),
            detached=bool(data.get("detached")),
            read_only=bool(data.get("read_only")),
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    record: Record
    serve: bool = True  # False: the registry is stopped (its volume is away)
    hold: bool = False  # the store could not be read: nothing is touched this hook
    report: status.Report = field(default_factory=status.Report)


def decide(observed: Observed, before: Record, *, unit: str, filesystem: bool) -> Decision:
    """The store's part of the unit's state, from what gather read and the last record.

    ``filesystem``: the registry stores on its data directory (S3 and Swift keep the images
    elsewhere: the volume is then only the pull-through caches' and never stops anything)."""
    if observed.error:
        return _hold(before, f"Cannot read storage {STORE}: {observed.error}")
    present = [sid for sid in observed.attached if sid != observed.detaching]
    if not present:
        if observed.detaching or (before.volume and not before.detached):
            gone = observed.detaching or before.volume
            return _detached(Record(gone, detached=True), unit, filesystem)
        if before.detached:
            return _detached(before, unit, filesystem)
        return Decision(Record())  # never had one: the data is on the root disk
    volume = present[0]
    if observed.location.rstrip("/") != paths.STORAGE_DIR:
        where = observed.location or "?"
        return _hold(before, f"Storage {volume} is mounted at {where}, not {paths.STORAGE_DIR}")
    read_only = _read_only(observed.fill, before.read_only) if filesystem else False
    return Decision(
        Record(volume, read_only=read_only),
        report=_fill_report(volume, observed.fill, read_only) if filesystem else status.Report(),
    )


def _hold(before: Record, why: str) -> Decision:
    """Nothing is touched this hook: the registry runs (or not) as it did."""
    return Decision(
        before, hold=True, report=status.Report(blocked=[f"{why}; the registry is left as it is."])
    )


def _detached(record: Record, unit: str, filesystem: bool) -> Decision:
    if not filesystem:
        return Decision(record)
    return Decision(
        record,
        serve=False,
        report=status.Report(
            blocked=[
                f"Storage detached ({record.volume}): the registry is stopped, its images are on "
                f"that volume; attach it again: juju attach-storage {unit} {record.volume}."
            ]
        ),
    )


def _read_only(fill: Fill | None, was: bool) -> bool:
    if fill is None:
        return was
    if fill.percent >= READ_ONLY_AT:
        return True
    if fill.percent < WRITABLE_BELOW:
        return False
    return was  # between the marks: as it was


def _fill_report(volume: str, fill: Fill | None, read_only: bool) -> status.Report:
    report = status.Report()
    if fill is None:
        return report
    if fill.total < MINIMUM_BYTES:
        report.block(
            f"Storage {volume} is {_mib(fill.total)} MiB, smaller than the {_mib(MINIMUM_BYTES)} "
            "MiB the registry needs: move its images to a larger one."
        )
    if read_only:
        report.block(
            f"Storage {fill.percent} % full: the registry is read-only (pulls work, pushes are "
            f"refused) until it is below {WRITABLE_BELOW} %; free space on {volume}."
        )
    elif fill.percent >= WARN_AT:
        report.storage = f"storage {fill.percent} % full"
    return report


def _mib(size: int) -> int:
    return size >> 20


def effective(config: Settings, decision: Decision | None) -> Settings:
    """The settings the registry runs with: read-only while the volume is (nearly) full."""
    if decision and decision.record.read_only and not config.storage_read_only:
        return replace(config, storage_read_only=True)
    return config


# --- gather ------------------------------------------------------------------------------


def observe(
    host: paths.Host, hook: str, storage_id: str, attached: tuple[str, ...], location: str
) -> Observed:
    """The store as Juju told it (``juju.gather``: storage-list, storage-get) and the
    volume's fill level (statvfs)."""
    detaching = storage_id if hook == f"{STORE}-storage-detaching" else ""
    fill = None
    if location and detaching != attached[0]:
        try:
            fs = os.statvfs(host.path(location))
        except OSError as exc:
            return Observed(error=f"{location}: {exc.strerror}")
        fill = Fill(
            total=fs.f_blocks * fs.f_frsize,
            used=(fs.f_blocks - fs.f_bfree) * fs.f_frsize,
            avail=fs.f_bavail * fs.f_frsize,
        )
    return Observed(attached, detaching, location, fill)


# --- apply -------------------------------------------------------------------------------


def stop_registry(name: str, recorded: tuple[str, ...]) -> bool:
    """Stop the registry (the charm's own container only); whether one was running."""
    state = container.inspect(name)
    if not (state and state.running and claims.ours(state, recorded)):
        return False
    container.stop(name)
    return True


def rebind(
    host: paths.Host, before: Record, now: Record, name: str, recorded: tuple[str, ...]
) -> str:
    """A volume came in place of the root disk (or of another volume): the running registry
    still writes where its data directory was when it started, so it is stopped here and the
    pipeline starts it on the volume. A fresh volume given to a registry that kept its data
    on the root disk first gets those images, copied out of the running container (the
    root disk's directory now lies under the mount point). What it did, for the log."""
    if not now.volume or (now.volume == before.volume and not before.detached):
        return ""
    state = container.inspect(name)
    if not (state and claims.ours(state, recorded)):
        return ""
    done = f"restarted {name} on {now.volume}"
    data = host.path(paths.STORAGE_DIR)
    if not before.volume and state.running and _empty(data):
        _copy_root_disk_data(name, data)
        done += ", with the images the root disk held"
    if state.running:
        container.stop(name)
    return done


def _copy_root_disk_data(name: str, data: Path) -> None:
    """The images the running registry holds, onto the volume now mounted at ``data``.

    Only the running container still sees the root disk's directory (docker bound it before
    the volume was mounted over it; ``docker cp`` would bind the path anew, i.e. the empty
    volume): copied from its mount namespace, paused meanwhile so no push lands behind. The
    copy goes to a staging directory first and into place only whole: a copy that failed (a
    volume too small) leaves the volume "empty" for the next hook to try again."""
    pid = container.docker("inspect", "-f", "{{.State.Pid}}", name).strip()
    source = f"/proc/{pid}/root{paths.CONTAINER_STORAGE_DIR}/."
    staging = data / STAGING
    if staging.exists():
        shutil.rmtree(staging)
    container.docker("pause", name)
    try:
        copied = subprocess.run(
            ["cp", "-a", source, str(staging)], capture_output=True, text=True, check=False
        )
    finally:
        container.docker("unpause", name)
    if copied.returncode != 0:
        said = (copied.stderr.strip().splitlines() or ["cp failed"])[-1]
        raise RegistryCharmError(f"copying the root disk's images failed: {said}")
    for entry in staging.iterdir():
        entry.rename(data / entry.name)
    staging.rmdir()


def _empty(path: Path) -> bool:
    ignored = ("lost+found", STAGING)
    return not any(p.name not in ignored for p in path.iterdir()) if path.is_dir() else True


def attached_or_fail() -> str:
    """For actions that start the registry: why they must not ("" when they may)."""

    record = Record.from_dict(unitdata.kv().get(records.DATASTORE))
    if record.detached:
        return (
            f"storage {record.volume} is detached: the registry stays stopped until it is "
            "attached again"
        )
    return ""
