"""Which events a change to the model queues, in Juju's order, and what they change around a hook.

Nothing here runs a hook or touches a unit's files: the functions edit a `ModelState` that the
controller holds inside one locked transaction, so a verb's events land in the queue all
together or not at all.
"""

from __future__ import annotations

import time
from typing import Any

from .hooktools_base import _apply
from .state import Event, ModelState, Relation, _unit_key


class Scheduler:
    def __init__(self) -> None:
        self._seq = 0

    # --- events -------------------------------------------------------------------------
    def next_seq(self) -> int:
        # wall-clock based, so that events queued by another process (leader-set in a hook
        # tool stamps time.time_ns()) sort among ours; +1 keeps ours unique within a tick
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    def hook(self, unit: str, hook: str) -> Event:
        return Event(seq=self.next_seq(), unit=unit, hook=hook)

    def internal(self, kind: str, after: list[str], **fields: Any) -> Event:
        return Event(seq=self.next_seq(), internal=kind, after=list(after), **fields)

    def relation_hook(
        self,
        st: ModelState,
        unit: str,
        rel: Relation,
        kind: str,
        remote: str | None = None,
        departing: str | None = None,
    ) -> Event:
        app = st.app_of(unit)
        ep = rel.endpoint_of(app)
        ev = Event(
            seq=self.next_seq(),
            unit=unit,
            hook=f"{ep}-relation-{kind}",
            relation=ep,
            relation_id=rel.id,
            departing=departing,
        )
        if remote:
            ev.remote_unit = remote
            ev.remote_app = remote.split("/")[0]
        else:
            others = [a for a in rel.apps if a != app]
            ev.remote_app = others[0] if others else app  # a peer relation's remote is itself
        return ev

    def _join(self, st: ModelState, rel: Relation, unit: str, remote: str) -> None:
        st.queue.append(self.relation_hook(st, unit, rel, "joined", remote=remote))
        st.queue.append(self.relation_hook(st, unit, rel, "changed", remote=remote))

    def _join_both(self, st: ModelState, rel: Relation, a: str, b: str) -> None:
        self._join(st, rel, a, b)
        self._join(st, rel, b, a)

    # --- what a verb queues ---------------------------------------------------------------
    def storage_hook(self, st: ModelState, unit: str, sid: str, kind: str) -> Event:
        """``<store>-storage-attached`` / ``-storage-detaching`` for instance ``sid``."""
        ev = self.hook(unit, f"{st.storage[sid]['name']}-storage-{kind}")
        ev.storage_id = sid
        return ev

    def storage_attached(self, st: ModelState, unit: str, sid: str) -> None:
        st.queue.append(self.storage_hook(st, unit, sid, "attached"))

    def storage_detaching(self, st: ModelState, unit: str, sid: str) -> None:
        """The hook while the volume is still there, then it goes (held while the unit errs)."""
        st.queue.append(self.storage_hook(st, unit, sid, "detaching"))
        st.queue.append(self.internal("detach-storage", [unit], storage_id=sid))

    def unit_added(self, st: ModelState, unit: str) -> None:
        """A new unit's life-cycle: its storage attached (on a machine, before install),
        install, created, leader, config-changed, start, joins."""
        app = st.units[unit].app
        is_leader = st.applications[app].leader == unit
        q = st.queue
        rels = st.app_relations(app)
        for sid in sorted(s for s, info in st.storage.items() if info.get("unit") == unit):
            self.storage_attached(st, unit, sid)
        q.append(self.hook(unit, "install"))
        for rel in rels:
            q.append(self.relation_hook(st, unit, rel, "created"))
        q.append(self.hook(unit, "leader-elected" if is_leader else "leader-settings-changed"))
        q.append(self.hook(unit, "config-changed"))
        q.append(self.hook(unit, "start"))
        for rel in rels:
            for other in st.units_of_rel(rel):
                if other != unit:
                    self._join_both(st, rel, unit, other)

    def relation_added(self, st: ModelState, rel: Relation) -> None:
        app_a, app_b = rel.apps
        units_a, units_b = st.units_of(app_a), st.units_of(app_b)
        for u in units_a + units_b:
            st.queue.append(self.relation_hook(st, u, rel, "created"))
        for u in units_a:
            for v in units_b:
                self._join_both(st, rel, u, v)

    def relation_removed(self, st: ModelState, rel: Relation) -> None:
        units = st.units_of_rel(rel)
        for u in units:
            for w in list(rel.members.get(u, [])):
                st.queue.append(self.relation_hook(st, u, rel, "departed", remote=w, departing=w))
        for u in units:
            st.queue.append(self.relation_hook(st, u, rel, "broken"))
        st.queue.append(self.internal("drop-relation", units, relation_id=rel.id))

    def unit_removed(self, st: ModelState, unit: str, elect: bool = True) -> None:
        q = st.queue
        app = st.units[unit].app
        rels = [r for _, r in st.relations.items() if unit in r.members or app in r.apps]
        st.dying.append(unit)
        for rel in rels:
            for v, joined in sorted(rel.members.items()):
                # a unit already on its way out has its own broken hook queued: in Juju it
                # never sees departed after broken
                if v != unit and unit in joined and v not in st.dying:
                    q.append(
                        self.relation_hook(st, v, rel, "departed", remote=unit, departing=unit)
                    )
            for w in list(rel.members.get(unit, [])):
                if w not in st.dying:  # w's own removal already told this unit it departed
                    q.append(
                        self.relation_hook(st, unit, rel, "departed", remote=w, departing=unit)
                    )
        for rel in rels:
            q.append(self.relation_hook(st, unit, rel, "broken"))
        for sid in sorted(s for s, info in st.storage.items() if info.get("unit") == unit):
            self.storage_detaching(st, unit, sid)
        q.append(self.hook(unit, "stop"))
        q.append(self.hook(unit, "remove"))
        q.append(self.internal("drop-unit", [unit], unit=unit))
        if elect:
            q.append(self.internal("elect", [unit], app=app))

    def each_unit(self, st: ModelState, app: str | None, *hooks: str) -> None:
        """`hooks` on every unit of `app` (every unit of the model for None), unit by unit."""
        units = st.units_of(app) if app else sorted(st.units, key=_unit_key)
        for u in units:
            for h in hooks:
                st.queue.append(self.hook(u, h))

    # --- running the queue ------------------------------------------------------------------
    @staticmethod
    def next_runnable(st: ModelState) -> Event | None:
        """The first event not held back by a unit in error (internal steps wait for theirs)."""
        blocked = {u for u, info in st.units.items() if info.error}
        for ev in st.queue:
            if ev.internal:
                if blocked & set(ev.after):
                    blocked |= set(ev.after)
                    continue
                return ev
            if ev.unit not in st.units or ev.unit in blocked:
                continue
            return ev
        return None

    @staticmethod
    def before_hook(st: ModelState, event: Event) -> None:
        """Membership changes Juju makes before a relation hook runs."""
        rel = st.relations.get(event.relation_id) if event.relation_id is not None else None
        if rel is None or event.unit is None:
            return
        unit, kind = event.unit, event.kind
        members = rel.members
        if kind == "created":
            members.setdefault(unit, [])
            addr = st.units[unit].address
            rel.unit_data.setdefault(
                unit,
                {"private-address": addr, "ingress-address": addr, "egress-subnets": f"{addr}/32"},
            )
        elif kind == "joined" and event.remote_unit:
            lst = members.setdefault(unit, [])
            if event.remote_unit not in lst:
                lst.append(event.remote_unit)
                lst.sort(key=_unit_key)
        elif kind == "departed":
            lst = members.get(unit, [])
            if event.remote_unit in lst:
                lst.remove(event.remote_unit)

    def after_hook(self, st: ModelState, event: Event, pending: dict[str, Any]) -> None:
        """A hook succeeded: commit its buffered writes, leave a broken relation, go idle."""
        assert event.unit is not None
        unit = event.unit
        self.commit(st, unit, pending)
        rel = st.relations.get(event.relation_id) if event.relation_id is not None else None
        if rel is not None and event.kind == "broken":
            rel.members.pop(unit, None)
            rel.unit_data.pop(unit, None)
        st.units[unit].agent = "idle"

    def commit(self, st: ModelState, unit: str, pending: dict[str, Any]) -> None:
        """Apply relation-set/open-port writes and the secret revisions read; queue
        relation-changed where a databag changed."""
        app = st.units[unit].app
        for rid, changes in (pending.get("relations") or {}).items():
            rel = st.relations.get(int(rid))
            if rel is None:
                continue
            if _apply(rel.unit_data.setdefault(unit, {}), changes.get("unit", {})):
                for v, joined in rel.members.items():
                    if unit in joined:
                        st.queue.append(self.relation_hook(st, v, rel, "changed", remote=unit))
            if _apply(rel.app_data.setdefault(app, {}), changes.get("app", {})):
                for v in st.units_of_rel(rel):
                    if st.units[v].app != app and rel.members.get(v):
                        ev = self.relation_hook(st, v, rel, "changed")
                        ev.remote_app = app
                        st.queue.append(ev)
        _track_secrets(st, unit, pending.get("secrets") or {})
        ports = st.units[unit].ports
        for op, spec in pending.get("ports") or []:
            if op == "open" and spec not in ports:
                ports.append(spec)
            elif op == "close" and spec in ports:
                ports.remove(spec)

    def run_internal(self, st: ModelState, event: Event) -> str | None:
        """Carry out an internal step in the state; returns the unit it dropped, if any."""
        if event.internal == "drop-relation" and event.relation_id is not None:
            st.relations.pop(event.relation_id, None)
        elif event.internal == "drop-unit" and event.unit:
            return self._drop_unit(st, event.unit)
        elif event.internal == "elect" and event.app:
            app = st.applications.get(event.app)
            units = st.units_of(event.app)
            if app is not None and app.leader not in units:
                app.leader = units[0] if units else None
                if units:
                    st.queue.append(self.hook(units[0], "leader-elected"))
        return None

    @staticmethod
    def _drop_unit(st: ModelState, unit: str) -> str | None:
        info = st.units.pop(unit, None)
        if unit in st.dying:
            st.dying.remove(unit)
        for rel in st.relations.values():
            rel.members.pop(unit, None)
            rel.unit_data.pop(unit, None)
            for lst in rel.members.values():
                if unit in lst:
                    lst.remove(unit)
        if info is None:
            return None
        app = st.applications.get(info.app)
        if app and app.leader == unit:
            app.leader = None
        return unit


def _track_secrets(st: ModelState, unit: str, read: dict[str, int]) -> None:
    """The revision of each secret a hook's secret-get handed out is the one the unit tracks."""
    for xid, revision in read.items():
        if xid in st.secrets:
            st.secrets[xid]["tracking"][unit] = revision
