"""`make bench`, part 4: what a no-op update-status hook costs, this branch's charm vs the
baseline's (BASELINE, "what main cost before").

    .venv/bin/python tests/bench/noop_hook.py [--hooks N] [--keep DIR]

One local model, two applications: `current` (build/docker-registry, what `make charm` built)
and `baseline` (the charm built from BASELINE: a detached worktree build/<BASELINE> and the
same `scripts/build-charm.sh` of that commit, output in build/baseline-<BASELINE>; both
reused when they exist). One unit each, plain http, the charm's defaults, the registry image as
the resource; once both are active/idle, N update-status hooks per unit are fired, one unit at
a time, interleaved (the first side alternating) so load drifting on the shared host hits both
alike. Nothing changes between hooks: each is a no-op, and what it costs is pure overhead.

Per hook, from the model's own records:
- hook-tool calls: the lines the hook added to audit.jsonl (juju-log counted apart too);
- docker CLI calls: a counting `docker` put on the unit's machine, in the unit's own overlay
  layer of /usr/local (<unit>/machine/upper/usr-local/sbin/docker, hence /usr/local/sbin/docker
  inside the hook's namespace only, ahead of /usr/local/bin and /usr/bin on a Juju machine's
  PATH, machine.py): it appends one line to <unit>/machine/docker-calls.log, then execs the
  docker the hook would otherwise have run (resolved on the hook's PATH without it). The
  local model is not changed: the shim is a file on the unit's machine, as an operator could
  put one there;
- wall time: the hook's seconds in hooks.jsonl (the hook process, from start to exit).
Medians are reported, with the ratio current / baseline. The load average is printed too.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.localjuju import machine  # noqa: E402
from tools.localjuju.model import Model  # noqa: E402
from tools.localjuju.runner import Controller  # noqa: E402

BASELINE = os.environ.get("NOOP_BASELINE", "f93fcce")
BUILD = ROOT / "build"
CURRENT_CHARM = BUILD / "docker-registry"
RESOURCE = BUILD / "images" / "registry-image.tar"
HOOKS = 5
SIDES = ("current", "baseline")

SHIM = """#!/bin/sh
# counting docker (tests/bench/noop_hook.py): one line per call, then the real CLI
echo "${{JUJU_HOOK_NAME:-?}} $*" >>{log}
exec {real} "$@"
"""


def baseline_charm() -> Path:
    """build/baseline-<BASELINE>/docker-registry, built from a worktree of BASELINE."""
    out = BUILD / f"baseline-{BASELINE}"
    charm = out / "docker-registry"
    if (charm / "metadata.yaml").exists():
        return charm
    tree = BUILD / BASELINE
    if not (tree / "scripts" / "build-charm.sh").exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE],
            check=True,
        )
    env = os.environ | {
        # as this checkout's scripts/build-charm.sh resolves it (the worktree's own default,
        # beside build/, would be wrong)
        "LAYER_CACHE": os.environ.get("LAYER_CACHE", str(ROOT.parent / "shared" / "layers")),
        "VENV": str(ROOT / ".venv"),  # the worktree has none: this checkout's build tools
        "WHEELHOUSE": os.environ.get("WHEELHOUSE", "host"),  # what `make charm` ships
        "WHEELHOUSE_CACHE": str(BUILD / "wheel-cache"),
    }
    print(f"building the baseline charm ({BASELINE}) into {out} ...", flush=True)
    proc = subprocess.run(
        ["bash", "scripts/build-charm.sh", str(out)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not (charm / "metadata.yaml").exists():
        raise SystemExit(f"baseline build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return charm


def real_docker() -> str:
    """The docker a hook runs (the hook's PATH minus the shim's directory)."""
    rest = [d for d in machine.SYSTEM_PATH.split(":") if d != "/usr/local/sbin"]
    found = shutil.which("docker", path=":".join([str(machine.SHIMS), *rest]))
    if not found:
        raise SystemExit("no docker on a hook's PATH")
    return found


def install_shim(model: Model, unit: str) -> Path:
    """The counting docker on the unit's machine; returns its log."""
    mdir = machine.machine_dir(model.unit_dir(unit))
    log = mdir / "docker-calls.log"
    sbin = mdir / "upper" / machine.OVERLAID["/usr/local"] / "sbin"
    sbin.mkdir(parents=True, exist_ok=True)
    shim = sbin / "docker"
    shim.write_text(SHIM.format(log=log, real=real_docker()))
    shim.chmod(0o755)
    log.touch()
    return log


def first_address(count: int, port: int = 5000) -> int:
    """N for unit addresses 127.0.0.N .. N+count-1 on which the charm's default port is free:
    a model numbers its units from 127.0.0.2, as every other model on this host does (e2e
    tests, the demo), and the registry publishes on <unit address>:<registry-port>."""
    for start in random.sample(range(100, 250 - count), 40):
        try:
            for n in range(start, start + count):
                with socket.socket() as s:
                    s.bind((f"127.0.0.{n}", port))
        except OSError:
            continue
        return start
    raise SystemExit(f"no {count} free 127.0.0.x addresses with port {port} free")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_active_idle(ctl: Controller, units: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        st = ctl.status()
        seen = {
            u: (info["workload-status"]["current"], info["juju-status"]["current"])
            for app in st["applications"].values()
            for u, info in app["units"].items()
        }
        if all(seen.get(u) == ("active", "idle") for u in units):
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"units not active/idle: {seen}")
        ctl.update_status()  # as Juju would, every few minutes; settles what is queued


