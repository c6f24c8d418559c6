import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "lib", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from tests.support.config import charm_defaults  # noqa: E402


@pytest.fixture(scope="session")
def defaults() -> dict:
    """config.yaml's defaults, as Juju hands them to the charm (unset options are absent)."""
    return charm_defaults()


@pytest.fixture
def config(defaults) -> dict:
    return dict(defaults)
