#!/usr/bin/env bash
# scripts/demo.sh [--clean] BUILD_DIR: the local-model demo (see tools/localjuju/demo.py).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${DOCKER_REGISTRY_PY:-$ROOT/.venv/bin/python}
cd "$ROOT"
export DOCKER_REGISTRY_PY=$PY
exec "$PY" -m tools.localjuju.demo "$@"
