"""What every hook tool shares: argv parsing, Juju's output formats, the hook's context."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .model import Model, write_private

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


def read_settings(args: Args) -> dict[str, str | None]:
    """relation-set/leader-set's settings: a YAML map from --file (- is stdin), then key=value."""
    settings: dict[str, str | None] = {}
    f = args.get("--file")
    if f:
        text = sys.stdin.read() if f == "-" else Path(f).read_text()
        loaded = _yaml().safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ToolError("expected YAML map in --file", 2)
        for k, v in loaded.items():
            settings[str(k)] = None if v is None else str(v)
    for kv in args.pos:
        k, eq, v = kv.partition("=")
        if not eq:
            raise ToolError(f'expected "key=value", got "{kv}"', 2)
        settings[k] = v
    return settings


class ToolContext:
    """The running hook's context file and the model: what the tools read and buffer into."""

    def __init__(self, model: Model, ctx_path: Path):
        self.model = model
        self.ctx_path = ctx_path
        self.ctx = json.loads(ctx_path.read_text())
        self.unit = self.ctx["unit"]
        self.app = self.unit.split("/")[0]

    # context (pending changes) -------------------------------------------------------
    def _save_ctx(self):
        tmp = self.ctx_path.with_suffix(".tmp")
        write_private(tmp, json.dumps(self.ctx))
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
