"""Run one part of `make bench` on its own: `python -m tests.bench.<part>`."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.support.images import ensure_engine


def run(bench: Callable[[Path], object], prefix: str) -> None:
    """``bench`` in a fresh temporary directory (removed afterwards) on a running engine."""
    ensure_engine()
    where = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        bench(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    sys.exit(0)
