#!/usr/bin/env bash
# Offline charm build with the real upstream layers:
#   scripts/build-charm.sh BUILD_DIR [LAYER_DIR]
#   -> BUILD_DIR/<name>/        the built charm (charm-build output)
#   -> BUILD_DIR/<name>.charm   the same as a zip
# LAYER_DIR defaults to this repository (the docker-registry charm layer); any other reactive
# charm layer builds the same way (the local model builds the easyrsa charm and the test
# client charms with it).
#
# layer:* and interface:* come from the layer cache LAYER_CACHE (default: ../shared/layers beside
# the repository; scripts/fetch-layers.sh fills one from the upstream git repositories at the
# commits pinned in scripts/layers.tsv): LAYER_CACHE/layers/<name> and
# LAYER_CACHE/interfaces/<name>. Nothing is copied into the repository. The production build is
# `charmcraft pack` (charmcraft.yaml) or `charm build` with the same cache.
#
# The charm layer is staged into a temp dir first, without what its layer.yaml `exclude` lists
# (build/, .venv/, tests/, tools/, scripts/, the development docs ...), so that none of it is
# ever copied into the charm. charm-build --binary-wheels makes the wheelhouse for this
# host's Python and machine only. WHEELHOUSE picks what the charm ships:
#   WHEELHOUSE=host       (default) that wheelhouse as it is: runs on this host (local model)
#   WHEELHOUSE=all-bases  scripts/build-wheelhouse.sh rewrites it so it installs with no compiler
#                         and no network on jammy and noble, amd64/arm64/ppc64el/s390x, and on
#                         this host (what `make charm-all-bases` builds); downloads cached in
#                         WHEELHOUSE_CACHE (default BUILD_DIR/wheel-cache)
# Fails when charm-build fails or charm-proof prints any E: or W: line.
set -euo pipefail

