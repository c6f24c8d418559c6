#!/usr/bin/env bash
# Fill a layer cache from the upstream git repositories at pinned commits:
#   scripts/fetch-layers.sh DEST
#   -> DEST/layers/<name>, DEST/interfaces/<name> (and DEST/charms/<name>)
# What scripts/build-charm.sh (LAYER_CACHE=DEST) and `charm build` (CHARM_LAYERS_DIR=DEST/layers,
# CHARM_INTERFACES_DIR=DEST/interfaces) build with. The table is scripts/layers.tsv (LAYERS_TSV
# overrides it): kind, name, repository, commit and, for a layer that is a folder of its
# repository (charm-interface-cos-agent's src/), that folder: the repository is then checked out
# in DEST/checkouts/<name> and DEST/<kind>s/<name> is a symlink to the folder in it.
# Repositories are LAYER_GIT_BASE/<repository> (default https://github.com; point it at a
# mirror or a directory of bare repositories).
#
# Idempotent: a checkout already at its commit is left alone; one at another commit is moved
# to the pinned one (fetching only when the commit is missing). A directory that is not a git
# checkout, or a checkout with local changes, is an error and is never touched. New clones go
# to a temporary directory first, so a failed run leaves no half-made layer behind.
set -euo pipefail

DEST=${1:?usage: fetch-layers.sh DEST}
HERE=$(cd "$(dirname "$0")" && pwd)
TABLE=${LAYERS_TSV:-$HERE/layers.tsv}
BASE=${LAYER_GIT_BASE:-https://github.com}
BASE=${BASE%/}

log() { echo "fetch-layers: $*"; }
die() { echo "fetch-layers: ERROR: $*" >&2; exit 1; }

command -v git >/dev/null || die "git not found"
[[ -f "$TABLE" ]] || die "no table $TABLE"
export GIT_TERMINAL_PROMPT=0 # never ask for credentials: fail instead
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

TMPS=()
cleanup() { [[ ${#TMPS[@]} -eq 0 ]] || rm -rf "${TMPS[@]}"; }
trap cleanup EXIT

unreachable() {
    die "cannot fetch $1 from $2 (offline, or no such repository?): set LAYER_GIT_BASE to a" \
        "reachable mirror, or use an existing cache (LAYER_CACHE)"
}

# has_commit DIR COMMIT: the commit object is in the repository
has_commit() { git -C "$1" cat-file -e "$2^{commit}" 2>/dev/null; }

# fetch_commit DIR URL COMMIT: fetch the branches, then the commit itself if still missing
fetch_commit() {
    local dir=$1 url=$2 commit=$3
    has_commit "$dir" "$commit" && return 0
    git -C "$dir" fetch -q "$url" '+refs/heads/*:refs/remotes/origin/*' 2>/dev/null || return 1
    has_commit "$dir" "$commit" && return 0
    git -C "$dir" fetch -q "$url" "$commit" 2>/dev/null && has_commit "$dir" "$commit"
}

check_kind() {
    local kind=$1 dir=$2
    case $kind in
        interface) [[ -f "$dir/interface.yaml" ]] || die "$dir: no interface.yaml (not an interface layer?)" ;;
        charm) [[ -f "$dir/metadata.yaml" ]] || die "$dir: no metadata.yaml (not a charm layer?)" ;;
        layer) [[ -n "$(ls -A "$dir")" ]] || die "$dir: empty checkout" ;;
    esac
}

count=0
line=0
while IFS=$'\t' read -r kind name repo commit folder rest || [[ -n "${kind:-}" ]]; do
    line=$((line + 1))
    [[ -z "${kind// /}" || "$kind" == \#* ]] && continue
    where="$TABLE:$line"
    [[ -n "$name" && -n "$repo" && -n "$commit" && -z "${rest:-}" ]] \
        || die "$where: want 4 or 5 tab-separated fields: kind name repository commit [folder]"
    [[ -z "${folder:-}" || "$folder" =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$ && "$folder" != *..* ]] \
        || die "$where: bad folder '$folder'"
    [[ "$commit" =~ ^[0-9a-f]{40}$ ]] || die "$where: '$commit' is not a full commit id"
    [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "$where: bad name '$name'"
    case $kind in
        layer) sub=layers ;;
        interface) sub=interfaces ;;
        charm) sub=charms ;;
        *) die "$where: kind '$kind' is not layer, interface or charm" ;;
    esac
    url=$BASE/$repo
    dir=$DEST/$sub/$name
    short=${commit:0:12}
    mkdir -p "$DEST/$sub"
    layer=$dir
    if [[ -n "${folder:-}" ]]; then  # the checkout elsewhere, the layer a symlink into it
        dir=$DEST/checkouts/$name
        mkdir -p "$DEST/checkouts"
        [[ ! -e "$layer" || -L "$layer" ]] || die "$layer exists and is not a symlink: remove it or use another DEST"
    fi
    if [[ -e "$dir" ]]; then
        [[ -e "$dir/.git" ]] || die "$dir exists and is not a git checkout: remove it or use another DEST"
        head=$(git -C "$dir" rev-parse -q --verify HEAD 2>/dev/null || true)
        if [[ -n "$(git -C "$dir" status --porcelain --untracked-files=no)" ]]; then
            die "$dir has local changes: not touching it"
        fi
        if [[ "$head" == "$commit" ]]; then
            log "$sub/$name: at $short (up to date)"
        else
            fetch_commit "$dir" "$url" "$commit" || unreachable "$commit" "$url"
            git -C "$dir" checkout -q --detach "$commit"
            log "$sub/$name: ${head:0:12} -> $short"
        fi
    else
        tmp=$(mktemp -d "$DEST/$sub/.fetch-$name.XXXXXX")
        TMPS+=("$tmp")
        log "$sub/$name: cloning $url"
        git clone -q --no-checkout "$url" "$tmp" 2>/dev/null || unreachable "$repo" "$BASE"
        fetch_commit "$tmp" "$url" "$commit" || die "$url has no commit $commit"
        git -C "$tmp" checkout -q --detach "$commit"
        mv "$tmp" "$dir"
        log "$sub/$name: at $short"
    fi
    if [[ -n "${folder:-}" ]]; then
        [[ -d "$dir/$folder" ]] || die "$repo has no folder $folder at $short"
        ln -sfn "../checkouts/$name/$folder" "$layer"
    fi
    check_kind "$kind" "$layer"
    count=$((count + 1))
done <"$TABLE"

[[ $count -gt 0 ]] || die "$TABLE lists nothing"
log "$count checkouts in $DEST (LAYER_CACHE=$DEST scripts/build-charm.sh BUILD_DIR)"
