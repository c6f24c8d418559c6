#!/bin/sh
# enter.sh OS_RELEASE UPPER:WORK:DIR... -- COMMAND [ARGS...]
#
# Runs as the first process of a private mount namespace (runner.py starts it with
# `unshare -m --propagation private`, as root) and turns this host into the unit's machine for
# one hook or action: each DIR gets an overlay whose lower layer is the host's DIR and whose
# upper layer (UPPER, with its work dir WORK) belongs to the unit, so the hook sees the host's
# files but everything it writes there lands in the unit's directory; OS_RELEASE is
# bind-mounted over /etc/os-release (Ubuntu, for charmhelpers and layer:basic). Nothing is
# visible outside the namespace and it all goes away with the hook's last process.
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
exec "$@"
