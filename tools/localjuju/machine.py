"""Each unit's machine: the host, seen through a private mount namespace per hook or action.

A charm built with the real layer:basic treats its machine as its own: the first hook
apt-installs python3-pip/virtualenv/..., writes /root/.pydistutils.cfg, builds
`<charm dir>/../.venv` from the wheelhouse and installs /usr/local/sbin/charm-env (actions run
through it); charmhelpers refuses to import unless /etc/os-release says Ubuntu and its
`juju_version()` runs /var/lib/juju/tools/machine-*/jujud; the easyrsa charm writes
/usr/local/share/ca-certificates/<app>.crt and runs update-ca-certificates. So every hook and
action runs as

    unshare -m --propagation private sh ubuntu/enter.sh OS_RELEASE UPPER:WORK:DIR... -- FILE

(as root; cwd the unit's charm dir) where enter.sh overlays each of OVERLAID (lower layer:
the host's directory, upper layer: <unit>/machine/upper/<name>), bind-mounts ubuntu/os-release
(jammy) over /etc/os-release, then execs the hook file. Hence, inside the namespace only:
- whatever the hook writes under /root, /usr/local or /var/lib lands in the unit's
  machine/upper/ (charm-env, .pydistutils.cfg, the CA file, ...), the host's files stay as they
  are and every unit has its own view;
- /var/lib/juju/tools/machine-<N>/jujud exists (ubuntu/jujud, copied into the unit's upper
  layer by `prepare_unit`; it prints 3.4.0-ubuntu-amd64 for `jujud version`);
- /etc/os-release is Ubuntu 22.04 (the test venv keeps its own charmhelpers shim,
  scripts/ubuntu_platform_shim.py).
PATH is a Juju machine's: the hook tools, ubuntu/bin (apt-get and update-ca-certificates
shims that never change the host's packages or trust store), then
/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, so `python3` is Debian's
/usr/bin/python3 (what the wheelhouse is built for), never the test venv's.

Faults (tests only): a file in <unit>/machine/faults/ arms a fault for the unit's hooks, read
by enter.sh (see `arm_fault`): `kill-hook-after-rm` and `kill-hook-after-stop` (the hook is
killed right after it ran `docker rm`, or `docker stop`, of the container the file names; one
shot) and `full-config-dir` (the unit's config
directory is a full tmpfs inside the hook's namespace only, until the file is removed).

Bootstrap: the unit's venv is real, layer:basic builds it on the unit's first hook (and again
on upgrade-charm) from the charm's wheelhouse with the machine's virtualenv and pip; nothing is
copied in. The hook environment only trims waste: pip without a version check or progress
bars, without the host's pip.conf (a fresh machine has none), and without byte-compiling at
install (PIP_NO_COMPILE: the wheelhouse's build-only packages, Cython above all, are never
imported; what hooks do import is compiled on first use, as PYTHONDONTWRITEBYTECODE is unset
like on Juju).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent / "ubuntu"
ENTER = HERE / "enter.sh"
OS_RELEASE = HERE / "os-release"
JUJUD = HERE / "jujud"
SHIMS = HERE / "bin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# host directory -> name of the unit's layer for it (under <unit>/machine/{upper,work}/)
OVERLAID = {"/root": "root", "/usr/local": "usr-local", "/var/lib": "var-lib"}


class MachineError(Exception):
    """The host cannot give units a machine (not root, no unshare, model dir overlaid)."""


def machine_dir(unit_dir: Path) -> Path:
    return unit_dir / "machine"


def check_host(model_root: Path) -> None:
    """Refuse what would make the namespaces wrong rather than fail inside a hook."""
    if os.geteuid() != 0:
        raise MachineError("the local model runs hooks in mount namespaces: run it as root")
    if not shutil.which("unshare"):
        raise MachineError("unshare (util-linux) not found: run scripts/setup-host.sh")
    root = model_root.resolve()
    for host_dir in OVERLAID:
        if root == Path(host_dir) or Path(host_dir) in root.parents:
            raise MachineError(
                f"the model directory {root} is under {host_dir}, which hooks see through an "
                "overlay: put the model elsewhere (LOCALJUJU_MODEL)"
            )


def prepare_unit(unit_dir: Path, machine_id: str) -> None:
    """The unit's empty machine layers, plus its jujud (idempotent)."""
    mdir = machine_dir(unit_dir)
    for host_dir, name in OVERLAID.items():
        upper = mdir / "upper" / name
        (mdir / "work" / name).mkdir(parents=True, exist_ok=True)
        upper.mkdir(parents=True, exist_ok=True)
        # the overlay's root takes the upper layer's mode and owner: keep the host's
        info = os.stat(host_dir)
        os.chmod(upper, info.st_mode & 0o7777)
        os.chown(upper, info.st_uid, info.st_gid)
    tools = mdir / "upper" / OVERLAID["/var/lib"] / "juju" / "tools" / f"machine-{machine_id}"
    tools.mkdir(parents=True, exist_ok=True)
    shutil.copy2(JUJUD, tools / "jujud")


def wrap(unit_dir: Path, argv: list[str]) -> list[str]:
    """``argv`` run on the unit's machine (see the module docstring)."""
    mdir = machine_dir(unit_dir)
    layers = []
    for host_dir, name in OVERLAID.items():
        spec = f"{mdir / 'upper' / name}:{mdir / 'work' / name}:{host_dir}"
        if spec.count(":") != 2 or "," in spec:
            raise MachineError(f"cannot overlay with a ':' or ',' in the path: {spec}")
        layers.append(spec)
    return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "/bin/sh",
        str(ENTER),
        str(OS_RELEASE),
        *layers,
        "--",
        *argv,
    ]


def hook_path(tools_dir: Path) -> str:
    """PATH for hooks and actions, as on a Juju machine (hook tools first)."""
    return f"{tools_dir}:{SHIMS}:{SYSTEM_PATH}"


def written(unit_dir: Path) -> list[str]:
    """Host paths the unit's hooks have written so far (files and symlinks in its layers)."""
    out = []
    upper = machine_dir(unit_dir) / "upper"
    for host_dir, name in OVERLAID.items():
        base = upper / name
        for dirpath, _dirnames, filenames in os.walk(base):
            for fname in filenames:
                rel = Path(dirpath, fname).relative_to(base)
                out.append(str(Path(host_dir) / rel))
    return sorted(out)


FAULTS = ("kill-hook-after-rm", "kill-hook-after-stop", "full-config-dir")


def arm_fault(unit_dir: Path, fault: str, arg: str = "") -> Path:
    """Arm ``fault`` (one of FAULTS) for the unit's next hooks; remove the file to disarm."""
    if fault not in FAULTS:
        raise MachineError(f"unknown fault {fault!r}")
    path = machine_dir(unit_dir) / "faults" / fault
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(arg)
    return path
