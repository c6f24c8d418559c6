"""Actions on what the registry holds: push, images, rmi and garbage-collect, through its API
and skopeo with the charm's credentials (never in argv, logs, results or errors)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from charmhelpers.core import hookenv
from charms.reactive import is_flag_set

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.actions import ActionError, Params, gc
from charms.layer.docker_registry.host import container
from charms.layer.docker_registry.images import references, registry_api, transfer
from charms.layer.docker_registry.pipeline import caches as caches_lib
from charms.layer.docker_registry.pipeline import clients, datastore, runspec, status

# action-set carries about 128 KiB of values in all
RESULTS_JSON_LIMIT = 64 * 1024
RAW_LIMIT = 24 * 1024
_REPO_FILTER_RE = re.compile(r"^[a-z0-9._/*?\[\]-]{1,255}$")
_LOCAL_IMAGES_FLAGS = {"-a", "--all", "--digests", "--no-trunc", "-q", "--quiet"}
_LOCAL_IMAGES_VALUED = {"-f", "--filter", "--format"}
_LOCAL_RMI_FLAGS = {"-f", "--force", "--no-prune"}


def push(params: Params) -> dict:
    """Push a local docker image (pulled first unless pull=false) to the registry."""

    image = params.required("image")
    pull = params.flag("pull", True)
    tag = params.text("tag")
    actions.reference(image, "image")
    if tag:
        actions.reference(tag, "tag")
    endpoint = actions.ready()
    target = actions.transfer_target(endpoint, actions.config())
    result = transfer.push(image, target, tag=tag, pull=pull)
    return {
        "outcome": "success",
        "raw": f"pushed {result.tag}",
        "tag": result.tag,
        "digest": result.digest,
    }


def _local_options(
    options: str, flags: set[str], valued: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """Options for a local docker command, limited to a known-safe set."""
    try:
        words = shlex.split(options)
    except ValueError as exc:
        raise ActionError(f"options: {exc}") from exc
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        name = word.split("=", 1)[0]
        if name in flags and "=" not in word:
            out.append(word)
        elif name in valued:
            if "=" in word:
                out.append(word)
            elif i + 1 < len(words):
                out += [word, words[i + 1]]
                i += 1
            else:
                raise ActionError(f"options: {word} needs a value")
        else:
            allowed = ", ".join(sorted(flags | set(valued)))
            raise ActionError(f"options: {word[:50]!r} is not allowed (allowed: {allowed})")
        i += 1
    return out


def images(params: Params) -> dict:
    """Repositories and tags from the registry's API (local=true: the unit's docker images)."""

    options = params.text("options")
    repository = params.text("repository")
    local = params.flag("local", False)
    if local:
        argv = _local_options(options, _LOCAL_IMAGES_FLAGS, _LOCAL_IMAGES_VALUED)
        if repository:
            actions.reference(repository, "repository")
            argv.append(repository)
        out = container.docker("images", *argv, timeout=60)
        return {"outcome": "success", "raw": out.rstrip()}
    if options:
        raise ActionError("options: apply to the local docker listing only; add local=true")
    endpoint = actions.ready()
    if repository.startswith(endpoint.netloc + "/"):
        repository = repository[len(endpoint.netloc) + 1 :]
    if repository and not _REPO_FILTER_RE.match(repository):
        raise ActionError("repository: a repository name, prefix or pattern (* ? [])")
    api = actions.api(endpoint, actions.config())
    try:
        listing = api.list_images(repository)
    finally:
        api.close()
    result = {
        "outcome": "success",
        "count": str(len(listing)),
        "tags": str(sum(len(t) for t in listing.values())),
        "repositories": json.dumps(listing),
        "raw": registry_api.format_listing(listing),
    }
    if len(result["repositories"]) + len(result["raw"]) <= RESULTS_JSON_LIMIT:
        return result
    # more than action-set carries: the whole listing goes to a report file on the unit
    notes: list[str] = []
    report = actions.write_report("images", {"repositories": listing}, notes)
    return {
        **result,
        "repositories": "",
        "raw": actions.bounded_lines(result["raw"].splitlines(), RAW_LIMIT),
        "report": report,
        "notes": " ".join(notes),
    }


def rmi(params: Params) -> dict:
    """Delete a tag (its manifest, by digest) from the registry; local=true: `docker rmi`."""
    image = params.required("image")
    options = params.text("options")
    local = params.flag("local", False)
    ref = actions.reference(image, "image")
    if local:
        argv = _local_options(options, _LOCAL_RMI_FLAGS)
        out = container.docker("rmi", *argv, image, timeout=120)
        return {"outcome": "success", "raw": out.rstrip()}
    if options:
        raise ActionError("options: apply to the local docker rmi only; add local=true")
    endpoint = actions.ready()
    config = actions.config()
    if ref.host and ref.host != endpoint.netloc:
        raise ActionError(f"image: {ref.host} is not this registry ({endpoint.netloc})")
    if not ref.tag and not ref.digest:
        raise ActionError("image: give repository:tag or repository@sha256:<digest>")
    if not config.storage_delete:
        raise ActionError(
            "deleting from the registry needs storage-delete=true "
            f"(juju config {hookenv.service_name()} storage-delete=true)"
        )
    api = actions.api(endpoint, config)
    try:
        return _delete(api, ref)
    finally:
        api.close()


def _delete(api: registry_api.Registry, ref: references.Reference) -> dict:
    reference = ref.digest or ref.tag
    digest = api.digest(ref.path, reference)
    if digest is None:
        raise ActionError(f"{ref.path}:{reference} is not in the registry")
    if ref.digest and ref.tag:
        tagged = api.digest(ref.path, ref.tag)
        if tagged != ref.digest:
            raise ActionError(f"{ref.path}:{ref.tag} does not point at {ref.digest}")
    same = sorted(t for t, d in api.tag_digests(ref.path).items() if d == digest)
    api.delete_manifest(ref.path, digest)
    gone = [t for t in same if api.digest(ref.path, t) is None]
    others = [t for t in gone if t != ref.tag]
    raw = f"deleted {ref.path}@{digest}"
    if gone:
        raw += f" (tags: {', '.join(gone)})"
    raw += "; run garbage-collect to reclaim its space"
    return {
        "outcome": "success",
        "raw": raw,
        "digest": digest,
        "removed-tags": ",".join(gone),
        "other-tags": ",".join(others),
    }


def _peer_count() -> int:
    """How many other units of this application exist (they share object storage)."""
    return sum(len(hookenv.related_units(rid)) for rid in hookenv.relation_ids("peer"))


def garbage_collect(params: Params) -> dict:
    """Registry GC with the registry stopped (never serving from a stale cache), restarted
    after, reporting space reclaimed and how long it was not writable."""

    detached = datastore.attached_or_fail()
    if detached:  # it would collect on the root disk and start the registry there
        raise ActionError(detached)
    delete_untagged = params.flag("delete-untagged", False)
    dry_run = params.flag("dry-run", False)
    cache = params.text("cache").lower()
    if cache:
        return _cache_garbage_collect(cache, delete_untagged=delete_untagged, dry_run=dry_run)
    stopped_by_operator = is_flag_set(records.STOPPED_FLAG)
    endpoint = records.endpoint()
    if not stopped_by_operator:
        endpoint = actions.ready()
    config = actions.config()
    if config.storage.kind != "filesystem" and _peer_count() and not config.storage_read_only:
        # other units keep accepting uploads into the shared storage while GC deletes blobs
        raise ActionError(
            "other units share this storage: set storage-read-only=true first "
            f"(juju config {hookenv.service_name()} storage-read-only=true), run "
            "garbage-collect on one unit, then set it back to false"
        )
    plan = gc.plan(records.container_run())
    if not dry_run and not stopped_by_operator:
        actions.set_status(status.busy("Garbage collection: the registry is stopped."))
    try:
        result = gc.garbage_collect(
            plan,
            probe_url=endpoint.local_url if endpoint else "",
            delete_untagged=delete_untagged,
            dry_run=dry_run,
        )
    finally:
        if not dry_run and not stopped_by_operator:
            actions.report_restarted(plan.name)
    return _gc_results(result, dry_run, "the registry")


def _cache_garbage_collect(host: str, *, delete_untagged: bool, dry_run: bool) -> dict:
    """GC of one pull-through cache's own storage: only that cache stops meanwhile."""

    actions.ready()
    if host not in {c.host for c in actions.config().caches}:
        raise ActionError("cache: not an upstream host in the caches option")
    record = records.caches().get(host) or {}
    plan = gc.plan(runspec.ContainerRun.from_record(record.get("run")))
    result = gc.garbage_collect(
        plan, probe_url=record.get("url", ""), delete_untagged=delete_untagged, dry_run=dry_run
    )
    return _gc_results(result, dry_run, f"the cache of {host}")


