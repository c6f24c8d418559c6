"""Charm metadata and the type rules Juju applies to config values and action parameters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .model import ModelError
from .state import CharmMeta, Endpoint

# JSON-schema types of action parameters (actions.yaml) and the Python types they accept
ACTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "array": list,
    "object": dict,
}
CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int,
    "float": (int, float),
    "boolean": bool,
    "string": str,
}


def _yaml_file(path: Path) -> dict[str, Any]:
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


JUJU_VERSION = (3, 4, 0)  # what the local model's agents report (JUJU_VERSION, status)
_JUJU_ASSUMES = re.compile(r"^juju\s*(>=|<)\s*([0-9]+(?:\.[0-9]+){0,2})$")


def unmet_assumes(assumes: list[Any]) -> list[str]:
    """The metadata's ``assumes`` entries this model does not meet (Juju refuses to deploy or
    refresh to such a charm): ``juju >= X`` / ``juju < X``; nested any-of/all-of; any other
    feature (k8s-api, ...) is one a machine model has not."""
    unmet = []
    for entry in assumes or []:
        if isinstance(entry, dict):
            kind, items = next(iter(entry.items()))
            missing = unmet_assumes(items)
            if (kind == "all-of" and missing) or (kind == "any-of" and len(missing) == len(items)):
                unmet.extend(missing)
            continue
        match = _JUJU_ASSUMES.match(str(entry).strip())
        if not match:
            unmet.append(f"charm requires feature {entry!r}")
            continue
        wanted = tuple(int(p) for p in match.group(2).split("."))
        wanted += (0,) * (3 - len(wanted))
        have = JUJU_VERSION
        meets = have >= wanted if match.group(1) == ">=" else have < wanted
        if not meets:
            unmet.append(f"charm requires Juju version {match.group(1)} {match.group(2)}")
    return unmet


def load_charm_meta(charm_dir: Path) -> CharmMeta:
    """Endpoints, config options, resources and actions of a charm directory; a charm whose
    ``assumes`` this model does not meet is refused, as Juju refuses it."""
    md = _yaml_file(charm_dir / "metadata.yaml")
    unmet = unmet_assumes(md.get("assumes") or [])
    if unmet:
        version = ".".join(map(str, JUJU_VERSION))
        raise ModelError(
            "Charm feature requirements cannot be met:\n"
            + "".join(f"  - {why} (model version {version})\n" for why in unmet)
        )
    endpoints = {}
    for role in ("provides", "requires", "peers"):
        for name, spec in (md.get(role) or {}).items():
            spec = spec if isinstance(spec, dict) else {"interface": spec}
            endpoints[name] = Endpoint(role, spec.get("interface"), spec.get("scope", "global"))
    return CharmMeta(
        charm_name=md.get("name"),
        endpoints=endpoints,
        extra_bindings=list((md.get("extra-bindings") or {}).keys()),
        config_options=_yaml_file(charm_dir / "config.yaml").get("options") or {},
        resource_names=list((md.get("resources") or {}).keys()),
        actions=_yaml_file(charm_dir / "actions.yaml"),
        storage={k: dict(v or {}) for k, v in (md.get("storage") or {}).items()},
    )


def _parse_config_string(option: str, kind: str, raw: str) -> Any:
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ModelError(f'option "{option}" expected {kind}, got "{raw}"') from None
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise ModelError(f'option "{option}" expected boolean, got "{raw}"')
        return raw.lower() == "true"
    return raw


def convert_config_value(option: str, spec: dict[str, Any], raw: Any) -> Any:
    """Convert a CLI/file value to the option's type, refusing what Juju refuses."""
    kind = spec.get("type", "string")
    if kind == "secret":  # a secret URI (Juju checks its shape, not that it is granted)
        if not (isinstance(raw, str) and re.match(r"^secret:(//[0-9a-f-]+/)?[0-9a-v]{20}$", raw)):
            raise ModelError(f'option "{option}" expected a secret URI, got {raw!r}')
        return raw
    value = _parse_config_string(option, kind, raw) if isinstance(raw, str) else raw
    # bool is an int in Python, not in Juju
    if (kind in CONFIG_TYPES and not isinstance(value, CONFIG_TYPES[kind])) or (
        kind == "int" and isinstance(value, bool)
    ):
        raise ModelError(f'option "{option}" expected {kind}, got {value!r}')
    return value


def action_params(action: str, spec: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The parameters an action runs with: defaults, then `given`, checked against the schema."""
    props = spec.get("params") or {}
    out = {k: p["default"] for k, p in props.items() if isinstance(p, dict) and "default" in p}
    for k, v in given.items():
        if k not in props and spec.get("additionalProperties", True) is False:
            raise ModelError(f'action "{action}": additional property "{k}" is not allowed')
        out[k] = v
    for k in spec.get("required") or []:
        if k not in out:
            raise ModelError(f'action "{action}": "{k}" is required')
    for k, p in props.items():
        if k in out and isinstance(p, dict) and p.get("type"):
            # JSON Schema's type: one name or a list of names, any of which will do
            kinds = p["type"] if isinstance(p["type"], list) else [p["type"]]
            if not any(_is_json_type(out[k], kind) for kind in kinds):
                raise ModelError(f'action "{action}": "{k}" must be of type {"/".join(kinds)}')
    return out


def _is_json_type(value: Any, kind: str) -> bool:
    t = ACTION_TYPES.get(kind)
    if t is None:
        return True  # a type this model does not know: Juju's validator decides
    # bool is an int in Python, not in JSON Schema
    return isinstance(value, t) and not (isinstance(value, bool) and kind in ("integer", "number"))
