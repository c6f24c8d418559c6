"""Juju-like CLI for the local model.

    python -m tools.localjuju [--model DIR] VERB ...     (or tools/localjuju/juju VERB ...)

Verbs (the real Juju command they mirror in brackets):
    deploy CHARM_DIR|fake:NAME [APP] [-n N] [--config k=v|file.yaml]... [--resource name=path]...
    add-unit APP [-n N]                     remove-unit UNIT...
    integrate A[:ep] B[:ep]                 remove-relation A[:ep] B[:ep] | RELATION_ID
    config APP [key | key=value... | --reset key[,key]]
    run UNIT ACTION [k=v...]                [juju run]: results as YAML, non-zero exit on failure
    status [--format json|yaml]             debug-log [--unit U] [-n N] [--audit]
    show-status-log UNIT                    update-status  (runs update-status on every unit)
    resolved UNIT [--no-retry]              upgrade-charm APP --path CHARM_DIR
    destroy                                 (removes every relation and unit the Juju way)
The model directory defaults to build/model (env LOCALJUJU_MODEL or --model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .controller import Controller
from .model import Model, ModelError


def _kv(items, parse_yaml=False):
    out = {}
    for item in items or []:
        if "=" not in item:
            path = Path(item)
            if not path.is_file():
                raise ModelError(f'expected key=value or a YAML file, got "{item}"')
            data = yaml.safe_load(path.read_text()) or {}
            # juju accepts {app: {k: v}} or {k: v}
            if len(data) == 1 and isinstance(next(iter(data.values())), dict):
                data = next(iter(data.values()))
            out.update(data)
            continue
        k, _, v = item.partition("=")
        out[k] = yaml.safe_load(v) if parse_yaml and v != "" else v
    return out


def _print_status(st: dict, fmt: str | None) -> None:
    if fmt == "json":
        print(json.dumps(st, indent=1, sort_keys=True))
        return
    if fmt == "yaml":
        print(yaml.safe_dump(st, sort_keys=True), end="")
        return
    print(f"Model  {st['model']['name']}  ({st['model']['path']})\n")
    print(f"{'App':<20} {'Version':<10} {'Status':<12} {'Scale':<6} Charm")
    for name, app in st["applications"].items():
        states = [u["workload-status"]["current"] for u in app["units"].values()]
        worst = next(
            (s for s in ("error", "blocked", "maintenance", "waiting", "active") if s in states),
            "unknown",
        )
        print(
            f"{name:<20} {app['version'] or '':<10} {worst:<12} "
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
                f"{info['address']:<12} {ports:<14} {info['workload-status']['message']}"
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
    sub = p.add_subparsers(dest="verb", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("charm")
    d.add_argument("app", nargs="?")
    d.add_argument("-n", "--num-units", type=int, default=1)
    d.add_argument("--config", action="append", default=[])
    d.add_argument("--resource", action="append", default=[])
    a = sub.add_parser("add-unit")
    a.add_argument("app")
    a.add_argument("-n", "--num-units", type=int, default=1)
    r = sub.add_parser("remove-unit")
    r.add_argument("units", nargs="+")
    for verb in ("integrate", "relate"):
        i = sub.add_parser(verb)
        i.add_argument("a")
        i.add_argument("b")
    rr = sub.add_parser("remove-relation")
    rr.add_argument("a")
    rr.add_argument("b", nargs="?")
    c = sub.add_parser("config")
    c.add_argument("app")
    c.add_argument("items", nargs="*")
    c.add_argument("--reset", default="")
    c.add_argument("--format", choices=["json", "yaml"], default=None)
    ru = sub.add_parser("run")
    ru.add_argument("unit")
    ru.add_argument("action")
    ru.add_argument("params", nargs="*")
    ru.add_argument("--format", choices=["json", "yaml"], default="yaml")
    s = sub.add_parser("status")
    s.add_argument("--format", choices=["json", "yaml", "tabular"], default=None)
    dl = sub.add_parser("debug-log")
    dl.add_argument("--unit", "-u", action="append", default=[])
    dl.add_argument("-n", "--lines", type=int, default=0)
    dl.add_argument("--audit", action="store_true", help="show the hook-tool audit trail instead")
    sl = sub.add_parser("show-status-log")
    sl.add_argument("unit")
    sub.add_parser("update-status")
    rs = sub.add_parser("resolved")
    rs.add_argument("unit")
    rs.add_argument("--no-retry", action="store_true")
    up = sub.add_parser("upgrade-charm")
    up.add_argument("app")
    up.add_argument("--path", required=True)
    sub.add_parser("destroy")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    model = Model(args.model) if args.model else Model()
    ctl = Controller(model, echo=lambda m: print(m, file=sys.stderr))
    try:
        return _dispatch(ctl, model, args)
    except ModelError as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 1


def _dispatch(ctl: Controller, model: Model, args) -> int:
    v = args.verb
    if v == "deploy":
        resources = dict(x.split("=", 1) for x in args.resource)
        app = ctl.deploy(args.charm, args.app, _kv(args.config), resources, args.num_units)
        print(f"Deployed {app}")
        return _errors(ctl)
    if v == "add-unit":
        print("\n".join(ctl.add_unit(args.app, args.num_units)))
        return _errors(ctl)
    if v == "remove-unit":
        for u in args.units:
            ctl.remove_unit(u)
        return _errors(ctl)
    if v in ("integrate", "relate"):
        print(ctl.integrate(args.a, args.b))
        return _errors(ctl)
    if v == "remove-relation":
        ctl.remove_relation(args.a, args.b)
        return _errors(ctl)
    if v == "config":
        reset = [x for x in args.reset.split(",") if x]
        sets = [x for x in args.items if "=" in x]
        if sets or reset:
            ctl.config_set(args.app, _kv(sets), reset)
            return _errors(ctl)
        cfg = ctl.config_get(args.app)
        if args.items:
            value = cfg.get(args.items[0])
            print(json.dumps(value) if args.format == "json" else ("" if value is None else value))
        else:
            print(
                json.dumps(cfg, indent=1, sort_keys=True)
                if args.format == "json"
                else yaml.safe_dump(cfg),
                end="\n" if args.format == "json" else "",
            )
        return 0
    if v == "run":
        rec = ctl.run_action(args.unit, args.action, _kv(args.params, parse_yaml=True))
        for entry in rec["log"]:
            print(f"{entry['time']} {entry['message']}", file=sys.stderr)
        out = dict(rec["results"])
        if args.format == "json":
            print(
                json.dumps(
                    {
                        "id": rec["id"],
                        "status": rec["status"],
                        "message": rec["message"],
                        "results": out,
                    },
                    indent=1,
                )
            )
        elif out:
            print(yaml.safe_dump(out, sort_keys=True), end="")
        if rec["status"] != "completed":
            print(f"ERROR the task failed: {rec['message']}", file=sys.stderr)
            return 1
        return 0
    if v == "status":
        _print_status(ctl.status(), None if args.format == "tabular" else args.format)
        return 0
    if v == "debug-log":
        if args.audit:
            lines = [
                json.dumps(r, sort_keys=True)
                for r in model.read_jsonl("audit.jsonl")
                if not args.unit or r["unit"] in args.unit
            ]
        else:
            path = model.root / "debug.log"
            lines = path.read_text().splitlines() if path.exists() else []
            if args.unit:
                lines = [ln for ln in lines if ln.split(":", 1)[0] in args.unit]
        print("\n".join(lines[-args.lines :] if args.lines else lines))
        return 0
    if v == "show-status-log":
        for r in model.read_jsonl("status-history.jsonl"):
            if r["unit"] == args.unit:
                print(f"{r['time']:.3f} {r['kind']:<9} {r['status']:<12} {r['message']}")
        return 0
    if v == "update-status":
        ctl.update_status()
        return _errors(ctl)
    if v == "resolved":
        ctl.resolved(args.unit, retry=not args.no_retry)
        return _errors(ctl)
    if v == "upgrade-charm":
        ctl.upgrade_charm(args.app, args.path)
        return _errors(ctl)
    if v == "destroy":
        ctl.destroy()
        print(f"Destroyed the model at {model.root}")
        return 0
    raise ModelError(f"unknown verb {v}")


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