def fire(ctl: Controller, unit: str, log: Path) -> dict:
    """One update-status hook on ``unit`` only; what it cost."""
    model = ctl.model
    audit_before = len(model.read_jsonl("audit.jsonl"))
    hooks_before = len(model.read_jsonl("hooks.jsonl"))
    docker_before = len(lines(log))
    ctl.update_status(unit)
    hooks = [h for h in model.read_jsonl("hooks.jsonl")[hooks_before:] if h["unit"] == unit]
    assert [h["name"] for h in hooks] == ["update-status"], hooks
    assert hooks[0]["rc"] == 0, hooks
    tools = [a for a in model.read_jsonl("audit.jsonl")[audit_before:] if a["unit"] == unit]
    docker = lines(log)[docker_before:]
    return {
        "tools": len(tools),
        "juju-log": sum(1 for a in tools if a["tool"] == "juju-log"),
        "docker": len(docker),
        "seconds": hooks[0]["seconds"],
        "by_tool": collections.Counter(a["tool"] for a in tools),
        "by_docker": collections.Counter((line.split()[1:2] or ["?"])[0] for line in docker),
    }


def bench(hooks: int = HOOKS, keep: Path | None = None) -> list[tuple[str, bool]]:
    """Print the figures; returns verdicts (what, met)."""
    charms = {"current": CURRENT_CHARM, "baseline": baseline_charm()}
    for side, charm in charms.items():
        if not (charm / "metadata.yaml").exists():
            raise SystemExit(f"no {side} charm at {charm} (make charm)")
    if not RESOURCE.is_file():
        raise SystemExit(f"no registry image at {RESOURCE} (make image)")
    work = keep or Path(tempfile.mkdtemp(prefix="noop-bench-"))
    model = Model(work / "model")
    model.ensure()
    with model.transaction() as state:  # clear of other models' units on this host
        state["next_address"] = first_address(len(SIDES))
    ctl = Controller(model)
    containers: list[str] = []
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    try:
        load_before = os.getloadavg()
        for side in SIDES:
            started = time.monotonic()
            ctl.deploy(str(charms[side]), side, resources={"registry-image": str(RESOURCE)})
            address = ctl.status()["applications"][side]["units"][f"{side}/0"]["address"]
            print(f"   deployed {side}/0 ({charms[side]}, {address}) in "
                  f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
            containers.append(f"registry-{side}-0")
        units = [f"{side}/0" for side in SIDES]
        wait_active_idle(ctl, units)
        logs = {side: install_shim(ctl.model, f"{side}/0") for side in SIDES}
        for n in range(hooks):
            order = SIDES if n % 2 == 0 else SIDES[::-1]
            for side in order:
                runs[side].append(fire(ctl, f"{side}/0", logs[side]))
        wait_active_idle(ctl, units, timeout=0)
        for side in SIDES:  # the unit dirs go with `destroy`: kept for --keep
            shutil.copy(logs[side], work / f"docker-calls-{side}.log")
        load_after = os.getloadavg()
    finally:
        try:
            ctl.destroy()
        finally:
            for name in containers:
                subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
            if not keep:
                shutil.rmtree(work, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    print(f"\n4. no-op update-status hook, current vs baseline {BASELINE}; median of {hooks} "
          f"interleaved hooks per unit (plain http, defaults)")  # fmt: skip
    print(f"   load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    print(f"   {'':<22}{'current':>10}{'baseline':>10}{'ratio':>8}")
    rows = [
        ("hook-tool calls", "tools", "{:.0f}"),
        ("  of which juju-log", "juju-log", "{:.0f}"),
        ("docker CLI calls", "docker", "{:.0f}"),
        ("wall time (s)", "seconds", "{:.2f}"),
    ]
    figures = {}
    for label, key, fmt in rows:
        cur, base = med("current", key), med("baseline", key)
        figures[key] = (cur, base)
        ratio = f"{cur / base:.2f}x" if base else "-"
        print(f"   {label:<22}{fmt.format(cur):>10}{fmt.format(base):>10}{ratio:>8}")
    for side in SIDES:
        last = runs[side][-1]
        tools = ", ".join(f"{t} {c}" for t, c in last["by_tool"].most_common())
        docker = ", ".join(f"{t} {c}" for t, c in last["by_docker"].most_common()) or "none"
        print(f"   {side} (last hook): tools: {tools}; docker: {docker}")
    return [
        ("no-op update-status: fewer hook-tool calls than baseline",
         figures["tools"][0] < figures["tools"][1]),
        ("no-op update-status: fewer docker calls than baseline",
         figures["docker"][0] < figures["docker"][1]),
        ("no-op update-status: wall time <= baseline's (+10%)",
         figures["seconds"][0] <= figures["seconds"][1] * 1.1),
    ]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hooks", type=int, default=HOOKS, help="update-status hooks per unit")
    parser.add_argument(
        "--keep",
        type=Path,
        help="work directory to keep (default: a temp dir); the model is destroyed all the same, "
        "the docker calls are kept in DIR/docker-calls-<side>.log",
    )
    args = parser.parse_args(argv)
    for what, ok in bench(args.hooks, args.keep):
        print(f"{'MET ' if ok else 'MISS'}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
