"""The doors into one pipeline per hook: gather, decide, apply, record.

``reconcile`` is the pipeline. It runs in every hook once the engine is installed, and again
in the same hook only when an interface layer changes one of the flags it watches after it ran
(the tls-certificates layer sets ``cert-provider.server.certs.available`` in the very hook the
certificate arrives) and then only if what it gathered differs. So whatever a hook brings (a
certificate, a proxy address, a peer, a client) takes effect in that hook.

The status is decided once, at the end of every hook, from what the last run found.
"""

from __future__ import annotations

import os
import socket

from charmhelpers.core import hookenv, unitdata
from charmhelpers.fetch import apt_install, apt_update
from charms.reactive import (
    clear_flag,
    endpoint_from_name,
    hook,
    is_flag_set,
    set_flag,
    toggle_flag,
    when,
    when_any,
    when_not,
)

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.config import credentials, settings
from charms.layer.docker_registry.errors import ConfigError, InstallError, RegistryCharmError
from charms.layer.docker_registry.host import engine, lock, paths, workload
from charms.layer.docker_registry.pipeline import apply as applying
from charms.layer.docker_registry.pipeline import (
    clients,
    datastore,
    publish,
    pull_through,
    replication,
    rolling,
    status,
)
from charms.layer.docker_registry.pipeline.plan import Inputs, Plan, decide

INSTALLED = "docker-registry.installed"
STOPPED = records.STOPPED_FLAG
REMOVED = "docker-registry.removed"
CONFIGURED = records.CONFIGURED_FLAG  # the registry answers: actions may use it
# Flags other layers set during dispatch that change what the pipeline decides.
WATCHED = (
    INSTALLED,
    "cert-provider.available",
    "cert-provider.ca.available",
    "cert-provider.ca.changed",
    "cert-provider.server.certs.available",
    "cert-provider.server.certs.changed",
    "cert-provider.client.cert.available",
    "website.available",
)

_install_report = status.Report()
_last: dict = {"inputs": None, "report": None}  # the pipeline's last run in this hook


def report_status() -> None:
    report = _last["report"] if _install_report.empty() and _last["report"] else _install_report
    hookenv.status_set(*status.decide(report))
    if report.ready_at:  # what actions that restart the registry report again
        records.save_serving(report)


hookenv.atexit(report_status)


def _apt(packages: list[str]) -> None:
    apt_update(fatal=True)
    apt_install(packages, fatal=True)


@hook("upgrade-charm")
def recheck_install() -> None:
    clear_flag(INSTALLED)


@when_not(INSTALLED, REMOVED)
def install() -> None:
    hookenv.status_set(*status.decide(status.busy("Installing the Docker engine.")))
    try:
        engine.ensure_engine(_apt)
        engine.ensure_tools(_apt)
    except RegistryCharmError as exc:
        _install_report.block(str(exc) + ".")
        return
    set_flag(INSTALLED)


@when(INSTALLED)
@when_not(REMOVED)
@when_any(*WATCHED)  # always true here: it names the flags whose change re-runs the pipeline
def reconcile() -> None:
    inputs = gather()
    if inputs == _last["inputs"]:
        return  # a watched flag changed, but nothing this pipeline reads did
    _last["inputs"] = inputs
    _last["report"] = report = status.Report()
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
        _stop_while_detached(inputs, report)
        return
    except InstallError as exc:  # openssl, which checks tls-*-blob, is gone
        report.block(str(exc) + ".")
        return
    report.add(store.report)
    if store.hold:  # the store could not be read: nothing is touched
        return
    records.save_credentials_keys(credentials.record_of(inputs.secret))
    report.add(plan.report)
    name = paths.current().container_name(config.registry_name)
    try:
        with lock.registry_lock(paths.current()):  # never beside a garbage collection
            if _apply_store(name, store, report):
                apply(config, inputs, plan, report)
    except lock.LockBusy as exc:
        report.wait(f"{exc}; the next hook applies the config.")
    except OSError as exc:  # a full disk, a directory where a file should be, ...
        what = exc.filename or "a file"
        report.block(f"Cannot write {what}: {exc.strerror or exc}.")


