#!/usr/bin/env bash
# Turn a Charmed Kubernetes image list into one oci-archive for the charm's `import` action:
# run it where the registries are reachable (skopeo and python3 needed), carry OUT in.
#
# usage: scripts/ck-images-archive.sh LIST RELEASE OUT [ARCH]
#   LIST     container-images.txt, one of its per-release lists, or a plain list
#   RELEASE  for container-images.txt: 1.35 (static line + newest patch) or 1.35.3; else ""
#   OUT      the archive to write (a tar of an OCI layout; each image named by its reference)
#   ARCH     amd64 (default), arm64, ppc64le, s390x, or all (every platform of every image)
# environment:
#   SOURCE=rocks.canonical.com=mirror.internal:5000  read those names from another registry
#   SRC_TLS_VERIFY=false                             plain http or unverified source registries
#   WORK=DIR  where the layout is assembled (default OUT.layout); kept when a copy fails, so a
#             re-run fetches only the layers it does not have yet
set -euo pipefail

usage() { sed -n '2,15p' "$0" >&2; exit 2; }
[[ $# -ge 3 && $# -le 4 ]] || usage
list=$1 release=$2 out=$3 arch=${4:-amd64}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-$out.layout}
# skopeo reads oci:PATH:NAME up to the first ':'
[[ $work != *:* ]] || { echo "error: $work: the layout path must not contain ':'" >&2; exit 2; }
command -v skopeo >/dev/null || { echo "error: skopeo is not installed" >&2; exit 2; }

# the charm's own list parser: same releases, templates and refusals as the mirror action
plan=$(PYTHONPATH="$root/lib" python3 -m charms.layer.docker_registry.images.imagelists "$list" \
    --release "$release" --arch "$arch" --source "${SOURCE:-}")

copy=(copy --retry-times 3)
[[ ${SRC_TLS_VERIFY:-true} == false ]] && copy+=(--src-tls-verify=false)
global=()
if [[ $arch == all ]]; then copy+=(--all); else global=(--override-arch "$arch"); fi

mkdir -p "$work"
total=$(grep -c . <<<"$plan" || true)
n=0
while IFS=$'\t' read -r from name; do
    [[ -n $from ]] || continue
    n=$((n + 1))
    echo "[$n/$total] $name"
    # the OCI layout keeps the reference as ref.name: import puts the image where CK pulls it
    skopeo ${global[@]+"${global[@]}"} "${copy[@]}" "docker://$from" "oci:$work:$name"
done <<<"$plan"
tar -C "$work" -cf "$out.partial" oci-layout index.json blobs
mv "$out.partial" "$out"
rm -rf "$work"
echo "wrote $out: $n image(s)"
