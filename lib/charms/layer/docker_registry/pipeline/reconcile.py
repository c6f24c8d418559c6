"""One run of the pipeline, from what ``juju.gather`` read to what the status says: decide
(``settings.parse``, ``datastore.decide``, ``plan.decide``: pure), then apply in a fixed order
(the store, the registry, the caches, the peers, the ports, replication, the relations, this
unit's own checks and records). A run changes nothing it cannot finish: an invalid config, a
store that cannot be read or a busy lock leave the registry and everything it told as they
were.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from charmhelpers.core import unitdata

from charms.layer.docker_registry import records
from charms.layer.docker_registry.config import credentials, settings
from charms.layer.docker_registry.errors import ConfigError, InstallError, RegistryCharmError
from charms.layer.docker_registry.host import lock, paths, workload
from charms.layer.docker_registry.pipeline import apply as applying
from charms.layer.docker_registry.pipeline import (
    datastore,
    juju,
    publish,
    pull_through,
    replication,
    rolling,
    status,
    work,
)
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan, decide


@dataclass
class Result:
    report: status.Report = field(default_factory=status.Report)
    configured: bool | None = None  # whether the registry answers (None: as before)


def run(inputs: Inputs) -> Result:
    result = Result()
    report = result.report
    if inputs.secret is None:  # credentials unset: a secret set later is taken afresh
        records.save_credentials_keys(None)
    try:
        config = settings.parse(credentials.effective_config(inputs.config, inputs.secret))
        store = _decide_store(config, inputs)
        config = datastore.effective(config, store)  # read-only while the volume is full
        plan = decide(config, inputs)
    except ConfigError as exc:
        # the running registry, its clients and the proxy keep the last good config
        report.block(f"Invalid charm config: {exc.summary()}")
        _stop_while_detached(inputs, result)
        return result
    except InstallError as exc:  # openssl, which checks tls-*-blob, is gone
        report.block(str(exc) + ".")
        return result
    report.add(store.report)
    if store.hold:  # the store could not be read: nothing is touched
        return result
    records.save_credentials_keys(credentials.record_of(inputs.secret))
    report.add(plan.report)
    name = paths.current().container_name(config.registry_name)
    try:
        with lock.registry_lock(paths.current()):  # never beside a garbage collection
            if _apply_store(inputs, name, store, result):
                _apply(config, inputs, plan, result)
    except lock.LockBusy as exc:
        report.wait(f"{exc}; the next hook applies the config.")
    except OSError as exc:  # a full disk, a directory where a file should be, ...
        what = exc.filename or "a file"
        report.block(f"Cannot write {what}: {exc.strerror or exc}.")
    return result


def remove(name: str) -> None:
    """The unit is going away: its container and its caches' go (stored images stay)."""
    try:
        workload.remove_ours(name, applying.recorded_name(unitdata.kv().get(records.RUN)))
        pull_through.remove_caches(paths.current())
    except RegistryCharmError as exc:
        juju.log(f"could not remove {name}: {exc}", juju.WARNING)


def _decide_store(config: settings.Settings | None, inputs: Inputs) -> datastore.Decision:
    """(``config`` None: it does not parse; a registry it ran may still store on the volume.)"""
    return datastore.decide(
        inputs.datastore,
        datastore.Record.from_dict(inputs.recorded.datastore),
        unit=inputs.unit,
        filesystem=config is None or config.storage.kind == "filesystem",
    )


def _stop_while_detached(inputs: Inputs, result: Result) -> None:
    """Whatever the config says, a registry whose volume went away must not run on."""
    store = _decide_store(None, inputs)
    if store.serve or store.hold:
        return
    try:
        with lock.registry_lock(paths.current()):
            name = paths.current().container_name(settings.registry_name_or_default(inputs.config))
            _apply_store(inputs, name, store, result)
    except lock.LockBusy as exc:
        result.report.wait(f"{exc}; the next hook stops the registry.")
    result.report.add(store.report)


