"""The doors into one pipeline per hook: gather (``juju.gather``), then ``reconcile.run``:
decide, apply, record. The handlers only wire: flags in, the pipeline, flags and status out.

``reconcile`` runs in every hook once the engine is installed, and again in the same hook only
when an interface layer changes one of the flags it watches after it ran (the tls-certificates
layer sets ``cert-provider.server.certs.available`` in the very hook the certificate arrives)
and then only if what it gathered differs. So whatever a hook brings (a certificate, a proxy
address, a peer, a client) takes effect in that hook.

The status is decided once, at the end of every hook, from what the last run found.
"""

from __future__ import annotations

from charmhelpers.core import hookenv
from charmhelpers.fetch import apt_install, apt_update
from charms.reactive import clear_flag, hook, set_flag, toggle_flag, when, when_any, when_not

from charms.layer.docker_registry import actions, records
from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import engine
from charms.layer.docker_registry.pipeline import juju, status
from charms.layer.docker_registry.pipeline import reconcile as pipeline

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
    juju.set_status(*status.decide(report))
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
    juju.set_status(*status.decide(status.busy("Installing the Docker engine.")))
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
    inputs = juju.gather()
    if inputs == _last["inputs"]:
        return  # a watched flag changed, but nothing this pipeline reads did
    _last["inputs"] = inputs
    result = pipeline.run(inputs)
    _last["report"] = result.report
    if result.configured is not None:
        toggle_flag(CONFIGURED, result.configured)


@hook("stop")
def remove_container() -> None:
    """The unit is going away: remove its container (the stored images stay on disk)."""
    set_flag(REMOVED)
    pipeline.remove(actions.registry_container())
    _install_report.busy("Stopped.")
