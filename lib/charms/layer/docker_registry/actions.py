"""Support for the charm's actions: parameter checks and container start/stop.

The action scripts in actions/ stay thin: read params, call ``run``, which reports
results with action-set and turns every failure into action-fail (never a traceback).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable

from charmhelpers.core import hookenv, unitdata
from charms.reactive import clear_flag, is_flag_set, set_flag

from charms.layer.docker_registry import clients, container, paths, settings, status
from charms.layer.docker_registry.errors import RegistryCharmError

STOPPED_FLAG = "docker-registry.stopped"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


class ActionError(RegistryCharmError):
    """An action cannot do what was asked; the message says why."""

    def __init__(self, message: str, results: dict | None = None):
        super().__init__(message)
        self.results = results or {}


def run(body: Callable[[dict], dict]) -> None:
    """Run an action body with its params; action-set its results or action-fail."""
    try:
        results = body(hookenv.action_get() or {})
        if results:
            hookenv.action_set(results)
    except RegistryCharmError as exc:
        partial = getattr(exc, "results", None)
        if partial:  # e.g. mirror: the per-image summary of what did work
            hookenv.action_set(partial)
        hookenv.action_fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - an action must never end in a traceback
        hookenv.log(f"action failed unexpectedly: {type(exc).__name__}", hookenv.ERROR)
        hookenv.action_fail(f"unexpected error ({type(exc).__name__}); see juju debug-log")
    finally:
        unitdata.kv().flush()


def _registry_container() -> str:
    try:
        name = settings.parse(hookenv.config()).registry_name
    except RegistryCharmError:
        name = hookenv.config().get("registry-name") or "registry"
        if not _NAME_RE.match(str(name)):
            name = "registry"
    return paths.current().container_name(name)


def _target(params: dict) -> str:
    """This unit's registry container (the only one ``name`` may name)."""
    ours = _registry_container()
    name = (params.get("name") or "").strip()
    if name and not _NAME_RE.match(name):
        raise ActionError("name: not a valid container name")
    if name in ("", ours, hookenv.config().get("registry-name")):
        return ours
    # any other container on the host is not this charm's to stop, start or remove
    raise ActionError("name: only this unit's registry container (registry-name) is managed")


def stop(params: dict) -> dict:
    name = _target(params)
    remove = params.get("remove", True)
    if not isinstance(remove, bool):
        raise ActionError("remove: must be a boolean")
    state = container.inspect(name)
    if state is None:
        raise ActionError(f"no container named {name}")
    set_flag(STOPPED_FLAG)  # hooks leave it stopped until the start action
    if state.running:
        container.stop(name)
    if remove:
        container.remove(name)
    hookenv.status_set("blocked", f"{name} container is stopped.")
    return {"outcome": "success", "raw": f"stopped {name}" + (" and removed it" if remove else "")}


def start(params: dict) -> dict:
    name = _target(params)
    state = container.inspect(name)
    clear_flag(STOPPED_FLAG)
    if state is None:
        argv = unitdata.kv().get("docker-registry.run-argv")
        if not argv:
            raise ActionError(f"no container named {name}")
        container.run(argv)  # the last applied run arguments; the next hook re-labels it
    elif not state.running:
        container.start(name)
    _report_ready(name)
    return {"outcome": "success", "raw": f"started {name}"}


def _report_ready(name: str) -> None:
    from charms.layer.docker_registry import workload

    report = status.Report()
    try:
        config = settings.parse(hookenv.config())
    except RegistryCharmError:
        report.wait("Started; the next hook checks the config.")
    else:
        port = config.registry_port
        host = paths.current()
        address = hookenv.unit_private_ip()
        probe_host = clients.bracket(host.publish_address(address) or "127.0.0.1")
        for scheme in ("https", "http"):
            if workload.wait_answering(f"{scheme}://{probe_host}:{port}", 10):
                report.ready_at = clients.netloc(config, ingress_address=address)
                report.scheme = scheme
                break
        else:
            report.wait(f"Waiting for the {name} container to answer.")
    hookenv.status_set(*status.decide(report))


# ================================================================ registry actions
# push, mirror, images, rmi, garbage-collect: they act on the registry itself, through its API
# and skopeo, with the charm's credentials (never in argv, logs, results or errors).

