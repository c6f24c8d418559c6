#!/usr/bin/env bash
# Make a built charm's wheelhouse install on every declared base with no compiler and no network:
#   scripts/build-wheelhouse.sh CHARM_DIR
# CHARM_DIR/wheelhouse is what `charm-build --binary-wheels` left: wheels for the build host's
# Python and machine only. It is rewritten in place (scripts/wheelhouse.py does the work):
#   - pure-Python wheels stay;
#   - compiled wheels are replaced by the pure wheel of the same version where PyPI has one
#     (Cython, tomli), otherwise by one wheel per target downloaded from the index;
#   - PyYAML and MarkupSafe also get their sdist: both build as pure Python when no compiler is
#     there, which covers the targets PyPI has no wheel for (ppc64le; s390x for MarkupSafe);
#   - then every target is checked offline: each file's requirements, Requires-Python and sdist
#     build requirements are met by the wheelhouse alone, one version per package.
# Targets: WHEELHOUSE_PYTHONS (default "3.10 3.12": jammy, noble) x WHEELHOUSE_ARCHES (default
# "x86_64 aarch64 ppc64le s390x"), plus this host's python3 and machine unless
# WHEELHOUSE_HOST=0 (the local model runs the charm on this host).
# Downloads are cached in WHEELHOUSE_CACHE (default build/wheel-cache in this repository).
set -euo pipefail

CHARM=${1:?usage: build-wheelhouse.sh CHARM_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
PYTHONS=${WHEELHOUSE_PYTHONS:-3.10 3.12}
ARCHES=${WHEELHOUSE_ARCHES:-x86_64 aarch64 ppc64le s390x}
FALLBACK=${WHEELHOUSE_SDIST_FALLBACK:-pyyaml markupsafe}
CACHE=${WHEELHOUSE_CACHE:-$ROOT/build/wheel-cache}

log() { echo "build-wheelhouse: $*"; }
die() { echo "build-wheelhouse: ERROR: $*" >&2; exit 1; }

[[ -d "$CHARM/wheelhouse" ]] || die "$CHARM has no wheelhouse/ (not a built reactive charm?)"
# pip and packaging: the project's venv first, then python3
PY=python3
if [[ -x "${VENV:-$ROOT/.venv}/bin/python" ]]; then PY="${VENV:-$ROOT/.venv}/bin/python"; fi
"$PY" -m pip --version >/dev/null 2>&1 || die "$PY has no pip"

extra=()
if [[ "${WHEELHOUSE_HOST:-1}" != 0 ]]; then
    host_py=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    extra=(--extra-target "$host_py-$(uname -m)")
fi
# shellcheck disable=SC2086  # word lists on purpose
log "targets: Python $PYTHONS on $ARCHES${extra:+ + this host (${extra[1]})}; cache $CACHE"
# shellcheck disable=SC2086
"$PY" "$HERE/wheelhouse.py" build "$CHARM/wheelhouse" --pythons $PYTHONS --arches $ARCHES \
    --fallback $FALLBACK --cache "$CACHE" "${extra[@]}"
