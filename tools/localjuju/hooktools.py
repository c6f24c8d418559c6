"""Hook tools of the local model: `hooktools.py <tool> ARGS...` (run through bin/<tool> launchers).

Each tool reads the model (LOCALJUJU_MODEL, set by the launcher) and the running hook's context
file (<model>/ctx/<unit>.json, written by execution.py). Like Juju, relation-set and
open/close-port are buffered in the context and committed by the controller only when the hook
succeeds; status-set, juju-log, leader-set and action results take effect at once. Output
formats are what charmhelpers.core.hookenv parses. Every invocation is appended to audit.jsonl
(tool, argv, unit, hook, exit code).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from model import Model, iso, now  # type: ignore[no-redef]
else:
    from .model import Model, iso, now

STATUSES = ("maintenance", "blocked", "waiting", "active")


def _yaml():
    """PyYAML, imported only by the tools that need it (most calls are juju-log)."""
    import yaml

    return yaml


class ToolError(Exception):
    def __init__(self, message: str, rc: int = 1):
        super().__init__(message)
        self.rc = rc


# --- helpers -----------------------------------------------------------------------------
def _out(value, fmt: str | None) -> str:
    if fmt == "json":
        return json.dumps(value)
    if fmt == "yaml":
        return _yaml().safe_dump(value, default_flow_style=False).rstrip("\n")
    # Juju's "smart" format: strings raw, lists one per line, dicts as yaml
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict):
        return _yaml().safe_dump(value, default_flow_style=False).rstrip("\n")
    return str(value)


class Args:
    """Tiny argv parser: Juju tools accept --format=json, --format json, -r RID, -l LEVEL..."""

    def __init__(self, argv: list[str], options: dict[str, bool]):
        # options: name -> takes a value
        self.opts: dict[str, str | bool] = {}
        self.pos: list[str] = []
        i = 0
        while i < len(argv):
            a = argv[i]
            if a.startswith("-") and a != "-":
                name, eq, val = a.partition("=")
                if name not in options:
                    raise ToolError(f"flag provided but not defined: {name}", 2)
                if options[name]:
                    if not eq:
                        i += 1
                        if i >= len(argv):
                            raise ToolError(f"flag needs an argument: {name}", 2)
                        val = argv[i]
                    self.opts[name] = val
                else:
                    self.opts[name] = True
            else:
                self.pos.append(a)
            i += 1

    def get(self, *names, default=None):
        for n in names:
            if n in self.opts:
                return self.opts[n]
        return default


class Tools:
    def __init__(self, model: Model, ctx_path: Path):
        self.model = model
        self.ctx_path = ctx_path
        self.ctx = json.loads(ctx_path.read_text())
        self.unit = self.ctx["unit"]
        self.app = self.unit.split("/")[0]

    # context (pending changes) -------------------------------------------------------
    def _save_ctx(self):
        tmp = self.ctx_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.ctx))
        os.replace(tmp, self.ctx_path)

    def _state(self) -> dict:
        return self.model.read()

    def _is_leader(self, state) -> bool:
        return state["applications"][self.app].get("leader") == self.unit

    def _rid(self, args: Args, required=True) -> str | None:
        rid = args.get("-r", "--relation") or self.ctx.get("relation_id")
        if rid is None and required:
            raise ToolError("no relation id specified", 2)
        return rid

    def _relation(self, state, rid: str) -> dict:
        num = rid.split(":")[-1]
        rel = state["relations"].get(num)
        if rel is None or (":" in rid and rid.split(":")[0] not in self._my_endpoints(rel)):
            raise ToolError(f'invalid value "{rid}" for option -r: relation not found', 2)
        return rel

    def _my_endpoints(self, rel) -> list[str]:
        return [ep for app, ep in rel["endpoints"] if app == self.app]

    def _pending(self, rid_num: str) -> dict:
        return (
            self.ctx.setdefault("pending", {})
            .setdefault("relations", {})
            .setdefault(rid_num, {"unit": {}, "app": {}})
        )

    # config ---------------------------------------------------------------------------
    def config_get(self, argv):
        a = Args(
            argv, {"--all": False, "-a": False, "--format": True, "-o": True, "--output": True}
        )
        state = self._state()
        cfg = effective_config(self.model, state, self.app)
        fmt = a.get("--format")
        if a.pos:
            return _out(cfg.get(a.pos[0]), fmt)
        if not a.get("--all", "-a"):
            cfg = {k: v for k, v in cfg.items() if v is not None}
        return _out(cfg, fmt)

    # relations ------------------------------------------------------------------------
    def relation_get(self, argv):
        a = Args(
            argv, {"--format": True, "-r": True, "--relation": True, "--app": False, "-o": True}
        )
        state = self._state()
        rid = self._rid(a)
        rel = self._relation(state, rid)
        num = str(rel["id"])
        key = a.pos[0] if a.pos else "-"
        target = a.pos[1] if len(a.pos) > 1 else None
        fmt = a.get("--format")
        if a.get("--app"):
            target = target or self.ctx.get("remote_app")
            if not target:
                raise ToolError("no application specified", 2)
            target = target.split("/")[0]
            if target not in rel["app_data"] and target not in [x for x, _ in rel["endpoints"]]:
                raise ToolError(f'cannot read settings for application "{target}"', 2)
            if target == self.app and not self._is_leader(state) and not _is_peer(rel):
                raise ToolError("permission denied", 1)
            data = dict(rel["app_data"].get(target, {}))
            if target == self.app:
                _apply(data, self._pending(num)["app"])
        else:
            target = target or self.ctx.get("remote_unit")
            if not target:
                raise ToolError("no unit id specified", 2)
            if target not in rel["unit_data"]:
                raise ToolError(
                    f'cannot read settings for unit "{target}" in relation "{rid}": '
                    f'unit "{target}": settings not found',
                    2,
                )
            data = dict(rel["unit_data"][target])
            if target == self.unit:
                _apply(data, self._pending(num)["unit"])
        if key == "-":
            return _out(data, fmt)
        return _out(data.get(key), fmt)

    def relation_set(self, argv):
        if "--help" in argv or "-h" in argv:
            return RELATION_SET_HELP
        a = Args(
            argv,
            {"-r": True, "--relation": True, "--app": False, "--file": True, "--format": True},
        )
        settings: dict[str, str | None] = {}
        f = a.get("--file")
        if f:
            text = sys.stdin.read() if f == "-" else Path(f).read_text()
            loaded = _yaml().safe_load(text) or {}
            if not isinstance(loaded, dict):
                raise ToolError("expected YAML map in --file", 2)
            for k, v in loaded.items():
                settings[str(k)] = None if v is None else str(v)
        for kv in a.pos:
            k, eq, v = kv.partition("=")
            if not eq:
                raise ToolError(f'expected "key=value", got "{kv}"', 2)
            settings[k] = v
        with self.model.lock():
            state = self.model._read()
            rid = self._rid(a)
            rel = self._relation(state, rid)
            if a.get("--app") and not self._is_leader(state):
                raise ToolError("cannot write relation settings: permission denied", 1)
            pending = self._pending(str(rel["id"]))["app" if a.get("--app") else "unit"]
            for k, v in settings.items():
                pending[k] = None if v in (None, "") else v
            self._save_ctx()
        return None

    def relation_ids(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        state = self._state()
        name = a.pos[0] if a.pos else self.ctx.get("relation_name")
        if not name:
            raise ToolError("no endpoint name specified", 2)
        ids = [
            f"{name}:{rel['id']}"
            for rel in sorted(state["relations"].values(), key=lambda r: r["id"])
            if [self.app, name] in rel["endpoints"] and self.unit in rel["members"]
        ]
        return _out(ids, a.get("--format"))

    def relation_list(self, argv):
        a = Args(
            argv, {"--format": True, "-r": True, "--relation": True, "--app": False, "-o": True}
        )
        state = self._state()
        rel = self._relation(state, self._rid(a))
        if a.get("--app"):
            apps = [x for x, _ in rel["endpoints"] if x != self.app] or [self.app]
            return _out(apps[0], a.get("--format"))
        members = list(rel["members"].get(self.unit, []))
        return _out(members, a.get("--format"))

    # status / log ---------------------------------------------------------------------
    def status_set(self, argv):
        a = Args(argv, {"--application": False})
        if not a.pos or a.pos[0] not in STATUSES:
            raise ToolError(
                f"invalid status {a.pos[0] if a.pos else ''!r}, expected one of {STATUSES}", 2
            )
        status, message = a.pos[0], " ".join(a.pos[1:])
        with self.model.transaction() as state:
            if a.get("--application"):
                if not self._is_leader(state):
                    raise ToolError("this unit is not the leader", 1)
                state["applications"][self.app]["status"] = {
                    "status": status,
                    "message": message,
                    "since": now(),
                }
                who = self.app
            else:
                state["units"][self.unit]["workload"] = {
                    "status": status,
                    "message": message,
                    "since": now(),
                }
                who = self.unit
        self.model.record_status(who, "workload", status, message)
        return None

    def status_get(self, argv):
        a = Args(
            argv, {"--format": True, "--include-data": False, "--application": False, "-o": True}
        )
        state = self._state()
        if a.get("--application"):
            st = state["applications"][self.app].get("status") or {
                "status": "unknown",
                "message": "",
            }
            value = {
                "application-status": {
                    "status": st["status"],
                    "message": st["message"],
                    "status-data": {},
                }
            }
        else:
            st = state["units"][self.unit]["workload"]
            value = {"status": st["status"], "message": st["message"], "status-data": {}}
            if not a.get("--include-data") and a.get("--format") is None:
                value = st["status"]
        return _out(value, a.get("--format"))

    def juju_log(self, argv):
        a = Args(argv, {"-l": True, "--log-level": True, "--debug": False, "--format": True})
        level = a.get("-l", "--log-level") or ("DEBUG" if a.get("--debug") else "INFO")
        self.model.log(self.unit, str(level).upper(), " ".join(a.pos))
        return None

    # actions --------------------------------------------------------------------------
    def _action(self):
        aid = self.ctx.get("action_id")
        if not aid:
            raise ToolError("not running an action", 1)
        return self.model.root / "actions" / f"{aid}.json"

    def action_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        data = json.loads(self._action().read_text())["params"]
        if a.pos:
            for part in a.pos[0].split("."):
                data = data.get(part) if isinstance(data, dict) else None
        return _out(data, a.get("--format"))

    def _update_action(self, fn):
        path = self._action()
        with self.model.lock():
            rec = json.loads(path.read_text())
            fn(rec)
            path.write_text(json.dumps(rec, indent=1, sort_keys=True))

    def action_set(self, argv):
        pairs = []
        for kv in argv:
            k, eq, v = kv.partition("=")
            if not eq or not k:
                raise ToolError(f'argument "{kv}" must be of the form key...=value', 2)
            pairs.append((k, v))

        def fn(rec):
            for k, v in pairs:
                d = rec["results"]
                parts = k.split(".")
                for p in parts[:-1]:
                    d = d.setdefault(p, {})
                d[parts[-1]] = v

        self._update_action(fn)
        return None

    def action_fail(self, argv):
        message = " ".join(argv) or "action failed without reason given, check action for errors"

        def fn(rec):
            rec["status"] = "failed"
            rec["message"] = message

        self._update_action(fn)
        return None

    def action_log(self, argv):
        line = " ".join(argv)
        self._update_action(lambda rec: rec["log"].append({"time": iso(), "message": line}))
        return None

    # ports ----------------------------------------------------------------------------
    def _port_spec(self, argv) -> str:
        a = Args(argv, {"--endpoints": True})
        if not a.pos:
            raise ToolError("no port or range specified", 2)
        spec = a.pos[0].lower()
        if spec == "icmp":
            return spec
        port, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise ToolError(f'invalid protocol "{proto}"', 2)
        lo, _, hi = port.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ToolError(f'invalid port "{port}"', 2)
        return f"{port}/{proto}"

    def open_port(self, argv):
        spec = self._port_spec(argv)
        with self.model.lock():
            ports = self.ctx.setdefault("pending", {}).setdefault("ports", [])
            ports.append(["open", spec])
            self._save_ctx()

    def close_port(self, argv):
        spec = self._port_spec(argv)
        with self.model.lock():
            ports = self.ctx.setdefault("pending", {}).setdefault("ports", [])
            ports.append(["close", spec])
            self._save_ctx()

    def opened_ports(self, argv):
        a = Args(argv, {"--format": True, "--endpoints": False, "-o": True})
        return _out(list(self._state()["units"][self.unit]["ports"]), a.get("--format"))

    # network --------------------------------------------------------------------------
    def unit_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        if not a.pos or a.pos[0] not in ("private-address", "public-address"):
            raise ToolError("unknown setting", 2)
        return _out(self._state()["units"][self.unit]["address"], a.get("--format"))

    def network_get(self, argv):
        a = Args(
            argv,
            {
                "--format": True,
                "-r": True,
                "--relation": True,
                "--primary-address": False,
                "--ingress-address": False,
                "--bind-address": False,
                "--egress-subnets": False,
                "-o": True,
            },
        )
        state = self._state()
        if not a.pos:
            raise ToolError("no arguments specified", 2)
        binding = a.pos[0]
        endpoints = state["applications"][self.app]["endpoints"]
        if binding not in endpoints and binding not in state["applications"][self.app].get(
            "extra_bindings", []
        ):
            raise ToolError(f'no network config found for binding "{binding}"', 1)
        addr = state["units"][self.unit]["address"]
        if a.get("--primary-address") or a.get("--bind-address"):
            return _out(addr, a.get("--format"))
        if a.get("--ingress-address"):
            return _out(addr, a.get("--format"))
        if a.get("--egress-subnets"):
            return _out(f"{addr}/32", a.get("--format"))
        info = {
            "bind-addresses": [
                {
                    "mac-address": "",
                    "interface-name": "lo",
                    "addresses": [
                        {"hostname": "", "value": addr, "cidr": "127.0.0.0/8", "address": addr}
                    ],
                    "macaddress": "",
                    "interfacename": "lo",
                }
            ],
            "egress-subnets": [f"{addr}/32"],
            "ingress-addresses": [addr],
        }
        return _out(info, a.get("--format") or "yaml")

    # leadership -----------------------------------------------------------------------
    def is_leader(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        return _out(self._is_leader(self._state()), a.get("--format"))

    def leader_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        data = self._state()["leader_data"].get(self.app, {})
        key = a.pos[0] if a.pos else "-"
        return _out(data if key == "-" else data.get(key), a.get("--format"))

    def leader_set(self, argv):
        a = Args(argv, {"--file": True})
        settings = {}
        if a.get("--file"):
            for k, v in (_yaml().safe_load(Path(a.get("--file")).read_text()) or {}).items():
                settings[str(k)] = None if v is None else str(v)
        for kv in a.pos:
            k, eq, v = kv.partition("=")
            if not eq:
                raise ToolError(f'expected "key=value", got "{kv}"', 2)
            settings[k] = v
        with self.model.transaction() as state:
            if not self._is_leader(state):
                raise ToolError(
                    "cannot write leadership settings: cannot write settings: not the leader", 1
                )
            data = state["leader_data"].setdefault(self.app, {})
            changed = _apply(data, settings)
            if changed:
                from_unit = self.unit
                for u, info in sorted(state["units"].items()):
                    if info["app"] == self.app and u != from_unit:
                        state["queue"].append(
                            {"unit": u, "hook": "leader-settings-changed", "seq": time.time_ns()}
                        )
        return None

    # misc -----------------------------------------------------------------------------
    def application_version_set(self, argv):
        if len(argv) != 1:
            raise ToolError("expected exactly one version argument", 2)
        with self.model.transaction() as state:
            state["applications"][self.app]["version"] = argv[0]

    def resource_get(self, argv):
        if len(argv) != 1:
            raise ToolError("expected exactly one resource name", 2)
        name = argv[0]
        state = self._state()
        app = state["applications"][self.app]
        path = app.get("resources", {}).get(name)
        if name not in app.get("resource_names", []) and path is None:
            raise ToolError(f'resource "{name}" not found in charm metadata', 1)
        if not path or not Path(path).exists():
            raise ToolError(
                "could not download resource: HTTP request failed: "
                f"resource#{self.app}/{name} not found",
                1,
            )
        sys.stdout.write(
            path
        )  # Juju prints the path without a newline; charmhelpers uses it as is
        return None

    def juju_reboot(self, argv):
        raise ToolError("juju-reboot is not supported by the local model", 1)


RELATION_SET_HELP = """Usage: relation-set [options] key=value [key=value ...]

