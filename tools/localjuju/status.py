"""`status`: the model as Juju's `status --format json` shows it (the shape cli.py prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .state import ModelState


def status_report(st: ModelState, root: Path) -> dict[str, Any]:
    apps: dict[str, dict[str, Any]] = {}
    for name, info in sorted(st.applications.items()):
        units = {}
        for u in st.units_of(name):
            uinfo = st.units[u]
            current, message = uinfo.workload.status, uinfo.workload.message
            if uinfo.error:  # Juju shows the failed hook in place of the charm's status
                current, message = "error", f"hook failed: {uinfo.error.name}"
            units[u] = {
                "workload-status": {"current": current, "message": message},
                "juju-status": {"current": "error" if uinfo.error else uinfo.agent},
                "leader": info.leader == u,
                "address": uinfo.address,
                "open-ports": list(uinfo.ports),
                "machine": uinfo.machine,
            }
        apps[name] = {
            "charm": info.charm or f"fake:{info.fake}",
            "version": info.version,
            "units": units,
            "relations": {},
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
            others = [x for x, _ in eps if x != a] or [a]
            apps[a]["relations"].setdefault(e, []).extend(others)
    return {
        "model": {"name": st.name, "path": str(root)},
        "applications": apps,
        "relations": relations,
        "pending-events": len(st.queue),
    }
