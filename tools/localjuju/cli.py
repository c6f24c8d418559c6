"""Juju-like CLI for the local model: Juju 3's argument and output shapes (what jubilant sends
and parses), so `jubilant.Juju(model=DIR, cli_binary="tools/localjuju/juju")` drives it.

    python -m tools.localjuju VERB [-m|--model DIR] ...     (or tools/localjuju/juju VERB ...)

`--model` goes before or after the verb. Verbs (as in Juju unless noted):
    deploy CHARM_DIR|fake:NAME [APP] [-n|--num-units N] [--config k=v|file.yaml]...
           [--resource name=path]... [--base ubuntu@22.04] [--trust]
           [--storage NAME=[pool,][size][,count]]...
    add-unit APP [-n|--num-units N]           remove-unit [--no-prompt] UNIT...
    integrate A[:ep] B[:ep]                   remove-relation A[:ep] B[:ep] | RELATION_ID
    config APP [--format json|yaml] [key | key=value... ] [--reset key[,key]] [--file f.yaml]
    run UNIT ACTION [k=v...] [--params FILE] [--format json|yaml|plain] [--wait 60s]
        a task whose hook exits non-zero: the output, "the following task failed" on stderr,
        exit 1; a task failed with action-fail: status "failed", exit 0
    exec --unit UNIT [--format json|yaml|plain] [--wait 300s] -- COMMAND...
        COMMAND runs through bash in the unit's hook context on its machine (its sandbox)
    status [--format json|yaml|tabular]       show-unit UNIT [--format json|yaml]
    debug-log [--include U]... [--limit N] [--replay] [--no-tail] [--level L]
              [--audit]  (local model only: the hook-tool audit trail)
    refresh APP --path CHARM_DIR [--resource name=path]...   (alias: upgrade-charm)
    attach-resource APP name=path...
    show-status-log UNIT                      resolved UNIT [--no-retry]
    add-secret NAME [key=value|key#base64=v|key#file=path...] [--file f.yaml] [--info I]
    update-secret ID|NAME [key=value...] [--file f.yaml] [--info I] [--name N] [--auto-prune]
    grant-secret ID|NAME APP[,APP]            revoke-secret ID|NAME APP[,APP]
    remove-secret ID|NAME [--revision N]      secrets [--format json|yaml]
    show-secret ID|NAME [--reveal] [--format json|yaml]
    add-storage UNIT NAME=[pool,][size][,count]     attach-storage UNIT STORAGE_ID
    detach-storage STORAGE_ID...              storage [--format json|yaml] (alias list-storage)
        each instance a tmpfs of its size, bind-mounted at the store's location under the
        unit's sandbox (storage.py)
    update-status [UNIT]  (local model only: Juju's timer firing update-status now)
    destroy               (local model only: removes every relation and unit the Juju way)
The model directory defaults to build/model (env LOCALJUJU_MODEL).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from .controller import Controller
from .model import Model, ModelError
from .secrets import find as find_secret
from .secrets import listing as secret_listing
from .secrets import parse_content
from .state import load
from .status import config_report, juju_status, task_report, unit_report
from .storage import report as storage_report


def _kv(items, parse_yaml=False):
    out = {}
    for item in items or []:
        if "=" not in item:
            out.update(_yaml_file(item))
            continue
        k, _, v = item.partition("=")
        out[k] = yaml.safe_load(v) if parse_yaml and v != "" else v
    return out


def _yaml_file(name: str, per_app: bool = True) -> dict[str, Any]:
    """A YAML mapping from a file; ``per_app``: config, which juju accepts as {app: {k: v}}
    or {k: v} (action parameters are always {k: v})."""
    path = Path(name)
    if not path.is_file():
        raise ModelError(f'expected key=value or a YAML file, got "{name}"')
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ModelError(f"{name}: expected a YAML mapping")
    if per_app and len(data) == 1 and isinstance(next(iter(data.values())), dict):
        data = next(iter(data.values()))
    return data


def _seconds(text: str | None, default: float) -> float:
    """A Go duration as Juju's --wait takes it (``60s``, ``5m``, ``1m30s``, ``0.5s``)."""
    if not text:
        return default
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ModelError(f'invalid --wait duration "{text}" (e.g. 60s, 5m)')
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def _print(data: Any, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(data, indent=1, sort_keys=True))
    else:
        print(yaml.safe_dump(data, sort_keys=True), end="")


