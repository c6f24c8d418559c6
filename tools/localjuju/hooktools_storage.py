"""Hook tools for storage: storage-list and storage-get, over the instances attached to the
unit (storage.py). A storage hook's instance (JUJU_STORAGE_ID) is the default of -s."""

from __future__ import annotations

from .hooktools_base import Args, ToolContext, ToolError, _out


class StorageTools(ToolContext):
    def _attached(self, name: str | None = None) -> dict[str, dict]:
        return {
            sid: s
            for sid, s in (self._state().get("storage") or {}).items()
            if s.get("unit") == self.unit and name in (None, s.get("name"))
        }

    def storage_list(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        name = a.pos[0] if a.pos else None
        ids = sorted(self._attached(name), key=lambda sid: int(sid.split("/")[1]))
        return _out(ids, a.get("--format"))

    def storage_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True, "-s": True})
        sid = a.get("-s") or self.ctx.get("storage_id")
        if not sid:
            raise ToolError("no storage instance specified", 2)
        record = self._attached().get(sid)
        if record is None:
            raise ToolError(f'invalid value "{sid}" for option -s: storage not found', 2)
        values = {"kind": record["kind"], "location": record["location"]}
        if a.pos:
            if a.pos[0] not in values:
                raise ToolError(f'invalid storage attribute "{a.pos[0]}"', 1)
            return _out(values[a.pos[0]], a.get("--format"))
        return _out(values, a.get("--format"))