BUILD_DIR=${1:?usage: build-charm.sh BUILD_DIR [LAYER_DIR]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
SRC=$(cd "${2:-$ROOT}" && pwd)
LAYER_CACHE=${LAYER_CACHE:-$(dirname "$ROOT")/shared/layers}
WHEELHOUSE=${WHEELHOUSE:-host}

log() { echo "build-charm: $*"; }
die() { echo "build-charm: ERROR: $*" >&2; exit 1; }

# charm-build / charm-proof: the project's venv first, then PATH.
for bin in "${VENV:-$ROOT/.venv}/bin"; do
    if [[ -x "$bin/charm-build" ]]; then PATH="$bin:$PATH"; break; fi
done
command -v charm-build >/dev/null || die "charm-build not found (run 'make venv')"
command -v charm-proof >/dev/null || die "charm-proof not found (run 'make venv')"
[[ -d "$LAYER_CACHE/layers/basic" && -d "$LAYER_CACHE/interfaces" ]] \
    || die "no layer cache at $LAYER_CACHE (set LAYER_CACHE, or run scripts/fetch-layers.sh)"
[[ -f "$SRC/metadata.yaml" && -f "$SRC/layer.yaml" ]] || die "$SRC is not a charm layer"
[[ "$WHEELHOUSE" == host || "$WHEELHOUSE" == all-bases ]] \
    || die "WHEELHOUSE=$WHEELHOUSE: use 'host' or 'all-bases'"
NAME=$(sed -n 's/^name: *//p' "$SRC/metadata.yaml" | head -n1)
[[ -n "$NAME" ]] || die "$SRC/metadata.yaml has no name"

mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# 1. stage the charm layer without what its layer.yaml `exclude` lists (the list `charm build`
#    honours when charmcraft builds the whole repository) nor build clutter; "/x" there is x at
#    the top of the layer, a bare name any file or folder of that name
excludes=(--exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.charm'
          --exclude=__pycache__ --exclude='*.pyc')
patterns=$(python3 -c 'import sys, yaml
print("\n".join((yaml.safe_load(open(sys.argv[1])) or {}).get("exclude") or []))' \
    "$SRC/layer.yaml") || die "cannot read the exclude list of $SRC/layer.yaml"
while IFS= read -r pattern; do
    [[ -n "$pattern" ]] || continue
    [[ "$pattern" == /* ]] && pattern=".$pattern"
    excludes+=("--exclude=$pattern")
done <<<"$patterns"
mkdir -p "$WORK/src/$NAME"
tar -C "$SRC" -cf - "${excludes[@]}" . | tar -C "$WORK/src/$NAME" -xf -
# A checkout without symlinks (git core.symlinks=false, or a copy that dereferenced nothing)
# leaves each symlink as a small text file holding its target: the easyrsa layer's
# actions/backup etc. are `-> actions.py` upstream. Restore them in the staged copy, only for
# a non-executable file in hooks/ or actions/ whose whole content names an existing sibling.
for f in "$WORK/src/$NAME"/hooks/* "$WORK/src/$NAME"/actions/*; do
    [[ -f "$f" && ! -L "$f" && ! -x "$f" && $(stat -c %s "$f") -lt 256 ]] || continue
    target=$(<"$f")
    [[ "$target" =~ ^(\./)?[A-Za-z0-9_.-]+$ && -f "$(dirname "$f")/$target" ]] || continue
    ln -sfn "$target" "$f"
done

# 2. build (charm-build looks in exactly one folder each for layers and interfaces)
rm -rf "${BUILD_DIR:?}/$NAME" "$BUILD_DIR/$NAME.charm"
log "charm-build $SRC -> $BUILD_DIR/$NAME (layers from $LAYER_CACHE)"
set +e
(
    cd "$WORK/src/$NAME"
    CHARM_LAYERS_DIR="$LAYER_CACHE/layers" CHARM_INTERFACES_DIR="$LAYER_CACHE/interfaces" \
        CHARM_HIDE_METRICS=1 CHARM_CACHE_DIR="$WORK/cache" \
        charm-build --hide-metrics --no-report --binary-wheels --build-dir "$WORK/out" \
        --log-level WARNING . >"$WORK/build.log" 2>&1
)
rc=$?
set -e
# exit 100 = proof warnings only (checked again below); anything else non-zero = failure
if [[ $rc -ne 0 && $rc -ne 100 ]]; then
    tail -n 40 "$WORK/build.log" >&2
    die "charm-build failed (exit $rc)"
fi
built=$(find "$WORK/out" -mindepth 1 -maxdepth 2 -name metadata.yaml -printf '%h\n' | head -n1)
[[ -n "$built" ]] || die "charm-build produced no charm"
cp -a "$built" "$BUILD_DIR/$NAME"

# 2b. the wheelhouse for every base (or this host's only)
if [[ "$WHEELHOUSE" == all-bases ]]; then
    log "wheelhouse for every base (WHEELHOUSE=all-bases)"
    WHEELHOUSE_CACHE=${WHEELHOUSE_CACHE:-$BUILD_DIR/wheel-cache} \
        bash "$HERE/build-wheelhouse.sh" "$BUILD_DIR/$NAME" || die "build-wheelhouse.sh failed"
else
    log "wheelhouse for this host's Python only (WHEELHOUSE=host)"
fi

# 3. .charm zip (deterministic order)
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

# 4. proof: no E: / W: lines
proof=$(cd "$BUILD_DIR" && charm-proof "$BUILD_DIR/$NAME" 2>&1) || true
[[ -n "$proof" ]] && echo "$proof"
# (charm-proof predates Juju 3's `type: secret` options: that one warning is not a fault)
if grep -Ev '^[[:space:]]*W: config.yaml: option [a-z0-9-]+ has an invalid type \(secret\)$' \
    <<<"$proof" | grep -Eq '^[[:space:]]*(E|W):'; then
    die "charm-proof reported errors or warnings"
fi
log "built $BUILD_DIR/$NAME and $BUILD_DIR/$NAME.charm"