def _print_status(st: dict, fmt: str | None) -> None:
    if fmt in ("json", "yaml"):
        _print(juju_status(st), fmt)
        return
    print(f"Model  {st['model']['name']}  ({st['model']['path']})\n")
    print(f"{'App':<20} {'Version':<10} {'Status':<12} {'Scale':<6} Charm")
    for name, app in st["applications"].items():
        print(
            f"{name:<20} {app['version'] or '':<10} {app['application-status']['current']:<12} "
            f"{len(app['units']):<6} {app['charm']}"
        )
    print(f"\n{'Unit':<22} {'Workload':<12} {'Agent':<11} {'Address':<12} {'Ports':<14} Message")
    for app in st["applications"].values():
        for u, info in app["units"].items():
            name = u + ("*" if info["leader"] else "")
            ports = ",".join(info["open-ports"])
            print(
                f"{name:<22} {info['workload-status']['current']:<12} "
                f"{info['juju-status']['current']:<11} "
                f"{info['public-address']:<12} {ports:<14} {info['workload-status']['message']}"
            )
    if st["relations"]:
        print(f"\n{'Integration provider':<34} {'Requirer':<34} {'Interface':<22} Type")
        for rel in st["relations"]:
            eps = rel["endpoints"]
            print(f"{eps[0]:<34} {eps[-1]:<34} {rel['interface'] or '':<22} {rel['type']}")
    if st["pending-events"]:
        print(
            f"\n{st['pending-events']} event(s) pending "
            "(a unit is in error: fix it and run `resolved`)"
        )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="localjuju", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--model", "-m", help="model directory (default: $LOCALJUJU_MODEL or build/model)"
    )
    # every verb takes --model too (jubilant puts it right after the verb); SUPPRESS keeps a
    # --model given before the verb when none comes after it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", "-m", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name: str, *aliases: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, aliases=list(aliases), parents=[common])

    d = verb("deploy")
    d.add_argument("charm")
    d.add_argument("app", nargs="?")
    d.add_argument("-n", "--num-units", type=int, default=1)
    d.add_argument("--config", action="append", default=[])
    d.add_argument("--resource", action="append", default=[])
    d.add_argument("--base")
    d.add_argument("--trust", action="store_true")
    d.add_argument("--storage", action="append", default=[])
    ads = verb("add-storage")
    ads.add_argument("unit")
    ads.add_argument("directives", nargs="+")
    ats = verb("attach-storage")
    ats.add_argument("unit")
    ats.add_argument("storage_ids", nargs="+")
    dts = verb("detach-storage")
    dts.add_argument("storage_ids", nargs="+")
    dts.add_argument("--force", action="store_true", help="(the local model never needs it)")
    ls = verb("storage", "list-storage")
    ls.add_argument("--format", choices=["json", "yaml"], default="yaml")
    a = verb("add-unit")
    a.add_argument("app")
    a.add_argument("-n", "--num-units", type=int, default=1)
    r = verb("remove-unit")
    r.add_argument("units", nargs="+")
    r.add_argument("--no-prompt", action="store_true")
    i = verb("integrate", "relate")
    i.add_argument("a")
    i.add_argument("b")
    rr = verb("remove-relation")
    rr.add_argument("a")
    rr.add_argument("b", nargs="?")
    c = verb("config")
    c.add_argument("app")
    c.add_argument("items", nargs="*")
    c.add_argument("--reset", action="append", default=[])
    c.add_argument("--file")
    c.add_argument("--format", choices=["json", "yaml"], default="yaml")
    ru = verb("run")
    ru.add_argument("unit")
    ru.add_argument("action")
    ru.add_argument("params", nargs="*")
    ru.add_argument("--params", dest="params_file")
    ru.add_argument("--format", choices=["json", "yaml", "plain"], default="plain")
    ru.add_argument("--wait")
    ru.add_argument("--string-args", action="store_true", help="take key=value values as typed")
    ex = verb("exec")
    ex.add_argument("--unit", "-u", required=True, help="one unit (app/leader works too)")
    ex.add_argument("--format", choices=["json", "yaml", "plain"], default="plain")
    ex.add_argument("--wait")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    s = verb("status")
    s.add_argument("--format", choices=["json", "yaml", "tabular"], default="tabular")
    su = verb("show-unit")
    su.add_argument("unit")
    su.add_argument("--format", choices=["json", "yaml"], default="yaml")
    dl = verb("debug-log")
    dl.add_argument("--include", "--unit", "-u", dest="include", action="append", default=[])
    dl.add_argument("--limit", "-n", "--lines", dest="limit", type=int, default=0)
    dl.add_argument("--replay", action="store_true", help="(always: the log is read whole)")
    dl.add_argument("--no-tail", action="store_true", help="(always: it never follows)")
    dl.add_argument("--level", choices=["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"])
    dl.add_argument("--audit", action="store_true", help="show the hook-tool audit trail instead")
    sl = verb("show-status-log")
    sl.add_argument("unit")
    us = verb("update-status")
    us.add_argument("unit", nargs="?")
    rs = verb("resolved")
    rs.add_argument("unit")
    rs.add_argument("--no-retry", action="store_true")
    up = verb("refresh", "upgrade-charm")
    up.add_argument("app")
    up.add_argument("--path", required=True)
    up.add_argument("--resource", action="append", default=[])
    ar = verb("attach-resource")
    ar.add_argument("app")
    ar.add_argument("resources", nargs="+")
    _secret_verbs(verb)
    verb("destroy")
    return p


