#!/usr/bin/env bash
# Offline charm build: scripts/build-charm.sh BUILD_DIR
#   -> BUILD_DIR/docker-registry/        the built charm (charm-build output)
#   -> BUILD_DIR/docker-registry.charm   the same as a zip
# Layers: the repo root layer, the project's interfaces/ (CHARM_INTERFACES_DIR) and, in place
# of layer:basic (the layer index is unreachable here), the stand-in tests/layers/basic.
# The production build, with network access, is simply `charm build` (layer:basic from the index).
#
# The repo layer is staged into a temp dir first so that build/, .venv/, tests/, scripts/ ... are
# never copied into the charm. wheelhouse.txt is left out by default: the stand-in layer runs the
# hooks on the test venv's interpreter and never installs a wheelhouse. BUILD_WHEELHOUSE=1 keeps
# it (charm-build then needs `virtualenv` on PATH and PyPI).
# Fails when charm-build fails or charm-proof prints any E: or W: line.
set -euo pipefail

BUILD_DIR=${1:?usage: build-charm.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
NAME=docker-registry

log() { echo "build-charm: $*"; }
die() { echo "build-charm: ERROR: $*" >&2; exit 1; }

# charm-build / charm-proof: the project's venv first, then PATH.
for bin in "${VENV:-$ROOT/.venv}/bin" /tmp/probe-venv/bin; do
    if [[ -x "$bin/charm-build" ]]; then PATH="$bin:$PATH"; break; fi
done
command -v charm-build >/dev/null || die "charm-build not found (run 'make venv')"
command -v charm-proof >/dev/null || die "charm-proof not found (run 'make venv')"

mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# 1. stage the repo layer (only what belongs in a charm)
for f in layer.yaml metadata.yaml config.yaml; do
    [[ -f "$ROOT/$f" ]] || die "repo layer is missing $f"
done
mkdir -p "$WORK/src/$NAME"
tar -C "$ROOT" -cf - \
    --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./tests --exclude=./scripts \
    --exclude=./interfaces --exclude=./.ci --exclude=./Makefile --exclude='*.charm' \
    --exclude=__pycache__ --exclude='*.pyc' --exclude=.pytest_cache --exclude=.ruff_cache \
    --exclude=.coverage --exclude=./.gitignore --exclude=./ARCHITECTURE.md \
    . | tar -C "$WORK/src/$NAME" -xf -
if [[ "${BUILD_WHEELHOUSE:-0}" != 1 ]]; then
    rm -f "$WORK/src/$NAME/wheelhouse.txt" "$WORK/src/$NAME/wheelhouse-constraints.txt"
fi

# 2. layer and interface dirs: charm-build looks in exactly one folder each
mkdir -p "$WORK/layers"
ln -s "$ROOT/tests/layers/basic" "$WORK/layers/basic"
[[ -d "$ROOT/interfaces" ]] || die "interfaces/ is missing"

# 3. build
rm -rf "${BUILD_DIR:?}/$NAME" "$BUILD_DIR/$NAME.charm"
log "charm-build $ROOT -> $BUILD_DIR/$NAME"
set +e
(
    cd "$WORK/src/$NAME"
    CHARM_LAYERS_DIR="$WORK/layers" CHARM_INTERFACES_DIR="$ROOT/interfaces" \
        CHARM_HIDE_METRICS=1 CHARM_CACHE_DIR="$WORK/cache" \
        charm-build --hide-metrics --no-report --build-dir "$WORK/out" --log-level WARNING .
)
rc=$?
set -e
# exit 100 = proof warnings only (checked again below); anything else non-zero = failure
if [[ $rc -ne 0 && $rc -ne 100 ]]; then
    die "charm-build failed (exit $rc)"
fi
built=$(find "$WORK/out" -mindepth 1 -maxdepth 2 -name metadata.yaml -printf '%h\n' | head -n1)
[[ -n "$built" ]] || die "charm-build produced no charm"
cp -a "$built" "$BUILD_DIR/$NAME"

# 4. .charm zip (deterministic order)
python3 - "$BUILD_DIR/$NAME" "$BUILD_DIR/$NAME.charm" <<'PY'
import os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf:
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            zi = zipfile.ZipInfo.from_file(full, os.path.relpath(full, src))
            with open(full, "rb") as fp:
                zf.writestr(zi, fp.read(), zipfile.ZIP_DEFLATED)
PY

# 5. proof: no E: / W: lines
proof=$(cd "$BUILD_DIR" && charm-proof "$BUILD_DIR/$NAME" 2>&1) || true
[[ -n "$proof" ]] && echo "$proof"
if grep -Eq '^[[:space:]]*(E|W):' <<<"$proof"; then
    die "charm-proof reported errors or warnings"
fi
log "built $BUILD_DIR/$NAME and $BUILD_DIR/$NAME.charm"
