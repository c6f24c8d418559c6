"""Remote applications as wire-level fakes: units with addresses and databags, no charm hooks.

A fake is a `Fake` subclass (see base.py) registered in FAKES; deploy one with
`deploy fake:<name> [app]`. Its methods react to the same events a charm unit gets.
Adding one (e.g. an haproxy-like proxy for the `http` interface): subclass Fake, declare
ENDPOINTS = {"reverseproxy": ("requires", "http")}, implement on_relation(ctx) reading
ctx.received(unit)["services"] and writing ctx.set("public-address", ...), register it below.
"""

from __future__ import annotations

from .base import Fake
from .containerd import ContainerdClientFake
from .cos_collector import CosCollectorFake
from .faulty_easyrsa import FaultyEasyRSAFake
from .haproxy import HaproxyFake
from .nrpe import NrpeFake

FAKES: dict[str, type[Fake]] = {
    "faulty-easyrsa": FaultyEasyRSAFake,  # fault injection only; the CA is the real easyrsa
    "containerd": ContainerdClientFake,
    "nrpe": NrpeFake,
    "haproxy": HaproxyFake,
    "cos-collector": CosCollectorFake,
}


def get_fake(model, app: str, kind: str) -> Fake:
    return FAKES[kind](model, app)
