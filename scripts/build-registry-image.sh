#!/usr/bin/env bash
# Build, fully offline, a registry image compatible with upstream `registry:2` from Debian's
# /usr/bin/docker-registry (2.8.2): same binary path (/bin/registry), config path, entrypoint,
# CMD, port and volume. Saves it to OUTDIR/registry-image.tar (`docker load`-able anywhere).
# Idempotent: skipped when the tagged image carries the sha256 of the binary and of this recipe
# and OUTDIR/registry-image.tar was saved from that very image.
set -euo pipefail

OUTDIR=${1:?usage: build-registry-image.sh OUTDIR}
TAG=${REGISTRY_IMAGE_TAG:-docker-registry-charm/registry:2.8.2}
BIN=${REGISTRY_BINARY:-/usr/bin/docker-registry}
BUSYBOX=${BUSYBOX:-/bin/busybox}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
TAR=$OUTDIR/registry-image.tar
TAR_ID=$OUTDIR/registry-image.tar.id
LABEL_BIN=docker-registry-charm.binary-sha256
LABEL_RECIPE=docker-registry-charm.recipe-sha256

log() { echo "registry-image: $*"; }
die() { echo "registry-image: ERROR: $*" >&2; exit 1; }

[ -x "$BIN" ] || die "$BIN not found (apt-get install docker-registry; run scripts/setup-host.sh)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
[ -r "$CA_BUNDLE" ] || die "$CA_BUNDLE not found (apt-get install ca-certificates)"
command -v docker >/dev/null || die "docker CLI not found"
timeout 20 docker info >/dev/null 2>&1 || die "Docker engine not answering (run scripts/dockerd.sh start)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    die "$BUSYBOX is dynamically linked; need busybox-static"
fi

bin_sha=$(sha256sum "$BIN" | cut -d' ' -f1)
recipe_sha=$(sha256sum "$0" | cut -d' ' -f1)

# --- fast path ---------------------------------------------------------------------------------
label() { docker image inspect -f "{{ index .Config.Labels \"$1\" }}" "$TAG" 2>/dev/null || true; }
if [ "$(label "$LABEL_BIN")" = "$bin_sha" ] && [ "$(label "$LABEL_RECIPE")" = "$recipe_sha" ]; then
    image_id=$(docker image inspect -f '{{.Id}}' "$TAG")
    if [ -s "$TAR" ] && [ -f "$TAR_ID" ] && [ "$(cat "$TAR_ID")" = "$image_id" ]; then
        log "$TAG up to date ($TAR)"
        exit 0
    fi
    log "$TAG up to date; saving $TAR"
else
    # --- rootfs ------------------------------------------------------------------------------
    log "building $TAG from $BIN ($("$BIN" --version 2>/dev/null | awk '{print $NF}'))"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    root=$work/rootfs
    mkdir -p "$root"/{bin,etc/docker/registry,etc/ssl/certs,var/lib/registry,root}
    install -d -m 1777 "$root/tmp"

    install -m 0755 "$BIN" "$root/bin/registry"
    # every library ldd names, plus the dynamic loader, at the same paths (symlinks resolved)
    libs=$(ldd "$BIN" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
    [ -n "$libs" ] || log "note: $BIN has no dynamic libraries"
    for lib in $libs; do
        [ -e "$lib" ] || die "library $lib (from ldd) not found"
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done

    install -m 0755 "$BUSYBOX" "$root/bin/busybox"
    for applet in sh wget cat ls; do
        ln -s busybox "$root/bin/$applet"
    done

    cp -L "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    echo 'hosts: files dns' >"$root/etc/nsswitch.conf"   # Go resolver: honour /etc/hosts first

    # upstream registry:2 default config
    cat >"$root/etc/docker/registry/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF

    # upstream registry:2 entrypoint
    cat >"$root/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e

case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac

exec "$@"
EOF
    chmod 0755 "$root/entrypoint.sh"

    # --- import ----------------------------------------------------------------------------
    tar -C "$root" --sort=name --numeric-owner --owner=0 --group=0 -cf - . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENTRYPOINT ["/entrypoint.sh"]' \
            --change 'CMD ["/etc/docker/registry/config.yml"]' \
            --change 'EXPOSE 5000' \
            --change 'VOLUME ["/var/lib/registry"]' \
            --change "LABEL $LABEL_BIN=$bin_sha $LABEL_RECIPE=$recipe_sha" \
            --message "registry 2.8.2 from Debian docker-registry (offline build)" \
            - "$TAG" >/dev/null || die "docker import failed"
    image_id=$(docker image inspect -f '{{.Id}}' "$TAG")
    log "imported $TAG ($image_id)"
fi

# --- save -------------------------------------------------------------------------------------
mkdir -p "$OUTDIR"
rm -f "$TAR_ID"
docker save -o "$TAR.tmp" "$TAG" || { rm -f "$TAR.tmp"; die "docker save failed"; }
mv -f "$TAR.tmp" "$TAR"
echo "$image_id" >"$TAR_ID"
log "saved $TAR ($(du -h "$TAR" | cut -f1))"
