"""Parity with the reference charm, read from its own config.yaml, actions.yaml and
metadata.yaml (the peers directory beside the repository, pinned in its PROVENANCE.tsv): what
the README promises about options, actions and relations holds for every entry those files
have, and what this charm adds is exactly what the README lists as new."""

from __future__ import annotations

import pytest
import yaml

from tests.support.config import REPO_ROOT, charm_options
from tests.support.peers import PEERS
from tests.support.prereq import missing

REFERENCE = PEERS / "docker-registry-charm"


def reference(name: str) -> dict:
    path = REFERENCE / name
    if not path.is_file():
        missing(f"{path} is not there (the reference charm in the peers directory)")
    return yaml.safe_load(path.read_text())


def ours(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def test_the_reference_files_are_the_pinned_ones():
    # GIVEN the peers directory's provenance table
    rows = (PEERS / "PROVENANCE.tsv").read_text().splitlines() if PEERS.is_dir() else []
    pinned = [row for row in rows if row.startswith("docker-registry-charm\t")]
    if not pinned:
        missing(f"no docker-registry-charm row in {PEERS / 'PROVENANCE.tsv'}")
    # THEN it names the reference's repository and the files read here
    assert "github.com/canonical/docker-registry-charm" in pinned[0]
    for name in ("config.yaml", "actions.yaml", "metadata.yaml"):
        assert name in pinned[0] and (REFERENCE / name).is_file(), name


def test_every_reference_option_exists_with_its_name_type_and_default():
    # GIVEN the reference's options and ours
    theirs = reference("config.yaml")["options"]
    options = charm_options()
    # THEN each of theirs is here with the same type and default (absent default == absent)
    assert len(theirs) == 57  # the number the README quotes, counted in the reference's file
    for name, spec in theirs.items():
        assert name in options, f"reference option {name} is missing"
        assert options[name]["type"] == spec["type"], name
        assert options[name].get("default") == spec.get("default"), name
        assert ("default" in options[name]) == ("default" in spec), name
        assert options[name]["description"].strip(), name
    # AND each option added is one the README tells operators about
    readme = (REPO_ROOT / "README.md").read_text()
    added = sorted(set(options) - set(theirs))
    assert added and [name for name in added if f"`{name}" not in readme] == []


def test_every_reference_action_exists_with_its_params():
    # GIVEN the reference's actions and ours
    theirs, actions = reference("actions.yaml"), ours("actions.yaml")
    for name, spec in theirs.items():
        assert name in actions, f"reference action {name} is missing"
        mine = actions[name]
        params, their_params = mine.get("params", {}), spec.get("params", {})
        # THEN every param is here with the same type; a default differs only where both
        # charms require the param (so the default never applies)
        required, their_required = set(mine.get("required", [])), set(spec.get("required", []))
        assert required == their_required, name
        for param, pspec in their_params.items():
            assert param in params, f"{name}: reference param {param} is missing"
            assert params[param]["type"] == pspec["type"], f"{name} {param}"
            if param not in required:
                assert params[param].get("default") == pspec.get("default"), f"{name} {param}"
        # AND a param added here is optional (a call the reference accepted is accepted here)
        for param in set(params) - set(their_params):
            assert param not in required, f"{name} {param}"
    added = {
        n: set(a.get("params", {})) - set(theirs[n].get("params", {}))
        for n, a in actions.items()
        if n in theirs
    }
    assert {n: p for n, p in added.items() if p} == {"images": {"local"}, "rmi": {"local"}}
    # AND the new actions are the README's list
    assert set(actions) - set(theirs) == {
        "mirror",
        "import",
        "garbage-collect",
        "client-config",
        "caches",
    }


@pytest.mark.parametrize("side", ["provides", "requires", "peers"])
def test_every_reference_relation_exists_with_its_interface(side):
    # GIVEN the reference's relations and ours, on one side
    theirs, mine = reference("metadata.yaml").get(side, {}), ours("metadata.yaml").get(side, {})
    # THEN every one of theirs, with the same interface and scope (none dropped or changed)
    kept = {n: (s["interface"], s.get("scope")) for n, s in mine.items() if n in theirs}
    assert kept == {n: (s["interface"], s.get("scope")) for n, s in theirs.items()}
    # AND each relation added is one the README tells operators about
    readme = (REPO_ROOT / "README.md").read_text()
    assert [n for n in mine if n not in theirs and f"`{n}`" not in readme] == []


def test_the_series_are_the_reference_ones():
    assert ours("metadata.yaml")["series"] == reference("metadata.yaml")["series"]
