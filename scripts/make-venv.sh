#!/usr/bin/env bash
# Test/dev Python environment:
#   VENV            tests/requirements.txt (charm-tools, charms.reactive, pytest, ruff, ...)
#   VENV/moto       moto[server] alone: it needs jsonschema>=4.18, charm-tools 3.0.9 needs <4.18.
#                   Only run as a process; exposed as VENV/bin/moto_server (a symlink).
# On a non-Ubuntu host (Debian CI) the test venv also gets scripts/ubuntu_platform_shim.py via a
# .pth file so charmhelpers imports (see that file; production never uses it).
# Idempotent: a stamp holding the hash of the inputs makes a re-run a fast no-op.
set -euo pipefail

VENV=${1:?usage: make-venv.sh VENV}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
REQS=$ROOT/tests/requirements.txt
SHIM=$HERE/ubuntu_platform_shim.py
MOTO_SPEC='moto[server]>=5,<6'
MOTO_VENV=$VENV/moto
STAMP=$VENV/.make-venv.stamp
PIP_OPTS=(--disable-pip-version-check --no-input -q)
PIPLOG=${TMPDIR:-/tmp}/make-venv-pip.log

log() { echo "make-venv: $*"; }
# The Makefile puts VENV/bin first on PATH: the base python3 must not be the venv's own.
VENV_BIN=$(cd "$(dirname "$VENV")" 2>/dev/null && pwd)/$(basename "$VENV")/bin
PATH=$(tr ':' '\n' <<<"$PATH" | grep -vxF "$VENV_BIN" | paste -sd: -)
# pip_in PYTHON ARGS...: run pip quietly into $PIPLOG; show its tail on failure
pip_in() {
    local py=$1; shift
    if ! "$py" -m pip install "${PIP_OPTS[@]}" "$@" >>"$PIPLOG" 2>&1; then
        grep -v "^WARNING: Location '" "$PIPLOG" | tail -n 25 >&2
        return 1
    fi
}
die() { echo "make-venv: ERROR: $*" >&2; exit 1; }

os_name() { (. /etc/os-release 2>/dev/null && echo "${NAME:-}") || true; }
needs_shim() { [[ "$(os_name)" != *Ubuntu* ]]; }

want_hash() {
    {
        cat "$REQS" "$SHIM" "$0"
        echo "$MOTO_SPEC"
        needs_shim && echo shim || echo noshim
        python3 -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

verify() {
    "$VENV/bin/python" -c 'import charms.reactive, charmhelpers.core.host, charmhelpers.fetch' \
        || { echo "make-venv: import charms.reactive/charmhelpers failed" >&2; return 1; }
    "$VENV/bin/charm-build" --help >/dev/null 2>&1 || { echo "make-venv: charm-build --help failed" >&2; return 1; }
    "$VENV/bin/moto_server" --help >/dev/null 2>&1 || { echo "make-venv: moto_server --help failed" >&2; return 1; }
    [ -x "$VENV/bin/virtualenv" ] || { echo "make-venv: virtualenv missing from $VENV/bin" >&2; return 1; }
    for t in pytest ruff; do
        [ -x "$VENV/bin/$t" ] || { echo "make-venv: $t missing from $VENV/bin" >&2; return 1; }
    done
}

want=$(want_hash)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ] && verify; then
    log "$VENV up to date"
    exit 0
fi
python3 -m venv --help >/dev/null 2>&1 || die "python3 -m venv unusable (run scripts/setup-host.sh)"
if [ -e "$VENV" ]; then
    # Inputs changed (or a venv made some other way): start clean so removed pins go away too.
    log "rebuilding $VENV (inputs changed or not made by this script)"
    rm -rf "$VENV"
fi
: >"$PIPLOG"

# The two venvs are made side by side: each pip spends most of its time waiting on downloads.
make_moto_venv() {
    if [ ! -x "$MOTO_VENV/bin/python" ] || ! "$MOTO_VENV/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf "$MOTO_VENV"
        python3 -m venv "$MOTO_VENV" || die "python3 -m venv $MOTO_VENV failed"
    fi
    PIPLOG=$PIPLOG.moto
    : >"$PIPLOG"
    pip_in "$MOTO_VENV/bin/python" --upgrade pip || die "pip upgrade (moto venv) failed"
    pip_in "$MOTO_VENV/bin/python" "$MOTO_SPEC" || die "pip install $MOTO_SPEC failed"
}

# --- the test venv ----------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log "creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
fi
log "installing $MOTO_SPEC into $MOTO_VENV (in the background)"
make_moto_venv &
moto_pid=$!
log "installing tests/requirements.txt into $VENV"
pip_in "$VENV/bin/python" --upgrade pip || die "pip upgrade failed"
pip_in "$VENV/bin/python" -r "$REQS" || die "pip install -r $REQS failed"

# --- the charmhelpers platform shim (test env only, non-Ubuntu hosts only) ----------------
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if needs_shim; then
    log "host is '$(os_name)', not Ubuntu: installing charmhelpers platform shim (test venv only)"
    cp "$SHIM" "$SITE/_charm_dev_ubuntu_shim.py"
    echo "import _charm_dev_ubuntu_shim" >"$SITE/zz_charm_dev_ubuntu_shim.pth"
else
    rm -f "$SITE/_charm_dev_ubuntu_shim.py" "$SITE/zz_charm_dev_ubuntu_shim.pth"
fi

# --- moto in its own venv -----------------------------------------------------------------
wait "$moto_pid" || die "the moto venv ($MOTO_VENV) failed"
ln -sfn ../moto/bin/moto_server "$VENV/bin/moto_server"

log "verifying"
verify || die "verification failed"
echo "$want" >"$STAMP"
log "$VENV ready (moto_server: $VENV/bin/moto_server)"