CONFIGURED_FLAG = "docker-registry.configured"
RUN_ARGV_KEY = "docker-registry.run-argv"
MAX_LIST_FILE = 1024 * 1024
REPORTS_DIR = "/var/lib/docker-registry-charm/reports"  # mirror/import reports (JSON)
IMPORT_DIR = "/var/lib/docker-registry-charm/import"  # oci-archives extracted while importing
KEEP_REPORTS = 20
# action-set carries about 128 KiB of values in all: the per-image list gets most of it
RESULTS_JSON_LIMIT = 64 * 1024
RAW_LIMIT = 24 * 1024
NOTES_LIMIT = 4 * 1024
_REPO_FILTER_RE = re.compile(r"^[a-z0-9._/*?\[\]-]{1,255}$")
_LOCAL_IMAGES_FLAGS = {"-a", "--all", "--digests", "--no-trunc", "-q", "--quiet"}
_LOCAL_IMAGES_VALUED = {"-f", "--filter", "--format"}
_LOCAL_RMI_FLAGS = {"-f", "--force", "--no-prune"}


def _text(params: dict, name: str, *, required: bool = False, default: str = "") -> str:
    value = params.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise ActionError(f"{name}: must be a string")
    value = value.strip()
    if required and not value:
        raise ActionError(f"{name}: required")
    return value


def _bool(params: dict, name: str, default: bool) -> bool:
    value = params.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ActionError(f"{name}: must be a boolean")
    return value