def _secret_verbs(verb) -> None:
    for name in ("add-secret", "update-secret"):
        v = verb(name)
        v.add_argument("secret")
        v.add_argument("content", nargs="*")
        v.add_argument("--file")
        v.add_argument("--info")
        if name == "update-secret":
            v.add_argument("--name")
            v.add_argument("--auto-prune", action="store_true")
    for name in ("grant-secret", "revoke-secret"):
        v = verb(name)
        v.add_argument("secret")
        v.add_argument("apps")
    v = verb("remove-secret")
    v.add_argument("secret")
    v.add_argument("--revision", type=int)
    v = verb("secrets")
    v.add_argument("--format", choices=["json", "yaml"], default="yaml")
    v.add_argument("--owner")
    v = verb("show-secret")
    v.add_argument("secret")
    v.add_argument("--reveal", action="store_true")
    v.add_argument("--format", choices=["json", "yaml"], default="yaml")


def _secrets(ctl: Controller, model: Model, v: str, args) -> int:
    if v == "add-secret":
        print(ctl.add_secret(args.secret, parse_content(args.content, args.file), args.info))
    elif v == "update-secret":
        content = parse_content(args.content, args.file) if args.content or args.file else None
        ctl.update_secret(args.secret, content, description=args.info, name=args.name)
    elif v == "grant-secret":
        ctl.grant_secret(args.secret, args.apps)
    elif v == "revoke-secret":
        ctl.revoke_secret(args.secret, args.apps)
    elif v == "remove-secret":
        ctl.remove_secret(args.secret, args.revision)
    elif v == "secrets":
        _print(secret_listing(load(model)), args.format)
    else:  # show-secret
        st = load(model)
        xid, _ = find_secret(st, args.secret)
        one = secret_listing(st, xid if args.reveal else None)[xid]
        _print({xid: one}, args.format)
    return _errors(ctl)


