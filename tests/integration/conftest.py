import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "lib", ROOT):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
