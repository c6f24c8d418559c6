"""What a unit's first hook costs in the local model, and the real easyrsa as the CA.

    .venv/bin/python tests/bench/bootstrap.py [--units N] [--keep DIR]

1. deploys N units of the dummy charm (tools/localjuju/tests/dummy_charm, real layer:basic):
   per unit, the install hook's seconds and the part of it that is layer:basic's bootstrap
   (hook start -> its first hook-tool call, "Reactive main running for hook install": apt-get
   shims, virtualenv, six pip runs from the wheelhouse, charm-env), then one later hook;
2. deploys the real easyrsa charm with its resource and integrates it with the dummy: the
   seconds from `deploy` to the dummy holding its first server certificate.
Timings come from the model's hooks.jsonl and audit.jsonl. The load average is printed too:
the build host is shared and figures move with it. Set E2E_SKIP_BUILD=1 to reuse build/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.charms import (  # noqa: E402
    DUMMY_LAYER,
    EASYRSA_LAYER,
    build_charm,
    deploy_easyrsa,
)
from tools.localjuju.model import Model  # noqa: E402
from tools.localjuju.runner import Controller  # noqa: E402


def bootstrap_seconds(model: Model, unit: str) -> tuple[float, float]:
    """(install hook seconds, its bootstrap part) of ``unit``."""
    hooks = model.read_jsonl("hooks.jsonl")
    install = next(h for h in hooks if h["unit"] == unit and h["name"] == "install")
    first_tool = min(
        a["time"]
        for a in model.read_jsonl("audit.jsonl")
        if a["unit"] == unit and a["hook"] == "install"
    )
    return install["seconds"], first_tool - install["start"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="model directory to keep (default: a temp dir)")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    dummy = build_charm("dummy", DUMMY_LAYER)
    easyrsa = build_charm("easyrsa", EASYRSA_LAYER)
    print(f"builds: {time.monotonic() - t0:.1f}s (E2E_SKIP_BUILD reuses them)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bootstrap-bench-"))
    ctl = Controller(Model(work / "model"))
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
        started = time.monotonic()
        ctl.deploy(str(dummy), num_units=args.units)
        print(f"deploy of {args.units} dummy units: {time.monotonic() - started:.1f}s")
        for n in range(args.units):
            unit = f"dummy/{n}"
            total, boot = bootstrap_seconds(ctl.model, unit)
            venv = ctl.model.unit_dir(unit) / ".venv"
            size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 2**20
            print(f"  {unit}: install {total:.1f}s, bootstrap {boot:.1f}s, venv {size:.0f} MB")
        later = [
            h["seconds"]
            for h in ctl.model.read_jsonl("hooks.jsonl")
            if h["unit"] == "dummy/0" and h["name"] != "install"
        ]
        print(
            f"  later hooks of dummy/0: {len(later)}, median {sorted(later)[len(later) // 2]:.1f}s"
        )
        started = time.monotonic()
        deploy_easyrsa(ctl, easyrsa)
        deployed = time.monotonic() - started
        ctl.integrate("dummy:cert-provider", "easyrsa:client")
        took = time.monotonic() - started
        rel = next(
            r
            for r in ctl.model.read()["relations"].values()
            if r["interface"] == "tls-certificates"
        )
        have = "BEGIN CERTIFICATE" in rel["unit_data"]["easyrsa/0"].get("dummy_0.server.cert", "")
        total, boot = bootstrap_seconds(ctl.model, "easyrsa/0")
        print(
            f"easyrsa: deploy {deployed:.1f}s (install {total:.1f}s, bootstrap {boot:.1f}s), "
            f"+ integrate + first certificates {took:.1f}s in all; certificate issued: {have}"
        )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print(json.dumps(ctl.status()["applications"]["easyrsa"]["units"], indent=1))
    finally:
        try:
            ctl.destroy()
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
