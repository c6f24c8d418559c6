import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support import charms  # noqa: E402
from tests.support.charms import easyrsa_charm  # noqa: E402,F401 (a fixture)


@pytest.fixture
def ctl(tmp_path):
    from tools.localjuju.model import Model
    from tools.localjuju.runner import Controller

    model = Model(tmp_path / "model", python=os.environ.get("DOCKER_REGISTRY_PY", sys.executable))
    return Controller(model)


@pytest.fixture(scope="session")
def dummy() -> str:
    """The dummy charm (dummy_charm/), built once per session with the real layer:basic."""
    try:
        return str(charms.build_charm("dummy", charms.DUMMY_LAYER))
    except charms.BuildError as exc:
        pytest.fail(str(exc))