def _apply_store(inputs: Inputs, name: str, store: datastore.Decision, result: Result) -> bool:
    """The registry-data store's apply step: stop the registry while its volume is away, or
    move it onto a volume that came; whether the rest of the pipeline may go on."""
    before = datastore.Record.from_dict(inputs.recorded.datastore)
    recorded = applying.recorded_name(inputs.recorded.run)
    try:
        if not store.serve:
            if datastore.stop_registry(name, recorded):
                juju.log(f"registry container {name}: stopped, its storage is detached")
            result.configured = False
        else:
            done = datastore.rebind(paths.current(), before, store.record, name, recorded)
            if done:
                juju.log(f"registry container {done}")
    except RegistryCharmError as exc:  # the registry keeps its data where it was
        result.report.block(f"Cannot move the registry onto storage {store.record.volume}: {exc}.")
        return False
    unitdata.kv().set(records.DATASTORE, store.record.as_dict())
    return store.serve


def _apply(config: settings.Settings, inputs: Inputs, plan: Plan, result: Result) -> None:
    host, report = paths.current(), result.report
    if plan.request_cert:
        juju.request_cert(plan.common_name, plan.sans)
    if inputs.collector:  # its scrape job says whether the registry is up, whatever happens
        juju.tell_collector(config.debug_port, inputs)
    if plan.problem:
        report.block(plan.problem)
        result.configured = False
        return
    try:
        facts = applying.prepare(config, inputs, host)
        todo = work.decide(config, inputs, plan, facts)
        applying.record_turn(todo)
        outcome = applying.registry(config, inputs, todo, host, facts)
    except RegistryCharmError as exc:
        report.block(str(exc))
        result.configured = False
        return
    result.configured = outcome.answering
    held = pull_through.apply_caches(config, inputs, todo, host, facts, report)
    held = held or outcome.action == workload.WAITING_TURN
    state = rolling.state(held, outcome.answering, outcome.problem)
    applying.tell_peers(inputs, todo.token, state)
    if held or outcome.problem:
        # the previous (last good) registry serves on; clients and the proxy keep what they
        # were told
        _not_applied(outcome, todo.turn.message if held else "", report)
        return
    applying.sync_ports(plan, todo, inputs)
    if outcome.action == "stopped-by-operator":
        report.add(status.stopped(todo.registry.run.name))
        return
    if not outcome.answering:  # (its storage health check failing: blocked, naming it)
        applying.report_storage(config, plan, host, outcome, report)
        return
    report.add(plan.when_serving)
    primary = replication.step(config, inputs, plan, host, report)  # filesystem behind a proxy
    if plan.tell_peers:  # (while TLS is expected but not here, nobody is told http)
        _tell_relations(config, inputs, plan, todo, primary)
    applying.tell_this_unit(config, inputs, plan, todo, host, report)
    # the registry answers /v2/, yet may not store or serve a thing (after tell_this_unit:
    # under mutual TLS the catalog is asked with this unit's client certificate)
    applying.report_storage(config, plan, host, outcome, report)


def _tell_relations(
    config: settings.Settings, inputs: Inputs, plan: Plan, todo: work.Work, primary: str | None
) -> None:
    """Clients and the proxy learn where and how the registry serves."""
    if inputs.clients:
        juju.tell_clients(todo.client_data, inputs.requests_pending)
    if inputs.peers:  # (gathered only with the proxy related)
        services = publish.to_proxy(config, inputs, plan, primary)
        juju.tell_proxy(services, config.registry_port, inputs.address, inputs.hostname)


def _not_applied(outcome: workload.Outcome, waiting: str, report: status.Report) -> None:
    """Why the new config does not serve: it is not this unit's turn (rolling changes), or it
    was rolled back."""
    if waiting:
        report.wait(waiting)
        return
    serving = "serving the last good config" if outcome.answering else "not serving"
    report.block(f"{outcome.problem}; {serving}.")
