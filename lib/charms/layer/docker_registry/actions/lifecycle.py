"""Actions on this unit's registry container: stop and start it (its images stay on disk)."""

from __future__ import annotations

from charmhelpers.core import hookenv
from charms.reactive import clear_flag, set_flag

from charms.layer.docker_registry import records
from charms.layer.docker_registry.actions import (
    ActionError,
    Params,
    registry_container,
    report_restarted,
    set_status,
)
from charms.layer.docker_registry.config import reader
from charms.layer.docker_registry.host import claims, container, lock, paths
from charms.layer.docker_registry.pipeline import datastore, status


def _target(params: Params) -> str:
    """This unit's registry container (the only one ``name`` may name)."""
    ours = registry_container()
    name = params.text("name")
    if name and not reader.is_container_name(name):
        params.fail("name", "not a valid container name")
    if name in ("", ours, hookenv.config().get("registry-name")):
        return ours
    # any other container on the host is not this charm's to stop, start or remove
    raise ActionError("name: only this unit's registry container (registry-name) is managed")


def _ours(state: container.ContainerState) -> None:
    last = records.container_run()
    if not claims.ours(state, (last.spec.name,) if last else ()):
        raise ActionError(
            f"registry-name: the container {state.name} was not created by this charm; "
            "it is left alone"
        )


def stop(params: Params) -> dict:
    with lock.registry_lock(paths.current(), wait=60):  # never beside a GC or a hook
        return _stop(params)


def start(params: Params) -> dict:
    with lock.registry_lock(paths.current(), wait=60):
        return _start(params)


def _stop(params: Params) -> dict:
    name = _target(params)
    remove = params.flag("remove", True)
    state = container.inspect(name)
    if state is None:
        raise ActionError(f"no container named {name}")
    _ours(state)
    set_flag(records.STOPPED_FLAG)  # hooks leave it stopped until the start action
    if state.running:
        container.stop(name)
    if remove:
        container.remove(name)
    set_status(status.stopped(name))
    return {"outcome": "success", "raw": f"stopped {name}" + (" and removed it" if remove else "")}


def _start(params: Params) -> dict:
    name = _target(params)
    detached = datastore.attached_or_fail()
    if detached:  # it would write to the root disk under the mount point
        raise ActionError(detached)
    state = container.inspect(name)
    if state is not None:
        _ours(state)
    clear_flag(records.STOPPED_FLAG)
    if state is None:
        last = records.container_run()
        if last is None:
            raise ActionError(f"no container named {name}")
        container.run(last.argv())  # what the last hook ran, with its config-hash label
    elif not state.running:
        container.start(name)
    report_restarted(name)
    return {"outcome": "success", "raw": f"started {name}"}
