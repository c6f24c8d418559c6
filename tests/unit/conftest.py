import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "lib", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


@pytest.fixture(scope="session")
def defaults() -> dict:
    """config.yaml's defaults, as Juju hands them to the charm (unset options are absent)."""
    options = yaml.safe_load((ROOT / "config.yaml").read_text())["options"]
    return {name: spec["default"] for name, spec in options.items() if "default" in spec}


@pytest.fixture
def config(defaults) -> dict:
    return dict(defaults)
