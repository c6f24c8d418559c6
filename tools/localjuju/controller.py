"""The local model's controller: Juju-like verbs over the typed state, and the settle loop.

Every verb only *enqueues* events (scheduler.py, in Juju's order) and then calls `settle()`,
which runs the queue until it is empty or every remaining event belongs to a unit in error
state; execution.py runs each event on its unit. Remote-application fakes (tools/localjuju/
fakes) have units, addresses and databags like charm units; their "hooks" are Python methods.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import machine as unit_machine
from . import secrets
from . import storage as juju_storage
from .execution import Executor, Outcome
from .lookup import find_relation, match_endpoints, resolve_charm
from .meta import action_params, convert_config_value, load_charm_meta
from .model import Model, ModelError, iso, now, write_private
from .scheduler import Scheduler
from .state import (
    Application,
    Event,
    ModelState,
    Relation,
    Status,
    Unit,
    _unit_key,
    edit,
    load,
)
from .status import status_report

MACHINE_BASE = "ubuntu@22.04"  # what every unit's machine looks like (machine.py)


class Controller:
    def __init__(self, model: Model | None = None, echo: Callable[[str], None] | None = None):
        self.model = model or Model()
        self.echo = echo or (lambda msg: None)
        self.scheduler = Scheduler()
        self.executor = Executor(self.model)
        self.volumes = juju_storage.Volumes(self.model)

    # ================================================================ verbs
    def deploy(
        self,
        charm: str,
        app: str | None = None,
        config: dict[str, Any] | None = None,
        resources: dict[str, str] | None = None,
        num_units: int = 1,
        trust: bool = False,
        base: str | None = None,
        storage: dict[str, str] | None = None,
    ) -> str:
        """charm: a charm directory, or `fake:<name>` for a remote-application fake;
        ``storage``: {store: "[pool,][size][,count]"} for each unit (deploy --storage)."""
        if base not in (None, MACHINE_BASE):
            raise ModelError(f'base "{base}": the local model\'s machines are {MACHINE_BASE}')
        self.model.ensure()
        charm_dir, fake, meta = resolve_charm(self.model, charm)
        name = app or fake or meta.charm_name
        if not name:
            raise ModelError(f"{charm}: the charm has no name; give the application one")
        with edit(self.model) as st:
            if name in st.applications:
                raise ModelError(f'application "{name}" already exists')
            info = Application(
                charm=str(charm_dir) if charm_dir else None,
                fake=fake,
                meta=meta,
                trust=trust,
                storage=dict(storage or {}),
            )
            for store, directive in info.storage.items():  # refused as Juju refuses it
                juju_storage.check_directive(meta, name, store, directive)
            st.applications[name] = info
            for k, v in (config or {}).items():
                info.config[k] = self._convert(info, k, v)
            self._attach(info, name, resources or {})
            for ep, spec in meta.endpoints.items():
                if spec.role == "peers":
                    self._new_relation(st, [(name, ep)], spec.interface)
        self.add_unit(name, num_units)
        return name

    def add_unit(self, app: str, num_units: int = 1) -> list[str]:
        added = []
        for _ in range(num_units):
            with edit(self.model) as st:
                info = st.app(app)
                unit = f"{app}/{info.next_unit}"
                info.next_unit += 1
                machine = str(st.next_machine)
                st.next_machine += 1
                st.units[unit] = Unit(
                    app=app,
                    address=f"127.0.0.{st.next_address}",
                    machine=machine,
                    workload=Status("waiting", "waiting for machine", now()),
                )
                st.next_address += 1
                if not info.leader:
                    info.leader = unit
                self._new_unit_dir(unit, info, machine)
                wanted = juju_storage.new_instances(st, app, unit, info.storage)
                for store, size, pool in wanted:  # mounted before the unit's first hook
                    sid = self.volumes.create(st, store, size, pool)
                    self.volumes.attach(st, sid, unit)
                self.scheduler.unit_added(st, unit)
            self.model.record_status(unit, "workload", "waiting", "waiting for machine")
            added.append(unit)
        self.settle()
        return added

    def _new_unit_dir(self, unit: str, info: Application, machine: str) -> None:
        udir = self.model.unit_dir(unit)
        if udir.exists():
            shutil.rmtree(udir)
        (udir / "root").mkdir(parents=True)
        if info.charm:
            shutil.copytree(info.charm, udir / "charm", symlinks=True)
            unit_machine.prepare_unit(udir, machine)
        else:
            (udir / "charm").mkdir()

    def remove_unit(self, unit: str) -> None:
        with edit(self.model) as st:
            st.unit(unit)
            self.scheduler.unit_removed(st, unit)
        self.settle()

    # storage (storage.py): mounted before -storage-attached, unmounted after -detaching
    def add_storage(self, unit: str, directives: dict[str, str]) -> list[str]:
        with edit(self.model) as st:
            wanted = juju_storage.new_instances(st, st.unit(unit).app, unit, directives)
            added = []
            for store, size, pool in wanted:
                sid = self.volumes.create(st, store, size, pool)
                self.volumes.attach(st, sid, unit)
                self.scheduler.storage_attached(st, unit, sid)
                added.append(sid)
        self.settle()
        return added

    def attach_storage(self, unit: str, sid: str) -> None:
        with edit(self.model) as st:
            record = juju_storage.instance(st, sid)
            if record.get("unit"):
                raise ModelError(f'storage "{sid}" is already attached to {record["unit"]}')
            juju_storage.check_count(st, unit, record["name"], 1)
            self.volumes.attach(st, sid, unit)
            self.scheduler.storage_attached(st, unit, sid)
        self.settle()

    def detach_storage(self, sid: str) -> None:
        with edit(self.model) as st:
            record = juju_storage.instance(st, sid)
            if not record.get("unit"):
                raise ModelError(f'storage "{sid}" is not attached')
            self.scheduler.storage_detaching(st, record["unit"], sid)
        self.settle()

    def integrate(self, a: str, b: str) -> str:
        with edit(self.model) as st:
            (app_a, ep_a), (app_b, ep_b) = match_endpoints(st, a, b)
            wanted = sorted([(app_a, ep_a), (app_b, ep_b)])
            if any(sorted(rel.endpoints) == wanted for rel in st.relations.values()):
                raise ModelError(f"relation {app_a}:{ep_a} {app_b}:{ep_b} already exists")
            iface = st.applications[app_a].meta.endpoints[ep_a].interface
            rel = self._new_relation(st, [(app_a, ep_a), (app_b, ep_b)], iface)
            self.scheduler.relation_added(st, rel)
        self.settle()
        return f"{ep_a}:{rel.id}"

    def remove_relation(self, a: str, b: str | None = None) -> None:
        with edit(self.model) as st:
            self.scheduler.relation_removed(st, find_relation(st, a, b))
        self.settle()

    def config_get(self, app: str) -> dict[str, Any]:
        return load(self.model).app(app).effective_config()

    def config_set(
        self, app: str, values: dict[str, Any] | None = None, reset: list[str] | None = None
    ) -> None:
        with edit(self.model) as st:
            info = st.app(app)
            before = info.effective_config()
            for k, v in (values or {}).items():
                info.config[k] = self._convert(info, k, v)
            for k in reset or []:
                if k not in info.meta.config_options:
                    raise ModelError(f'unknown option "{k}"')
                info.config.pop(k, None)
            if info.effective_config() != before:  # Juju fires nothing for a no-op change
                self.scheduler.each_unit(st, app, "config-changed")
        self.settle()

    @staticmethod
    def _convert(info: Application, option: str, value: Any) -> Any:
        if option not in info.meta.config_options:
            raise ModelError(f'unknown option "{option}"')
        return convert_config_value(option, info.meta.config_options[option], value)

    def update_status(self, unit: str | None = None) -> None:
        """update-status on every unit, as Juju's timer fires it, or on ``unit`` only."""
        with edit(self.model) as st:
            if unit is None:
                self.scheduler.each_unit(st, None, "update-status")
            else:
                st.unit(unit)  # (a unit the model does not have fails here)
                st.queue.append(self.scheduler.hook(unit, "update-status"))
        self.settle()

    def resolved(self, unit: str, retry: bool = True) -> None:
        """Clear a unit's error; retry the failed hook (or skip it with retry=False)."""
        with edit(self.model) as st:
            info = st.unit(unit)
            failed = info.error
            if failed is None:
                raise ModelError(f'unit "{unit}" is not in an error state')
            info.error = None
            info.agent = "idle"
            if not retry:
                st.drop_event(failed.seq)
        self.model.record_status(unit, "agent", "idle", "resolved")
        self.settle()

    def upgrade_charm(self, app: str, charm: str, resources: dict[str, str] | None = None) -> None:
        """`juju refresh --path` (with new revisions of ``resources``, if given)."""
        charm_dir = Path(charm).resolve()
        meta = load_charm_meta(charm_dir)
        with edit(self.model) as st:
            info = st.app(app)
            if info.fake:
                raise ModelError("cannot upgrade a fake application")
            info.meta = meta
            info.charm = str(charm_dir)
            self._attach(info, app, resources or {})
            # values of options the new charm dropped go, as in Juju
            info.config = {k: v for k, v in info.config.items() if k in meta.config_options}
            for u in st.units_of(app):
                _replace_charm_files(self.model.charm_dir(u), charm_dir)
            self.scheduler.each_unit(st, app, "upgrade-charm", "config-changed")
        self.settle()

    def attach_resource(self, app: str, resources: dict[str, str]) -> None:
        """A new revision of each resource; Juju then runs upgrade-charm on every unit."""
        with edit(self.model) as st:
            self._attach(st.app(app), app, resources)
            self.scheduler.each_unit(st, app, "upgrade-charm", "config-changed")
        self.settle()

    def _attach(self, info: Application, app: str, resources: dict[str, str]) -> None:
        for res, path in resources.items():
            if res not in info.meta.resource_names:
                raise ModelError(f'unknown resource "{res}"')
            info.resources[res] = self._store_resource(app, res, path)

    # user secrets (secrets.py): only update-secret queues a hook
    def add_secret(self, name: str, content: dict[str, str], info: str | None = None) -> str:
        self.model.ensure()
        with edit(self.model) as st:
            return secrets.add(st, name, content, info)

    def grant_secret(self, identifier: str, apps: str) -> None:
        with edit(self.model) as st:
            secrets.grant(st, identifier, apps)

    def revoke_secret(self, identifier: str, apps: str) -> None:
        with edit(self.model) as st:
            secrets.revoke(st, identifier, apps)

    def update_secret(
        self, identifier: str, content: dict[str, str] | None, **fields: str | None
    ) -> None:
        with edit(self.model) as st:
            secrets.update(st, self.scheduler, identifier, content, **fields)
        self.settle()

    def remove_secret(self, identifier: str, revision: int | None = None) -> None:
        with edit(self.model) as st:
            secrets.remove(st, identifier, revision)

    def resolve_unit(self, unit: str) -> str:
        """``app/leader`` names the application's leader, as in `juju run` and `juju exec`."""
        app, _, num = unit.partition("/")
        if num != "leader":
            return unit
        leader = load(self.model).app(app).leader
        if leader is None:
            raise ModelError(f'application "{app}" has no leader')
        return leader

    def exec(self, unit: str, command: str, timeout: float = 300.0) -> dict[str, Any]:
        """`juju exec --unit`: ``command`` through bash in the unit's hook context on its
        machine; what it sets through hook tools counts only if it exits 0 (as an action)."""
        self.settle()
        unit = self.resolve_unit(unit)
        with edit(self.model) as st:
            if st.applications[st.unit(unit).app].charm is None:
                raise ModelError(f'unit "{unit}" is a fake: it has no machine to run commands on')
            aid = st.next_action_id
            st.next_action_id += 1
        started = iso()
        event = Event(seq=self.scheduler.next_seq(), unit=unit, hook="juju-exec")
        out = self.executor.run_command(event, command, timeout)
        with edit(self.model) as st:
            if out.ok:
                self.scheduler.commit(st, unit, out.pending)
            st.units[unit].agent = "idle"
        record: dict[str, Any] = {
            "id": aid,
            "unit": unit,
            "action": "juju-exec",
            "status": "completed" if out.ok else "failed",
            "message": "timed out" if out.timed_out else "",
            "results": {},
            "log": [],
            "return-code": out.rc,
            "stdout": out.output,
            "stderr": out.stderr,
            "enqueued": started,
            "started": started,
            "completed": iso(),
            "timed-out": out.timed_out,
        }
        self.settle()
        return record

    def run_action(
        self, unit: str, action: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self.settle()
        unit = self.resolve_unit(unit)
        with edit(self.model) as st:
            spec = st.applications[st.unit(unit).app].meta.actions.get(action)
            if spec is None:
                raise ModelError(f'action "{action}" not defined on unit "{unit}"')
            final = action_params(action, spec or {}, params or {})
            aid = st.next_action_id
            st.next_action_id += 1
        record: dict[str, Any] = {
            "id": aid,
            "unit": unit,
            "action": action,
            "params": final,
            "results": {},
            "status": "running",
            "message": "",
            "log": [],
            "enqueued": iso(),
            "started": iso(),
        }
        apath = self.model.root / "actions" / f"{aid}.json"
        write_private(apath, json.dumps(record, indent=1, sort_keys=True))
        event = Event(seq=self.scheduler.next_seq(), unit=unit, action=action, action_id=str(aid))
        out = self.executor.run_charm(event)
        with edit(self.model) as st:
            if out.ok:  # an action's relation-set/open-port count only if it succeeded
                self.scheduler.commit(st, unit, out.pending)
            st.units[unit].agent = "idle"
        with self.model.lock():  # action-set/-fail wrote the record meanwhile
            record = json.loads(apath.read_text())
            if out.rc != 0 and record["status"] != "failed":
                record["status"] = "failed"
                record["message"] = f"exit status {out.rc}"
            elif record["status"] == "running":
                record["status"] = "completed"
            record["return-code"] = out.rc
            record["stdout"] = out.output
            record["completed"] = iso()
            write_private(apath, json.dumps(record, indent=1, sort_keys=True))
        self.settle()
        return record

    def destroy(self) -> None:
        """Remove every relation and unit the way Juju does, then every application."""
        if not self.model.exists():
            return
        with edit(self.model) as st:
            for unit in sorted(st.units, key=_unit_key):
                self.scheduler.unit_removed(st, unit, elect=False)
        self.settle()
        with edit(self.model) as st:
            left = list(st.units)
            if not left:
                st.applications, st.relations, st.leader_data = {}, {}, {}
                self.volumes.destroy_all(st)
        if left:
            raise ModelError(
                f"units left in error state: {left}; fix and `resolved`, then destroy again"
            )

    def status(self) -> dict[str, Any]:
        return status_report(load(self.model), self.model.root)

    # ================================================================ queue
    def settle(self, max_events: int = 5000) -> None:
        """Run queued events until none is runnable (queue empty or only errored units left)."""
        for _ in range(max_events):
            event = self.scheduler.next_runnable(load(self.model))
            if event is None:
                return
            if event.internal:
                self._run_internal(event)
                continue
            assert event.unit is not None
            unit = event.unit
            with edit(self.model) as st:
                self.scheduler.before_hook(st, event)
            out = self._run_event(event)
            with edit(self.model) as st:
                if out.ok:
                    st.drop_event(event.seq)
                    self.scheduler.after_hook(st, event, out.pending)
                else:
                    st.units[unit].error = event
                    st.units[unit].agent = "error"
            if not out.ok:
                self.model.record_status(unit, "workload", "error", f"hook failed: {event.name}")
                self.echo(f"{unit}: hook failed: {event.name}")
        raise ModelError("the event queue did not settle (hook loop?)")

    def _run_event(self, event: Event) -> Outcome:
        from .fakes import get_fake

        assert event.unit is not None
        st = load(self.model)
        app = st.units[event.unit].app
        info = st.applications[app]
        if not info.fake:
            return self.executor.run_charm(event)
        fake = get_fake(self.model, app, info.fake)
        if not info.charm:
            return self.executor.run_fake(fake, event)
        # the test charm's hook (relation data through the upstream layers), then the fake's
        # workload from what the charm read; the charm's writes are the unit's
        out = self.executor.run_charm(event)
        if out.ok:
            out.ok = self.executor.run_fake(fake, event).ok
        return out

    def _run_internal(self, event: Event) -> None:
        with edit(self.model) as st:
            if event.internal == "detach-storage" and event.storage_id:
                self.volumes.detach(st, event.storage_id)
            elif event.internal == "drop-unit" and event.unit:  # (its files go with it)
                for sid in juju_storage.instances_of(st, event.unit):
                    self.volumes.detach(st, sid)
            dropped = self.scheduler.run_internal(st, event)
            st.drop_event(event.seq)
        if event.internal == "drop-unit" and event.unit:
            udir = self.model.unit_dir(event.unit)
            if udir.exists():
                shutil.rmtree(udir, ignore_errors=True)
            if dropped:
                self.model.record_status(dropped, "agent", "removed", "")

    # ================================================================ helpers
    @staticmethod
    def _new_relation(
        st: ModelState, endpoints: list[tuple[str, str]], interface: str | None
    ) -> Relation:
        rid = st.next_relation_id
        st.next_relation_id += 1
        rel = Relation(rid, endpoints, interface, app_data={a: {} for a, _ in endpoints})
        st.relations[rid] = rel
        return rel

    def _store_resource(self, app: str, name: str, path: str) -> str:
        src = Path(path).resolve()
        if not src.is_file():
            raise ModelError(f"resource file {src} not found")
        dest_dir = self.model.root / "resources" / app / name
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / src.name
        try:
            if dest.exists():
                dest.unlink()
            os.link(src, dest)  # cheap for big image tarballs
        except OSError:
            shutil.copy2(src, dest)
        return str(dest)


def _replace_charm_files(dest: Path, src: Path) -> None:
    """Deploy new charm files; keep unit state that is not part of the charm (kv, config)."""
    keep = {".unit-state.db", ".juju-persistent-config"}
    for child in dest.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
