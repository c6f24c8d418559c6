"""The apply step for the pull-through caches: each one rendered and health-gated like the push
registry, read-only while its upstream cannot be reached, removed (container, files, data)
once dropped from the caches option.
"""

from __future__ import annotations

import shutil

from charmhelpers.core import unitdata

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import (
    files,
    paths,
    workload,
)
from charms.layer.docker_registry.pipeline import (
    juju,
    layout,
    runspec,
    status,
    work,
)
from charms.layer.docker_registry.pipeline.apply import recorded_name
from charms.layer.docker_registry.pipeline.plan import Inputs


def apply_caches(
    config: settings.Settings,
    inputs: Inputs,
    todo: work.Work,
    host: paths.Host,
    facts: work.Facts,
    report: status.Report,
) -> bool:
    """One registry container per upstream in ``caches``, each through the same health-gated
    apply as the push registry (own files, last good state and rollback). A cache whose
    upstream cannot be reached keeps serving what it holds; it and any cache that fails are
    reported, never blocking the push registry or the other caches. Caches no longer
    configured are removed (their stored content stays). Not this unit's turn (rolling
    changes): a serving cache is not changed; returns whether a change was held."""
    known = inputs.recorded.caches
    if not (todo.caches or known):
        return False
    held = False
    kept = {}
    for each in todo.caches:
        cache, verdict = each.cache, each.verdict
        record = known.get(cache.host) or {}
        try:
            record, down = _cache(config, each, facts, host, record, not todo.turn.go)
            held = held or record.pop("held", False)
        except RegistryCharmError as exc:
            down = f"{cache.host} not serving: {str(exc).rstrip('.')}"
        kept[cache.host] = record
        if not verdict.reachable:
            juju.log(f"the upstream of {cache.host} is unreachable: {verdict.why}")
        if verdict.basic_auth and cache.username:
            report.notes.append(
                f"Note: registry 2.8 does not send caches-credentials to {cache.host} "
                "(it asks for basic auth)."
            )
        if down:
            report.caches_down.append(down)
        else:
            report.caches.append(cache.host)
    for gone in sorted(set(known) - set(kept)):
        remove_cache(host, known[gone])
    unitdata.kv().set(records.CACHES, kept)
    return held


def _cache(
    config: settings.Settings,
    todo: work.CacheWork,
    facts: work.Facts,
    host: paths.Host,
    record: dict,
    hold: bool = False,
) -> tuple[dict, str]:
    """Converge one cache, given what the probe found of its upstream: (its new record, what
    the status says of it or "" when serving)."""
    wanted, cache, verdict = todo.desired, todo.cache, todo.verdict
    outcome, managed = workload.apply(
        wanted,
        image_id=facts.image_id,
        host=host,
        managed_files=record.get("managed", []),
        allow_start=True,
        last_good=record.get("last_good"),
        failed=record.get("failed"),
        secrets=config.secret_values,
        recorded=recorded_name(record.get("run")),
        hold=hold,
    )
    if outcome.action != "unchanged":
        juju.log(f"cache container {wanted.run.name}: {outcome.action}")
    held = outcome.action == workload.WAITING_TURN  # (what runs is still the previous mode)
    record = {
        "run": outcome.run.as_record(),
        "managed": managed,
        "last_good": outcome.last_good,
        "failed": outcome.failed,
        "config_dir": wanted.config_dir,
        "url": outcome.probe_url,
        "offline": record.get("offline", False) if held else not verdict.reachable,
    }
    if held:
        record["held"] = True
    if not outcome.answering:
        return record, f"{cache.host} not answering"
    if not verdict.reachable:
        return record, f"{cache.host} unreachable"
    if outcome.problem:
        return record, f"{cache.host} kept its last good config (the new one did not start)"
    return record, ""


def remove_cache(host: paths.Host, record: dict) -> None:
    """A cache taken out of ``caches`` (or a unit going away): its container and files go,
    its stored content stays (adding the upstream again finds it warm)."""
    run = runspec.ContainerRun.from_record(record.get("run"))
    if run:
        workload.remove_ours(run.spec.name, (run.spec.name,))
    files.sync(host, [], record.get("managed", []))
    config_dir = record.get("config_dir", "")
    if config_dir.startswith(f"{paths.CONFIG_DIR}/{layout.CACHES_DIR}/"):
        shutil.rmtree(host.path(config_dir), ignore_errors=True)


def remove_caches(host: paths.Host) -> None:
    """The unit is going away: every cache container goes (stored content stays)."""
    kv = unitdata.kv()
    for record in (kv.get(records.CACHES) or {}).values():
        remove_cache(host, record)
    kv.set(records.CACHES, {})
