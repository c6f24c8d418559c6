"""Typed view of state.json: dataclasses with explicit (de)serialisation, plus load/edit.

The JSON document stays the one the hook tools (hooktools.py, run as a bare script with -S,
so it cannot import this package) and the fakes read and write as plain dicts: every
`to_json` here writes the keys and shapes they expect, and every `from_json` accepts what
they write (e.g. a queued leader-settings-changed is just {unit, hook, seq}).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .model import Model, ModelError, now

JSON = dict[str, Any]


def _unit_key(unit: str) -> tuple[str, int]:
    app, _, num = unit.partition("/")
    return (app, int(num) if num.isdigit() else 0)


@dataclass
class Status:
    """A workload (unit or application) status as status-set writes it."""

    status: str
    message: str = ""
    since: float | None = None

    @classmethod
    def from_json(cls, d: JSON) -> Status:
        return cls(d["status"], d.get("message", ""), d.get("since"))

    def to_json(self) -> JSON:
        return {"status": self.status, "message": self.message, "since": self.since}


@dataclass
class Endpoint:
    role: str  # provides | requires | peers
    interface: str | None
    scope: str = "global"

    @classmethod
    def from_json(cls, d: JSON) -> Endpoint:
        return cls(d["role"], d.get("interface"), d.get("scope", "global"))

    def to_json(self) -> JSON:
        return {"role": self.role, "interface": self.interface, "scope": self.scope}


@dataclass
class CharmMeta:
    """What the model keeps of a charm's metadata.yaml, config.yaml and actions.yaml."""

    charm_name: str | None = None
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    extra_bindings: list[str] = field(default_factory=list)
    config_options: dict[str, JSON] = field(default_factory=dict)
    resource_names: list[str] = field(default_factory=list)
    actions: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, JSON] = field(default_factory=dict)  # metadata.yaml's stores

    @classmethod
    def from_json(cls, d: JSON) -> CharmMeta:
        return cls(
            charm_name=d.get("charm_name"),
            endpoints={k: Endpoint.from_json(v) for k, v in (d.get("endpoints") or {}).items()},
            extra_bindings=list(d.get("extra_bindings") or []),
            config_options=dict(d.get("config_options") or {}),
            resource_names=list(d.get("resource_names") or []),
            actions=dict(d.get("actions") or {}),
            storage=dict(d.get("storage_meta") or {}),
        )

    def to_json(self) -> JSON:
        return {
            "charm_name": self.charm_name,
            "endpoints": {k: v.to_json() for k, v in self.endpoints.items()},
            "extra_bindings": list(self.extra_bindings),
            "config_options": dict(self.config_options),
            "resource_names": list(self.resource_names),
            "actions": dict(self.actions),
            "storage_meta": dict(self.storage),
        }


@dataclass
class Application:
    charm: str | None  # the charm directory; None for a fake without a test charm
    fake: str | None  # the fake's name (tools/localjuju/fakes) for a remote-application fake
    meta: CharmMeta
    config: dict[str, Any] = field(default_factory=dict)  # only what `config` set
    resources: dict[str, str] = field(default_factory=dict)  # name -> stored file
    leader: str | None = None
    next_unit: int = 0
    version: str = ""
    status: Status | None = None  # status-set --application
    trust: bool = False  # deploy --trust (the charm may use the cloud's credentials)
    storage: dict[str, str] = field(default_factory=dict)  # deploy --storage: each new unit's

    def effective_config(self) -> JSON:
        """Defaults from config.yaml overlaid with what `config` set (as hooktools computes)."""
        cfg = {k: v.get("default") for k, v in self.meta.config_options.items()}
        cfg.update(self.config)
        return cfg

    @classmethod
    def from_json(cls, d: JSON) -> Application:
        return cls(
            charm=d.get("charm"),
            fake=d.get("fake"),
            meta=CharmMeta.from_json(d),
            config=dict(d.get("config") or {}),
            resources=dict(d.get("resources") or {}),
            leader=d.get("leader"),
            next_unit=d.get("next_unit", 0),
            version=d.get("version") or "",
            status=Status.from_json(d["status"]) if d.get("status") else None,
            trust=bool(d.get("trust")),
            storage=dict(d.get("storage") or {}),
        )

    def to_json(self) -> JSON:
        # the metadata is flattened into the application (the layout hooktools reads)
        return {
            "charm": self.charm,
            "fake": self.fake,
            "config": dict(self.config),
            "resources": dict(self.resources),
            "leader": self.leader,
            "next_unit": self.next_unit,
            "version": self.version,
            "status": self.status.to_json() if self.status else None,
            "trust": self.trust,
            "storage": dict(self.storage),
            **self.meta.to_json(),
        }


