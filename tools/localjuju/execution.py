"""Running one event on one unit: a charm's hook or action file on the unit's machine, or a fake.

A hook runs as Juju runs it: the charm's own hooks/<name> file (an action: actions/<name>, whose
`#!/usr/local/sbin/charm-env python3` runs it on the unit's venv), cwd = the unit's charm dir,
Juju's environment variables, the hook tools first on PATH, on the unit's machine: a private
mount namespace where the host looks like an Ubuntu Juju machine and what the hook writes
outside the charm dir stays the unit's (machine.py). What the hook tools buffer (relation-set,
open-port) comes back as `pending`; the caller commits it only if the hook succeeded, as Juju.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import machine as unit_machine
from .model import Model, now, unit_dirname, write_private
from .state import Event, Status, edit, load

HOOK_TIMEOUT = int(os.environ.get("LOCALJUJU_HOOK_TIMEOUT", "900"))
# what a hook inherits from the controller's environment: the engine, proxies, the terminal
KEEP_ENV = (
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "TMPDIR",
    "TERM",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


@dataclass
class Outcome:
    ok: bool
    rc: int = 0
    output: str = ""
    pending: dict[str, Any] = field(default_factory=dict)  # buffered relation/port writes
    stderr: str = ""  # (juju exec only: hooks and actions log both streams together)
    timed_out: bool = False


class Executor:
    def __init__(self, model: Model) -> None:
        self.model = model

    def _ctx_path(self, unit: str) -> Path:
        d = self.model.root / "ctx"
        d.mkdir(exist_ok=True)
        return d / f"{unit_dirname(unit)}.json"

    def hook_env(self, event: Event) -> dict[str, str]:
        assert event.unit is not None
        st = load(self.model)
        unit = event.unit
        charm_dir = self.model.charm_dir(unit)
        env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
        env.update(
            {
                "PATH": unit_machine.hook_path(self.model.bin_dir),
                "HOME": "/root",
                "LANG": "C.UTF-8",
                # layer:basic's pip runs (machine.py, "Bootstrap"): no self-check against PyPI,
                # no progress bars, no byte-compiling at install (hooks compile what they import)
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "PIP_PROGRESS_BAR": "off",
                # (pip reads a --no-* option's variable as the option's value: "0" is --no-compile)
                "PIP_NO_COMPILE": "0",
                # a fresh machine's pip has no config (the host's pip.conf adds find-links
                # that layer:basic's `pip install -f wheelhouse` would also search)
                "PIP_CONFIG_FILE": "/dev/null",
                "JUJU_CHARM_DIR": str(charm_dir),
                "CHARM_DIR": str(charm_dir),
                "JUJU_UNIT_NAME": unit,
                "JUJU_MODEL_NAME": st.name,
                "JUJU_MODEL_UUID": st.uuid,
                "JUJU_MACHINE_ID": st.units[unit].machine,
                "JUJU_PRINCIPAL_UNIT": "",
                "JUJU_VERSION": "3.4.0",
                "JUJU_CONTEXT_ID": f"{unit}-{event.name}-{event.seq}",
                "DOCKER_REGISTRY_SANDBOX": str(self.model.sandbox_dir(unit)),
            }
        )
        if event.action:
            env["JUJU_ACTION_NAME"] = event.action
            env["JUJU_ACTION_UUID"] = event.action_id or ""
            env["JUJU_DISPATCH_PATH"] = f"actions/{event.action}"
        else:
            env["JUJU_HOOK_NAME"] = event.name
            env["JUJU_DISPATCH_PATH"] = f"hooks/{event.name}"
        if event.relation_id is not None:
            env["JUJU_RELATION"] = event.relation or ""
            env["JUJU_RELATION_ID"] = f"{event.relation}:{event.relation_id}"
            env["JUJU_REMOTE_UNIT"] = event.remote_unit or ""
            env["JUJU_REMOTE_APP"] = event.remote_app or ""
            if event.departing:
                env["JUJU_DEPARTING_UNIT"] = event.departing
        if event.secret_id:
            env["JUJU_SECRET_ID"] = event.secret_id
            env["JUJU_SECRET_LABEL"] = ""
        if event.storage_id:
            env["JUJU_STORAGE_ID"] = event.storage_id
        return env

    def charm_file(self, event: Event) -> Path:
        assert event.unit is not None
        sub = "actions" if event.action else "hooks"
        return self.model.charm_dir(event.unit) / sub / event.name

    def _write_ctx(self, event: Event) -> Path:
        """The hook tools' view of this hook (hooktools.py reads it, buffers writes into it)."""
        assert event.unit is not None
        ctx: dict[str, Any] = {
            "unit": event.unit,
            "hook": event.name,
            "relation_id": event.relation_id,
            "relation_name": event.relation,
            "remote_unit": event.remote_unit,
            "remote_app": event.remote_app,
            "action_id": event.action_id,
            "storage_id": event.storage_id,
            "pending": {},
        }
        ctx_path = self._ctx_path(event.unit)
        write_private(ctx_path, json.dumps(ctx))
        return ctx_path

    def run_command(self, event: Event, command: str, timeout: float) -> Outcome:
        """`juju exec`: a shell command in the unit's hook context (environment, hook tools,
        machine) outside any hook: no JUJU_HOOK_NAME or JUJU_DISPATCH_PATH, as in Juju."""
        assert event.unit is not None
        unit = event.unit
        ctx_path = self._write_ctx(event)
        self.model.write_launchers()
        env = self.hook_env(event)
        for key in ("JUJU_HOOK_NAME", "JUJU_DISPATCH_PATH"):
            env.pop(key, None)
        self.model.log(unit, "INFO", "running juju-exec")  # not the command: it may hold secrets
        try:
            proc = subprocess.run(
                unit_machine.wrap(self.model.unit_dir(unit), ["/bin/bash", "-c", command]),
                cwd=self.model.charm_dir(unit),
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                errors="replace",
            )
        except subprocess.TimeoutExpired:
            return Outcome(ok=False, rc=124, timed_out=True)
        self.model.log(unit, "INFO", f"juju-exec exited with status {proc.returncode}")
        pending = json.loads(ctx_path.read_text()).get("pending") or {}
        return Outcome(
            ok=proc.returncode == 0,
            rc=proc.returncode,
            output=proc.stdout,
            stderr=proc.stderr,
            pending=pending,
        )

    def run_charm(self, event: Event) -> Outcome:
        """Run the unit's hook/action file for `event`; a missing file is a skipped hook."""
        assert event.unit is not None
        unit, name, path = event.unit, event.name, self.charm_file(event)
        ctx_path = self._write_ctx(event)
        if not path.exists():
            return Outcome(ok=True)  # Juju skips hooks the charm does not implement
        self.model.write_launchers()
        env = self.hook_env(event)
        with edit(self.model) as st:
            st.units[unit].agent = "executing"
        what = "hook" if event.hook else "action"
        self.model.log(
            unit, "INFO", f"running {name} hook" if event.hook else f"running action {name}"
        )
        started, started_at = time.monotonic(), now()
        rc, output = self._run(unit, path, env)
        if output.strip():
            self.model.log(unit, "WARNING" if rc else "DEBUG", f"{name}: " + output.rstrip())
        took = time.monotonic() - started
        self.model.append_jsonl(
            "hooks.jsonl",
            {
                "unit": unit,
                "kind": what,
                "name": name,
                "start": started_at,
                "seconds": round(took, 3),
                "rc": rc,
            },
        )
        self.model.log(
            unit,
            "ERROR" if rc else "INFO",
            f"{name} {'failed with exit status ' + str(rc) if rc else 'completed'} ({took:.1f}s)",
        )
        pending = json.loads(ctx_path.read_text()).get("pending") or {}
        return Outcome(ok=rc == 0, rc=rc, output=output, pending=pending)

    def _run(self, unit: str, path: Path, env: dict[str, str]) -> tuple[int, str]:
        try:
            proc = subprocess.run(
                unit_machine.wrap(self.model.unit_dir(unit), [str(path)]),
                cwd=self.model.charm_dir(unit),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=HOOK_TIMEOUT,
                errors="replace",
            )
            return proc.returncode, proc.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or ""
            if isinstance(out, bytes):
                out = out.decode(errors="replace")
            return 124, out + f"\nhook timed out after {HOOK_TIMEOUT}s"

    def run_fake(self, fake: Any, event: Event) -> Outcome:
        """A fake's Python handler in place of a hook; an exception is a failed hook."""
        from .fakes.base import FakeContext

        assert event.unit is not None
        ctx = FakeContext(self.model, event.to_json())
        try:
            fake.handle(ctx)
        except Exception as exc:  # noqa: BLE001 - a fake's bug shows up like a failed hook
            self.model.log(event.unit, "ERROR", f"{event.name}: fake raised {exc!r}")
            return Outcome(ok=False, rc=1)
        if ctx.status is not None:
            with edit(self.model) as st:
                st.units[event.unit].workload = Status(ctx.status[0], ctx.status[1], now())
            self.model.record_status(event.unit, "workload", *ctx.status)
        return Outcome(ok=True, pending=ctx.pending)
