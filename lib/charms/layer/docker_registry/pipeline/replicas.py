"""Filesystem storage behind a proxy: which unit is the primary, and what a backup copies and
deletes to match it (pure; ``replication`` gathers and applies).

Only the primary takes traffic (haproxy sends it to the backups only when the primary is
down); every other unit copies what the primary has and it lacks, tag by tag, skipping a tag
whose digest it already holds, and deletes what the primary no longer has.

The primary rule: the primary is recorded in leader data and follows the leader, but only
once the leader holds what the primary holds.
- No record yet (a new deployment, or an upgrade from a revision that had no replication):
  the unit with the lowest unit number, which haproxy already sent everything to.
- The recorded primary is the leader: it stays.
- The leader is another unit: it becomes the primary once its last sync from the recorded
  primary ended in sync; until then the recorded one stays. So a leadership move (Juju moves
  it when the leader's machine is gone) fails over to a unit holding every image it synced,
  and an old primary that comes back is a backup (no longer the leader, no longer recorded):
  it never takes traffic back with what it missed.
- The recorded primary left the application: the leader picks a unit in sync with it (itself
  first), else itself.
A backup deletes only a tag it copied from (or found equal on) this very primary: a primary
that holds less (an empty new unit) never makes the others delete down to it, and what a
backup holds that no primary gave it (pushes it took while it served as the backup) stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from charms.layer.docker_registry.pipeline import proxy

PRIMARY_KEY = "replica-primary"  # leader data: the primary's unit name
URL_KEY = "registry-url"  # peer unit data: where the unit's registry answers
IN_SYNC_KEY = "replica-in-sync-with"  # peer unit data: the primary its last sync matched

Inventory = Mapping[str, Mapping[str, str]]  # repository -> tag -> manifest digest


@dataclass(frozen=True)
class Peers:
    """What the peer relation and leader data say of replication (gathered once a hook)."""

    recorded: str = ""  # the primary in leader data ("" before any)
    urls: Mapping[str, str] = field(default_factory=dict)  # unit -> registry URL
    in_sync_with: Mapping[str, str] = field(default_factory=dict)  # unit -> primary matched


def replicates(storage: str, proxied: bool, cache: bool) -> bool:
    """Whether the units replicate a primary: filesystem storage (each unit its own disk)
    behind a proxy (with one unit left, it is the primary: the next one added replicates it).
    A pull-through cache fills from its upstream."""
    return storage == "filesystem" and proxied and not cache


def current_primary(recorded: str, units: Iterable[str]) -> str:
    """The primary every unit follows now: the recorded one while it is a unit, else (no
    record yet) the lowest unit number; "" while the leader has to name a new one."""
    units = set(units)
    if recorded:
        return recorded if recorded in units else ""
    return proxy.primary(units) or ""


def choose_primary(recorded: str, leader: str, units: Iterable[str], in_sync: set[str]) -> str:
    """What the leader records (``in_sync``: the units whose last sync matched ``recorded``)."""
    units = set(units)
    if not recorded:
        return proxy.primary(units) or leader
    if recorded not in units:  # it left: a unit holding its images, else the leader
        holders = in_sync & units
        if leader in holders or not holders:
            return leader
        return proxy.primary(holders) or leader
    if recorded != leader and leader in in_sync:
        return leader
    return recorded


@dataclass(frozen=True)
class Copy:
    repository: str
    tag: str
    digest: str  # what the primary's tag points at


@dataclass(frozen=True)
class SyncPlan:
    copies: tuple[Copy, ...] = ()
    deletes: tuple[Copy, ...] = ()  # digest: what this unit's tag points at (deleted once)
    foreign: int = 0  # tags here the primary lacks that no sync from it brought: kept

    @property
    def behind(self) -> int:
        return len(self.copies) + len(self.deletes)


def plan_sync(primary: Inventory, local: Inventory, replicated: Inventory) -> SyncPlan:
    """What makes ``local`` match ``primary``: copy each tag it lacks or holds at another
    digest; delete each tag the primary no longer has that ``replicated`` (what syncs from this
    primary brought or found equal) says came from it. A manifest still wanted in that
    repository is never deleted (a delete by digest takes every tag pointing at it)."""
    copies = tuple(
        Copy(repo, tag, digest)
        for repo, tags in sorted(primary.items())
        for tag, digest in sorted(tags.items())
        if local.get(repo, {}).get(tag) != digest
    )
    deletes: list[Copy] = []
    foreign = 0
    for repo, tags in sorted(local.items()):
        wanted = set(primary.get(repo, {}).values())
        for tag, digest in sorted(tags.items()):
            if tag in primary.get(repo, {}):
                continue
            if replicated.get(repo, {}).get(tag) != digest:
                foreign += 1
            elif digest not in wanted:
                deletes.append(Copy(repo, tag, digest))
    return SyncPlan(copies, tuple(deletes), foreign)


def matched(primary: Inventory, local: Inventory) -> dict[str, dict[str, str]]:
    """The primary's tags this unit now holds at the same digest (the record of what a sync
    from it brought or found equal)."""
    return {
        repo: same
        for repo, tags in primary.items()
        if (same := {t: d for t, d in tags.items() if local.get(repo, {}).get(t) == d})
    }


@dataclass(frozen=True)
class SyncOutcome:
    """How a backup's sync ended: ``behind`` tags still to copy or delete, ``error`` why the
    primary could not be read ("" when it was)."""

    behind: int = 0
    error: str = ""
    foreign: int = 0
    last_error: str = ""  # the first copy or delete that failed
    stuck: str = ""  # why this unit's own registry could not be read

    @property
    def in_sync(self) -> bool:
        return not (self.error or self.stuck) and self.behind == 0


def describe(primary: str, outcome: SyncOutcome | None, waiting: str = "") -> str:
    """The role part of the status: "primary", "backup, in sync with …", "backup, 12 tags
    behind …", "backup, cannot reach … (why)"."""
    if outcome is None:
        return waiting or "primary"
    if outcome.error:
        text = f"backup, cannot reach {primary} ({outcome.error}); serving what it synced"
    elif outcome.stuck:
        text = f"backup, cannot sync from {primary} ({outcome.stuck})"
    elif outcome.behind:
        tags = "tag" if outcome.behind == 1 else "tags"
        text = f"backup, {outcome.behind} {tags} behind {primary}"
        if outcome.last_error:
            text += f" ({outcome.last_error})"
    else:
        text = f"backup, in sync with {primary}"
    if outcome.foreign:
        text += f"; {outcome.foreign} tag(s) here are not on {primary} (kept)"
    return text
