"""Apply a desired state to this host, health-gated: files, image, container, readiness (few
side effects, all through ``files`` and ``container``).

A change never takes down a serving registry for good: after every apply whose registry
answers, its run arguments and files are kept as the *last good* state (files copied to a
private directory, the rest in the unit kv). While a new config starts, the last good
container is only stopped and set aside under another name; it is removed once the new one
answers. A new config that docker refuses to run, whose container exits, or that does not
answer /v2/ within a bound is replaced by the last good container (the one set aside when it
is still there, else run again from its record), and the same new config is not tried again
until something in it changes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from charms.layer.docker_registry.errors import DockerError, RegistryCharmError
from charms.layer.docker_registry.host import container, files, paths
from charms.layer.docker_registry.pipeline import clients
from charms.layer.docker_registry.pipeline.render import PRIVATE, Desired
from charms.layer.docker_registry.pipeline.runspec import HASH_LABEL, ContainerRun, HostFile

LAST_GOOD = ".last-good"  # in a registry's config dir: private copies of its last good files
LAST_GOOD_DIR = f"{paths.CONFIG_DIR}/{LAST_GOOD}"
START_BOUND = 20  # seconds a recreated registry has to answer before it is rolled back
LOCK_FILE = "/var/lib/docker-registry-charm/registry.lock"  # see registry_lock
LOCK_WAIT = 300  # seconds a hook or start/stop waits for a garbage collection to end


class LockBusy(RegistryCharmError):
    """Another holder of the registry lock did not let go in time."""


@contextlib.contextmanager
def registry_lock(
    host: paths.Host, wait: float = LOCK_WAIT, busy: type[RegistryCharmError] = LockBusy
) -> Iterator[None]:
    """One holder at a time of the registry's containers: garbage-collect (which stops the
    registry), hooks that recreate it, and the start/stop actions. ``wait`` 0: fail at once
    with ``busy`` when it is held; else wait up to ``wait`` seconds."""
    path = host.path(LOCK_FILE)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy(
                        "another garbage-collect, start/stop or hook is working on the registry"
                    ) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


WAITING_TURN = "waiting-turn"  # Outcome.action of a change held for the units before this one
ASIDE = ".last-good"  # suffix of the last good container's name while a new config starts


@dataclass(frozen=True)
class Outcome:
    action: str  # see converge; also "rolled-back", "held" and WAITING_TURN
    answering: bool
    probe_url: str
    run: ContainerRun  # what runs now (or would, when stopped by the operator)
    problem: str = ""  # why the new config was not applied (rolled back / held)
    last_good: dict = field(default_factory=dict)  # to pass back as ``last_good`` next time
    failed: dict = field(default_factory=dict)  # to pass back as ``failed`` next time


def probe_url(desired: Desired) -> str:
    """Where this unit reaches its own registry: the published address, else loopback."""
    bind, port, _ = desired.run.ports[0]
    return f"{desired.scheme}://{clients.bracket(bind or '127.0.0.1')}:{port}"


def wait_answering(url: str, timeout: float, alive: Callable[[], bool] | None = None) -> bool:
    """Whether /v2/ answers within ``timeout``; ``alive()`` returning False (the container
    exited) ends the wait at once instead of at the bound."""
    deadline = time.monotonic() + timeout
    while True:
        probed = time.monotonic()
        if clients.probe(url):
            return True
        if time.monotonic() >= deadline or (alive and not alive()):
            return False
        time.sleep(max(0.0, 0.25 - (time.monotonic() - probed)))  # one probe a quarter second


def still_starting(name: str) -> Callable[[], bool]:
    """``alive`` for wait_answering: the container ``name`` runs and has not exited since the
    first look (its restart policy starts it again: a higher restart count says it exited)."""
    first: list[int] = []

    def alive() -> bool:
        try:
            state = container.inspect(name)
        except DockerError:
            return True  # docker did not say: wait out the bound
        if not (state and state.running and state.status == "running"):
            return False
        first[:] = first or [state.restart_count]
        return state.restart_count == first[0]

    return alive


def aside_name(name: str) -> str:
    return f"{name}{ASIDE}"


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


def _last_run(last_good: dict) -> ContainerRun | None:
    return ContainerRun.from_record(last_good.get("run"))


def _check_ports(
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


def _check_ours(
    desired: Desired, current: container.ContainerState | None, recorded: tuple[str, ...]
) -> None:
    if current and not ours(current, recorded):
        raise RegistryCharmError(
            f"{desired.name_option}: a container named {desired.run.name} exists that this charm "
            "did not create; choose another name or remove that container."
        )


def _check_foreign_files(host: paths.Host, desired: Desired, managed: list[str]) -> None:
    """A file already at a path an option names, which the charm did not write (it is not in
    its record), is another program's: never overwritten (nor, later, removed)."""
    for f in desired.files:
        if f.option and f.path not in managed and host.path(f.path).exists():
            raise RegistryCharmError(
                f"{f.option}: {f.path} exists and was not written by this charm; "
                "name another path or move that file away."
            )


