"""Apply the decided work to this unit and record it: ``prepare`` finds what the host has
(the image, the http secret, the htpasswd line, the upstreams), then the registry
(health-gated, through ``workload``), the rolling turn, its ports, this unit's nrpe check and
docker trust, and the unit kv records actions read. What it needs of Juju is in ``Inputs``;
what it tells Juju goes through ``juju``."""

from __future__ import annotations

import secrets

from charmhelpers.core import unitdata

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import settings
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import (
    auth,
    container,
    engine,
    nrpe,
    paths,
    trust,
    workload,
)
from charms.layer.docker_registry.pipeline import (
    caches,
    clients,
    juju,
    layout,
    render,
    rolling,
    runspec,
    status,
    work,
)
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan

HEALTH_MARGIN = 2  # seconds a storage health check may take (a failing one, refused: ms)


def prepare(config: settings.Settings, inputs: Inputs, host: paths.Host) -> work.Facts:
    """What the runs need that only the host has: the image (loaded or pulled when missing),
    the http secret (the leader shares it), the htpasswd line and each cache's upstream."""
    image = engine.ensure_image(
        config.registry_image,
        inputs.resource,
        inputs.recorded.image_digest,
        recheck=inputs.hook in ("install", "upgrade-charm"),  # a resource may be new
    )
    unitdata.kv().set(records.IMAGE_DIGEST, image.token)
    basic = config.basic_auth
    htpasswd_path = host.path(layout.HTPASSWD_FILE)
    return work.Facts(
        image_id=image.id,
        http_secret=http_secret(inputs),
        htpasswd=auth.htpasswd_line(basic.user, basic.password, htpasswd_path) if basic else "",
        resource=image.token.partition("@")[0],
        upstreams=caches.probe_upstreams(
            config.caches, http_proxy=config.http_proxy, https_proxy=config.https_proxy
        ),
    )


def registry(
    config: settings.Settings,
    inputs: Inputs,
    todo: work.Work,
    host: paths.Host,
    facts: work.Facts,
) -> workload.Outcome:
    """Files and container, health-gated; records what runs."""
    kv = unitdata.kv()
    recorded = inputs.recorded
    outcome, managed = workload.apply(
        todo.registry,
        image_id=facts.image_id,
        host=host,
        managed_files=list(recorded.managed_files),
        allow_start=not inputs.stopped,
        announce=lambda current: juju.announce(
            "Reconfiguring the registry." if current else "Configuring the registry."
        ),
        last_good=recorded.last_good,
        failed=recorded.failed,
        secrets=config.secret_values,
        recorded=recorded_name(recorded.run),
        changed=todo.changed,
        hold=not todo.turn.go,
    )
    if outcome.answering and outcome.action not in ("rolled-back", "held", workload.WAITING_TURN):
        kv.set(records.GOOD_OPTIONS, dict(todo.digests))
    kv.set(records.MANAGED_FILES, managed)
    records.save_container_run(outcome.run)
    kv.set(records.LAST_GOOD, outcome.last_good)
    kv.set(records.FAILED, outcome.failed)
    if outcome.action != "unchanged":
        juju.log(f"registry container {todo.registry.run.name}: {outcome.action}")
    return outcome


def record_turn(todo: work.Work) -> None:
    """Whom this unit waits for (since when), for the next hook's patience."""
    verdict = todo.turn
    unitdata.kv().set(records.TURN_WAIT, verdict.waited.as_record() if verdict.waited else None)
    for unit in verdict.passed_over:
        juju.log(
            f"{unit} did not apply the new config within {rolling.PATIENCE:.0f} s: "
            "not waited for any longer",
            juju.WARNING,
        )


def tell_peers(inputs: Inputs, wanted: str, state: str) -> None:
    """Report on the peer relation where this unit stands with the config ``wanted`` (the units
    after it in turn order wait for it); only what changed."""
    told = {rolling.TOKEN: wanted, rolling.STATE: state}
    if not wanted or inputs.recorded.turn_told == told:
        return
    juju.tell_peers(inputs.peer_relations, told)
    unitdata.kv().set(records.TURN_TOLD, told)


def recorded_name(record: dict | None) -> tuple[str, ...]:
    """The container a run record names (what the charm last ran), to adopt."""
    run = runspec.ContainerRun.from_record(record)
    return (run.spec.name,) if run else ()


