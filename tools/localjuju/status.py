"""What the CLI prints, in the shapes Juju 3's `--format json` has (what jubilant parses).

- `status_report`: `juju status` (model, machines, applications with their units, relations
  per endpoint); two extra keys, `relations` and `pending-events`, feed the tabular view only
  (`juju_status` drops them).
- `config_report`: `juju config APP` (settings: {option: {value, default, source, ...}}).
- `unit_report`: `juju show-unit UNIT` (opened ports, leader, relation-info with databags).
- `task_report`: one task of `juju run` / `juju exec` ({id, unit, status, results with
  return-code/stdout, message, log, timing}).
"""

from __future__ import annotations

import calendar
import time
from pathlib import Path
from typing import Any

from .state import Application, ModelState, Unit

JUJU_VERSION = "3.4.0"
BASE = {"name": "ubuntu", "channel": "22.04"}  # every unit's machine is jammy (machine.py)
LOCAL_ONLY_KEYS = ("relations", "pending-events")
# the order in which Juju picks an application's status from its units' statuses
SEVERITY = ("error", "blocked", "maintenance", "waiting", "active", "unknown")


def juju_time(ts: float | str | None) -> str:
    """A timestamp (epoch seconds or the model's ISO form) as Juju's client prints it
    (Go's time.Time.String(), UTC)."""
    if isinstance(ts, str):
        ts = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%S"))
    ts = time.time() if ts is None else ts
    frac = f"{ts % 1:.9f}"[1:].rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f"{frac} +0000 UTC"


def charm_name(info: Application, app: str) -> str:
    return info.meta.charm_name or info.fake or app


def _unit_status(uinfo: Unit) -> dict[str, Any]:
    current, message = uinfo.workload.status, uinfo.workload.message
    if uinfo.error:  # Juju shows the failed hook in place of the charm's status
        current, message = "error", f"hook failed: {uinfo.error.name}"
    since = juju_time(uinfo.workload.since)
    return {
        "workload-status": {"current": current, "message": message, "since": since},
        "juju-status": {
            "current": "error" if uinfo.error else uinfo.agent,
            "since": since,
            "version": JUJU_VERSION,
        },
        "machine": uinfo.machine,
        "open-ports": list(uinfo.ports),
        "public-address": uinfo.address,
        "address": uinfo.address,
    }


def _severity(status: str) -> int:
    return SEVERITY.index(status) if status in SEVERITY else len(SEVERITY)


