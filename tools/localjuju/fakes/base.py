"""Base class and per-event context for remote-application fakes."""

from __future__ import annotations

import json
from pathlib import Path

from ..hooktools_base import _apply, effective_config
from ..model import write_private


class FakeContext:
    """What a fake sees during one event: like a hook environment, in Python.

    Relation writes are buffered in `pending` and committed by the controller (which then queues
    relation-changed on the other side), exactly like a charm unit's relation-set.
    """

    def __init__(self, model, event: dict):
        self.model = model
        self.event = event
        self.unit: str = event["unit"]
        self.app: str = self.unit.split("/")[0]
        self.hook: str = event["hook"]
        self.relation_name: str | None = event.get("relation")
        self.relation_id: int | None = event.get("relation_id")
        self.remote_unit: str | None = event.get("remote_unit")
        self.pending: dict = {"relations": {}}
        self.status: tuple[str, str] | None = None
        self._state = model.read()

    # event ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """install, start, ..., or for relation hooks created/joined/changed/departed/broken."""
        if self.relation_id is not None:
            return self.hook.rsplit("-", 1)[-1]
        return self.hook

    @property
    def is_leader(self) -> bool:
        return self._state["applications"][self.app]["leader"] == self.unit

    @property
    def address(self) -> str:
        return self._state["units"][self.unit]["address"]

    @property
    def config(self) -> dict:
        return effective_config(self.model, self._state, self.app)

    @property
    def data_dir(self) -> Path:
        d = self.model.fake_dir(self.app)
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def reading(self) -> dict:
        """What the fake's test charm read in this hook (its reading.json), {} without one."""
        path = self.model.unit_dir(self.unit) / "reading.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # relations --------------------------------------------------------------------
    def relation_ids(self, endpoint: str) -> list[int]:
        return [
            rel["id"]
            for rel in sorted(self._state["relations"].values(), key=lambda r: r["id"])
            if [self.app, endpoint] in rel["endpoints"] and self.unit in rel["members"]
        ]

    def related_units(self, rid: int) -> list[str]:
        return list(self._state["relations"][str(rid)]["members"].get(self.unit, []))

    def received(self, rid: int, unit: str) -> dict:
        """Raw (string) databag of a remote unit."""
        return dict(self._state["relations"][str(rid)]["unit_data"].get(unit, {}))

    def received_json(self, rid: int, unit: str) -> dict:
        out = {}
        for k, v in self.received(rid, unit).items():
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        return out

    def published(self, rid: int) -> dict:
        data = dict(self._state["relations"][str(rid)]["unit_data"].get(self.unit, {}))
        _apply(data, self._pending(rid)["unit"])
        return data

    def set(self, rid: int, **values) -> None:
        """Publish raw string values on this unit's databag (None deletes)."""
        self._pending(rid)["unit"].update(
            {k: None if v is None else str(v) for k, v in values.items()}
        )

    def set_many(self, rid: int, values: dict) -> None:
        self._pending(rid)["unit"].update(
            {k: None if v is None else str(v) for k, v in values.items()}
        )

    def set_app(self, rid: int, values: dict) -> None:
        if not self.is_leader:
            raise PermissionError("only the leader writes application data")
        self._pending(rid)["app"].update(
            {k: None if v is None else str(v) for k, v in values.items()}
        )

    def _pending(self, rid: int) -> dict:
        return self.pending["relations"].setdefault(str(rid), {"unit": {}, "app": {}})

    # status / log -----------------------------------------------------------------
    def set_status(self, status: str, message: str = "") -> None:
        self.status = (status, message)

    def log(self, message: str, level: str = "INFO") -> None:
        self.model.log(self.unit, level, message)


class Fake:
    """A remote application. Subclasses declare ENDPOINTS and CONFIG and implement on_* methods."""

    ENDPOINTS: dict[str, tuple[str, str]] = {}
    CONFIG: dict[str, dict] = {}
    CHARM: str | None = None  # a test charm (tests/charms/<name>) whose hooks run first

    def __init__(self, model, app: str):
        self.model = model
        self.app = app

    @classmethod
    def meta(cls) -> dict:
        return {
            "charm_name": cls.__name__,
            "endpoints": {
                name: {"role": role, "interface": iface, "scope": "global"}
                for name, (role, iface) in cls.ENDPOINTS.items()
            },
            "extra_bindings": [],
            "config_options": dict(cls.CONFIG),
            "resource_names": [],
            "actions": {},
        }

    def handle(self, ctx: FakeContext) -> None:
        if ctx.relation_id is not None:
            self.on_relation(ctx)
        else:
            method = getattr(self, "on_" + ctx.hook.replace("-", "_"), None)
            if method:
                method(ctx)

    def on_relation(self, ctx: FakeContext) -> None:  # pragma: no cover - default: ignore
        pass

    # small persistent store per fake application
    def load(self, name: str, default=None):
        path = self.model.fake_dir(self.app) / name
        return json.loads(path.read_text()) if path.exists() else default

    def save(self, name: str, value) -> None:
        d = self.model.fake_dir(self.app)
        d.mkdir(parents=True, exist_ok=True)
        write_private(d / name, json.dumps(value, indent=1, sort_keys=True))
