"""Support for the charm's actions: parameter checks and container start/stop.

The action scripts in actions/ stay thin: read params, call ``run``, which reports
results with action-set and turns every failure into action-fail (never a traceback).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from charmhelpers.core import hookenv, unitdata
from charms.reactive import clear_flag, set_flag

from charms.layer.docker_registry import clients, container, paths, settings, status
from charms.layer.docker_registry.errors import RegistryCharmError

STOPPED_FLAG = "docker-registry.stopped"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")


class ActionError(RegistryCharmError):
    """An action cannot do what was asked; the message says why."""


def run(body: Callable[[dict], dict]) -> None:
    """Run an action body with its params; action-set its results or action-fail."""
    try:
        results = body(hookenv.action_get() or {})
        if results:
            hookenv.action_set(results)
    except RegistryCharmError as exc:
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


def _target(params: dict) -> tuple[str, bool]:
    """(container name, whether it is this unit's registry container)."""
    ours = _registry_container()
    name = (params.get("name") or "").strip()
    if name and not _NAME_RE.match(name):
        raise ActionError("name: not a valid container name")
    if name in ("", ours, hookenv.config().get("registry-name")):
        return ours, True
    return name, False


def stop(params: dict) -> dict:
    name, ours = _target(params)
    remove = params.get("remove", True)
    if not isinstance(remove, bool):
        raise ActionError("remove: must be a boolean")
    state = container.inspect(name)
    if state is None:
        raise ActionError(f"no container named {name}")
    if ours:
        set_flag(STOPPED_FLAG)  # hooks leave it stopped until the start action
    if state.running:
        container.stop(name)
    if remove:
        container.remove(name)
    if ours:
        hookenv.status_set("blocked", f"{name} container is stopped.")
    return {"outcome": "success", "raw": f"stopped {name}" + (" and removed it" if remove else "")}


def start(params: dict) -> dict:
    name, ours = _target(params)
    state = container.inspect(name)
    if ours:
        clear_flag(STOPPED_FLAG)
    if state is None:
        argv = unitdata.kv().get("docker-registry.run-argv") if ours else None
        if not argv:
            raise ActionError(f"no container named {name}")
        container.run(argv)  # the last applied run arguments; the next hook re-labels it
    elif not state.running:
        container.start(name)
    if ours:
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