@dataclass
class Event:
    """One queued event: a hook or action for a unit, or an internal step of the controller.

    Internal steps (drop-unit, drop-relation, elect) wait in the queue like hooks so that
    they happen only after the hooks before them ran; `after` names the units whose error
    state holds them back.
    """

    seq: int
    unit: str | None = None
    hook: str | None = None
    relation: str | None = None  # endpoint name of a relation hook
    relation_id: int | None = None
    remote_unit: str | None = None
    remote_app: str | None = None
    departing: str | None = None
    action: str | None = None
    action_id: str | None = None
    internal: str | None = None  # drop-unit | drop-relation | elect
    app: str | None = None  # elect: the application
    after: list[str] = field(default_factory=list)
    secret_id: str | None = None  # secret-changed: the secret's URI (JUJU_SECRET_ID)
    storage_id: str | None = None  # a storage hook's instance (JUJU_STORAGE_ID), detach-storage

    @property
    def name(self) -> str:
        return self.hook or self.action or "?"

    @property
    def kind(self) -> str:
        """created/joined/changed/departed/broken for a relation hook, else the hook's name."""
        return self.name.rsplit("-", 1)[-1] if self.relation_id is not None else self.name

    @classmethod
    def from_json(cls, d: JSON) -> Event:
        rid = d.get("relation_id")
        relation = d.get("relation")
        if d.get("internal") == "drop-relation" and rid is None:
            rid, relation = relation, None  # the older layout kept the id in "relation"
        return cls(
            seq=d.get("seq", 0),
            unit=d.get("unit"),
            hook=d.get("hook"),
            relation=relation,
            relation_id=None if rid is None else int(rid),
            remote_unit=d.get("remote_unit"),
            remote_app=d.get("remote_app"),
            departing=d.get("departing"),
            action=d.get("action"),
            action_id=d.get("action_id"),
            internal=d.get("internal"),
            app=d.get("app"),
            after=list(d.get("after") or []),
            secret_id=d.get("secret_id"),
            storage_id=d.get("storage_id"),
        )

    def to_json(self) -> JSON:
        # only the keys that are set: the queue stays readable and matches what hooktools adds
        out: JSON = {"seq": self.seq}
        for key in (
            "unit",
            "hook",
            "relation",
            "relation_id",
            "remote_unit",
            "remote_app",
            "departing",
            "action",
            "action_id",
            "internal",
            "app",
            "secret_id",
            "storage_id",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.after:
            out["after"] = list(self.after)
        return out


@dataclass
class Unit:
    app: str
    address: str
    machine: str
    workload: Status
    agent: str = "allocating"  # allocating | executing | idle | error
    error: Event | None = None  # the failed event, kept until `resolved`
    ports: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: JSON) -> Unit:
        return cls(
            app=d["app"],
            address=d["address"],
            machine=str(d["machine"]),
            workload=Status.from_json(d["workload"]),
            agent=d.get("agent", "idle"),
            error=Event.from_json(d["error"]) if d.get("error") else None,
            ports=list(d.get("ports") or []),
        )

    def to_json(self) -> JSON:
        return {
            "app": self.app,
            "address": self.address,
            "machine": self.machine,
            "workload": self.workload.to_json(),
            "agent": self.agent,
            "error": self.error.to_json() if self.error else None,
            "ports": list(self.ports),
        }


@dataclass
class Relation:
    id: int
    endpoints: list[tuple[str, str]]  # (app, endpoint); one for a peer relation
    interface: str | None
    unit_data: dict[str, dict[str, str]] = field(default_factory=dict)
    app_data: dict[str, dict[str, str]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # unit -> remote units joined

    @property
    def apps(self) -> list[str]:
        return [a for a, _ in self.endpoints]

    def endpoint_of(self, app: str) -> str:
        return next(e for a, e in self.endpoints if a == app)

    @classmethod
    def from_json(cls, d: JSON) -> Relation:
        return cls(
            id=int(d["id"]),
            endpoints=[(a, e) for a, e in d["endpoints"]],
            interface=d.get("interface"),
            unit_data={k: dict(v) for k, v in (d.get("unit_data") or {}).items()},
            app_data={k: dict(v) for k, v in (d.get("app_data") or {}).items()},
            members={k: list(v) for k, v in (d.get("members") or {}).items()},
        )

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            # lists, not tuples: the fakes test `[app, endpoint] in rel["endpoints"]`
            "endpoints": [[a, e] for a, e in self.endpoints],
            "interface": self.interface,
            "unit_data": {k: dict(v) for k, v in self.unit_data.items()},
            "app_data": {k: dict(v) for k, v in self.app_data.items()},
            "members": {k: list(v) for k, v in self.members.items()},
        }


