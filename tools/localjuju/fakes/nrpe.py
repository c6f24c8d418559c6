"""nrpe-like subordinate (requires `nrpe-external-master`): records the `monitors` it is given."""

from __future__ import annotations

import yaml

from .base import Fake, FakeContext


class NrpeFake(Fake):
    ENDPOINTS = {"nrpe-external-master": ("requires", "nrpe-external-master")}

    def on_install(self, ctx: FakeContext) -> None:
        ctx.set_status("active", "Waiting for checks.")

    def on_relation(self, ctx: FakeContext) -> None:
        rid = ctx.relation_id
        if rid is None or ctx.kind not in ("joined", "changed"):
            return
        checks = {}
        for unit in ctx.related_units(rid):
            monitors = yaml.safe_load(ctx.received(rid, unit).get("monitors") or "")
            nrpe = ((monitors or {}).get("monitors") or {}).get("remote", {}).get("nrpe", {})
            checks.update({f"{unit}:{name}": spec for name, spec in nrpe.items()})
        self.save("checks.json", checks)
        ctx.set_status("active", f"{len(checks)} check(s).")