def _backup_name(path: str) -> str:
    return path.strip("/").replace("/", "__")


def _remember(host: paths.Host, desired: Desired, run: ContainerRun, url: str) -> dict:
    """Keep what just answered as the last good state."""
    backup = host.path(f"{desired.config_dir}/{LAST_GOOD}")
    files.ensure_dir(backup, 0o700)
    kept: list[tuple[str, int]] = []
    for f in desired.files:
        files.write_if_changed(backup / _backup_name(f.path), f.content, PRIVATE)
        kept.append((f.path, f.mode))
    wanted = {_backup_name(path) for path, _ in kept}
    for stale in backup.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return {"run": run.as_record(), "files": kept, "url": url}


def _restore(host: paths.Host, config_dir: str, last_good: dict, managed: list[str]) -> list[str]:
    """Put the last good files back (removing what only the new config had)."""
    backup = host.path(f"{config_dir}/{LAST_GOOD}")
    restored = [
        HostFile(path, (backup / _backup_name(path)).read_text(), mode)
        for path, mode in last_good["files"]
    ]
    files.sync(host, restored, managed)
    return [f.path for f in restored]


# what the registry's error lines quote of the network: URLs, addresses and host:port pairs
# (a storage or upstream endpoint's internal address does not belong in the status)
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'`]+", re.IGNORECASE)
_ADDRESS_RE = re.compile(
    r"\[[0-9a-f:.]+\](?::\d+)?|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"
    r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+:\d+\b",
    re.IGNORECASE,
)