def _app_status(info: Application, units: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if info.status is not None:  # status-set --application
        return {"current": info.status.status, "message": info.status.message}
    # otherwise Juju derives it: the most severe of its units' workload statuses
    worst: dict[str, Any] = {"current": "unknown", "message": ""}
    for unit in units.values():
        ws = unit["workload-status"]
        if _severity(ws["current"]) < _severity(worst["current"]):
            worst = {"current": ws["current"], "message": ws["message"]}
    return worst


def status_report(st: ModelState, root: Path) -> dict[str, Any]:
    apps: dict[str, dict[str, Any]] = {}
    machines: dict[str, dict[str, Any]] = {}
    for name, info in sorted(st.applications.items()):
        units = {}
        for u in st.units_of(name):
            uinfo = st.units[u]
            units[u] = {**_unit_status(uinfo), "leader": info.leader == u}
            machines[uinfo.machine] = {
                "juju-status": {"current": "started", "version": JUJU_VERSION},
                "machine-status": {"current": "running", "message": "running"},
                "hostname": f"localjuju-{uinfo.machine}",
                "dns-name": uinfo.address,
                "ip-addresses": [uinfo.address],
                "instance-id": f"localjuju-{uinfo.machine}",
                "base": dict(BASE),
            }
        endpoints = [*info.meta.endpoints, *info.meta.extra_bindings]
        apps[name] = {
            "charm": charm_name(info, name),
            "charm-name": charm_name(info, name),
            "charm-origin": "local",
            "charm-rev": 0,
            "exposed": False,
            "base": dict(BASE),
            "application-status": _app_status(info, units),
            "version": info.version,
            "units": units,
            "relations": {},
            "endpoint-bindings": {"": "alpha", **dict.fromkeys(endpoints, "alpha")},
        }
    relations = []
    for _, rel in sorted(st.relations.items()):
        eps = rel.endpoints
        relations.append(
            {
                "id": rel.id,
                "interface": rel.interface,
                "endpoints": [f"{a}:{e}" for a, e in eps],
                "type": "peer" if len(eps) == 1 else "regular",
            }
        )
        for a, e in eps:
            scope = st.applications[a].meta.endpoints[e].scope
            for other in [x for x, _ in eps if x != a] or [a]:
                apps[a]["relations"].setdefault(e, []).append(
                    {"related-application": other, "interface": rel.interface, "scope": scope}
                )
    return {
        "model": {
            "name": st.name,
            "type": "iaas",
            "controller": "localjuju",
            "cloud": "localhost",
            "region": "localhost",
            "version": JUJU_VERSION,
            "model-status": {"current": "available"},
            "path": str(root),
        },
        "machines": dict(sorted(machines.items(), key=lambda kv: int(kv[0]))),
        "applications": apps,
        "storage": {},
        "controller": {"timestamp": time.strftime("%H:%M:%SZ", time.gmtime())},
        "relations": relations,
        "pending-events": len(st.queue),
    }


def juju_status(report: dict[str, Any]) -> dict[str, Any]:
    """`status_report` without the keys only the tabular view reads."""
    return {k: v for k, v in report.items() if k not in LOCAL_ONLY_KEYS}


def config_report(st: ModelState, app: str) -> dict[str, Any]:
    info = st.app(app)
    settings: dict[str, Any] = {}
    for option, spec in sorted(info.meta.config_options.items()):
        entry: dict[str, Any] = {
            "description": spec.get("description", ""),
            "type": spec.get("type", "string"),
        }
        default = spec.get("default")
        if default is not None:
            entry["default"] = default
        if option in info.config:
            entry["source"], entry["value"] = "user", info.config[option]
        elif default is not None:
            entry["source"], entry["value"] = "default", default
        else:
            entry["source"] = "unset"
        settings[option] = entry
    return {
        "application": app,
        "charm": charm_name(info, app),
        "application-config": {
            "trust": {
                "default": False,
                "description": "Does this application have access to trusted credentials",
                "source": "user" if info.trust else "default",
                "type": "bool",
                "value": info.trust,
            }
        },
        "settings": settings,
    }


def unit_report(st: ModelState, unit: str) -> dict[str, Any]:
    uinfo = st.unit(unit)
    app = uinfo.app
    info = st.applications[app]
    relation_info = []
    for rel in st.app_relations(app):
        endpoint = rel.endpoint_of(app)
        others = [(a, e) for a, e in rel.endpoints if a != app] or list(rel.endpoints)
        other_app, related_endpoint = others[0]
        related = [u for u in rel.members.get(unit, []) if u != unit]
        entry: dict[str, Any] = {
            "relation-id": rel.id,
            "endpoint": endpoint,
            "related-endpoint": related_endpoint,
            "application-data": dict(rel.app_data.get(other_app, {})),
            "local-unit": {"in-scope": True, "data": dict(rel.unit_data.get(unit, {}))},
            "related-units": {
                u: {"in-scope": True, "data": dict(rel.unit_data.get(u, {}))}
                for u in sorted(related)
            },
        }
        relation_info.append(entry)
    return {
        unit: {
            "workload-version": info.version,
            "machine": uinfo.machine,
            "opened-ports": list(uinfo.ports),
            "public-address": uinfo.address,
            "charm": f"local:{charm_name(info, app)}-0",
            "leader": info.leader == unit,
            "life": "alive",
            "relation-info": relation_info,
        }
    }


def task_report(record: dict[str, Any]) -> dict[str, Any]:
    """One action or exec record (actions/<id>.json) as `juju run/exec --format json` shows it.

    Juju adds the hook's return code (and its stdout/stderr, when there is any) to the
    results; a log line is "<time> <message>"."""
    results = dict(record.get("results") or {})
    results["return-code"] = record.get("return-code", 0)
    for stream in ("stdout", "stderr"):
        if record.get(stream):
            results[stream] = record[stream]
    out: dict[str, Any] = {
        "id": str(record["id"]),
        "unit": record["unit"],
        "status": record["status"],
        "results": results,
        "timing": {
            k: juju_time(record[k]) for k in ("enqueued", "started", "completed") if k in record
        },
    }
    if record.get("message"):
        out["message"] = record["message"]
    if record.get("log"):
        out["log"] = [f"{juju_time(e['time'])} {e['message']}" for e in record["log"]]
    return out