def _gc_results(result: gc.GcResult, dry_run: bool, what: str) -> dict:
    reclaimed = "unknown" if result.reclaimed is None else str(result.reclaimed)
    eligible = (
        f"{result.blobs_eligible} blob(s) and {result.manifests_eligible} manifest(s)"
        if result.blobs_eligible is not None
        else "an unknown number of blobs"
    )
    if dry_run:
        raw = f"dry run: {eligible} would be deleted; {what} kept serving"
    else:
        raw = (
            f"deleted {eligible}; reclaimed {_human(result.reclaimed)}; {what} was not "
            f"writable for {result.not_writable_seconds:.1f}s"
        )
    return {
        "outcome": "success",
        "raw": raw,
        "reclaimed-bytes": reclaimed,
        "not-writable-seconds": f"{result.not_writable_seconds:.2f}",
        "blobs-eligible": str(result.blobs_eligible),
        "manifests-eligible": str(result.manifests_eligible),
        "dry-run": str(dry_run).lower(),
    }


def _human(size: int | None) -> str:
    if size is None:
        return "an unknown amount (object storage)"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def caches(params: Params) -> dict:
    """What each pull-through cache holds (from its own API), where clients reach it, whether
    it proxies or serves offline, and its size on filesystem storage."""

    endpoint = actions.ready()
    config = actions.config()
    if not config.caches:
        return {"outcome": "success", "caches": "{}", "raw": "no caches (see the caches option)"}
    target = actions.transfer_target(endpoint, config)  # the charm's own credentials
    scheme = "https" if endpoint.url.startswith("https://") else "http"
    urls = caches_lib.cache_endpoints(config, clients.netloc_host(endpoint.netloc), scheme)
    cache_records = records.caches()
    found: dict[str, dict] = {}
    lines: list[str] = []
    for cache in config.caches:
        record = cache_records.get(cache.host) or {}
        entry: dict = {"url": urls[cache.host], "upstream": cache.url}
        entry["serving"] = "offline" if record.get("offline") else "proxy"
        run = runspec.ContainerRun.from_record(record.get("run"))
        if run and run.spec.storage_mount:
            entry["bytes"] = caches_lib.stored_bytes(Path(run.spec.storage_mount[0]))
        api = registry_api.Registry(
            record.get("url") or urls[cache.host], target.user, target.password, endpoint.ca_file,
            check_hostname=False, client_pair=endpoint.client_pair,
        )  # fmt: skip
        try:
            entry["repositories"] = api.list_images()
        except registry_api.RegistryApiError as exc:
            entry["error"] = str(exc)
        finally:
            api.close()
        found[cache.host] = entry
        size = f", {entry['bytes']} bytes" if "bytes" in entry else ""
        lines.append(f"{cache.host} -> {entry['url']} ({entry['serving']}{size})")
        lines += [f"  {line}" for line in registry_api.format_listing(
            entry.get("repositories", {})).splitlines()]  # fmt: skip
        if "error" in entry:
            lines.append(f"  error: {entry['error']}")
    return {
        "outcome": "success",
        "caches": json.dumps(found)[:RESULTS_JSON_LIMIT],
        "raw": "\n".join(lines)[:RAW_LIMIT],
    }
