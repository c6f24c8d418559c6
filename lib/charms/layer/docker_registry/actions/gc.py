"""Garbage collection of the registry's storage, done safely.

``registry garbage-collect`` while the registry serves leaves its in-memory cache wrong (blob
HEAD 200, GET truncated) until a restart (measured with registry 2.8). So: stop the registry
container, run the GC in a throw-away container of the same image with the same mounts, start
the registry again (always, even when the GC fails) and wait until /v2/ answers.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from charms.layer.docker_registry.errors import DockerError, RegistryCharmError
from charms.layer.docker_registry.host import container, lock, paths, workload
from charms.layer.docker_registry.pipeline import runspec

_SUMMARY_RE = re.compile(
    r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion"
)


class GcError(RegistryCharmError):
    """The garbage collection could not run or failed (the registry was restarted)."""


@dataclass(frozen=True)
class GcPlan:
    """What the GC container needs: the registry container's image, mounts and env file."""

    name: str  # the registry container
    image: str
    volumes: tuple[str, ...]  # --volume values, as the registry has them
    env_file: str = ""
    storage_dir: str = ""  # host directory of filesystem storage; "" for s3/swift

    @property
    def gc_name(self) -> str:
        """The GC container's own name: the charm can find it, stop it and never run two."""
        return f"{self.name}-gc"

    def argv(self, *, delete_untagged: bool = False, dry_run: bool = False) -> list[str]:
        argv = ["run", "--rm", "--name", self.gc_name]
        if self.storage_dir:  # a disk needs no network; S3/Swift is reached as the registry does
            argv += ["--network", "none"]
        argv += ["--label", f"{container.OWNER_LABEL}={container.owner()}"]
        for volume in self.volumes:
            argv += ["--volume", volume]
        command = ["garbage-collect"]
        if delete_untagged:
            command.append("--delete-untagged")
        if dry_run:
            command.append("--dry-run")
        options, command = runspec.with_env_file(self.env_file, [*command, runspec.CONFIG_FILE])
        return [*argv, *options, self.image, *command]


def plan(run: runspec.ContainerRun | None) -> GcPlan:
    """The GC container for the registry the charm last ran (its run spec, kept in the kv)."""
    if run is None:
        raise GcError("the registry's run arguments are not known yet; run a hook first")
    spec = run.spec
    storage = spec.storage_mount
    storage_dir = storage[0] if storage and storage[1] == paths.CONTAINER_STORAGE_DIR else ""
    return GcPlan(spec.name, spec.image, tuple(spec.volumes()), spec.env_file, storage_dir)


def disk_usage(path: str) -> int:
    """Bytes of the regular files under ``path`` (apparent size)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += st.st_size
    return total


@dataclass(frozen=True)
class GcResult:
    dry_run: bool
    bytes_before: int | None  # None: not measurable (s3/swift)
    bytes_after: int | None
    blobs_marked: int | None
    blobs_eligible: int | None
    manifests_eligible: int | None
    not_writable_seconds: float  # 0 when the registry was not stopped
    stopped: bool
    answering: bool

    @property
    def reclaimed(self) -> int | None:
        if self.bytes_before is None or self.bytes_after is None:
            return None
        return self.bytes_before - self.bytes_after


def garbage_collect(
    plan: GcPlan,
    *,
    probe_url: str,
    delete_untagged: bool = False,
    dry_run: bool = False,
    wait: float = 60,
    timeout: float = 3600,
) -> GcResult:
    """Run the GC; a dry run leaves the registry serving (it only reads).

    Under the registry lock (hooks that recreate the container, start and stop take it too).
    A GC the docker CLI gave up on (its timeout) is stopped before the registry starts again;
    if it cannot be, the registry stays stopped rather than serve beside it."""
    with lock.registry_lock(paths.current(), wait=0, busy=GcError):
        return _garbage_collect(
            plan,
            probe_url=probe_url,
            delete_untagged=delete_untagged,
            dry_run=dry_run,
            wait=wait,
            timeout=timeout,
        )


def _stop_gc(plan: GcPlan) -> bool:
    """Stop and remove the GC container if it is there; True when none is left running."""
    try:
        if container.inspect(plan.gc_name):
            container.remove(plan.gc_name)
        left = container.inspect(plan.gc_name)
    except DockerError:
        return False
    return not (left and left.running)


def _garbage_collect(
    plan: GcPlan,
    *,
    probe_url: str,
    delete_untagged: bool,
    dry_run: bool,
    wait: float,
    timeout: float,
) -> GcResult:
    if not _stop_gc(plan):  # one left by an action that was killed: never two at once
        raise GcError(f"garbage-collect: {plan.gc_name} is still running and cannot be stopped")
    state = container.inspect(plan.name)
    was_running = bool(state and state.running)
    measurable = bool(plan.storage_dir) and os.path.isdir(plan.storage_dir)
    before = disk_usage(plan.storage_dir) if measurable else None
    stop_registry = was_running and not dry_run
    started = time.monotonic()
    run = _run_gc(
        plan,
        plan.argv(delete_untagged=delete_untagged, dry_run=dry_run),
        stop_registry=stop_registry,
        probe_url=probe_url,
        wait=wait,
        timeout=timeout,
    )
    downtime = time.monotonic() - started if stop_registry else 0.0
    _raise_if_failed(plan, run, stop_registry)
    after = disk_usage(plan.storage_dir) if measurable else None
    match = _SUMMARY_RE.search(run.output)
    counts: list[int | None] = [int(g) for g in match.groups()] if match else [None, None, None]
    return GcResult(
        dry_run=dry_run,
        bytes_before=before,
        bytes_after=after,
        blobs_marked=counts[0],
        blobs_eligible=counts[1],
        manifests_eligible=counts[2],
        not_writable_seconds=round(downtime, 2),
        stopped=stop_registry,
        answering=run.answering,
    )


@dataclass
class _GcRun:
    output: str = ""
    failure: DockerError | None = None
    answering: bool = True  # the registry answers afterwards
    gc_stopped: bool = True  # no GC container is left running


def _run_gc(
    plan: GcPlan,
    argv: list[str],
    *,
    stop_registry: bool,
    probe_url: str,
    wait: float,
    timeout: float,
) -> _GcRun:
    """The GC container, the registry stopped around it when it was running; the registry
    starts again only once no GC container is left (never both at once)."""
    run = _GcRun(answering=not stop_registry)
    try:
        if stop_registry:
            container.stop(plan.name)
        run.output = container.docker(*argv, timeout=timeout)
    except DockerError as exc:
        run.failure = exc
        run.gc_stopped = _stop_gc(plan)  # after a timeout the GC container may still run
    finally:
        if stop_registry and run.gc_stopped:
            try:
                container.start(plan.name)
                run.answering = workload.wait_answering(probe_url, wait)
            except DockerError as exc:
                run.failure = run.failure or exc
                run.answering = False
    return run


def _raise_if_failed(plan: GcPlan, run: _GcRun, stop_registry: bool) -> None:
    if not run.gc_stopped:
        raise GcError(
            f"garbage-collect failed: {run.failure}; {plan.gc_name} could not be stopped, so "
            "the registry stays stopped (run the start action once it is gone)"
        )
    if run.failure is None:
        return
    restarted = ""
    if stop_registry:
        restarted = (
            "; the registry was restarted"
            if run.answering
            else "; the registry was restarted but does not answer yet"
        )
    raise GcError(f"garbage-collect failed: {run.failure}{restarted}")
