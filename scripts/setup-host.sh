#!/usr/bin/env bash
# Host packages for development, tests and the local model (Debian/Ubuntu, as root).
# Idempotent: installs only what is missing; runs `apt-get update` once, and only then.
set -euo pipefail

log() { echo "setup-host: $*"; }
die() { echo "setup-host: ERROR: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
command -v dpkg-query >/dev/null && command -v apt-get >/dev/null \
    || die "needs a Debian/Ubuntu host (dpkg-query + apt-get)"

PKGS=(docker.io docker-registry skopeo haproxy apache2-utils openssl curl
      busybox-static iproute2 ca-certificates util-linux strace)
# promtool checks and unit-tests the alert rules the charm publishes; the e2e runs a real
# Prometheus with the scrape job and rules the charm publishes over cos-agent
PKGS+=(prometheus)
# systemd-journald and journalctl: the charm runs the registry with docker's journald log
# driver, and an integration test checks its log there (journald runs without systemd as PID 1)
PKGS+=(systemd)
# What layer:basic's bootstrap apt-installs and then uses (`virtualenv -ppython3
# --never-download` on Debian's python3, pip from the wheelhouse): the local model's apt-get
# shim answers "already installed" for these, so they must really be here.
PKGS+=(virtualenv python3-virtualenv python3-pip python3-setuptools python3-wheel python3-yaml
       python3-dev)
# layer:basic imports distutils on the system python3 before its venv exists (Debian splits it
# out of python3 < 3.12; 3.12 has none and the package is gone)
if /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info >= (3, 12))' 2>/dev/null; then
    PKGS+=(python3-distutils)
fi

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${PKGS[@]}"; do
    installed "$p" || missing+=("$p")
done

# python3 -m venv must work (ensurepip is split out into python3-venv / python3.X-venv).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    command -v python3 >/dev/null || die "python3 is not installed"
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
    log "all packages present"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log "installing: ${missing[*]}"
log "apt-get update"
apt-get update -qq || die "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/setup-host-apt.log 2>&1 \
    || { tail -n 30 /tmp/setup-host-apt.log >&2; die "apt-get install failed: ${missing[*]} (log: /tmp/setup-host-apt.log)"; }

for p in "${missing[@]}"; do
    installed "$p" || die "package $p still not installed after apt-get install"
done
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || die "python3 -m venv still unusable"
log "installed: ${missing[*]}"