def _decide_store(config: settings.Settings | None, inputs: Inputs) -> datastore.Decision:
    """(``config`` None: it does not parse; a registry it ran may still store on the volume.)"""
    return datastore.decide(
        inputs.datastore,
        datastore.Record.from_dict(unitdata.kv().get(records.DATASTORE)),
        unit=hookenv.local_unit(),
        filesystem=config is None or config.storage.kind == "filesystem",
    )


def _stop_while_detached(inputs: Inputs, report: status.Report) -> None:
    """Whatever the config says, a registry whose volume went away must not run on."""
    store = _decide_store(None, inputs)
    if store.serve or store.hold:
        return
    try:
        with lock.registry_lock(paths.current()):
            _apply_store(actions.registry_container(), store, report)
    except lock.LockBusy as exc:
        report.wait(f"{exc}; the next hook stops the registry.")
    report.add(store.report)


def _apply_store(name: str, store: datastore.Decision, report: status.Report) -> bool:
    """The registry-data store's apply step: stop the registry while its volume is away, or
    move it onto a volume that came; whether the rest of the pipeline may go on."""
    kv = unitdata.kv()
    before = datastore.Record.from_dict(kv.get(records.DATASTORE))
    host = paths.current()
    recorded = applying.recorded_name(kv.get(records.RUN))
    try:
        if not store.serve:
            if datastore.stop_registry(name, recorded):
                hookenv.log(f"registry container {name}: stopped, its storage is detached")
            clear_flag(CONFIGURED)
        else:
            done = datastore.rebind(host, before, store.record, name, recorded)
            if done:
                hookenv.log(f"registry container {done}")
    except RegistryCharmError as exc:  # the registry keeps its data where it was
        report.block(f"Cannot move the registry onto storage {store.record.volume}: {exc}.")
        return False
    kv.set(records.DATASTORE, store.record.as_dict())
    return store.serve


@hook("stop")
def remove_container() -> None:
    """The unit is going away: remove its container (the stored images stay on disk)."""
    set_flag(REMOVED)
    name = actions.registry_container()
    try:
        workload.remove_ours(name, applying.recorded_name(unitdata.kv().get(records.RUN)))
        pull_through.remove_caches(paths.current())
    except RegistryCharmError as exc:
        hookenv.log(f"could not remove {name}: {exc}", hookenv.WARNING)
    _install_report.busy("Stopped.")


# --- gather: everything the pipeline reads, read once ---------------------------------------


def gather() -> Inputs:
    """What the plan needs, asking Juju only for what this unit's relations make relevant (a
    no-op hook should cost few hook tools): the public address only for a certificate request,
    the peers only for the proxy, the nrpe relation only once the nrpe layer saw it."""
    provider = endpoint_from_name("cert-provider")
    website = endpoint_from_name("website")
    tls_joined = is_flag_set("endpoint.cert-provider.joined")
    issued = {}
    if tls_joined:
        issued = {c.common_name: (c.cert, c.key) for c in provider.server_certs}
    client_cert = provider.get_client_cert() if tls_joined else (None, None)
    nrpe = is_flag_set("nrpe-external-master.available")
    config = dict(hookenv.config())
    # (cleared in the hook its last unit departs: the listener goes back to what config says)
    collector = is_flag_set("endpoint.cos-agent.joined")
    peers, turns = _peers() if website.relations else ({}, {})
    return Inputs(
        config=config,
        address=hookenv.unit_private_ip(),
        public_address=hookenv.unit_public_ip() if tls_joined else "",
        hostname=socket.gethostname(),
        leader=hookenv.is_leader(),
        stopped=is_flag_set(STOPPED),
        tls_joined=tls_joined,
        issued=issued,
        ca=(provider.get_ca() or "") if tls_joined else "",
        chain=(provider.get_chain() or "") if tls_joined else "",
        client_cert=tuple(client_cert),
        proxies=publish.proxy_public_addresses(website),
        peers=peers,
        replica=replication.gather() if website.relations else None,
        clients=bool(endpoint_from_name("docker-registry").relations),
        nrpe=hookenv.relation_ids("nrpe-external-master") if nrpe else [],
        # the latest revision: Juju then tells this unit of the next one (secret-changed)
        secret=credentials.with_record(
            credentials.read(config.get(credentials.OPTION), refresh=True),
            records.credentials_keys(),
        ),
        served_https=_served_https(),
        collector=collector,
        datastore=datastore.observe(
            paths.current(), hookenv.hook_name(), os.environ.get("JUJU_STORAGE_ID", "")
        ),
        turns=turns,
    )