Summary:
set relation settings

Options:
--app  (= false)
    pick whether you are setting "application" settings or "unit" settings
--file  (= )
    file containing key-value pairs
--format  (= "")
    deprecated format flag
-r, --relation  (= "")
    specify a relation by id
"""


def _is_peer(rel) -> bool:
    return len(rel["endpoints"]) == 1


def _apply(data: dict, changes: dict) -> bool:
    """Apply {key: value|None} to a databag (None or "" deletes). Returns True if it changed."""
    changed = False
    for k, v in changes.items():
        if v in (None, ""):
            if k in data:
                del data[k]
                changed = True
        elif data.get(k) != v:
            data[k] = v
            changed = True
    return changed


def effective_config(model: Model, state: dict, app: str) -> dict:
    """Defaults from the app's config.yaml overlaid with the values set by `config`."""
    info = state["applications"][app]
    cfg = {k: v.get("default") for k, v in info.get("config_options", {}).items()}
    cfg.update(info.get("config", {}))
    return cfg


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tool, args = argv[0], argv[1:]
    model = Model(os.environ["LOCALJUJU_MODEL"])
    unit = os.environ.get("JUJU_UNIT_NAME", "")
    ctx_path = model.root / "ctx" / (unit.replace("/", "-") + ".json")
    if not unit or not ctx_path.exists():
        print(f"ERROR {tool}: not running in a hook context", file=sys.stderr)
        return 1
    rc = 0
    tools = Tools(model, ctx_path)
    try:
        out = getattr(tools, tool.replace("-", "_"))(args)
        if out is not None:
            print(out)
    except ToolError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        rc = exc.rc
    finally:
        model.audit(tools.unit, tools.ctx.get("hook", ""), tool, args, rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
