import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DUMMY = Path(__file__).resolve().parent / "dummy_charm"


@pytest.fixture
def ctl(tmp_path):
    from tests.localjuju.model import Model
    from tests.localjuju.runner import Controller

    model = Model(tmp_path / "model", python=os.environ.get("DOCKER_REGISTRY_PY", sys.executable))
    return Controller(model)


@pytest.fixture
def dummy():
    return str(DUMMY)