def _served_https() -> bool:
    """Whether clients were told https before this hook (the endpoint record of the last
    serving hook, read once a hook: what this hook's own apply records does not count)."""
    if "served_https" not in _last:
        endpoint = records.endpoint()
        _last["served_https"] = bool(endpoint and endpoint.url.startswith("https://"))
    return _last["served_https"]


def _peers() -> tuple[dict[str, str], dict[str, dict]]:
    """Every unit of the application (this one included) -> its address: Juju's
    ``ingress-address`` (or ``private-address``); and every other unit -> what it reported of
    rolling changes (rolling.TOKEN, rolling.STATE)."""
    units = {hookenv.local_unit(): hookenv.unit_private_ip()}
    turns = {}
    for rid in hookenv.relation_ids("peer"):
        for unit in hookenv.related_units(rid):
            data = hookenv.relation_get(unit=unit, rid=rid) or {}
            turns[unit] = {k: str(data.get(k) or "") for k in (rolling.TOKEN, rolling.STATE)}
            address = (data.get("ingress-address") or data.get("private-address") or "").strip()
            if clients.is_host(address.strip("[]")):
                units[unit] = address.strip("[]")
            else:
                hookenv.log(f"peer {unit} has no usable address; left out of the proxy")
    return units, turns


# --- apply and record --------------------------------------------------------------------------


def apply(config: settings.Settings, inputs: Inputs, plan: Plan, report: status.Report) -> None:
    host = paths.current()
    if plan.request_cert:
        endpoint_from_name("cert-provider").request_server_cert(plan.common_name, plan.sans)
    if inputs.collector:  # its scrape job says whether the registry is up, whatever happens
        applying.tell_collector(endpoint_from_name("cos-agent"), config)
    if plan.problem:
        report.block(plan.problem)
        clear_flag(CONFIGURED)
        return
    try:
        common = applying.shared(config, inputs, host)
        wanted, turn = applying.turn(inputs, common)
        desired, outcome = applying.registry(config, inputs, plan, host, common, not turn.go)
    except RegistryCharmError as exc:
        report.block(str(exc))
        clear_flag(CONFIGURED)
        return
    toggle_flag(CONFIGURED, outcome.answering)
    held = pull_through.apply_caches(config, inputs, plan, host, common, report, not turn.go)
    held = held or outcome.action == workload.WAITING_TURN
    applying.tell_peers(wanted, rolling.state(held, outcome.answering, outcome.problem))
    if held or outcome.problem:
        # the previous (last good) registry serves on; clients and the proxy keep what they
        # were told
        _not_applied(outcome, turn.message if held else "", report)
        return
    applying.sync_ports(plan.ports)
    if outcome.action == "stopped-by-operator":
        report.add(status.stopped(desired.run.name))
        return
    if not outcome.answering:  # (its storage health check failing: blocked, naming it)
        applying.report_storage(config, plan, host, outcome, report)
        return
    report.add(plan.when_serving)
    primary = replication.step(config, inputs, plan, host, report)  # filesystem behind a proxy
    if plan.tell_peers:  # (while TLS is expected but not here, nobody is told http)
        publish.to_clients(endpoint_from_name("docker-registry"), config, plan, desired.scheme)
        publish.to_proxy(endpoint_from_name("website"), config, inputs, plan, primary)
    applying.tell_this_unit(config, inputs, plan, host, desired.scheme, outcome.probe_url, report)
    # the registry answers /v2/, yet may not store or serve a thing (after tell_this_unit:
    # under mutual TLS the catalog is asked with this unit's client certificate)
    applying.report_storage(config, plan, host, outcome, report)


def _not_applied(outcome: workload.Outcome, waiting: str, report: status.Report) -> None:
    """Why the new config does not serve: it is not this unit's turn (rolling changes), or it
    was rolled back."""
    if waiting:
        report.wait(waiting)
        return
    serving = "serving the last good config" if outcome.answering else "not serving"
    report.block(f"{outcome.problem}; {serving}.")
