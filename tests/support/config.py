"""The charm's config.yaml, as the tests read it."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def charm_options() -> dict:
    """config.yaml's ``options`` mapping (name -> type, default, description)."""
    return yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["options"]


def charm_defaults() -> dict:
    """config.yaml's defaults, as Juju hands them to the charm (unset options are absent)."""
    return {name: spec["default"] for name, spec in charm_options().items() if "default" in spec}