def _scrub(line: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    line = _URL_RE.sub("<url>", line)
    return _ADDRESS_RE.sub("<address>", line)[:300]


def config_hash(desired: Desired) -> str:
    """The hash the container's label carries: run arguments, image id and mounted files."""
    wanted_image = container.image_id(desired.run.image)
    if not wanted_image:
        raise DockerError(f"image {desired.run.image} is not present")
    return desired.config_hash(wanted_image)


def apply(
    desired: Desired,
    *,
    image_id: str,
    host: paths.Host,
    managed_files: list[str],
    allow_start: bool,
    wait: float = START_BOUND,
    announce: Callable[[container.ContainerState | None], None] | None = None,
    last_good: dict | None = None,
    failed: dict | None = None,
    secrets: tuple[str, ...] = (),
    recorded: tuple[str, ...] = (),
    changed: tuple[str, ...] = (),
    hold: bool = False,
) -> tuple[Outcome, list[str]]:
    """Write files, converge the container and wait for /v2/ to answer; roll back to
    ``last_good`` when docker refuses the new container, or it exits, or it does not answer
    within ``wait``.

    ``image_id``: the local image ``desired.run.image`` names (part of the config hash).
    ``failed`` ({"hash", "problem"}) is the new config that was rolled back before: it is not
    tried again. ``recorded``: container names the unit kv holds as run by the charm (an
    earlier revision's container there, without an owner label, is adopted). ``changed``: the
    options that differ from the last good config (a rollback names them). ``hold``: it is not
    this unit's turn to change (rolling changes): a serving last good container is left as it
    is, files and all. Returns the outcome and the list of files the charm now manages.
    """
    last_good = last_good or {}
    url = probe_url(desired)
    run = ContainerRun(desired.run, desired.config_hash(image_id))
    before = _last_run(last_good)
    current = _current(desired.run.name, before)
    left = _left_as_is(run, before, current, last_good, failed or {}, hold)
    if left:
        return left, managed_files
    files.ensure_dir(host.path(desired.config_dir), 0o700)
    if desired.run.storage_mount:
        files.ensure_dir(Path(desired.run.storage_mount[0]))
    recorded = (*recorded, *((before.spec.name,) if before else ()))
    _check_ours(desired, current, recorded)
    if not (current and current.labels.get(HASH_LABEL) == run.config_hash):
        _check_ports(desired, before, current)
    _check_foreign_files(host, desired, managed_files)
    files.sync(host, desired.files, managed_files)
    managed = [f.path for f in desired.files]
    try:
        action = converge(
            run,
            current,
            allow_start=allow_start,
            announce=announce,
            previous_name=before.spec.name if before else "",
            keep=before.config_hash if before else "",
        )
    except DockerError as exc:
        refused, retry = docker_refused(desired, exc)
        if before is None or before == run:
            raise RegistryCharmError(refused + ".") from exc
        outcome, managed = _roll_back(
            desired, host, last_good, before, managed, run, wait, secrets, refused=refused
        )
        return (replace(outcome, failed={}) if retry else outcome), managed
    if action == "stopped-by-operator":
        return Outcome(action, False, url, run, last_good=last_good), managed
    started = action in ("started", "created", "recreated")
    answering = wait_answering(
        url, wait if started else 2, still_starting(run.spec.name) if started else None
    )
    if answering:
        if before and started:
            _remove_if_there(aside_name(before.spec.name))
        return Outcome(
            action, True, url, run, last_good=_remember(host, desired, run, url)
        ), managed
    if action not in ("created", "recreated") or before is None or before == run:
        return Outcome(action, False, url, run, last_good=last_good), managed
    return _roll_back(
        desired, host, last_good, before, managed, run, wait, secrets, changed=changed
    )


def _current(name: str, before: ContainerRun | None) -> container.ContainerState | None:
    """The container named ``name``, after the last good one set aside by a hook that ended
    early took its name back (see _take_back_aside)."""
    current = container.inspect(name)
    if before and not (current and current.running) and _take_back_aside(before):
        current = container.inspect(name)
    return current


def _serves(before: ContainerRun, current: container.ContainerState | None) -> bool:
    """The last good container runs under its name (what a held change leaves serving)."""
    return bool(
        current
        and current.running
        and current.name == before.spec.name
        and current.labels.get(HASH_LABEL) == before.config_hash
    )


def _runs(name: str, known: container.ContainerState | None) -> bool:
    state = known if known and known.name == name else container.inspect(name)
    return bool(state and state.running)


def converge(
    run: ContainerRun,
    current: container.ContainerState | None,
    *,
    allow_start: bool = True,
    announce: Callable[[container.ContainerState | None], None] | None = None,
    previous_name: str = "",
    keep: str = "",
) -> str:
    """Make the container match ``run``, given ``current`` (what docker said of its name).

    "unchanged" (nothing touched), "started" (existing stopped container with the same
    config), "created", "recreated" (config changed: exactly one restart of the registry),
    or "stopped-by-operator" when ``allow_start`` is False and the container is not running.
    ``announce(current_state_or_None)`` is called just before the container is touched.
    ``previous_name``: the container the charm ran before under another name (registry-name
    changed): it is replaced too, never left running unmanaged. ``keep``: the config hash of
    the last good container, which is stopped and set aside (``aside_name``) rather than
    removed, for the caller to remove once the new one answers or to bring back.
    """
    name = run.spec.name
    if current and current.labels.get(HASH_LABEL) == run.config_hash:
        if current.running:
            return "unchanged"
        if not allow_start:
            return "stopped-by-operator"
        if announce:
            announce(current)
        container.start(name)
        return "started"
    if not allow_start and (current is None or not current.running):
        return "stopped-by-operator"
    if announce:
        announce(current)
    renamed = previous_name and previous_name != name and container.inspect(previous_name)
    if renamed and not ours(renamed, (previous_name,)):
        renamed = None  # another program's container under the old name: left alone
    for old in (current, renamed):
        if old:
            _stop_old(old, keep)
    container.run(run.argv())
    return "recreated" if current or renamed else "created"


def _stop_old(old: container.ContainerState, keep: str) -> None:
    """Stop ``old``: the last good container (config hash ``keep``) set aside, renamed while
    it still serves (the registry is down from its stop to the new one's start only)."""
    if keep and old.labels.get(HASH_LABEL) == keep:
        _remove_if_there(aside_name(old.name))
        container.rename(old.name, aside_name(old.name))
        container.stop(aside_name(old.name))
    else:
        container.stop(old.name)
        container.remove(old.name)


def remove_ours(name: str, recorded: tuple[str, ...] = ()) -> None:
    """The unit is going away (or a cache is dropped): its container goes, and the last good one
    a hook killed mid-change left set aside, each only when it is the charm's own."""
    recorded = (*recorded, *(aside_name(n) for n in recorded))
    for each in (name, aside_name(name)):
        state = container.inspect(each)
        if state and ours(state, recorded):
            container.stop(each)
            container.remove(each)


def _remove_if_there(name: str) -> None:
    if container.inspect(name):
        container.remove(name)


def _take_back_aside(before: ContainerRun) -> bool:
    """A hook that ended between setting the last good container aside and the new one
    answering (killed, or the machine rebooted): the last good one takes its name back
    unless a container of that name runs. Whether it did."""
    aside = container.inspect(aside_name(before.spec.name))
    if not aside or not ours(aside, (aside.name,)):
        return False
    current = container.inspect(before.spec.name)
    if current and (current.running or not ours(current, (before.spec.name,))):
        return False
    if current:
        container.remove(current.name)
    container.rename(aside.name, before.spec.name)
    return True


def docker_refused(desired: Desired, exc: DockerError) -> tuple[str, bool]:
    """What the operator reads when docker would not run the new container (the option to
    blame where one is, docker's own words otherwise, never this host's addresses), and
    whether the next hook may try the same config again (the cause may pass)."""
    said = str(exc).lower()
    if "port is already allocated" in said or "address already in use" in said:
        ports = ", ".join(str(port) for _bind, port, _ in desired.run.ports)
        option = (
            desired.port_option
            if len(desired.run.ports) == 1
            else f"{desired.port_option} or debug-port"
        )
        return (
            f"{option}: a port ({ports}) was taken on this host while the registry restarted",
            True,
        )
    if "no such image" in said or "unable to find image" in said or "pull access denied" in said:
        return f"registry-image: {desired.run.image} is no longer on this host", True
    if "invalid spec" in said or "invalid volume" in said or "invalid mount" in said:
        return "docker refused to mount a file (tls-ca-path, tls-cert-path, tls-key-path)", False
    return f"docker could not run the new config ({_scrub(str(exc), ())})", True


def _left_as_is(
    run: ContainerRun,
    before: ContainerRun | None,
    current: container.ContainerState | None,
    last_good: dict,
    failed: dict,
    hold: bool,
) -> Outcome | None:
    """The last good registry serves on untouched when the new config was rolled back before
    (``held``), or when it is not this unit's turn to change (``hold``, WAITING_TURN)."""
    if not before:
        return None
    if failed.get("hash") == run.config_hash and _runs(before.spec.name, current):
        return _held(last_good, before, failed)
    if hold and _serves(before, current) and before.config_hash != run.config_hash:
        answering = wait_answering(last_good["url"], 2)
        return Outcome(WAITING_TURN, answering, last_good["url"], before, "", last_good, failed)
    return None


def _held(last_good: dict, before: ContainerRun, failed: dict) -> Outcome:
    """The new config was rolled back before and has not changed since: leave it be."""
    answering = wait_answering(last_good["url"], 2)
    return Outcome(
        "held", answering, last_good["url"], before, failed["problem"], last_good, failed
    )


def _roll_back(
    desired: Desired,
    host: paths.Host,
    last_good: dict,
    before: ContainerRun,
    managed: list[str],
    failed_run: ContainerRun,
    wait: float,
    secrets: tuple[str, ...],
    *,
    refused: str = "",
    changed: tuple[str, ...] = (),
) -> tuple[Outcome, list[str]]:
    """The new config does not come up: bring the last good registry back, the container set
    aside when it is there (it needs neither the image tag nor a free name), else a new one
    from its record. ``refused``: why docker did not run the new container (else the problem
    quotes the registry's last word, and names the ``changed`` options)."""
    problem = refused
    if not refused:
        why = _scrub(container.last_log_line(desired.run.name), secrets) or "no output"
        blamed = f"options changed: {', '.join(changed)}; " if changed else ""
        problem = f"The new config did not start ({blamed}the registry said: {why})"
    managed = _restore(host, desired.config_dir, last_good, managed)
    try:
        new = container.inspect(desired.run.name)
        if new and new.labels.get(HASH_LABEL) != before.config_hash:
            container.remove(new.name)
        _bring_back(before)
        answering = wait_answering(last_good["url"], wait, still_starting(before.spec.name))
    except DockerError as exc:
        answering = False
        problem += f"; the last good registry did not start again: {_scrub(str(exc), secrets)}"
    return Outcome(
        "rolled-back",
        answering,
        last_good["url"],
        before,
        problem,
        last_good,
        {"hash": failed_run.config_hash, "problem": problem},
    ), managed


def _bring_back(before: ContainerRun) -> None:
    """Run the last good container again: the one of its name (docker may have failed before
    it was set aside) or the one set aside, started as it is; else a new one from its record."""
    for name in (before.spec.name, aside_name(before.spec.name)):
        state = container.inspect(name)
        if state and state.labels.get(HASH_LABEL) == before.config_hash:
            if name != before.spec.name:
                container.rename(name, before.spec.name)
            if not state.running:
                container.start(before.spec.name)
            return
    container.run(before.argv())