def _int(params: dict, name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActionError(f"{name}: must be an integer")
    if not low <= value <= high:
        raise ActionError(f"{name}: must be between {low} and {high}")
    return value


def _status_message() -> str:
    try:
        state, message = hookenv.status_get()
    except Exception:  # noqa: BLE001 - status-get missing or failing: say what we know
        return "unknown status"
    return message or state or "unknown status"


def _ready() -> clients.Endpoint:
    """Where the registry answers, as saved by the last successful hook."""
    endpoint = clients.Endpoint.from_dict(unitdata.kv().get(clients.ENDPOINT_KEY))
    if endpoint is None or not is_flag_set(CONFIGURED_FLAG) or is_flag_set(STOPPED_FLAG):
        raise ActionError(f"the registry is not ready: {_status_message()}")
    return endpoint


def _config() -> settings.Settings:
    try:
        return settings.parse(hookenv.config())
    except RegistryCharmError as exc:
        raise ActionError(f"invalid charm config: {exc}") from exc


def _credentials(config: settings.Settings) -> tuple[str, str]:
    if config.token_auth:
        raise ActionError(
            "the registry uses token auth (auth-token-*): this action has no credentials for it"
        )
    basic = config.basic_auth
    return (basic.user, basic.password) if basic else ("", "")


def _transfer_target(endpoint: clients.Endpoint, config: settings.Settings):
    from charms.layer.docker_registry import transfer

    user, password = _credentials(config)
    return transfer.Target(
        netloc=endpoint.netloc,
        tls=endpoint.url.startswith("https://"),
        ca_file=endpoint.ca_file,
        user=user,
        password=password,
        client_pair=endpoint.client_pair,
    )


def _api(endpoint: clients.Endpoint, config: settings.Settings):
    """A client for the registry API: its public URL, else this unit's own address."""
    from charms.layer.docker_registry import registry_api

    user, password = _credentials(config)
    api = registry_api.Registry(
        endpoint.url, user, password, endpoint.ca_file, client_pair=endpoint.client_pair
    )
    try:
        api.ping()
        return api
    except registry_api.RegistryApiError as exc:
        if exc.status or not endpoint.local_url or endpoint.local_url == endpoint.url:
            raise
    # the public address (proxy, http-host) does not answer from here: our own unit does;
    # the certificate chain is still verified, its names may not include the local address
    local = registry_api.Registry(
        endpoint.local_url,
        user,
        password,
        endpoint.ca_file,
        check_hostname=False,
        client_pair=endpoint.client_pair,
    )
    local.ping()
    return local


def _action_log(line: str) -> None:
    try:
        subprocess.run(["action-log", line], check=False, timeout=30, capture_output=True)
    except (OSError, subprocess.SubprocessError):
        hookenv.log(line)


def _reference(text: str, name: str):
    from charms.layer.docker_registry import transfer

    try:
        return transfer.parse_reference(text)
    except transfer.TransferError as exc:
        raise ActionError(f"{name}: {exc}") from exc


def push(params: dict) -> dict:
    """Push a local docker image (pulled first unless pull=false) to the registry."""
    from charms.layer.docker_registry import transfer

    image = _text(params, "image", required=True)
    pull = _bool(params, "pull", True)
    tag = _text(params, "tag")
    _reference(image, "image")
    if tag:
        _reference(tag, "tag")
    endpoint = _ready()
    target = _transfer_target(endpoint, _config())
    result = transfer.push(image, target, tag=tag, pull=pull)
    return {
        "outcome": "success",
        "raw": f"pushed {result.tag}",
        "tag": result.tag,
        "digest": result.digest,
    }


def _image_list(params: dict, arches: tuple[str, ...]) -> tuple[list[str], list[str], str]:
    """(images, notes, what the list was) from images= and/or file=."""
    from charms.layer.docker_registry import imagelists

    text = _text(params, "images")
    file = _text(params, "file")
    release = _text(params, "release")
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


def mirror(params: dict) -> dict:
    """Copy images registry to registry, into the layout Charmed Kubernetes pulls from."""
    from charms.layer.docker_registry import imagelists, transfer

    concurrency = _int(params, "concurrency", 4, 1, 32)
    src_tls_verify = _bool(params, "src-tls-verify", True)
    all_platforms = _bool(params, "all-platforms", False)
    dry_run = _bool(params, "dry-run", False)
    prefix = imagelists.check_prefix(_text(params, "prefix"))
    rewrites = imagelists.parse_rewrites(_text(params, "source"))
    arches = imagelists.resolve_arch(_text(params, "arch"))
    images, notes, form = _image_list(params, arches)
    all_platforms = all_platforms or len(arches) > 1  # a cluster of several architectures
    endpoint = _ready()
    config = _config()
    target = _transfer_target(endpoint, config)
    items, repeats = imagelists.plan_mirror(
        images,
        netloc=endpoint.netloc,
        prefix=prefix,
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
        env = transfer.proxy_env(endpoint.netloc)
        api = _api_or_none(endpoint, config, notes)
        present = _present_check(
            api,
            target,
            arch=arches[0],
            all_platforms=all_platforms,
            tls_verify=src_tls_verify,
            env=env,
        )
        planned = sum(1 for i in items if i.status == "planned")
        _action_log(f"mirroring {planned} image(s) to {endpoint.netloc}, {concurrency} at a time")
        try:
            transfer.run_copies(
                items,
                target,
                concurrency=concurrency,
                src_args=[] if src_tls_verify else ["--src-tls-verify=false"],
                global_args=[] if all_platforms else ["--override-arch", arches[0]],
                env=env,
                present=present,
                log=_action_log,
            )
        finally:
            if api is not None:
                api.close()
    return _outcome("mirror", items, endpoint, prefix, dry_run, notes, info)


def import_images(params: dict) -> dict:
    """Push the images of archives on the unit (or the images resource) into the registry,
    in the same layout as mirror."""
    from charms.layer.docker_registry import imagelists, importer, transfer

    concurrency = _int(params, "concurrency", 4, 1, 32)
    dry_run = _bool(params, "dry-run", False)
    prefix = imagelists.check_prefix(_text(params, "prefix"))
    path = _text(params, "path") or _images_resource()
    found = importer.scan(path)
    endpoint = _ready()
    config = _config()
    target = _transfer_target(endpoint, config)
    preserve = transfer.supports_preserve_digests()
    items, skipped, repeats = importer.plan(
        found.images, netloc=endpoint.netloc, prefix=prefix, preserve=preserve
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
        env = transfer.proxy_env(endpoint.netloc)
        api = _api_or_none(endpoint, config, notes)
        present = _present_check(api, target, env=env)
        todo = [i for i in items if i.status == "planned"]
        _action_log(
            f"importing {len(todo)} image(s) to {endpoint.netloc}, {concurrency} at a time"
        )
        workdir = paths.current().path(IMPORT_DIR)
        try:
            with importer.extracted(importer.oci_archives(todo), workdir) as layouts:
                importer.use_extracted(todo, layouts)
                transfer.run_copies(
                    items,
                    target,
                    concurrency=concurrency,
                    env=env,
                    present=present,
                    log=_action_log,
                )
        finally:
            if api is not None:
                api.close()
        kept = [i for i in items if i.digest_kept is not None]
        info["digests-kept"] = f"{sum(1 for i in kept if i.digest_kept)} of {len(kept)}"
    return _outcome("import", items, endpoint, prefix, dry_run, notes, info)


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


def _api_or_none(endpoint: clients.Endpoint, config: settings.Settings, notes: list[str]):
    """The registry API for the already-there check; None (everything copied) without it."""
    from charms.layer.docker_registry import registry_api

    try:
        return _api(endpoint, config)
    except registry_api.RegistryApiError as exc:
        notes.append(f"the registry API did not answer ({exc}): nothing was skipped")
        return None


def _present_check(api, target, *, arch="", all_platforms=True, tls_verify=True, env=None):
    """Why an item need not be copied: the registry has the digest a copy would write there
    (mirror: the source's manifest, for ``arch`` unless all platforms; OCI archives: theirs),
    or, for docker save archives, a manifest with the same config (image ID)."""
    from charms.layer.docker_registry import imagelists, registry_api, transfer

    def present(item) -> str:
        if api is None:
            return ""
        ref = transfer.parse_reference(item.dest)
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
            want = imagelists.manifest_digest(raw, arch=arch, all_platforms=all_platforms)
        return "already in the registry with the same digest" if want == have else ""

    return present


def _outcome(kind, items, endpoint, prefix, dry_run, notes, info) -> dict:
    """Results within what action-set carries (a summary, problems first when not all fit);
    every image in the report file, whose path is in the results."""
    from charms.layer.docker_registry import imagelists

    counts = {s: sum(1 for i in items if i.status == s) for s in _STATUSES}
    value = imagelists.image_registry(endpoint.netloc, prefix)
    command = f"juju config kubernetes-control-plane image-registry={value}"
    ordered = items
    rows = [i.as_dict() for i in items]
    if len(json.dumps(rows)) > RESULTS_JSON_LIMIT:
        ordered = sorted(items, key=lambda i: i.ok)  # failed and refused first
        rows = [i.as_dict() for i in ordered]
    body = {
        "action": kind,
        "dry-run": dry_run,
        "registry": endpoint.netloc,
        "image-registry": value,
        "counts": counts,
        "notes": notes,
        **info,
        "images": [i.as_dict() for i in items],
    }
    report = _write_report(kind, body, notes)
    results_json, shown = imagelists.bounded_json(rows, RESULTS_JSON_LIMIT)
    head = (
        f"dry run: {counts['planned']} image(s) would go to {endpoint.netloc}"
        if dry_run
        else f"{counts['copied']} copied, {counts['present']} already there"
    )
    if counts["refused"]:
        head += f", {counts['refused']} refused (two sources, one destination)"
    if counts["failed"]:
        head += f", {counts['failed']} failed"
    head += f"; the cluster needs: {command}"
    summary = {
        "outcome": "success",
        "dry-run": str(dry_run).lower(),
        "images": str(len(items)),
        "copied": str(counts["copied"]),
        "skipped": str(counts["present"]),
        "failed": str(counts["failed"]),
        "refused": str(counts["refused"]),
        "image-registry": value,
        "juju-config": command,
        "report": report,
        "raw": imagelists.bounded_lines([head] + [i.line() for i in ordered], RAW_LIMIT),
        "results": results_json,
        **info,
    }
    if dry_run:
        summary["planned"] = str(counts["planned"])
    if notes:
        summary["notes"] = imagelists.bounded_lines(notes, NOTES_LIMIT)
    if shown < len(rows):
        summary["results-shown"] = f"{shown} of {len(rows)}: every image is in {report}"
    failed = [i for i in items if i.status == "failed"]
    refused = [i for i in items if i.status == "refused"]
    if dry_run or not (failed or refused):
        return summary
    summary["outcome"] = "failure"
    problems = []
    if failed:
        considered = len(items) - len(refused)
        problems.append(f"{len(failed)} of {considered} image(s) failed: {_names(failed)}")
    if refused:
        problems.append(
            f"{len(refused)} image(s) refused, each shares its destination with another: "
            f"{_names(refused)}"
        )
    raise ActionError("; ".join(problems), summary)


_STATUSES = ("planned", "copied", "present", "failed", "refused")


def _names(items) -> str:
    names = ", ".join(i.source for i in items[:20])
    return names + (f" and {len(items) - 20} more" if len(items) > 20 else "")


def _write_report(kind: str, body: dict, notes: list[str]) -> str:
    """The full report, JSON, under the reports directory (the last KEEP_REPORTS kept)."""
    from charms.layer.docker_registry import files

    directory = paths.current().path(REPORTS_DIR)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    ident = os.environ.get("JUJU_ACTION_UUID", "")[:8] or uuid.uuid4().hex[:8]
    path = directory / f"{kind}-{stamp}-{ident}.json"
    try:
        files.write_if_changed(path, json.dumps(body, indent=1) + "\n", 0o644)
        reports = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in reports[:-KEEP_REPORTS]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        notes.append(f"could not write the report {path}: {exc.strerror or 'unwritable'}")
        return ""
    return str(path)


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


def images(params: dict) -> dict:
    """Repositories and tags from the registry's API (local=true: the unit's docker images)."""
    from charms.layer.docker_registry import imagelists, registry_api

    options = _text(params, "options")
    repository = _text(params, "repository")
    local = _bool(params, "local", False)
    if local:
        argv = _local_options(options, _LOCAL_IMAGES_FLAGS, _LOCAL_IMAGES_VALUED)
        if repository:
            _reference(repository, "repository")
            argv.append(repository)
        out = container.docker("images", *argv, timeout=60)
        return {"outcome": "success", "raw": out.rstrip()}
    if options:
        raise ActionError("options: apply to the local docker listing only; add local=true")
    endpoint = _ready()
    if repository.startswith(endpoint.netloc + "/"):
        repository = repository[len(endpoint.netloc) + 1 :]
    if repository and not _REPO_FILTER_RE.match(repository):
        raise ActionError("repository: a repository name, prefix or pattern (* ? [])")
    api = _api(endpoint, _config())
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
    report = _write_report("images", {"repositories": listing}, notes)
    return {
        **result,
        "repositories": "",
        "raw": imagelists.bounded_lines(result["raw"].splitlines(), RAW_LIMIT),
        "report": report,
        "notes": " ".join(notes),
    }


def rmi(params: dict) -> dict:
    """Delete a tag (its manifest, by digest) from the registry; local=true: `docker rmi`."""
    image = _text(params, "image", required=True)
    options = _text(params, "options")
    local = _bool(params, "local", False)
    ref = _reference(image, "image")
    if local:
        argv = _local_options(options, _LOCAL_RMI_FLAGS)
        out = container.docker("rmi", *argv, image, timeout=120)
        return {"outcome": "success", "raw": out.rstrip()}
    if options:
        raise ActionError("options: apply to the local docker rmi only; add local=true")
    endpoint = _ready()
    config = _config()
    if ref.host and ref.host != endpoint.netloc:
        raise ActionError(f"image: {ref.host} is not this registry ({endpoint.netloc})")
    if not ref.tag and not ref.digest:
        raise ActionError("image: give repository:tag or repository@sha256:<digest>")
    if not config.storage_delete:
        raise ActionError(
            "deleting from the registry needs storage-delete=true "
            f"(juju config {hookenv.service_name()} storage-delete=true)"
        )
    api = _api(endpoint, config)
    try:
        return _delete(api, ref)
    finally:
        api.close()


def _delete(api, ref) -> dict:
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


def garbage_collect(params: dict) -> dict:
    """Registry GC with the registry stopped (never serving from a stale cache), restarted
    after, reporting space reclaimed and how long it was not writable."""
    from charms.layer.docker_registry import gc

    delete_untagged = _bool(params, "delete-untagged", False)
    dry_run = _bool(params, "dry-run", False)
    stopped_by_operator = is_flag_set(STOPPED_FLAG)
    endpoint = clients.Endpoint.from_dict(unitdata.kv().get(clients.ENDPOINT_KEY))
    if not stopped_by_operator:
        endpoint = _ready()
    config = _config()
    if config.storage.kind != "filesystem" and _peer_count() and not config.storage_read_only:
        # other units keep accepting uploads into the shared storage while GC deletes blobs
        raise ActionError(
            "other units share this storage: set storage-read-only=true first "
            f"(juju config {hookenv.service_name()} storage-read-only=true), run "
            "garbage-collect on one unit, then set it back to false"
        )
    plan = gc.plan_from_run_argv(unitdata.kv().get(RUN_ARGV_KEY) or [])
    if config.storage.kind != "filesystem":
        plan = gc.GcPlan(plan.name, plan.image, plan.volumes, plan.env_file, "")
    if not dry_run and not stopped_by_operator:
        hookenv.status_set("maintenance", "Garbage collection: the registry is stopped.")
    try:
        result = gc.garbage_collect(
            plan,
            probe_url=endpoint.local_url if endpoint else "",
            delete_untagged=delete_untagged,
            dry_run=dry_run,
        )
    finally:
        if not dry_run and not stopped_by_operator:
            _report_ready(plan.name)
    reclaimed = "unknown" if result.reclaimed is None else str(result.reclaimed)
    eligible = (
        f"{result.blobs_eligible} blob(s) and {result.manifests_eligible} manifest(s)"
        if result.blobs_eligible is not None
        else "an unknown number of blobs"
    )
    if dry_run:
        raw = f"dry run: {eligible} would be deleted; the registry kept serving"
    else:
        raw = (
            f"deleted {eligible}; reclaimed {_human(result.reclaimed)}; the registry was not "
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
