"""What the charm may take: a container it owns (its owner label, or one an earlier revision ran
under a name the unit kv recorded), ports nobody else holds, paths with no file it did not
write. Each check refuses naming the option, before anything is touched.
"""

from __future__ import annotations

import errno
import socket

from charms.layer.docker_registry.errors import RegistryCharmError
from charms.layer.docker_registry.host import container, paths
from charms.layer.docker_registry.pipeline.render import Desired
from charms.layer.docker_registry.pipeline.runspec import HASH_LABEL, ContainerRun


def port_in_use(bind: str, port: int) -> bool:
    """Whether something on this host already listens on ``bind:port``."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as every server binds: connections of a registry just removed, left in TIME_WAIT on
        # that address, do not make the port "in use"; a listener still does
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))  # noqa: S104
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def check_ports(
    desired: Desired, before: ContainerRun | None, current: container.ContainerState | None
) -> None:
    """Ports another program holds would leave the new container stuck in Created; ports our
    own containers (the one being replaced, the last good one) publish are not in the way."""
    ours = {(b, p) for b, p, _ in before.spec.ports} if before else set()
    ours |= set(current.ports if current else ())
    for bind, port, container_port in desired.run.ports:
        if (bind, port) not in ours and port_in_use(bind, port):
            first = container_port == desired.run.ports[0][2]
            option = desired.port_option if first else "debug-port"
            raise RegistryCharmError(f"{option} {port} is already in use on this host.")


def ours(state: container.ContainerState, recorded: tuple[str, ...] = ()) -> bool:
    """Whether the charm created this container: it carries this unit as owner, or it is one
    an earlier charm revision ran (its config-hash label, under a name the unit kv recorded)."""
    owner = state.labels.get(container.OWNER_LABEL)
    if owner is not None:
        return owner == container.owner()
    return HASH_LABEL in state.labels and state.name in recorded


def check_ours(
    desired: Desired, current: container.ContainerState | None, recorded: tuple[str, ...]
) -> None:
    if current and not ours(current, recorded):
        raise RegistryCharmError(
            f"{desired.name_option}: a container named {desired.run.name} exists that this charm "
            "did not create; choose another name or remove that container."
        )


def check_foreign_files(host: paths.Host, desired: Desired, managed: list[str]) -> None:
    """A file already at a path an option names, which the charm did not write (it is not in
    its record), is another program's: never overwritten (nor, later, removed)."""
    for f in desired.files:
        if f.option and f.path not in managed and host.path(f.path).exists():
            raise RegistryCharmError(
                f"{f.option}: {f.path} exists and was not written by this charm; "
                "name another path or move that file away."
            )
