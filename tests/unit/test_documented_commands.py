"""Every `juju run` command the README shows passes Juju's checks as typed, and the mirror
action takes release= as Juju hands it over.

`juju run UNIT ACTION key=value ...` reads each value as YAML (yaml.v2; `--string-args` turns
that off), then validates the parameters against a JSON Schema (draft 4) that Juju builds from
actions.yaml: an object whose properties are the action's params, additionalProperties false.
PyYAML reads scalars the way yaml.v2 does (YAML 1.1) and jsonschema's Draft4Validator stands
for Juju's gojsonschema."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from charms.layer.docker_registry.images import imagelists
from charms.layer.docker_registry.images.references import ListError

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = yaml.safe_load((ROOT / "actions.yaml").read_text())
JUJU_RUN = re.compile(r"^\s*(?:#\s*)?(?:or: )?juju run ((?:--string-args )?\S+/\d+ .*)$")


def juju_schema(action: str) -> dict[str, Any]:
    """The schema Juju validates an action's parameters against (its ReadActionsYaml)."""
    spec = dict(ACTIONS[action])
    schema: dict[str, Any] = {"type": "object", "title": action, "additionalProperties": False}
    schema["properties"] = spec.pop("params", {}) or {}
    schema.update({k: v for k, v in spec.items() if k not in ("parallel", "execution-group")})
    return schema


def juju_run_params(args: list[str], string_args: bool = False) -> dict[str, Any]:
    """`key=value` arguments as `juju run` reads them: YAML, or as typed with --string-args."""
    read = str if string_args else yaml.safe_load
    return {key: read(value) for key, value in (a.split("=", 1) for a in args)}


def readme_commands() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for line in (ROOT / "README.md").read_text().splitlines():
        match = JUJU_RUN.match(line)
        if match:
            words = shlex.split(match.group(1), comments=True)
            string_args = words[0] == "--string-args"
            _unit, action, *args = words[1:] if string_args else words
            found.append((action, juju_run_params(args, string_args)))
    return found


def test_every_action_schema_is_draft_4():
    for action in ACTIONS:
        jsonschema.Draft4Validator.check_schema(juju_schema(action))


@pytest.mark.parametrize(("action", "params"), readme_commands())
def test_readme_command_passes_jujus_validation_as_typed(action, params):
    # GIVEN a command from the README, its values read as juju run reads them
    # THEN Juju's schema check lets it through to the charm
    jsonschema.Draft4Validator(juju_schema(action)).validate(params)


def test_the_readme_shows_mirror_with_a_release():
    assert ("mirror", "release") in {(a, k) for a, params in readme_commands() for k in params}


@pytest.mark.parametrize(
    ("typed", "taken"),
    [("1.35", "1.35"), ("1.29", "1.29"), ("v1.30", "v1.30"), ("1.35.3", "1.35.3"), ("2", "2")],
)
def test_release_as_juju_hands_it_over_is_taken_without_loss(typed, taken):
    # GIVEN release=<typed> on the juju run command line
    params = juju_run_params([f"release={typed}"])
    jsonschema.Draft4Validator(juju_schema("mirror")).validate(params)
    # THEN the action reads the release the operator wrote
    assert imagelists.release_param(params["release"]) == taken


@pytest.mark.parametrize("typed", ["1.30", "1.3", "1.20"])
def test_a_release_that_lost_its_trailing_zero_is_refused_with_the_form_that_works(typed):
    # GIVEN release=1.30, which juju run reads as the number 1.3
    value = juju_run_params([f"release={typed}"])["release"]
    # THEN it is refused, naming a form that keeps the zero
    with pytest.raises(ListError) as err:
        imagelists.release_param(value)
    assert f"write release=v{value}0, or release=v{value} if {value} is meant" in str(err.value)
    assert isinstance(juju_run_params([f"release=v{value}0"])["release"], str)


@pytest.mark.parametrize("value", [True, None, [1, 35], {"a": 1}])
def test_a_release_that_is_no_number_or_text_is_refused(value):
    with pytest.raises(ListError, match=r"release: a Kubernetes release such as 1\.35"):
        imagelists.release_param(value)


@pytest.mark.parametrize("typed", ["1.30", "1.35", "v1.30"])
def test_release_with_string_args_is_taken_as_typed(typed):
    # GIVEN release=<typed> with juju run --string-args
    params = juju_run_params([f"release={typed}"], string_args=True)
    jsonschema.Draft4Validator(juju_schema("mirror")).validate(params)
    # THEN the action reads exactly what was typed
    assert imagelists.release_param(params["release"]) == typed


def test_the_readme_shows_string_args():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert any(JUJU_RUN.match(line) and "--string-args" in line for line in lines)


def test_string_args_makes_a_boolean_text_which_juju_refuses():
    # GIVEN dry-run=true with --string-args (what the README warns about)
    params = juju_run_params(["file=/var/tmp/l.txt", "dry-run=true"], string_args=True)
    # THEN Juju's schema check refuses it before the charm runs
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(juju_schema("mirror")).validate(params)
