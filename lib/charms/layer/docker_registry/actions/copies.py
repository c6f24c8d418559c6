"""Actions that copy many images into the registry, in the layout Charmed Kubernetes pulls
from: mirror (registry to registry) and import (archives on the unit, air-gapped). Both plan
every image first, skip what the registry already has, copy the rest with skopeo and report
each image, in the results and in a report file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from charmhelpers.core import hookenv

from charms.layer.docker_registry import actions
from charms.layer.docker_registry.actions import ActionError, Params
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.host import paths
from charms.layer.docker_registry.images import (
    imagelists,
    importer,
    plans,
    references,
    registry_api,
    transfer,
)
from charms.layer.docker_registry.images.plans import Item
from charms.layer.docker_registry.pipeline import clients

MAX_LIST_FILE = 1024 * 1024
IMPORT_DIR = "/var/lib/docker-registry-charm/import"  # oci-archives extracted while importing
# action-set carries about 128 KiB of values in all: the per-image list gets most of it
RESULTS_JSON_LIMIT = 64 * 1024
RAW_LIMIT = 24 * 1024
NOTES_LIMIT = 4 * 1024
_STATUSES = ("planned", "copied", "present", "failed", "refused")


def _image_list(params: Params, arches: tuple[str, ...]) -> tuple[list[str], list[str], str]:
    """(images, notes, what the list was) from images= and/or file=."""

    text = params.text("images")
    file = params.text("file")
    release = imagelists.release_param(params.config.get("release", ""))
    if not text and not file:
        raise ActionError("give images (a list) or file (a path on the unit)")
    parsed = []
    if text:
        parsed.append(
            imagelists.parse_list(text, release=release, arches=arches, what="images", echo=True)
        )
    if file:
        content = imagelists.read_list_file(file, MAX_LIST_FILE)
        parsed.append(
            imagelists.parse_list(
                content, release=release, arches=arches, what="file", require_host=True
            )
        )
    images = list(dict.fromkeys(i for one in parsed for i in one.images))
    notes = [note for one in parsed for note in one.notes]
    if not images:
        raise ActionError("no images in the list (only comments or blank lines)")
    kinds = [one.form + (f" ({', '.join(one.lines)})" if one.lines else "") for one in parsed]
    return images, notes, "; ".join(kinds)


def mirror(params: Params) -> dict:
    """Copy images registry to registry, into the layout Charmed Kubernetes pulls from."""

    concurrency = params.number("concurrency", 4, 1, 32)
    src_tls_verify = params.flag("src-tls-verify", True)
    all_platforms = params.flag("all-platforms", False)
    dry_run = params.flag("dry-run", False)
    prefix = references.check_prefix(params.text("prefix"))
    layout = references.check_layout(params.text("layout"), prefix)
    rewrites = references.parse_rewrites(params.text("source"))
    arches = references.resolve_arch(params.text("arch"))
    images, notes, form = _image_list(params, arches)
    all_platforms = all_platforms or len(arches) > 1  # a cluster of several architectures
    dest = _destination()
    endpoint = dest.endpoint
    items, repeats = plans.plan_mirror(
        images,
        netloc=endpoint.netloc,
        prefix=prefix,
        layout=layout,
        rewrites=rewrites,
        extra=("--all",) if all_platforms else (),
    )
    if repeats:
        notes.append(f"{repeats} image(s) listed more than once: copied once")
    if rewrites:
        notes.append("read from " + ", ".join(f"{a}={b}" for a, b in rewrites.items()))
    info = {
        "list": form,
        "arch": "all" if len(arches) > 1 else arches[0],
        "all-platforms": str(all_platforms).lower(),
    }
    if not dry_run:
        _copy_all(
            "mirroring",
            items,
            dest,
            notes,
            concurrency=concurrency,
            checks={
                "arch": arches[0],
                "all_platforms": all_platforms,
                "tls_verify": src_tls_verify,
            },
            src_args=[] if src_tls_verify else ["--src-tls-verify=false"],
            global_args=[] if all_platforms else ["--override-arch", arches[0]],
        )
    return _outcome("mirror", items, endpoint, prefix, dry_run, notes, info, layout)


def import_images(params: Params) -> dict:
    """Push the images of archives on the unit (or the images resource) into the registry,
    in the same layout as mirror."""

    concurrency = params.number("concurrency", 4, 1, 32)
    dry_run = params.flag("dry-run", False)
    prefix = references.check_prefix(params.text("prefix"))
    layout = references.check_layout(params.text("layout"), prefix)
    path = params.text("path") or _images_resource()
    found = importer.scan(path)
    dest = _destination()
    endpoint = dest.endpoint
    preserve = transfer.supports_preserve_digests()
    items, skipped, repeats = importer.plan(
        found.images, netloc=endpoint.netloc, prefix=prefix, layout=layout, preserve=preserve
    )
    notes = found.notes + skipped
    if repeats:
        notes.append(f"{repeats} image(s) found more than once: pushed once")
    if any(i.config and not i.expect for i in items):
        notes.append(
            "docker save archives hold no registry manifest: their images get a new manifest "
            "digest (the image ID, their config digest, stays the same)"
        )
    if not preserve and any(i.expect for i in items):
        notes.append(
            "this skopeo has no --preserve-digests (it came in 1.6): OCI images may get a new "
            "digest; digest-kept in the results says"
        )
    if not items:
        raise ActionError("no image to import: " + "; ".join(notes)[:2000])
    info = {"path": path, "archives": str(found.archives)}
    if not dry_run:
        todo = [i for i in items if i.status == "planned"]
        with importer.extracted(
            importer.oci_archives(todo), paths.current().path(IMPORT_DIR)
        ) as layouts:
            importer.use_extracted(todo, layouts)
            _copy_all("importing", items, dest, notes, concurrency=concurrency)
        kept = [i for i in items if i.digest_kept is not None]
        info["digests-kept"] = f"{sum(1 for i in kept if i.digest_kept)} of {len(kept)}"
    return _outcome("import", items, endpoint, prefix, dry_run, notes, info, layout)


@dataclass(frozen=True)
class _Destination:
    """This unit's registry as a copy target: where it answers, its config, skopeo's view."""

    endpoint: clients.Endpoint
    config: settings.Settings
    target: transfer.Target


def _destination() -> _Destination:
    endpoint = actions.ready()
    config = actions.config()
    return _Destination(endpoint, config, actions.transfer_target(endpoint, config))


def _copy_all(
    verb: str,
    items: list[Item],
    dest: _Destination,
    notes: list[str],
    *,
    concurrency: int,
    checks: dict[str, Any] | None = None,
    **copy_args: Any,
) -> None:
    """The tail mirror and import share: skip what the registry already has, copy the rest
    ``concurrency`` at a time, logging progress to the action."""

    endpoint = dest.endpoint
    env = transfer.proxy_env(endpoint.netloc)
    api = _api_or_none(endpoint, dest.config, notes)
    try:
        present = present_check(api, dest.target, env=env, **(checks or {}))
        todo = sum(1 for i in items if i.status == "planned")
        actions.action_log(f"{verb} {todo} image(s) to {endpoint.netloc}, {concurrency} at a time")
        transfer.run_copies(
            items,
            dest.target,
            concurrency=concurrency,
            env=env,
            present=present,
            log=actions.action_log,
            **copy_args,
        )
    finally:
        if api is not None:
            api.close()


def _images_resource() -> str:
    try:
        path = hookenv.resource_get("images")
    except Exception:  # noqa: BLE001 - older Juju raises when resources are unsupported
        path = None
    if not path:
        raise ActionError(
            "give path= (an archive or directory on the unit) or attach the images resource "
            f"(juju attach-resource {hookenv.service_name()} images=<archive>)"
        )
    return str(path)


def _api_or_none(
    endpoint: clients.Endpoint, config: settings.Settings, notes: list[str]
) -> registry_api.Registry | None:
    """The registry API for the already-there check; None (everything copied) without it."""

    try:
        return actions.api(endpoint, config)
    except registry_api.RegistryApiError as exc:
        notes.append(f"the registry API did not answer ({exc}): nothing was skipped")
        return None


def present_check(
    api: registry_api.Registry | None,
    target: transfer.Target,
    *,
    arch: str = "",
    all_platforms: bool = True,
    tls_verify: bool = True,
    env: dict[str, str] | None = None,
) -> Callable[[Item], str]:
    """Why an item need not be copied: the registry has the digest a copy would write there
    (mirror: the source's manifest, for ``arch`` unless all platforms; OCI archives: theirs),
    or, for docker save archives, a manifest with the same config (image ID)."""

    def present(item: Item) -> str:
        if api is None:
            return ""
        ref = references.parse_reference(item.dest)
        have = api.digest(ref.path, ref.tag or ref.digest)
        if have is None:
            return ""
        if item.expect:
            want = item.expect
        elif item.config:
            resp = api.request(
                "GET",
                f"/v2/{ref.path}/manifests/{have}",
                {"Accept": ", ".join(registry_api.MANIFEST_TYPES)},
            )
            config = (resp.json().get("config") or {}) if resp.status == 200 else {}
            same = isinstance(config, dict) and config.get("digest") == item.config
            return "already in the registry (same image ID)" if same else ""
        else:
            raw = transfer.skopeo_inspect_raw(
                item.read, target=target, tls_verify=tls_verify, env=env
            )
            want = plans.manifest_digest(raw, arch=arch, all_platforms=all_platforms)
        return "already in the registry with the same digest" if want == have else ""

    return present


def _cluster_needs(
    items: list[Item], endpoint: clients.Endpoint, prefix: str, layout: str
) -> dict[str, str]:
    """What points the cluster at the copies: CK's image-registry option, or (mirror layout)
    client-config with the images' hosts for containerd to mirror."""

    if layout == references.MIRROR:
        hosts = ",".join(references.mirrored_hosts([i.source for i in items]))
        unit = os.environ.get("JUJU_UNIT_NAME") or "docker-registry/0"
        return {
            "mirror-for": hosts,
            "client-config": f"juju run {unit} client-config mirror-for={hosts}",
        }
    value = references.image_registry(endpoint.netloc, prefix)
    return {
        "image-registry": value,
        "juju-config": f"juju config kubernetes-control-plane image-registry={value}",
    }


def _outcome(
    kind: str,
    items: list[Item],
    endpoint: clients.Endpoint,
    prefix: str,
    dry_run: bool,
    notes: list[str],
    info: dict[str, str],
    layout: str = "image-registry",
) -> dict:
    """Results within what action-set carries (a summary, problems first when not all fit);
    every image in the report file, whose path is in the results."""

    counts = {s: sum(1 for i in items if i.status == s) for s in _STATUSES}
    needs = _cluster_needs(items, endpoint, prefix, layout)
    command = needs.get("juju-config") or needs["client-config"]
    ordered = items
    rows = [i.as_dict() for i in items]
    if len(json.dumps(rows)) > RESULTS_JSON_LIMIT:
        ordered = sorted(items, key=lambda i: i.ok)  # failed and refused first
        rows = [i.as_dict() for i in ordered]
    body = {
        "action": kind,
        "dry-run": dry_run,
        "registry": endpoint.netloc,
        **needs,
        "counts": counts,
        "notes": notes,
        **info,
        "images": [i.as_dict() for i in items],
    }
    report = actions.write_report(kind, body, notes)
    results_json, shown = actions.bounded_json(rows, RESULTS_JSON_LIMIT)
    head = _headline(counts, endpoint.netloc, dry_run, command)
    summary = {
        "outcome": "success",
        "dry-run": str(dry_run).lower(),
        "images": str(len(items)),
        "copied": str(counts["copied"]),
        "skipped": str(counts["present"]),
        "failed": str(counts["failed"]),
        "refused": str(counts["refused"]),
        **needs,
        "report": report,
        "raw": actions.bounded_lines([head] + [i.line() for i in ordered], RAW_LIMIT),
        "results": results_json,
        **info,
    }
    if dry_run:
        summary["planned"] = str(counts["planned"])
    if notes:
        summary["notes"] = actions.bounded_lines(notes, NOTES_LIMIT)
    if shown < len(rows):
        summary["results-shown"] = f"{shown} of {len(rows)}: every image is in {report}"
    problems = [] if dry_run else _problems(items)
    if not problems:
        return summary
    summary["outcome"] = "failure"
    raise ActionError("; ".join(problems), summary)


def _headline(counts: dict[str, int], netloc: str, dry_run: bool, command: str) -> str:
    head = (
        f"dry run: {counts['planned']} image(s) would go to {netloc}"
        if dry_run
        else f"{counts['copied']} copied, {counts['present']} already there"
    )
    if counts["refused"]:
        head += f", {counts['refused']} refused (two sources, one destination)"
    if counts["failed"]:
        head += f", {counts['failed']} failed"
    return head + f"; the cluster needs: {command}"


def _problems(items: list[Item]) -> list[str]:
    """Why a copy run failed: images that failed, and those refused (one destination, two
    sources); none when every image was copied or already there."""
    failed = [i for i in items if i.status == "failed"]
    refused = [i for i in items if i.status == "refused"]
    problems = []
    if failed:
        considered = len(items) - len(refused)
        problems.append(f"{len(failed)} of {considered} image(s) failed: {_names(failed)}")
    if refused:
        problems.append(
            f"{len(refused)} image(s) refused, each shares its destination with another: "
            f"{_names(refused)}"
        )
    return problems


def _names(items: list[Item]) -> str:
    names = ", ".join(i.source for i in items[:20])
    return names + (f" and {len(items) - 20} more" if len(items) > 20 else "")
