"""User secrets (Juju 3.3+) in the local model: the verbs' side, over the typed state.

A secret is kept in state.json's ``secrets`` as plain JSON (the hook tools, which cannot
import this package's dataclasses, read it too)::

    {xid: {"name", "description", "revisions": {"1": {key: value}}, "latest": 1,
           "grants": [app...], "tracking": {unit: revision}, "created", "updated"}}

As in Juju: adding or granting fires no hook; a new revision (update-secret) fires
secret-changed on every unit that read the secret and whose application may still read it;
revoking or removing fires nothing, the unit's next secret-get fails.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import yaml

from .model import ModelError, iso, new_xid
from .scheduler import Scheduler
from .state import ModelState

# what Juju accepts as a content key
KEY_RE = re.compile(r"^([a-z](?:-?[a-z0-9]){2,})$")


def xid_of(identifier: str) -> str:
    """``secret:XID``, ``secret://MODEL/XID`` or ``XID`` -> XID."""
    if identifier.startswith("secret:"):
        return identifier.rsplit("/", 1)[-1].removeprefix("secret:")
    return identifier


def parse_content(items: list[str], file: str | None) -> dict[str, str]:
    """``key=value``, ``key#base64=value``, ``key#file=path`` and a YAML --file, as Juju's
    add-secret and update-secret take them."""
    raw: dict[str, str] = {}
    if file:
        data = yaml.safe_load(Path(file).read_text()) or {}
        if not isinstance(data, dict):
            raise ModelError(f"{file}: expected a YAML mapping of secret keys")
        raw.update({str(k): str(v) for k, v in data.items()})
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ModelError(f'expected "key=value", got "{item}"')
        raw[key] = value
    content: dict[str, str] = {}
    for key, value in raw.items():
        name, _, how = key.partition("#")
        if how == "file":
            value = Path(value).read_text()
        elif how == "base64":
            try:
                value = base64.b64decode(value, validate=True).decode()
            except ValueError:
                raise ModelError(f'secret key "{name}": invalid base64 value') from None
        elif how:
            raise ModelError(f'secret key "{key}": unknown suffix #{how}')
        if not KEY_RE.match(name):
            raise ModelError(f'invalid secret key "{name}"')
        content[name] = value
    if not content:
        raise ModelError("missing secret value or filename")
    return content


def find(st: ModelState, identifier: str) -> tuple[str, dict[str, Any]]:
    """A secret by URI, id or name; Juju's error when there is none."""
    xid = xid_of(identifier)
    if xid in st.secrets:
        return xid, st.secrets[xid]
    for key, secret in st.secrets.items():
        if secret.get("name") == identifier:
            return key, secret
    raise ModelError(f'secret "{identifier}" not found')


def add(st: ModelState, name: str, content: dict[str, str], description: str | None) -> str:
    if any(s.get("name") == name for s in st.secrets.values()):
        raise ModelError(f'secret with name "{name}" already exists')
    xid = new_xid()
    st.secrets[xid] = entry(content, name=name, description=description)
    return f"secret:{xid}"


def entry(content: dict[str, str], **about: str | None) -> dict[str, Any]:
    """A new secret as state.json keeps it: its first revision and ``about`` it (a user
    secret's name and description; a charm's secret's owner, label and description)."""
    return {
        **about,
        "revisions": {"1": content},
        "latest": 1,
        "grants": [],
        "tracking": {},
        "created": iso(),
        "updated": iso(),
    }


def grant(st: ModelState, identifier: str, apps: str) -> None:
    _, secret = find(st, identifier)
    for app in apps.split(","):
        st.app(app)
        if app not in secret["grants"]:
            secret["grants"].append(app)


def revoke(st: ModelState, identifier: str, apps: str) -> None:
    _, secret = find(st, identifier)
    for app in apps.split(","):
        st.app(app)
        if app in secret["grants"]:
            secret["grants"].remove(app)


def update(
    st: ModelState,
    scheduler: Scheduler,
    identifier: str,
    content: dict[str, str] | None,
    description: str | None = None,
    name: str | None = None,
) -> None:
    """A new revision (when the content changes); secret-changed for the units that track
    an older one and may still read it."""
    xid, secret = find(st, identifier)
    if name is not None:
        secret["name"] = name
    if description is not None:
        secret["description"] = description
    secret["updated"] = iso()
    latest = secret["latest"]
    if content is None or content == secret["revisions"][str(latest)]:
        return
    secret["latest"] = latest + 1
    secret["revisions"][str(latest + 1)] = content
    queued = {(e.unit, e.secret_id) for e in st.queue if e.hook == "secret-changed"}
    for unit, revision in sorted(secret["tracking"].items()):
        allowed = unit in st.units and st.units[unit].app in secret["grants"]
        if allowed and revision < latest + 1 and (unit, f"secret:{xid}") not in queued:
            event = scheduler.hook(unit, "secret-changed")
            event.secret_id = f"secret:{xid}"
            st.queue.append(event)


def remove(st: ModelState, identifier: str, revision: int | None = None) -> None:
    xid, secret = find(st, identifier)
    if revision is None:
        del st.secrets[xid]
        return
    if str(revision) not in secret["revisions"]:
        raise ModelError(f'secret revision {revision} for "{identifier}" not found')
    del secret["revisions"][str(revision)]
    if not secret["revisions"]:
        del st.secrets[xid]


def listing(st: ModelState, reveal_id: str | None = None) -> dict[str, Any]:
    """`juju secrets --format json` (every secret) or `show-secret` (one, ``--reveal``ed
    when asked): the shape jubilant parses."""
    out: dict[str, Any] = {}
    for xid, secret in st.secrets.items():
        out[xid] = {
            "revision": secret["latest"],
            "owner": secret.get("owner") or "<model>",
            "name": secret.get("name"),
            "description": secret.get("description"),
            "created": secret["created"],
            "updated": secret["updated"],
            "access": [
                {"target": f"application-{app}", "scope": f"model-{st.uuid}", "role": "view"}
                for app in secret["grants"]
            ],
        }
        if reveal_id == xid:
            out[xid]["content"] = {"Data": dict(secret["revisions"][str(secret["latest"])])}
    return out
