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

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from charms.layer.docker_registry.errors import DockerError, RegistryCharmError
from charms.layer.docker_registry.host import claims, container, diagnose, files, lastgood, paths
from charms.layer.docker_registry.pipeline import clients
from charms.layer.docker_registry.pipeline.render import Desired
from charms.layer.docker_registry.pipeline.runspec import HASH_LABEL, ContainerRun

START_BOUND = 20  # seconds a recreated registry has to answer before it is rolled back


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


def _last_run(last_good: dict) -> ContainerRun | None:
    return ContainerRun.from_record(last_good.get("run"))


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
    """Write files, converge the container and wait for /v2/; roll back to ``last_good``
    when docker refuses the new container, it exits, or it does not answer within ``wait``.

    ``image_id`` is part of the config hash. ``failed`` ({"hash", "problem"}): a config rolled
    back before, not tried again. ``recorded``: names the unit kv holds as the charm's (an
    earlier revision's container there is adopted). ``changed``: the options that differ
    from the last good config (a rollback names them). ``hold``: not this unit's turn
    (rolling changes): a serving last good container is left as it is, files and all.
    Returns the outcome and the files the charm now manages.
    """
    last_good = last_good or {}
    run = ContainerRun(desired.run, desired.config_hash(image_id))
    before = _last_run(last_good)
    current = _current(desired.run.name, before)
    left = _left_as_is(run, before, current, last_good, failed or {}, hold)
    if left:
        return left, managed_files
    managed = _write_files(desired, run, host, before, current, managed_files, recorded)
    attempt = _Attempt(desired, run, before, host, last_good, wait, secrets)
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
        refused, retry = diagnose.docker_refused(desired, exc)
        if before is None or before == run:
            raise RegistryCharmError(refused + ".") from exc
        outcome, managed = _roll_back(attempt, before, managed, refused=refused)
        return (replace(outcome, failed={}) if retry else outcome), managed  # may pass: retry
    return _gate(attempt, action, managed, changed)


@dataclass(frozen=True)
class _Attempt:
    """A new config on its way in: what a rollback needs to bring the last good one back."""

    desired: Desired
    run: ContainerRun  # the new config
    before: ContainerRun | None  # the last good one
    host: paths.Host
    last_good: dict
    wait: float
    secrets: tuple[str, ...]


def _gate(
    attempt: _Attempt, action: str, managed: list[str], changed: tuple[str, ...]
) -> tuple[Outcome, list[str]]:
    """The container converged: keep it as the last good state once it answers; a new one
    that does not is rolled back."""
    desired, run, before, host = attempt.desired, attempt.run, attempt.before, attempt.host
    url = probe_url(desired)
    if action == "stopped-by-operator":
        return Outcome(action, False, url, run, last_good=attempt.last_good), managed
    started = action in ("started", "created", "recreated")
    answering = wait_answering(
        url, attempt.wait if started else 2, still_starting(run.spec.name) if started else None
    )
    if answering:
        if before and started:
            _remove_if_there(aside_name(before.spec.name))
        return Outcome(
            action, True, url, run, last_good=lastgood.remember(host, desired, run, url)
        ), managed
    if action not in ("created", "recreated") or before is None or before == run:
        return Outcome(action, False, url, run, last_good=attempt.last_good), managed
    return _roll_back(attempt, before, managed, changed=changed)


def _write_files(
    desired: Desired,
    run: ContainerRun,
    host: paths.Host,
    before: ContainerRun | None,
    current: container.ContainerState | None,
    managed_files: list[str],
    recorded: tuple[str, ...],
) -> list[str]:
    """Check that the container's name, its ports and the files' paths are the charm's to
    use, then write the files; returns the files the charm now manages."""
    files.ensure_dir(host.path(desired.config_dir), 0o700)
    if desired.run.storage_mount:
        files.ensure_dir(Path(desired.run.storage_mount[0]))
    claims.check_ours(desired, current, (*recorded, *((before.spec.name,) if before else ())))
    if not (current and current.labels.get(HASH_LABEL) == run.config_hash):
        claims.check_ports(desired, before, current)
    claims.check_foreign_files(host, desired, managed_files)
    files.sync(host, desired.files, managed_files)
    return [f.path for f in desired.files]


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
    if renamed and not claims.ours(renamed, (previous_name,)):
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
        if state and claims.ours(state, recorded):
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
    if not aside or not claims.ours(aside, (aside.name,)):
        return False
    current = container.inspect(before.spec.name)
    if current and (current.running or not claims.ours(current, (before.spec.name,))):
        return False
    if current:
        container.remove(current.name)
    container.rename(aside.name, before.spec.name)
    return True


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
    attempt: _Attempt,
    before: ContainerRun,
    managed: list[str],
    *,
    refused: str = "",
    changed: tuple[str, ...] = (),
) -> tuple[Outcome, list[str]]:
    """The new config does not come up: bring the last good registry back, the container set
    aside when it is there (it needs neither the image tag nor a free name), else a new one
    from its record. ``refused``: why docker did not run the new container (else the problem
    quotes the registry's last word, and names the ``changed`` options)."""
    desired, last_good, secrets = attempt.desired, attempt.last_good, attempt.secrets
    problem = refused
    if not refused:
        why = diagnose.scrub(container.last_log_line(desired.run.name), secrets) or "no output"
        blamed = f"options changed: {', '.join(changed)}; " if changed else ""
        problem = f"The new config did not start ({blamed}the registry said: {why})"
    managed = lastgood.restore(attempt.host, desired.config_dir, last_good, managed)
    try:
        new = container.inspect(desired.run.name)
        if new and new.labels.get(HASH_LABEL) != before.config_hash:
            container.remove(new.name)
        _bring_back(before)
        answering = wait_answering(
            last_good["url"], attempt.wait, still_starting(before.spec.name)
        )
    except DockerError as exc:
        answering = False
        problem += (
            f"; the last good registry did not start again: {diagnose.scrub(str(exc), secrets)}"
        )
    return Outcome(
        "rolled-back",
        answering,
        last_good["url"],
        before,
        problem,
        last_good,
        {"hash": attempt.run.config_hash, "problem": problem},
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
