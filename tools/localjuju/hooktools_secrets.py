"""Hook tools for secrets: secret-get, secret-info-get, secret-ids, and secret-add for the
secrets a charm owns (its application's, made by the leader, or its unit's).

A unit reads a secret its application was granted. Without a flag it gets the revision it
tracks (the latest, the first time); --refresh moves it to the latest, --peek shows the latest
without tracking it. Which revision it tracks is committed with the hook, as in Juju. User
secrets are owned by the model: secret-info-get and secret-ids see only the application's
own secrets, so none here.
"""

from __future__ import annotations

from .hooktools_base import Args, ToolContext, ToolError, _out
from .model import ModelError, new_xid


def _xid(identifier: str) -> str:
    if identifier.startswith("secret:"):
        return identifier.rsplit("/", 1)[-1].removeprefix("secret:")
    return identifier


class SecretTools(ToolContext):
    def secret_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True, "--label": True, "--peek": False,
                        "--refresh": False})  # fmt: skip
        if not a.pos:
            raise ToolError("secret URI or label must be specified", 2)
        if a.get("--peek") and a.get("--refresh"):
            raise ToolError("specify one of --peek or --refresh but not both", 2)
        xid = _xid(a.pos[0])
        secret = self._state().get("secrets", {}).get(xid)
        if secret is None:
            raise ToolError(f'secret "{xid}" not found', 1)
        if self.app not in secret["grants"] and secret.get("owner") not in (self.app, self.unit):
            raise ToolError("permission denied", 1)
        pending = self.ctx.setdefault("pending", {}).setdefault("secrets", {})
        tracked = pending.get(xid, secret["tracking"].get(self.unit))
        revision = tracked if tracked is not None else secret["latest"]
        if a.get("--refresh") or a.get("--peek"):
            revision = secret["latest"]
        if not a.get("--peek") and tracked != revision:
            pending[xid] = revision
            with self.model.lock():
                self._save_ctx()
        content = secret["revisions"].get(str(revision))
        if content is None:  # the tracked revision was removed
            raise ToolError(f'secret "{xid}" revision {revision} not found', 1)
        if len(a.pos) > 1:
            if a.pos[1] not in content:
                raise ToolError(f'secret key "{a.pos[1]}" not found', 1)
            return _out(content[a.pos[1]], a.get("--format"))
        return _out(dict(content), a.get("--format") or "yaml")

    def secret_info_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True, "--label": True})
        wanted = a.pos[0] if a.pos else a.get("--label")
        if not wanted:
            raise ToolError("require either a secret URI or label", 2)
        raise ToolError(f'secret "{_xid(str(wanted))}" not found', 1)

    def secret_ids(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        return _out([], a.get("--format"))

    def secret_add(self, argv):
        a = Args(argv, {"--file": True, "--label": True, "--description": True, "--owner": True,
                        "--expire": True, "--rotate": True})  # fmt: skip
        owner = a.get("--owner") or "application"
        if owner not in ("application", "unit"):
            raise ToolError(f'secret owner "{owner}" not valid', 2)
        from .secrets import entry, parse_content  # here: the other tools start without it

        try:
            content = parse_content(a.pos, a.get("--file"))
        except ModelError as exc:
            raise ToolError(str(exc), 1) from None
        xid = new_xid()
        with self.model.transaction() as state:
            if owner == "application" and not self._is_leader(state):
                raise ToolError("this unit is not the leader", 1)
            state.setdefault("secrets", {})[xid] = entry(
                content,
                owner=self.app if owner == "application" else self.unit,
                label=a.get("--label"),
                description=a.get("--description"),
            )
        return f"secret:{xid}"
