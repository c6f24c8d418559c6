"""Resolving a verb's arguments: a deploy's CHARM, the endpoints of integrate/remove-relation."""

from __future__ import annotations

from pathlib import Path

from . import machine as unit_machine
from .meta import load_charm_meta
from .model import Model, ModelError
from .state import CharmMeta, ModelState, Relation


def resolve_charm(model: Model, charm: str) -> tuple[Path | None, str | None, CharmMeta]:
    """(charm directory, fake name, metadata) of a deploy's CHARM argument."""
    from .fakes import FAKES

    if charm.startswith("fake:"):
        fake = charm[5:]
        if fake not in FAKES:
            raise ModelError(f"unknown fake {fake!r}; known: {sorted(FAKES)}")
        meta = FAKES[fake].meta()
        charm_dir = None
        test_charm_name = FAKES[fake].CHARM
        if test_charm_name:  # its units run a test charm's real hooks first
            from .testcharms import test_charm

            charm_dir = test_charm(test_charm_name)
            # its endpoints and config are the fake's: the charm may have more
            meta = {**load_charm_meta(charm_dir).to_json(), **meta}
        return charm_dir, fake, CharmMeta.from_json(meta)
    charm_dir = Path(charm).resolve()
    if not (charm_dir / "metadata.yaml").exists():
        raise ModelError(f"{charm_dir} is not a charm directory (no metadata.yaml)")
    try:
        unit_machine.check_host(model.root)
    except unit_machine.MachineError as exc:
        raise ModelError(str(exc)) from None
    return charm_dir, None, load_charm_meta(charm_dir)


def split_endpoint(st: ModelState, spec: str) -> tuple[str, str | None]:
    app, _, ep = spec.partition(":")
    st.app(app)
    return app, ep or None


def match_endpoints(st: ModelState, a: str, b: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The one provides/requires pair of the same interface that `a` and `b` name."""
    (app_a, ep_a), (app_b, ep_b) = split_endpoint(st, a), split_endpoint(st, b)
    pairs = []
    for na, sa in st.applications[app_a].meta.endpoints.items():
        for nb, sb in st.applications[app_b].meta.endpoints.items():
            if (ep_a and na != ep_a) or (ep_b and nb != ep_b):
                continue
            if sa.interface == sb.interface and {sa.role, sb.role} == {"provides", "requires"}:
                pairs.append(((app_a, na), (app_b, nb)))
    if len(pairs) != 1:
        what = "no matching endpoints" if not pairs else f"ambiguous: {pairs}"
        raise ModelError(f"cannot relate {a} and {b}: {what}")
    return pairs[0]


def find_relation(st: ModelState, a: str, b: str | None) -> Relation:
    """A relation by id (`a` alone) or by the two applications[:endpoints] it joins."""
    if b is None:
        rel = st.relations.get(int(a)) if a.isdigit() else None
        if rel is None:
            raise ModelError(f"relation {a} not found")
        return rel
    (app_a, ep_a), (app_b, ep_b) = [
        (s.partition(":")[0], s.partition(":")[2] or None) for s in (a, b)
    ]
    found = []
    for rel in st.relations.values():
        eps = rel.endpoints
        if len(eps) != 2:
            continue
        for (x, ex), (y, ey) in (eps, eps[::-1]):
            if x == app_a and y == app_b and (not ep_a or ex == ep_a) and (not ep_b or ey == ep_b):
                found.append(rel)
    if len(found) != 1:
        raise ModelError(
            f"relation between {a} and {b} not found" if not found else "ambiguous relation"
        )
    return found[0]