def tell_this_unit(
    config: settings.Settings,
    inputs: Inputs,
    plan: Plan,
    todo: work.Work,
    host: paths.Host,
    report: status.Report,
) -> None:
    """A serving registry: this unit's nrpe check and docker learn of it, and actions where
    it answers (the endpoint record)."""
    endpoint = todo.endpoint
    if inputs.nrpe:
        basic = (config.basic_auth.user, config.basic_auth.password) if config.basic_auth else None
        scheme = todo.registry.scheme
        check = nrpe.configure(
            host,
            basic,
            inputs.address,
            config.registry_port,
            scheme,
            endpoint.ca_file,
            plan.identity,
        )
        juju.tell_nrpe(inputs.nrpe, nrpe.monitors(check))
    ca = plan.tls.ca if plan.tls else ""
    trusted = trust.trust(
        host, netloc=plan.netloc, ca=ca, previous=inputs.recorded.trust, client=plan.identity
    )
    if trusted.get("reload_failed"):
        report.notes.append("Warning: dockerd did not reload daemon.json (insecure-registries).")
    unitdata.kv().set(records.TRUST, trusted)
    records.save_endpoint(endpoint)


def report_storage(
    config: settings.Settings,
    plan: Plan,
    host: paths.Host,
    outcome: workload.Outcome,
    report: status.Report,
) -> None:
    """Blocks when the registry cannot reach its object storage (a registry whose storage
    health check fails answers 503 to every request, /v2/ too); one that does not answer
    otherwise is waited for."""
    client_pair = None
    if plan.identity:  # mutual TLS: this unit's client certificate, once trust wrote it
        cert, key = trust.client_files(host, plan.netloc)
        client_pair = (str(cert), str(key)) if cert.exists() and key.exists() else None
    problem = storage_unreachable(config, outcome, client_pair)
    if problem:
        report.block(problem)
    elif not outcome.answering:
        report.wait(f"Waiting for the registry to answer at {outcome.probe_url}/v2/.")


def storage_unreachable(
    config: settings.Settings,
    outcome: workload.Outcome,
    client_pair: tuple[str, str] | None = None,
) -> str:
    """Why "Ready" would be untrue of object storage the registry cannot reach ("" if it can,
    or when that cannot be told): /v2/ answers whether or not the storage does. The catalog
    tells at once where the charm may list it (with this unit's client certificate under
    mutual TLS); with token auth the registry's own storage health check does, once its
    verdict is in (the hook waits for it after a start)."""
    if config.storage.kind == "filesystem":
        return ""
    interval, threshold = render.storage_health(config.storage.kind)
    verdict_at = interval * threshold + HEALTH_MARGIN  # after the start: failed checks in a row

    def health_after() -> float:
        """How long the registry's first verdict is still to come (it ran that long)."""
        try:
            state = container.inspect(outcome.run.spec.name)
        except RegistryCharmError:
            return verdict_at
        running = container.running_for(state) if state else None
        return 0.0 if running is None else min(verdict_at, max(0.0, verdict_at - running))

    basic = config.basic_auth
    answers = clients.storage_answers(
        outcome.probe_url,
        *((basic.user, basic.password) if basic else ()),
        client_pair=client_pair,
        health_after=health_after,
    )
    if answers is not False:
        return ""
    return f"storage-{config.storage.kind}-*: the registry cannot reach its storage backend."


def http_secret(inputs: Inputs) -> str:
    """One secret for every unit (uploads that hop between units behind a proxy), in a Juju
    secret the application owns: leader data holds only its URI, since leader-set takes its
    values as command-line arguments. An earlier revision's value in leader data is moved into
    such a secret (the same value: no registry restarts for it)."""
    leader = inputs.leader_data
    shared, legacy = leader.http_secret, leader.legacy_http_secret
    if leader.http_secret_id and not shared:  # a failed secret-get must not rotate it
        juju.log("secret-get failed: the shared http secret is not read", juju.WARNING)
    if inputs.leader and not leader.http_secret_id:
        shared = legacy or secrets.token_urlsafe(32)
        if not juju.share_http_secret(shared):
            juju.log("secret-add failed: the http secret is kept on this unit", juju.WARNING)
            shared = legacy
    shared = shared or legacy
    if shared:
        return shared
    local = inputs.recorded.local_secret or secrets.token_urlsafe(32)
    unitdata.kv().set(records.LOCAL_SECRET, local)
    return local


def sync_ports(plan: Plan, todo: work.Work, inputs: Inputs) -> None:
    """Open what the plan wants, close the rest; record what is open."""
    if todo.open_ports or todo.close_ports:
        juju.set_ports(close=todo.close_ports, open_=todo.open_ports)
    if inputs.recorded.ports != tuple(sorted(plan.ports)):
        unitdata.kv().set(records.PORTS, sorted(plan.ports))
