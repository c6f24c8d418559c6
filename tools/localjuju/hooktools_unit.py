"""Hook tools for the unit itself: status, log, actions, ports, network, leadership, misc."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .hooktools_base import STATUSES, Args, ToolContext, ToolError, _apply, _out, read_settings
from .model import iso, now, write_private


class UnitTools(ToolContext):
    # status / log ---------------------------------------------------------------------
    def status_set(self, argv):
        a = Args(argv, {"--application": False})
        if not a.pos or a.pos[0] not in STATUSES:
            raise ToolError(
                f"invalid status {a.pos[0] if a.pos else ''!r}, expected one of {STATUSES}", 2
            )
        status, message = a.pos[0], " ".join(a.pos[1:])
        with self.model.transaction() as state:
            if a.get("--application"):
                if not self._is_leader(state):
                    raise ToolError("this unit is not the leader", 1)
                state["applications"][self.app]["status"] = {
                    "status": status,
                    "message": message,
                    "since": now(),
                }
                who = self.app
            else:
                state["units"][self.unit]["workload"] = {
                    "status": status,
                    "message": message,
                    "since": now(),
                }
                who = self.unit
        self.model.record_status(who, "workload", status, message)
        return None

    def status_get(self, argv):
        a = Args(
            argv, {"--format": True, "--include-data": False, "--application": False, "-o": True}
        )
        state = self._state()
        if a.get("--application"):
            st = state["applications"][self.app].get("status") or {
                "status": "unknown",
                "message": "",
            }
            value = {
                "application-status": {
                    "status": st["status"],
                    "message": st["message"],
                    "status-data": {},
                }
            }
        else:
            st = state["units"][self.unit]["workload"]
            value = {"status": st["status"], "message": st["message"], "status-data": {}}
            if not a.get("--include-data") and a.get("--format") is None:
                value = st["status"]
        return _out(value, a.get("--format"))

    def juju_log(self, argv):
        a = Args(argv, {"-l": True, "--log-level": True, "--debug": False, "--format": True})
        level = a.get("-l", "--log-level") or ("DEBUG" if a.get("--debug") else "INFO")
        self.model.log(self.unit, str(level).upper(), " ".join(a.pos))
        return None

    # actions --------------------------------------------------------------------------
    def _action(self):
        aid = self.ctx.get("action_id")
        if not aid:
            raise ToolError("not running an action", 1)
        return self.model.root / "actions" / f"{aid}.json"

    def action_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        data = json.loads(self._action().read_text())["params"]
        if a.pos:
            for part in a.pos[0].split("."):
                data = data.get(part) if isinstance(data, dict) else None
        return _out(data, a.get("--format"))

    def _update_action(self, fn):
        path = self._action()
        with self.model.lock():
            rec = json.loads(path.read_text())
            fn(rec)
            write_private(path, json.dumps(rec, indent=1, sort_keys=True))

    def action_set(self, argv):
        pairs = []
        for kv in argv:
            k, eq, v = kv.partition("=")
            if not eq or not k:
                raise ToolError(f'argument "{kv}" must be of the form key...=value', 2)
            pairs.append((k, v))

        def fn(rec):
            for k, v in pairs:
                d = rec["results"]
                parts = k.split(".")
                for p in parts[:-1]:
                    d = d.setdefault(p, {})
                d[parts[-1]] = v

        self._update_action(fn)
        return None

    def action_fail(self, argv):
        message = " ".join(argv) or "action failed without reason given, check action for errors"

        def fn(rec):
            rec["status"] = "failed"
            rec["message"] = message

        self._update_action(fn)
        return None

    def action_log(self, argv):
        line = " ".join(argv)
        self._update_action(lambda rec: rec["log"].append({"time": iso(), "message": line}))
        return None

    # ports ----------------------------------------------------------------------------
    def _port_spec(self, argv) -> str:
        a = Args(argv, {"--endpoints": True})
        if not a.pos:
            raise ToolError("no port or range specified", 2)
        spec = a.pos[0].lower()
        if spec == "icmp":
            return spec
        port, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise ToolError(f'invalid protocol "{proto}"', 2)
        lo, _, hi = port.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise ToolError(f'invalid port "{port}"', 2)
        return f"{port}/{proto}"

    def open_port(self, argv):
        spec = self._port_spec(argv)
        with self.model.lock():
            ports = self.ctx.setdefault("pending", {}).setdefault("ports", [])
            ports.append(["open", spec])
            self._save_ctx()

    def close_port(self, argv):
        spec = self._port_spec(argv)
        with self.model.lock():
            ports = self.ctx.setdefault("pending", {}).setdefault("ports", [])
            ports.append(["close", spec])
            self._save_ctx()

    def opened_ports(self, argv):
        a = Args(argv, {"--format": True, "--endpoints": False, "-o": True})
        return _out(list(self._state()["units"][self.unit]["ports"]), a.get("--format"))

    # network --------------------------------------------------------------------------
    def unit_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        if not a.pos or a.pos[0] not in ("private-address", "public-address"):
            raise ToolError("unknown setting", 2)
        return _out(self._state()["units"][self.unit]["address"], a.get("--format"))

    def network_get(self, argv):
        a = Args(
            argv,
            {
                "--format": True,
                "-r": True,
                "--relation": True,
                "--primary-address": False,
                "--ingress-address": False,
                "--bind-address": False,
                "--egress-subnets": False,
                "-o": True,
            },
        )
        state = self._state()
        if not a.pos:
            raise ToolError("no arguments specified", 2)
        binding = a.pos[0]
        endpoints = state["applications"][self.app]["endpoints"]
        if binding not in endpoints and binding not in state["applications"][self.app].get(
            "extra_bindings", []
        ):
            raise ToolError(f'no network config found for binding "{binding}"', 1)
        addr = state["units"][self.unit]["address"]
        if a.get("--primary-address") or a.get("--bind-address"):
            return _out(addr, a.get("--format"))
        if a.get("--ingress-address"):
            return _out(addr, a.get("--format"))
        if a.get("--egress-subnets"):
            return _out(f"{addr}/32", a.get("--format"))
        info = {
            "bind-addresses": [
                {
                    "mac-address": "",
                    "interface-name": "lo",
                    "addresses": [
                        {"hostname": "", "value": addr, "cidr": "127.0.0.0/8", "address": addr}
                    ],
                    "macaddress": "",
                    "interfacename": "lo",
                }
            ],
            "egress-subnets": [f"{addr}/32"],
            "ingress-addresses": [addr],
        }
        return _out(info, a.get("--format") or "yaml")

    # leadership -----------------------------------------------------------------------
    def is_leader(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        return _out(self._is_leader(self._state()), a.get("--format"))

    def leader_get(self, argv):
        a = Args(argv, {"--format": True, "-o": True})
        data = self._state()["leader_data"].get(self.app, {})
        key = a.pos[0] if a.pos else "-"
        return _out(data if key == "-" else data.get(key), a.get("--format"))

    def leader_set(self, argv):
        a = Args(argv, {"--file": True})
        settings = read_settings(a)
        with self.model.transaction() as state:
            if not self._is_leader(state):
                raise ToolError(
                    "cannot write leadership settings: cannot write settings: not the leader", 1
                )
            data = state["leader_data"].setdefault(self.app, {})
            changed = _apply(data, settings)
            if changed:
                from_unit = self.unit
                for u, info in sorted(state["units"].items()):
                    if info["app"] == self.app and u != from_unit:
                        state["queue"].append(
                            {"unit": u, "hook": "leader-settings-changed", "seq": time.time_ns()}
                        )
        return None

    # misc -----------------------------------------------------------------------------
    def application_version_set(self, argv):
        if len(argv) != 1:
            raise ToolError("expected exactly one version argument", 2)
        with self.model.transaction() as state:
            state["applications"][self.app]["version"] = argv[0]

    def resource_get(self, argv):
        if len(argv) != 1:
            raise ToolError("expected exactly one resource name", 2)
        name = argv[0]
        state = self._state()
        app = state["applications"][self.app]
        path = app.get("resources", {}).get(name)
        if name not in app.get("resource_names", []) and path is None:
            raise ToolError(f'resource "{name}" not found in charm metadata', 1)
        if not path or not Path(path).exists():
            raise ToolError(
                "could not download resource: HTTP request failed: "
                f"resource#{self.app}/{name} not found",
                1,
            )
        sys.stdout.write(
            path
        )  # Juju prints the path without a newline; charmhelpers uses it as is
        return None

    def juju_reboot(self, argv):
        raise ToolError("juju-reboot is not supported by the local model", 1)
