"""Where the real upstream layers are: the layer cache the charm is built with."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def layer_cache() -> Path:
    """LAYER_CACHE, else ../shared/layers beside the repository (as scripts/build-charm.sh)."""
    return Path(os.environ.get("LAYER_CACHE") or ROOT.parent / "shared" / "layers")
