"""Rolling changes behind a proxy: whether this unit may recreate its registry now (pure).

A config change or charm upgrade reaches every unit at about the same moment (each unit's own
hook). Behind a proxy the units take turns instead, so that the proxy always has a unit that
answers: a unit recreates its serving registry only once every unit before it in turn order has
applied the same change and answers. One that must wait keeps serving its previous config; the
peer relation's ``changed`` hook wakes it when a unit before it reports.

Each unit reports on the peer relation (its own unit data): ``rolling-token``, the token of the
config it is to run (a keyed digest of the options, the charm build and the registry-image
resource: the same on every unit for the same change, and no value readable from it), and
``rolling-state``: ``applied`` (it runs that config and answers), ``waiting`` (its turn has not
come) or ``failed`` (it tried and does not serve it: rolled back, not answering, stopped).

Turn order: the highest unit number first, the lowest last. With filesystem storage the
lowest-numbered unit is the primary, which takes all the traffic: the backups, which take none,
meet a new config first, and the primary restarts only once a backup answers on it.

A unit before this one in that order
- that reported nothing is not waited for (it does not serve yet, or runs a charm revision from
  before rolling changes);
- that reported this token ``applied`` is done; ``failed``: passed over (it reported, and its
  own health gate keeps it on its last good config);
- otherwise (an older token: its hook has not run yet; or ``waiting`` its own turn) is waited
  for, but only for ``PATIENCE`` seconds with the same token: a unit whose agent is gone (no
  more hooks) then no longer holds the others. A unit that left the relation is not in the list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TOKEN = "rolling-token"  # noqa: S105 - peer relation keys (the unit's own data)
STATE = "rolling-state"
APPLIED, WAITING, FAILED = "applied", "waiting", "failed"
PATIENCE = 300.0  # seconds one unit is waited for with one token (update-status re-checks)


@dataclass(frozen=True)
class Waited:
    """Whom this unit waits for, since when (epoch seconds), for which token (the unit kv)."""

    token: str
    unit: str
    since: float

    @classmethod
    def from_record(cls, record: Any) -> Waited | None:
        if not isinstance(record, dict):
            return None
        try:
            return cls(str(record["token"]), str(record["unit"]), float(record["since"]))
        except (KeyError, TypeError, ValueError):
            return None

    def as_record(self) -> dict:
        return {"token": self.token, "unit": self.unit, "since": self.since}


@dataclass(frozen=True)
class Verdict:
    go: bool
    waiting_for: str = ""  # the unit this one waits for (go is False)
    passed_over: tuple[str, ...] = field(default_factory=tuple)  # waited for too long
    waited: Waited | None = None  # to keep in the unit kv (None: not waiting)

    @property
    def message(self) -> str:
        if self.go:
            return ""
        return (
            f"Waiting for {self.waiting_for} to apply the new config first "
            "(rolling change); serving the previous config."
        )


GO = Verdict(go=True)


def token(options: Mapping[str, Any], charm_build: str, resource: str, key: str) -> str:
    """The same change on every unit -> the same token; keyed (the units' shared http secret),
    so that no option value (some are secrets) can be guessed from the peer data."""
    message = json.dumps([dict(options), charm_build, resource], sort_keys=True, default=str)
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()[:16]


def unit_number(unit: str) -> int:
    _, _, number = unit.rpartition("/")
    return int(number) if number.isdigit() else -1


def turn_order(units: list[str]) -> list[str]:
    """Highest unit number first (see the module docstring)."""
    return sorted(set(units), key=lambda u: (-unit_number(u), u))


def decide(
    me: str,
    wanted: str,
    reports: Mapping[str, Mapping[str, str]],
    waited: Waited | None,
    now: float,
    patience: float = PATIENCE,
) -> Verdict:
    """May ``me`` recreate its registry for the config of token ``wanted``, given what every
    other unit of the relation reported (``reports``: unit -> its peer data, {} if none)?"""
    order = turn_order([*reports, me])
    passed: list[str] = []
    for unit in order[: order.index(me)]:
        said = reports.get(unit) or {}
        token_said, state = said.get(TOKEN, ""), said.get(STATE, "")
        if not token_said:
            continue  # not serving yet, or an earlier charm revision: nothing to wait for
        if token_said == wanted and state in (APPLIED, FAILED):
            continue
        since = waited.since if waited and (waited.token, waited.unit) == (wanted, unit) else now
        if now - since >= patience:
            passed.append(unit)  # no word from it for too long: its agent may be gone
            continue
        return Verdict(False, unit, tuple(passed), Waited(wanted, unit, since))
    return Verdict(True, passed_over=tuple(passed))


def state(held: bool, answering: bool, problem: str) -> str:
    """What this unit reports after its apply."""
    if held:
        return WAITING
    return APPLIED if answering and not problem else FAILED
