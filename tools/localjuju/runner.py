"""The local model's controller: Juju-like verbs, the hook queue and hook execution.

Every verb only *enqueues* events (in Juju's order) and then calls `settle()`, which runs the
queue until it is empty or every remaining event belongs to a unit in error state. A hook runs
as Juju runs it: the charm's own hooks/<name> file (an action: actions/<name>, whose
`#!/usr/local/sbin/charm-env python3` runs it on the unit's venv), cwd = the unit's charm dir,
Juju's environment variables, the hook tools first on PATH, on the unit's machine: a private
mount namespace where the host looks like an Ubuntu Juju machine and what the hook writes
outside the charm dir stays the unit's (machine.py). Remote-application fakes (tools/localjuju/
fakes) have units, addresses and databags like charm units; their "hooks" are Python methods.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import yaml

from . import machine as unit_machine
from .hooktools import _apply, effective_config
from .model import Model, ModelError, iso, now, unit_dirname

HOOK_TIMEOUT = int(os.environ.get("LOCALJUJU_HOOK_TIMEOUT", "900"))
KEEP_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "TMPDIR",
    "TERM",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


def load_charm_meta(charm_dir: Path) -> dict:
    """Endpoints, config options, resources and actions of a charm directory."""
    md = yaml.safe_load((charm_dir / "metadata.yaml").read_text()) or {}
    endpoints = {}
    for role in ("provides", "requires", "peers"):
        for name, spec in (md.get(role) or {}).items():
            spec = spec if isinstance(spec, dict) else {"interface": spec}
            endpoints[name] = {
                "role": role,
                "interface": spec.get("interface"),
                "scope": spec.get("scope", "global"),
            }
    cfg_path = charm_dir / "config.yaml"
    options = (
        (yaml.safe_load(cfg_path.read_text()) or {}).get("options", {})
        if cfg_path.exists()
        else {}
    )
    act_path = charm_dir / "actions.yaml"
    actions = (yaml.safe_load(act_path.read_text()) or {}) if act_path.exists() else {}
    return {
        "charm_name": md.get("name"),
        "endpoints": endpoints,
        "extra_bindings": list((md.get("extra-bindings") or {}).keys()),
        "config_options": options or {},
        "resource_names": list((md.get("resources") or {}).keys()),
        "actions": actions or {},
    }


def convert_config_value(option: str, spec: dict, raw):
    """Convert a CLI/file value to the option's type, refusing what Juju refuses."""
    kind = spec.get("type", "string")
    if not isinstance(raw, str):
        value = raw
    elif kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise ModelError(f'option "{option}" expected int, got "{raw}"') from None
    elif kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ModelError(f'option "{option}" expected float, got "{raw}"') from None
    elif kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ModelError(f'option "{option}" expected boolean, got "{raw}"')
        value = raw.lower() == "true"
    else:
        value = raw
    types = {"int": int, "float": (int, float), "boolean": bool, "string": str}
    if (kind in types and not isinstance(value, types[kind])) or (
        kind == "int" and isinstance(value, bool)
    ):
        raise ModelError(f'option "{option}" expected {kind}, got {value!r}')
    return value


