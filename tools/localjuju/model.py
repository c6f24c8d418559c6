"""The local model's on-disk state: one JSON document under a file lock, plus append-only logs.

Layout of a model directory (default build/model, env LOCALJUJU_MODEL):
    state.json            applications, units, config, relations + databags, leader data, queue
    state.lock            fcntl lock guarding state.json (hook tools run as separate processes)
    audit.jsonl           every hook-tool invocation {time, unit, hook, tool, argv, rc}
    debug.log             juju-log lines and hook/action output (what `debug-log` shows)
    status-history.jsonl  every workload/agent status change
    hooks.jsonl           every hook/action a charm unit ran {unit, kind, name, start, seconds, rc}
    actions/<id>.json     action params, results, status, log
    bin/                  one launcher per hook tool (put first on PATH for hooks)
    units/<app>-<n>/      charm/ (copy of the charm), root/ (DOCKER_REGISTRY_SANDBOX),
                          .venv/ (built by layer:basic's bootstrap on the first hook),
                          machine/ (the unit's machine, see machine.py: upper/<name>/ holds
                          what its hooks wrote under /root, /usr/local, /var/lib; shims.log)
    resources/<app>/<name>/<filename>
    fakes/<app>/          state of remote-application fakes
    clients/<netloc>/     docker client material written by the client fake
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600): the model's state,
    hook contexts, action records and the fakes' files hold passwords and keys."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


HOOK_TOOLS = [
    "config-get",
    "relation-get",
    "relation-set",
    "relation-ids",
    "relation-list",
    "status-set",
    "status-get",
    "juju-log",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "open-port",
    "close-port",
    "opened-ports",
    "unit-get",
    "network-get",
    "is-leader",
    "leader-get",
    "leader-set",
    "application-version-set",
    "resource-get",
    "juju-reboot",
    "secret-add",
    "secret-get",
    "secret-info-get",
    "secret-ids",
    "storage-get",
    "storage-list",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def now() -> float:
    return time.time()


_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


def new_xid() -> str:
    """A 20-character id in the alphabet of Juju's (xid) secret ids."""
    number = uuid.uuid4().int
    return "".join(_XID_ALPHABET[(number >> (5 * i)) & 31] for i in range(20))


def iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts if ts is not None else now()))


def unit_dirname(unit: str) -> str:
    return unit.replace("/", "-")


def default_model_dir() -> Path:
    return Path(os.environ.get("LOCALJUJU_MODEL", REPO_ROOT / "build" / "model"))


def empty_state(name: str) -> dict:
    return {
        "name": name,
        "uuid": str(uuid.uuid4()),
        "next_address": 2,
        "next_machine": 0,
        "next_relation_id": 0,
        "next_action_id": 1,
        "applications": {},
        "units": {},
        "relations": {},
        "leader_data": {},
        "queue": [],
    }


class Model:
    """Paths and locked access to one model directory."""

    def __init__(self, root: os.PathLike | str | None = None, python: str | None = None):
        self.root = Path(root) if root else default_model_dir()
        self.root = self.root.resolve()
        self.python = python or os.environ.get("DOCKER_REGISTRY_PY") or _default_python()

    # --- paths -----------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    def unit_dir(self, unit: str) -> Path:
        return self.root / "units" / unit_dirname(unit)

    def charm_dir(self, unit: str) -> Path:
        return self.unit_dir(unit) / "charm"

    def sandbox_dir(self, unit: str) -> Path:
        return self.unit_dir(unit) / "root"

    def fake_dir(self, app: str) -> Path:
        return self.root / "fakes" / app

    def exists(self) -> bool:
        return self.state_file.exists()

    # --- creation --------------------------------------------------------------------
    def ensure(self, name: str | None = None) -> None:
        """Create the model directory and hook-tool launchers (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)  # state.json, contexts and records hold the model's secrets
        for sub in ("units", "actions", "resources", "fakes", "clients"):
            (self.root / sub).mkdir(exist_ok=True)
        if not self.state_file.exists():
            self._write(empty_state(name or self.root.name))
        self.write_launchers()

    def write_launchers(self) -> None:
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        tools_py = Path(__file__).resolve().parent / "hooktools.py"
        # -S: no site initialisation (its .pth files and imports cost ~10 ms on each of the
        # hundreds of tool calls a deploy makes); the tools need only PyYAML from site-packages
        site = _site_packages(self.python)
        for tool in HOOK_TOOLS:
            path = self.bin_dir / tool
            text = (
                f"#!/bin/sh\nLOCALJUJU_MODEL='{self.root}' PYTHONPATH='{site}' "
                f'exec "{self.python}" -S "{tools_py}" {tool} "$@"\n'
            )
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                path.chmod(0o755)

    # --- state -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "state.lock", "a+") as fp:
            fcntl.flock(fp, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fp, fcntl.LOCK_UN)

    def read(self) -> dict:
        with self.lock():
            return self._read()

    @contextlib.contextmanager
    def transaction(self):
        """Locked read-modify-write of state.json; nothing is written if the body raises."""
        with self.lock():
            state = self._read()
            yield state
            self._write(state)

    def _read(self) -> dict:
        if not self.state_file.exists():
            raise ModelError(f"no model at {self.root} (deploy something first)")
        return json.loads(self.state_file.read_text())

    def _write(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        write_private(tmp, json.dumps(state, indent=1, sort_keys=True))
        os.replace(tmp, self.state_file)

    # --- logs ------------------------------------------------------------------------
    def append_jsonl(self, name: str, record: dict) -> None:
        with open(self.root / name, "a") as fp:
            fp.write(json.dumps(record, sort_keys=True) + "\n")

    def read_jsonl(self, name: str) -> list[dict]:
        path = self.root / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def log(self, unit: str, level: str, message: str) -> None:
        with open(self.root / "debug.log", "a") as fp:
            for line in str(message).splitlines() or [""]:
                fp.write(f"{unit}: {iso()} {level} {line}\n")

    def audit(self, unit: str, hook: str, tool: str, argv: list[str], rc: int) -> None:
        self.append_jsonl(
            "audit.jsonl",
            {"time": now(), "unit": unit, "hook": hook, "tool": tool, "argv": argv, "rc": rc},
        )

    def record_status(self, unit: str, kind: str, status: str, message: str) -> None:
        self.append_jsonl(
            "status-history.jsonl",
            {"time": now(), "unit": unit, "kind": kind, "status": status, "message": message},
        )


class ModelError(Exception):
    """A verb cannot be carried out (bad arguments, unknown unit, ...)."""


def _default_python() -> str:
    import sys

    return sys.executable


def _site_packages(python: str) -> str:
    """Where ``python`` keeps its installed packages (purelib)."""
    import subprocess
    import sys
    import sysconfig

    if python == sys.executable:
        return sysconfig.get_paths()["purelib"]
    return subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
