"""Hook tools for config and relations: config-get, relation-get/-set/-ids/-list.

relation-set only buffers into the hook's context; the controller commits it when the hook
succeeds (scheduler.commit), as Juju does.
"""

from __future__ import annotations

from .hooktools_base import (
    Args,
    ToolContext,
    ToolError,
    _apply,
    _is_peer,
    _out,
    effective_config,
    read_settings,
)


class RelationTools(ToolContext):
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
        settings = read_settings(a)
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
