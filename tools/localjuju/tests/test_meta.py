"""meta.action_params checks parameters as Juju's JSON Schema does, type lists included."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tools.localjuju.meta import ModelError, action_params, unmet_assumes

ROOT = Path(__file__).resolve().parents[3]
MIRROR = yaml.safe_load((ROOT / "actions.yaml").read_text())["mirror"]


@pytest.mark.parametrize("release", [1.35, "v1.30", "1.35.3"])
def test_a_param_typed_string_or_number_takes_either(release):
    # GIVEN the charm's mirror action, whose release is [string, number]
    params = action_params("mirror", MIRROR, {"file": "/f", "release": release})
    assert params["release"] == release


@pytest.mark.parametrize(("key", "value"), [("release", True), ("concurrency", True)])
def test_a_boolean_is_no_number(key, value):
    with pytest.raises(ModelError, match=f'"{key}" must be of type'):
        action_params("mirror", MIRROR, {key: value})


def test_the_message_names_every_type_of_a_list():
    with pytest.raises(ModelError, match='"release" must be of type string/number'):
        action_params("mirror", MIRROR, {"release": [1]})


@pytest.mark.parametrize(
    ("assumes", "unmet"),
    [
        (["juju >= 3.3"], []),
        (["juju >= 3.4.1"], ["charm requires Juju version >= 3.4.1"]),
        (["juju < 4"], []),
        ([{"any-of": ["juju >= 4", "juju >= 3.1"]}], []),
        ([{"all-of": ["juju >= 3.1", "k8s-api"]}], ["charm requires feature 'k8s-api'"]),
    ],
)
def test_assumes_as_juju_3_4_weighs_them(assumes, unmet):
    assert unmet_assumes(assumes) == unmet


def test_the_charm_assumes_what_the_local_model_is():
    assert unmet_assumes(yaml.safe_load((ROOT / "metadata.yaml").read_text())["assumes"]) == []
