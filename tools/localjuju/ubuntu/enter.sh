#!/bin/sh
# enter.sh OS_RELEASE UPPER:WORK:DIR... -- COMMAND [ARGS...]
#
# Runs as the first process of a private mount namespace (execution.py starts it through
# machine.wrap with `unshare -m --propagation private`, as root) and turns this host into the
# unit's machine for one hook or action: each DIR gets an overlay whose lower layer is the
# host's DIR and whose upper layer (UPPER, with its work dir WORK) belongs to the unit, so the
# hook sees the host's files but everything it writes there lands in the unit's directory;
# OS_RELEASE is bind-mounted over /etc/os-release (Ubuntu, for charmhelpers and layer:basic).
# Nothing is visible outside the namespace and it all goes away with the hook's last process.
set -eu
os_release=$1
shift
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    spec=$1
    shift
    upper=${spec%%:*}
    rest=${spec#*:}
    work=${rest%%:*}
    dir=${rest#*:}
    mount -t overlay localjuju-machine -o "lowerdir=$dir,upperdir=$upper,workdir=$work" "$dir"
done
[ "${1:-}" = "--" ] && shift
mount --bind "$os_release" /etc/os-release

# --- faults a test arms for the unit's next hook (files in <unit>/machine/faults/) ---------
faults=${JUJU_CHARM_DIR:-/nonexistent}/../machine/faults
if [ -f "$faults/kill-hook-after-rm" ] || [ -f "$faults/kill-hook-after-stop" ]; then
    # the hook is killed right after `docker rm` (stop) of the container the file names
    # (faults/docker)
    LOCALJUJU_REAL_DOCKER=$(command -v docker)
    export LOCALJUJU_REAL_DOCKER
    PATH=$(dirname "$0")/faults:$PATH
fi
if [ -f "$faults/full-config-dir" ] && [ -n "${DOCKER_REGISTRY_SANDBOX:-}" ]; then
    # the filesystem holding the unit's config files is full, in this namespace only: a small
    # tmpfs over it holding the same files, filled up; afterwards the files it holds are listed
    # (sha256sum) in faults/config-dir.after for the test to compare with what it had before
    dir=$DOCKER_REGISTRY_SANDBOX/etc/docker/registry
    copy=$(mktemp -d)
    cp -a "$dir/." "$copy/"
    mount -t tmpfs -o size=1m,mode=0700 localjuju-full "$dir"
    cp -a "$copy/." "$dir/"
    rm -rf "$copy"
    dd if=/dev/zero of="$dir/.localjuju-filler" bs=4k >/dev/null 2>&1 || true
    rc=0
    "$@" || rc=$?
    (cd "$dir" && find . -type f ! -name .localjuju-filler -exec sha256sum {} + | sort) \
        >"$faults/config-dir.after"
    exit "$rc"
fi
exec "$@"