VERB_ALIASES = {"relate": "integrate", "upgrade-charm": "refresh", "list-storage": "storage"}


def _directives(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, directive = item.partition("=")
        if not sep or not name:
            raise ModelError(f'expected storage as NAME=[pool,][size][,count], got "{item}"')
        out[name] = directive
    return out


def _storage(ctl: Controller, model: Model, v: str, args) -> int:
    if v == "add-storage":
        for sid in ctl.add_storage(args.unit, _directives(args.directives)):
            print(f"added storage {sid} to {args.unit}", file=sys.stderr)
    elif v == "attach-storage":
        for sid in args.storage_ids:
            ctl.attach_storage(args.unit, sid)
    elif v == "detach-storage":
        for sid in args.storage_ids:
            ctl.detach_storage(sid)
            print(f"detaching {sid}", file=sys.stderr)
    else:
        _print(storage_report(load(model)), args.format)
        return 0
    return _errors(ctl)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    model = Model(args.model) if args.model else Model()
    ctl = Controller(model, echo=lambda m: print(m, file=sys.stderr))
    try:
        return _dispatch(ctl, model, args)
    except ModelError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 1


def _resources(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ModelError(f'expected a resource as name=path, got "{item}"')
        out[name] = path
    return out


def _dispatch(ctl: Controller, model: Model, args) -> int:
    v = VERB_ALIASES.get(args.verb, args.verb)
    if v == "deploy":
        app = ctl.deploy(
            args.charm,
            args.app,
            _kv(args.config),
            _resources(args.resource),
            args.num_units,
            trust=args.trust,
            base=args.base,
            storage=_directives(args.storage),
        )
        print(f"Deployed {app}", file=sys.stderr)
        return _errors(ctl)
    if v == "add-unit":
        print("\n".join(ctl.add_unit(args.app, args.num_units)), file=sys.stderr)
        return _errors(ctl)
    if v == "remove-unit":
        for u in args.units:
            ctl.remove_unit(u)
        return _errors(ctl)
    if v == "integrate":
        ctl.integrate(args.a, args.b)
        return _errors(ctl)
    if v == "remove-relation":
        ctl.remove_relation(args.a, args.b)
        return _errors(ctl)
    if v == "config":
        return _config(ctl, model, args)
    if v == "run":
        params = _yaml_file(args.params_file, per_app=False) if args.params_file else {}
        params.update(_kv(args.params, parse_yaml=not args.string_args))
        # (the local model runs the action to its end; --wait only bounds the exec verb)
        _seconds(args.wait, 60)
        rec = ctl.run_action(args.unit, args.action, params)
        return _task_output(rec, args.format)
    if v == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            raise ModelError("no command given (juju exec --unit UNIT -- COMMAND...)")
        rec = ctl.exec(args.unit, " ".join(command), _seconds(args.wait, 300))
        if rec["timed-out"]:
            print(f"ERROR timed out waiting for results from: unit {rec['unit']}", file=sys.stderr)
            return 1
        return _task_output(rec, args.format)
    if v == "status":
        _print_status(ctl.status(), args.format)
        return 0
    if v == "show-unit":
        _print(unit_report(load(model), ctl.resolve_unit(args.unit)), args.format)
        return 0
    if v == "debug-log":
        _debug_log(model, args)
        return 0
    if v == "show-status-log":
        for r in model.read_jsonl("status-history.jsonl"):
            if r["unit"] == args.unit:
                print(f"{r['time']:.3f} {r['kind']:<9} {r['status']:<12} {r['message']}")
        return 0
    if v == "update-status":
        ctl.update_status(args.unit)
        return _errors(ctl)
    if v == "resolved":
        ctl.resolved(args.unit, retry=not args.no_retry)
        return _errors(ctl)
    if v == "refresh":
        ctl.upgrade_charm(args.app, args.path, _resources(args.resource))
        return _errors(ctl)
    if v == "attach-resource":
        ctl.attach_resource(args.app, _resources(args.resources))
        return _errors(ctl)
    if v.endswith("-storage") or v == "storage":
        return _storage(ctl, model, v, args)
    if v.endswith("-secret") or v == "secrets":
        return _secrets(ctl, model, v, args)
    if v == "destroy":
        ctl.destroy()
        print(f"Destroyed the model at {model.root}")
        return 0
    raise ModelError(f"unknown verb {v}")


def _config(ctl: Controller, model: Model, args) -> int:
    reset = [key for group in args.reset for key in group.split(",") if key]
    sets = _kv([x for x in args.items if "=" in x])
    if args.file:
        sets = {**_yaml_file(args.file), **sets}
    if sets or reset:
        ctl.config_set(args.app, sets, reset)
        return _errors(ctl)
    report = config_report(load(model), args.app)
    if not args.items:
        _print(report, args.format)
        return 0
    key = args.items[0]
    if key not in report["settings"]:
        raise ModelError(
            f'key "{key}" not found in "{args.app}" application config or charm settings.'
        )
    value = report["settings"][key].get("value")
    print("" if value is None else (json.dumps(value) if isinstance(value, bool) else value))
    return 0


def _task_output(rec: dict[str, Any], fmt: str) -> int:
    """A finished task as `juju run`/`juju exec` prints it; exit 1 (and "the following task
    failed" on stderr) only when the hook or command exited non-zero, as in Juju 3."""
    task = task_report(rec)
    if fmt in ("json", "yaml"):
        _print({task["unit"]: task}, fmt)
    else:
        for line in task.get("log", []):
            print(line, file=sys.stderr)
        shown = {
            k: v
            for k, v in task["results"].items()
            if k not in ("return-code", "stdout", "stderr")
        }
        if task["status"] == "failed":
            print(f"Action id {task['id']} failed: {task.get('message', '')}")
        if shown:
            print(yaml.safe_dump(shown, sort_keys=True), end="")
        for stream in ("stdout", "stderr"):
            if task["results"].get(stream):
                print(task["results"][stream].strip("\n"))
    rc = task["results"]["return-code"]
    if rc:
        print(
            f'ERROR the following task failed:\n - id "{task["id"]}" with return code {rc}\n\n'
            "use 'juju show-task' to inspect the failure",
            file=sys.stderr,
        )
        return 1
    return 0


LEVELS = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"]


def _debug_log(model: Model, args) -> None:
    if args.audit:
        lines = [
            json.dumps(r, sort_keys=True)
            for r in model.read_jsonl("audit.jsonl")
            if not args.include or r["unit"] in args.include
        ]
    else:
        path = model.root / "debug.log"
        lines = path.read_text().splitlines() if path.exists() else []
        if args.include:
            lines = [ln for ln in lines if _included(_log_unit(ln), args.include)]
        if args.level:
            floor = LEVELS.index(args.level)
            lines = [ln for ln in lines if _log_level(ln) >= floor]
    print("\n".join(lines[-args.limit :] if args.limit else lines))


def _log_unit(line: str) -> str:
    return line.split(":", 1)[0]


def _included(unit: str, wanted: list[str]) -> bool:
    """`--include` names a unit (``app/0`` or its tag ``unit-app-0``) or an application."""
    app = unit.split("/")[0]
    tag = "unit-" + unit.replace("/", "-")
    return any(w in (unit, tag, app) for w in wanted)


def _log_level(line: str) -> int:
    words = line.split()
    return LEVELS.index(words[2]) if len(words) > 2 and words[2] in LEVELS else len(LEVELS)


def _errors(ctl: Controller) -> int:
    """Like juju, verbs succeed once queued; report units left in error on stderr (exit 0)."""
    st = ctl.status()
    for app in st["applications"].values():
        for u, info in app["units"].items():
            if info["juju-status"]["current"] == "error":
                print(f"{u}: {info['workload-status']['message']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
