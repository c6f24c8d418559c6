"""COS collector stand-in (grafana-agent / opentelemetry-collector, requires `cos-agent`).

It reads each principal unit's `config` with the pydantic model of the grafana-agent charm
library that interface:cos_agent vendors (loaded from the layer cache, never copied), and does
what the collector does with it: each scrape job gets the principal's Juju topology labels (as
the library's COSAgentRequirer.metrics_jobs adds them) and, since this collector does not share
the principal's machine, its `localhost` targets become the principal's address. What it would
hand Prometheus (scrape configs, alert rules, dashboard count) is saved as collector.json.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path
from typing import Any

from ..model import REPO_ROOT
from .base import Fake, FakeContext


def layer_cache() -> Path:
    return Path(os.environ.get("LAYER_CACHE") or REPO_ROOT.parent / "shared" / "layers")


@cache
def provider_model() -> Any:
    """CosAgentProviderUnitData of the vendored library in interface:cos_agent."""
    path = layer_cache() / "interfaces" / "cos_agent" / "lib" / "cos_agent.py"
    spec = importlib.util.spec_from_file_location("localjuju_cos_agent_lib", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no cos_agent library at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CosAgentProviderUnitData


class CosCollectorFake(Fake):
    ENDPOINTS = {"cos-agent": ("requires", "cos_agent")}

    def on_install(self, ctx: FakeContext) -> None:
        ctx.set_status("active", "Waiting for a principal.")

    def on_relation(self, ctx: FakeContext) -> None:
        rid = ctx.relation_id
        if rid is None:
            return
        collected: dict[str, dict] = {}
        for unit in ctx.related_units(rid) if ctx.kind != "broken" else []:
            raw = ctx.received(rid, unit)
            if not raw.get("config"):
                continue
            try:
                data = provider_model().model_validate_json(raw["config"])
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                ctx.set_status("blocked", f"invalid cos-agent data from {unit}: {exc}")
                return
            collected[unit] = self._collect(ctx, unit, raw.get("private-address", ""), data)
        self.save("collector.json", collected)
        jobs = sum(len(c["scrape_configs"]) for c in collected.values())
        ctx.set_status("active", f"{jobs} scrape job(s) from {len(collected)} unit(s).")

    @staticmethod
    def _collect(ctx: FakeContext, unit: str, address: str, data: Any) -> dict:
        model = ctx.model.read()
        topology = {
            "juju_model": model["name"],
            "juju_model_uuid": model["uuid"],
            "juju_application": unit.split("/")[0],
            "juju_unit": unit,
        }
        jobs = []
        for job in data.metrics_scrape_jobs:
            job = dict(job)
            job["static_configs"] = [
                {
                    "targets": [t.replace("localhost:", f"{address}:") for t in sc["targets"]],
                    "labels": {**sc.get("labels", {}), **topology},
                }
                for sc in job.get("static_configs", [])
            ]
            jobs.append(job)
        return {
            "scrape_configs": jobs,
            "alert_rules": data.metrics_alert_rules,
            "dashboards": len(data.dashboards),
        }