@dataclass
class ModelState:
    name: str
    uuid: str
    next_address: int = 2  # 127.0.0.<n>: each unit gets its own loopback address
    next_machine: int = 0
    next_relation_id: int = 0
    next_action_id: int = 1
    applications: dict[str, Application] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    relations: dict[int, Relation] = field(default_factory=dict)
    leader_data: dict[str, dict[str, str]] = field(default_factory=dict)
    queue: list[Event] = field(default_factory=list)
    dying: list[str] = field(default_factory=list)  # units whose removal is queued
    secrets: dict[str, JSON] = field(default_factory=dict)  # user secrets (secrets.py)
    storage: dict[str, JSON] = field(default_factory=dict)  # storage instances (storage.py)
    next_storage: int = 0

    @classmethod
    def from_json(cls, d: JSON) -> ModelState:
        return cls(
            name=d["name"],
            uuid=d["uuid"],
            next_address=d.get("next_address", 2),
            next_machine=d.get("next_machine", 0),
            next_relation_id=d.get("next_relation_id", 0),
            next_action_id=d.get("next_action_id", 1),
            applications={
                k: Application.from_json(v) for k, v in (d.get("applications") or {}).items()
            },
            units={k: Unit.from_json(v) for k, v in (d.get("units") or {}).items()},
            relations={
                int(k): Relation.from_json(v) for k, v in (d.get("relations") or {}).items()
            },
            leader_data={k: dict(v) for k, v in (d.get("leader_data") or {}).items()},
            queue=[Event.from_json(e) for e in d.get("queue") or []],
            dying=list(d.get("dying") or []),
            secrets=dict(d.get("secrets") or {}),
            storage={k: dict(v) for k, v in (d.get("storage") or {}).items()},
            next_storage=d.get("next_storage", 0),
        )

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "next_address": self.next_address,
            "next_machine": self.next_machine,
            "next_relation_id": self.next_relation_id,
            "next_action_id": self.next_action_id,
            "applications": {k: v.to_json() for k, v in self.applications.items()},
            "units": {k: v.to_json() for k, v in self.units.items()},
            # JSON object keys are strings; hooktools and the fakes look relations up by str(id)
            "relations": {str(k): v.to_json() for k, v in self.relations.items()},
            "leader_data": {k: dict(v) for k, v in self.leader_data.items()},
            "queue": [e.to_json() for e in self.queue],
            "dying": list(self.dying),
            "secrets": dict(self.secrets),
            "storage": {k: dict(v) for k, v in self.storage.items()},
            "next_storage": self.next_storage,
        }

    # --- look-ups that raise the CLI's errors -------------------------------------------
    def app(self, name: str) -> Application:
        if name not in self.applications:
            raise ModelError(f'application "{name}" not found')
        return self.applications[name]

    def unit(self, name: str) -> Unit:
        if name not in self.units:
            raise ModelError(f'unit "{name}" not found')
        return self.units[name]

    def units_of(self, app: str) -> list[str]:
        return sorted((u for u, i in self.units.items() if i.app == app), key=_unit_key)

    def units_of_rel(self, rel: Relation) -> list[str]:
        return [u for a in rel.apps for u in self.units_of(a)]

    def app_relations(self, app: str) -> list[Relation]:
        return [r for _, r in sorted(self.relations.items()) if app in r.apps]

    def app_of(self, unit: str) -> str:
        """A unit's application, also for a unit already dropped from the model."""
        return self.units[unit].app if unit in self.units else unit.split("/")[0]

    def set_workload(self, unit: str, status: str, message: str) -> None:
        self.units[unit].workload = Status(status, message, now())

    def drop_event(self, seq: int) -> None:
        self.queue = [e for e in self.queue if e.seq != seq]


def load(model: Model) -> ModelState:
    """A snapshot of the model's state (read under the lock)."""
    return ModelState.from_json(model.read())


@contextlib.contextmanager
def edit(model: Model) -> Iterator[ModelState]:
    """Locked read-modify-write through the typed state; nothing is written if the body raises."""
    with model.transaction() as raw:
        st = ModelState.from_json(raw)
        yield st
        raw.clear()
        raw.update(st.to_json())