class Controller:
    def __init__(self, model: Model | None = None, echo=None):
        self.model = model or Model()
        self.echo = echo or (lambda msg: None)
        self._seq = 0

    # ================================================================ verbs
    def deploy(
        self,
        charm: str,
        app: str | None = None,
        config: dict | None = None,
        resources: dict | None = None,
        num_units: int = 1,
    ) -> str:
        """charm: a charm directory, or `fake:<name>` for a remote-application fake."""
        from .fakes import FAKES

        self.model.ensure()
        if charm.startswith("fake:"):
            fake = charm[5:]
            if fake not in FAKES:
                raise ModelError(f"unknown fake {fake!r}; known: {sorted(FAKES)}")
            meta = FAKES[fake].meta()
            charm_dir = None
            if FAKES[fake].CHARM:  # its units run a test charm's real hooks first
                from .testcharms import test_charm

                charm_dir = test_charm(FAKES[fake].CHARM)
                # its endpoints and config are the fake's: the charm may have more
                meta = {**load_charm_meta(charm_dir), **meta}
            app = app or fake
        else:
            charm_dir = Path(charm).resolve()
            if not (charm_dir / "metadata.yaml").exists():
                raise ModelError(f"{charm_dir} is not a charm directory (no metadata.yaml)")
            meta = load_charm_meta(charm_dir)
            fake = None
            app = app or meta["charm_name"]
            try:
                unit_machine.check_host(self.model.root)
            except unit_machine.MachineError as exc:
                raise ModelError(str(exc)) from None
        with self.model.transaction() as state:
            if app in state["applications"]:
                raise ModelError(f'application "{app}" already exists')
            info = {
                "charm": str(charm_dir) if charm_dir else None,
                "fake": fake,
                "config": {},
                "resources": {},
                "leader": None,
                "next_unit": 0,
                "version": "",
                "status": None,
                **meta,
            }
            state["applications"][app] = info
            for k, v in (config or {}).items():
                if k not in meta["config_options"]:
                    raise ModelError(f'unknown option "{k}"')
                info["config"][k] = convert_config_value(k, meta["config_options"][k], v)
            for name, path in (resources or {}).items():
                if name not in meta["resource_names"]:
                    raise ModelError(f'unknown resource "{name}"')
                info["resources"][name] = self._store_resource(app, name, path)
            for ep, spec in meta["endpoints"].items():
                if spec["role"] == "peers":
                    self._new_relation(state, [[app, ep]], spec["interface"])
        self.add_unit(app, num_units)
        return app

    def add_unit(self, app: str, num_units: int = 1) -> list[str]:
        added = []
        for _ in range(num_units):
            with self.model.transaction() as state:
                info = self._app(state, app)
                unit = f"{app}/{info['next_unit']}"
                info["next_unit"] += 1
                address = f"127.0.0.{state['next_address']}"
                state["next_address"] += 1
                machine = state["next_machine"]
                state["next_machine"] += 1
                state["units"][unit] = {
                    "app": app,
                    "address": address,
                    "machine": str(machine),
                    "workload": {
                        "status": "waiting",
                        "message": "waiting for machine",
                        "since": now(),
                    },
                    "agent": "allocating",
                    "error": None,
                    "ports": [],
                }
                if not info["leader"]:
                    info["leader"] = unit
                is_leader = info["leader"] == unit
                udir = self.model.unit_dir(unit)
                if udir.exists():
                    shutil.rmtree(udir)
                (udir / "root").mkdir(parents=True)
                if info["charm"]:
                    shutil.copytree(info["charm"], udir / "charm", symlinks=True)
                    unit_machine.prepare_unit(udir, str(machine))
                else:
                    (udir / "charm").mkdir()
                q = state["queue"]
                q.append(self._ev(unit, "install"))
                rels = self._app_relations(state, app)
                for rel in rels:
                    q.append(self._rel_ev(state, unit, rel, "created"))
                q.append(
                    self._ev(unit, "leader-elected" if is_leader else "leader-settings-changed")
                )
                q.append(self._ev(unit, "config-changed"))
                q.append(self._ev(unit, "start"))
                for rel in rels:
                    for other in self._units_of_rel(state, rel):
                        if other == unit:
                            continue
                        self._enqueue_join(state, rel, unit, other)
                        self._enqueue_join(state, rel, other, unit)
            self.model.record_status(unit, "workload", "waiting", "waiting for machine")
            added.append(unit)
        self.settle()
        return added

    def remove_unit(self, unit: str) -> None:
        with self.model.transaction() as state:
            self._unit(state, unit)
            self._enqueue_unit_removal(state, unit)
        self.settle()

    def integrate(self, a: str, b: str) -> str:
        with self.model.transaction() as state:
            (app_a, ep_a), (app_b, ep_b) = self._match_endpoints(state, a, b)
            for rel in state["relations"].values():
                if sorted(map(tuple, rel["endpoints"])) == sorted([(app_a, ep_a), (app_b, ep_b)]):
                    raise ModelError(f"relation {app_a}:{ep_a} {app_b}:{ep_b} already exists")
            iface = state["applications"][app_a]["endpoints"][ep_a]["interface"]
            rel = self._new_relation(state, [[app_a, ep_a], [app_b, ep_b]], iface)
            units_a = self._units_of(state, app_a)
            units_b = self._units_of(state, app_b)
            for u in units_a + units_b:
                state["queue"].append(self._rel_ev(state, u, rel, "created"))
            for u in units_a:
                for v in units_b:
                    self._enqueue_join(state, rel, u, v)
                    self._enqueue_join(state, rel, v, u)
            rid = f"{ep_a}:{rel['id']}"
        self.settle()
        return rid

    def remove_relation(self, a: str, b: str | None = None) -> None:
        with self.model.transaction() as state:
            rel = self._find_relation(state, a, b)
            units = self._units_of_rel(state, rel)
            for u in units:
                for w in list(rel["members"].get(u, [])):
                    state["queue"].append(
                        self._rel_ev(state, u, rel, "departed", remote=w, departing=w)
                    )
            for u in units:
                state["queue"].append(self._rel_ev(state, u, rel, "broken"))
            state["queue"].append(
                {
                    "internal": "drop-relation",
                    "relation": rel["id"],
                    "after": units,
                    "seq": self._next(),
                }
            )
        self.settle()

    def config_get(self, app: str) -> dict:
        state = self.model.read()
        self._app(state, app)
        return effective_config(self.model, state, app)

    def config_set(
        self, app: str, values: dict | None = None, reset: list[str] | None = None
    ) -> None:
        with self.model.transaction() as state:
            info = self._app(state, app)
            before = effective_config(self.model, state, app)
            for k, v in (values or {}).items():
                if k not in info["config_options"]:
                    raise ModelError(f'unknown option "{k}"')
                info["config"][k] = convert_config_value(k, info["config_options"][k], v)
            for k in reset or []:
                if k not in info["config_options"]:
                    raise ModelError(f'unknown option "{k}"')
                info["config"].pop(k, None)
            if effective_config(self.model, state, app) != before:
                for u in self._units_of(state, app):
                    state["queue"].append(self._ev(u, "config-changed"))
        self.settle()

    def update_status(self) -> None:
        with self.model.transaction() as state:
            for u in sorted(state["units"], key=_unit_key):
                state["queue"].append(self._ev(u, "update-status"))
        self.settle()

    def resolved(self, unit: str, retry: bool = True) -> None:
        """Clear a unit's error; retry the failed hook (or skip it with retry=False)."""
        with self.model.transaction() as state:
            info = self._unit(state, unit)
            if not info["error"]:
                raise ModelError(f'unit "{unit}" is not in an error state')
            failed = info["error"]
            info["error"] = None
            info["agent"] = "idle"
            if not retry:
                state["queue"] = [e for e in state["queue"] if e.get("seq") != failed.get("seq")]
        self.model.record_status(unit, "agent", "idle", "resolved")
        self.settle()

    def upgrade_charm(self, app: str, charm: str) -> None:
        charm_dir = Path(charm).resolve()
        meta = load_charm_meta(charm_dir)
        with self.model.transaction() as state:
            info = self._app(state, app)
            if info["fake"]:
                raise ModelError("cannot upgrade a fake application")
            info.update(meta)
            info["charm"] = str(charm_dir)
            info["config"] = {
                k: v for k, v in info["config"].items() if k in meta["config_options"]
            }
            for u in self._units_of(state, app):
                self._replace_charm_files(self.model.charm_dir(u), charm_dir)
                state["queue"].append(self._ev(u, "upgrade-charm"))
                state["queue"].append(self._ev(u, "config-changed"))
        self.settle()

    def run_action(self, unit: str, action: str, params: dict | None = None) -> dict:
        self.settle()
        with self.model.transaction() as state:
            uinfo = self._unit(state, unit)
            app = state["applications"][uinfo["app"]]
            spec = app["actions"].get(action)
            if spec is None:
                raise ModelError(f'action "{action}" not defined on unit "{unit}"')
            final = _action_params(action, spec or {}, params or {})
            aid = state["next_action_id"]
            state["next_action_id"] += 1
        record = {
            "id": aid,
            "unit": unit,
            "action": action,
            "params": final,
            "results": {},
            "status": "running",
            "message": "",
            "log": [],
            "started": iso(),
        }
        apath = self.model.root / "actions" / f"{aid}.json"
        apath.write_text(json.dumps(record, indent=1, sort_keys=True))
        event = {"unit": unit, "action": action, "action_id": str(aid), "seq": self._next()}
        rc, output = self._exec(event, self.model.charm_dir(unit) / "actions" / action)
        with self.model.lock():
            record = json.loads(apath.read_text())
            if rc != 0 and record["status"] != "failed":
                record["status"] = "failed"
                record["message"] = f"exit status {rc}"
            elif record["status"] == "running":
                record["status"] = "completed"
            record["return-code"] = rc
            record["stdout"] = output
            record["completed"] = iso()
            apath.write_text(json.dumps(record, indent=1, sort_keys=True))
        self.settle()
        return record

    def destroy(self) -> None:
        """Remove every relation and unit the way Juju does, then every application."""
        if not self.model.exists():
            return
        with self.model.transaction() as state:
            for unit in sorted(state["units"], key=_unit_key):
                self._enqueue_unit_removal(state, unit, elect=False)
        self.settle()
        with self.model.transaction() as state:
            left = list(state["units"])
            if not left:
                state["applications"] = {}
                state["relations"] = {}
                state["leader_data"] = {}
        if left:
            raise ModelError(
                f"units left in error state: {left}; fix and `resolved`, then destroy again"
            )

    def status(self) -> dict:
        state = self.model.read()
        apps = {}
        for name, info in sorted(state["applications"].items()):
            units = {}
            for u in self._units_of(state, name):
                uinfo = state["units"][u]
                wl = uinfo["workload"]
                if uinfo["error"]:
                    wl = {
                        "status": "error",
                        "message": f"hook failed: {_what(uinfo['error'])}",
                    }
                units[u] = {
                    "workload-status": {"current": wl["status"], "message": wl["message"]},
                    "juju-status": {"current": "error" if uinfo["error"] else uinfo["agent"]},
                    "leader": info["leader"] == u,
                    "address": uinfo["address"],
                    "open-ports": list(uinfo["ports"]),
                    "machine": uinfo["machine"],
                }
            apps[name] = {
                "charm": info["charm"] or f"fake:{info['fake']}",
                "version": info["version"],
                "units": units,
                "relations": {},
            }
        relations = []
        for rel in sorted(state["relations"].values(), key=lambda r: r["id"]):
            eps = rel["endpoints"]
            relations.append(
                {
                    "id": rel["id"],
                    "interface": rel["interface"],
                    "endpoints": [f"{a}:{e}" for a, e in eps],
                    "type": "peer" if len(eps) == 1 else "regular",
                }
            )
            for a, e in eps:
                others = [x for x, _ in eps if x != a] or [a]
                apps[a]["relations"].setdefault(e, []).extend(others)
        return {
            "model": {"name": state["name"], "path": str(self.model.root)},
            "applications": apps,
            "relations": relations,
            "pending-events": len(state["queue"]),
        }

    # ================================================================ queue
    def settle(self, max_events: int = 5000) -> None:
        """Run queued events until none is runnable (queue empty or only errored units left)."""
        from .fakes import get_fake

        for _ in range(max_events):
            state = self.model.read()
            event = self._next_runnable(state)
            if event is None:
                return
            if event.get("internal"):
                with self.model.transaction() as st:
                    self._internal(st, event)
                    st["queue"] = [e for e in st["queue"] if e.get("seq") != event["seq"]]
                continue
            unit = event["unit"]
            app = state["units"][unit]["app"]
            self._pre(event)
            info = state["applications"][app]
            if info["fake"] and info["charm"]:
                # the test charm's hook (relation data through the upstream layers), then
                # the fake's workload from what the charm read
                rc, _ = self._exec(event, self.model.charm_dir(unit) / "hooks" / event["hook"])
                charm_pending = event.get("_pending") or {}
                ok = rc == 0 and self._run_fake(get_fake(self.model, app, info["fake"]), event)
                event["_pending"] = charm_pending
            elif info["fake"]:
                ok = self._run_fake(get_fake(self.model, app, info["fake"]), event)
            else:
                rc, _ = self._exec(event, self.model.charm_dir(unit) / "hooks" / event["hook"])
                ok = rc == 0
            with self.model.transaction() as st:
                if ok:
                    st["queue"] = [e for e in st["queue"] if e.get("seq") != event["seq"]]
                    self._post(st, event)
                else:
                    st["units"][unit]["error"] = event
                    st["units"][unit]["agent"] = "error"
            if not ok:
                self.model.record_status(
                    unit, "workload", "error", f"hook failed: {event['hook']}"
                )
                self.echo(f"{unit}: hook failed: {event['hook']}")
        raise ModelError("the event queue did not settle (hook loop?)")

    def _next_runnable(self, state):
        blocked = {u for u, info in state["units"].items() if info["error"]}
        for ev in state["queue"]:
            if ev.get("internal"):
                if blocked & set(ev.get("after", [])):
                    blocked |= set(ev.get("after", []))
                    continue
                return ev
            if ev["unit"] not in state["units"]:
                continue
            if ev["unit"] in blocked:
                continue
            return ev
        return None

    def _pre(self, event):
        """Membership changes Juju makes before the hook runs."""
        with self.model.transaction() as state:
            rel = state["relations"].get(str(event.get("relation_id")))
            if rel is None:
                return
            unit, kind = event["unit"], event["hook"].rsplit("-", 1)[-1]
            members = rel["members"]
            if kind == "created":
                members.setdefault(unit, [])
                addr = state["units"][unit]["address"]
                rel["unit_data"].setdefault(
                    unit,
                    {
                        "private-address": addr,
                        "ingress-address": addr,
                        "egress-subnets": f"{addr}/32",
                    },
                )
            elif kind == "joined":
                lst = members.setdefault(unit, [])
                if event["remote_unit"] not in lst:
                    lst.append(event["remote_unit"])
                    lst.sort(key=_unit_key)
            elif kind == "departed":
                lst = members.get(unit, [])
                if event["remote_unit"] in lst:
                    lst.remove(event["remote_unit"])

    def _post(self, state, event):
        unit = event["unit"]
        pending = event.get("_pending") or {}
        self._commit(state, unit, pending)
        rel = state["relations"].get(str(event.get("relation_id")))
        if rel is not None and event["hook"].endswith("-relation-broken"):
            rel["members"].pop(unit, None)
            rel["unit_data"].pop(unit, None)
        state["units"][unit]["agent"] = "idle"

    def _commit(self, state, unit, pending):
        app = state["units"][unit]["app"]
        for rid, changes in (pending.get("relations") or {}).items():
            rel = state["relations"].get(rid)
            if rel is None:
                continue
            if _apply(rel["unit_data"].setdefault(unit, {}), changes.get("unit", {})):
                for v, joined in rel["members"].items():
                    if unit in joined:
                        state["queue"].append(self._rel_ev(state, v, rel, "changed", remote=unit))
            if _apply(rel["app_data"].setdefault(app, {}), changes.get("app", {})):
                for v in self._units_of_rel(state, rel):
                    if state["units"][v]["app"] != app and rel["members"].get(v):
                        ev = self._rel_ev(state, v, rel, "changed")
                        ev["remote_app"] = app
                        state["queue"].append(ev)
        ports = state["units"][unit]["ports"]
        for op, spec in pending.get("ports") or []:
            if op == "open" and spec not in ports:
                ports.append(spec)
            elif op == "close" and spec in ports:
                ports.remove(spec)

    def _internal(self, state, event):
        kind = event["internal"]
        if kind == "drop-relation":
            state["relations"].pop(str(event["relation"]), None)
        elif kind == "drop-unit":
            unit = event["unit"]
            info = state["units"].pop(unit, None)
            if unit in state.get("dying", []):
                state["dying"].remove(unit)
            for rel in state["relations"].values():
                rel["members"].pop(unit, None)
                rel["unit_data"].pop(unit, None)
                for lst in rel["members"].values():
                    if unit in lst:
                        lst.remove(unit)
            udir = self.model.unit_dir(unit)
            if udir.exists():
                shutil.rmtree(udir, ignore_errors=True)
            if info:
                self.model.record_status(unit, "agent", "removed", "")
                app = state["applications"].get(info["app"])
                if app and app["leader"] == unit:
                    app["leader"] = None
        elif kind == "elect":
            app = state["applications"].get(event["app"])
            if app is None:
                return
            units = self._units_of(state, event["app"])
            if app["leader"] not in units:
                app["leader"] = units[0] if units else None
                if units:
                    state["queue"].append(self._ev(units[0], "leader-elected"))

    # ================================================================ execution
    def _ctx_path(self, unit: str) -> Path:
        d = self.model.root / "ctx"
        d.mkdir(exist_ok=True)
        return d / f"{unit_dirname(unit)}.json"

    def hook_env(self, event: dict) -> dict:
        state = self.model.read()
        unit = event["unit"]
        uinfo = state["units"][unit]
        charm_dir = self.model.charm_dir(unit)
        env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
        env.update(
            {
                "PATH": unit_machine.hook_path(self.model.bin_dir),
                "HOME": "/root",
                "LANG": "C.UTF-8",
                # layer:basic's pip runs (machine.py, "Bootstrap"): no self-check against PyPI,
                # no progress bars, no byte-compiling at install (hooks compile what they import)
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_PROGRESS_BAR": "off",
                # (pip reads a --no-* option's variable as the option's value: "0" is --no-compile)
                "PIP_NO_COMPILE": "0",
                # a fresh machine's pip has no config (the host's pip.conf adds find-links
                # that layer:basic's `pip install -f wheelhouse` would also search)
                "PIP_CONFIG_FILE": "/dev/null",
                "JUJU_CHARM_DIR": str(charm_dir),
                "CHARM_DIR": str(charm_dir),
                "JUJU_UNIT_NAME": unit,
                "JUJU_MODEL_NAME": state["name"],
                "JUJU_MODEL_UUID": state["uuid"],
                "JUJU_MACHINE_ID": uinfo["machine"],
                "JUJU_PRINCIPAL_UNIT": "",
                "JUJU_VERSION": "3.4.0",
                "JUJU_CONTEXT_ID": f"{unit}-{_what(event)}-{event['seq']}",
                "DOCKER_REGISTRY_SANDBOX": str(self.model.sandbox_dir(unit)),
            }
        )
        if event.get("action"):
            env["JUJU_ACTION_NAME"] = event["action"]
            env["JUJU_ACTION_UUID"] = event["action_id"]
            env["JUJU_DISPATCH_PATH"] = f"actions/{event['action']}"
        else:
            env["JUJU_HOOK_NAME"] = event["hook"]
            env["JUJU_DISPATCH_PATH"] = f"hooks/{event['hook']}"
        if event.get("relation_id") is not None:
            env["JUJU_RELATION"] = event["relation"]
            env["JUJU_RELATION_ID"] = f"{event['relation']}:{event['relation_id']}"
            env["JUJU_REMOTE_UNIT"] = event.get("remote_unit") or ""
            env["JUJU_REMOTE_APP"] = event.get("remote_app") or ""
            if event.get("departing"):
                env["JUJU_DEPARTING_UNIT"] = event["departing"]
        return env

    def _exec(self, event: dict, path: Path) -> tuple[int, str]:
        """Run a hook/action file for a charm unit; buffered changes land in event['_pending']."""
        unit = event["unit"]
        name = event.get("hook") or event.get("action")
        ctx = {
            "unit": unit,
            "hook": name,
            "relation_id": event.get("relation_id"),
            "relation_name": event.get("relation"),
            "remote_unit": event.get("remote_unit"),
            "remote_app": event.get("remote_app"),
            "action_id": event.get("action_id"),
            "pending": {},
        }
        ctx_path = self._ctx_path(unit)
        ctx_path.write_text(json.dumps(ctx))
        if not path.exists():
            event["_pending"] = {}
            return 0, ""  # Juju skips hooks the charm does not implement
        self.model.write_launchers()
        env = self.hook_env(event)
        with self.model.transaction() as state:
            state["units"][unit]["agent"] = "executing"
        self.model.log(
            unit, "INFO", f"running {name} hook" if event.get("hook") else f"running action {name}"
        )
        started, started_at = time.monotonic(), now()
        try:
            proc = subprocess.run(
                unit_machine.wrap(self.model.unit_dir(unit), [str(path)]),
                cwd=self.model.charm_dir(unit),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=HOOK_TIMEOUT,
                errors="replace",
            )
            rc, output = proc.returncode, proc.stdout
        except subprocess.TimeoutExpired as exc:
            rc, output = 124, (exc.stdout or "") + f"\nhook timed out after {HOOK_TIMEOUT}s"
        if output.strip():
            self.model.log(unit, "WARNING" if rc else "DEBUG", f"{name}: " + output.rstrip())
        took = time.monotonic() - started
        self.model.append_jsonl(
            "hooks.jsonl",
            {
                "unit": unit,
                "kind": "hook" if event.get("hook") else "action",
                "name": name,
                "start": started_at,
                "seconds": round(took, 3),
                "rc": rc,
            },
        )
        self.model.log(
            unit,
            "ERROR" if rc else "INFO",
            f"{name} {'failed with exit status ' + str(rc) if rc else 'completed'} ({took:.1f}s)",
        )
        event["_pending"] = json.loads(ctx_path.read_text()).get("pending") or {}
        if event.get("action") and rc == 0:
            with self.model.transaction() as state:
                self._commit(state, unit, event["_pending"])
                state["units"][unit]["agent"] = "idle"
        elif event.get("action"):
            with self.model.transaction() as state:
                state["units"][unit]["agent"] = "idle"
        return rc, output

    def _run_fake(self, fake, event) -> bool:
        from .fakes.base import FakeContext

        ctx = FakeContext(self.model, event)
        try:
            fake.handle(ctx)
        except Exception as exc:  # a fake's bug shows up like a failed hook
            self.model.log(event["unit"], "ERROR", f"{event['hook']}: fake raised {exc!r}")
            return False
        event["_pending"] = ctx.pending
        if ctx.status is not None:
            with self.model.transaction() as state:
                state["units"][event["unit"]]["workload"] = {
                    "status": ctx.status[0],
                    "message": ctx.status[1],
                    "since": now(),
                }
            self.model.record_status(event["unit"], "workload", *ctx.status)
        return True

    # ================================================================ helpers
    def _next(self) -> int:
        self._seq = max(self._seq + 1, time.time_ns())
        return self._seq

    def _ev(self, unit, hook):
        return {"unit": unit, "hook": hook, "seq": self._next()}

    def _rel_ev(self, state, unit, rel, kind, remote=None, departing=None):
        app = state["units"][unit]["app"] if unit in state["units"] else unit.split("/")[0]
        ep = next(e for a, e in rel["endpoints"] if a == app)
        ev = {
            "unit": unit,
            "hook": f"{ep}-relation-{kind}",
            "relation": ep,
            "relation_id": rel["id"],
            "seq": self._next(),
        }
        if remote:
            ev["remote_unit"] = remote
            ev["remote_app"] = remote.split("/")[0]
        else:
            others = [a for a, _ in rel["endpoints"] if a != app]
            ev["remote_app"] = others[0] if others else app
        if departing:
            ev["departing"] = departing
        return ev

    def _enqueue_join(self, state, rel, unit, remote):
        state["queue"].append(self._rel_ev(state, unit, rel, "joined", remote=remote))
        state["queue"].append(self._rel_ev(state, unit, rel, "changed", remote=remote))

    def _enqueue_unit_removal(self, state, unit, elect=True):
        q = state["queue"]
        app = state["units"][unit]["app"]
        rels = [
            r
            for r in state["relations"].values()
            if unit in r["members"] or any(a == app for a, _ in r["endpoints"])
        ]
        dying = state.setdefault("dying", [])
        dying.append(unit)
        for rel in rels:
            for v, joined in sorted(rel["members"].items()):
                # a unit already on its way out has its own broken hook queued: in Juju it
                # never sees departed after broken
                if v != unit and unit in joined and v not in dying:
                    q.append(self._rel_ev(state, v, rel, "departed", remote=unit, departing=unit))
            for w in list(rel["members"].get(unit, [])):
                if w not in dying:  # w's own removal already told this unit it departed
                    q.append(self._rel_ev(state, unit, rel, "departed", remote=w, departing=unit))
        for rel in rels:
            q.append(self._rel_ev(state, unit, rel, "broken"))
        q.append(self._ev(unit, "stop"))
        q.append(self._ev(unit, "remove"))
        q.append({"internal": "drop-unit", "unit": unit, "after": [unit], "seq": self._next()})
        if elect:
            q.append({"internal": "elect", "app": app, "after": [unit], "seq": self._next()})

    def _new_relation(self, state, endpoints, interface):
        rid = state["next_relation_id"]
        state["next_relation_id"] += 1
        rel = {
            "id": rid,
            "endpoints": endpoints,
            "interface": interface,
            "unit_data": {},
            "app_data": {a: {} for a, _ in endpoints},
            "members": {},
        }
        state["relations"][str(rid)] = rel
        return rel

    def _app(self, state, app):
        if app not in state["applications"]:
            raise ModelError(f'application "{app}" not found')
        return state["applications"][app]

    def _unit(self, state, unit):
        if unit not in state["units"]:
            raise ModelError(f'unit "{unit}" not found')
        return state["units"][unit]

    @staticmethod
    def _units_of(state, app):
        return sorted((u for u, i in state["units"].items() if i["app"] == app), key=_unit_key)

    def _units_of_rel(self, state, rel):
        out = []
        for a, _ in rel["endpoints"]:
            out += self._units_of(state, a)
        return out

    @staticmethod
    def _app_relations(state, app):
        return [
            r
            for r in sorted(state["relations"].values(), key=lambda r: r["id"])
            if any(a == app for a, _ in r["endpoints"])
        ]

    def _match_endpoints(self, state, a, b):
        def split(s):
            app, _, ep = s.partition(":")
            self._app(state, app)
            return app, ep or None

        (app_a, ep_a), (app_b, ep_b) = split(a), split(b)
        eps_a = state["applications"][app_a]["endpoints"]
        eps_b = state["applications"][app_b]["endpoints"]
        pairs = []
        for na, sa in eps_a.items():
            for nb, sb in eps_b.items():
                if (ep_a and na != ep_a) or (ep_b and nb != ep_b):
                    continue
                roles = {sa["role"], sb["role"]}
                if sa["interface"] == sb["interface"] and roles == {"provides", "requires"}:
                    pairs.append(((app_a, na), (app_b, nb)))
        if len(pairs) != 1:
            what = "no matching endpoints" if not pairs else f"ambiguous: {pairs}"
            raise ModelError(f"cannot relate {a} and {b}: {what}")
        return pairs[0]

    def _find_relation(self, state, a, b):
        if b is None and a.isdigit():
            rel = state["relations"].get(a)
            if rel is None:
                raise ModelError(f"relation {a} not found")
            return rel
        (app_a, ep_a), (app_b, ep_b) = [
            (s.partition(":")[0], s.partition(":")[2] or None) for s in (a, b)
        ]
        found = []
        for rel in state["relations"].values():
            eps = rel["endpoints"]
            if len(eps) != 2:
                continue
            for (x, ex), (y, ey) in (eps, eps[::-1]):
                if (
                    x == app_a
                    and y == app_b
                    and (not ep_a or ex == ep_a)
                    and (not ep_b or ey == ep_b)
                ):
                    found.append(rel)
        if len(found) != 1:
            raise ModelError(
                f"relation between {a} and {b} not found" if not found else "ambiguous relation"
            )
        return found[0]

    def _store_resource(self, app, name, path):
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

    @staticmethod
    def _replace_charm_files(dest: Path, src: Path):
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


def _what(event: dict) -> str:
    return event.get("hook") or event.get("action") or "?"


def _unit_key(unit: str):
    app, _, num = unit.partition("/")
    return (app, int(num) if num.isdigit() else 0)


def _action_params(action: str, spec: dict, given: dict) -> dict:
    props = spec.get("params") or {}
    out = {}
    for k, p in props.items():
        if isinstance(p, dict) and "default" in p:
            out[k] = p["default"]
    for k, v in given.items():
        if k not in props and spec.get("additionalProperties", True) is False:
            raise ModelError(f'action "{action}": additional property "{k}" is not allowed')
        out[k] = v
    for k in spec.get("required") or []:
        if k not in out:
            raise ModelError(f'action "{action}": "{k}" is required')
    for k, p in props.items():
        if k in out and isinstance(p, dict) and p.get("type"):
            types = {
                "string": str,
                "integer": int,
                "number": (int, float),
                "boolean": bool,
                "array": list,
                "object": dict,
            }
            t = types.get(p["type"])
            if (t and not isinstance(out[k], t)) or (
                p["type"] == "integer" and isinstance(out[k], bool)
            ):
                raise ModelError(f'action "{action}": "{k}" must be of type {p["type"]}')
    return out
