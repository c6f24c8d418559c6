"""The BUILT charm's wheelhouse installs the way layer:basic installs it, on jammy's Python 3.10
and noble's 3.12, with no network and no compiler, and the charm's modules import there.

layer:basic (lib/charms/layer/basic.py in the built charm) makes a venv, upgrades pip,
setuptools and setuptools-scm from the wheelhouse only when the wheelhouse has a newer one,
then runs ``pip install -U --force-reinstall --no-index --no-cache-dir -f wheelhouse
<name>==<version> ...`` twice: wheel and MarkupSafe first, then everything else, the versions
read from the file names. The test runs basic.py's own functions for that (taken from the
built charm), so a change there is tested too.

Scenarios (each in a fresh venv, PIP_NO_INDEX, pip config files off, proxies pointing at a
closed port, CC/CXX/LDSHARED and every gcc/cc on PATH replaced by a logger that fails):
  jammy        Python 3.10, pip seeded from the wheelhouse's pip (jammy's virtualenv seeds
               pip 22.0.2, which basic upgrades to the wheelhouse's): everything from wheels
  noble        Python 3.12, `python -m venv` (pip newer than the wheelhouse's: basic keeps
               it; no setuptools: basic installs the wheelhouse's 70.3.0)
  *-sdist      the same with PyYAML and MarkupSafe taken from their sdists, as on the
               machines PyPI has no wheel for (ppc64el for both, s390x for MarkupSafe): they
               must build as pure Python with the compiler failing
"""

from __future__ import annotations

import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.build.conftest import ROOT, find_python

SHIM = ROOT / "scripts" / "ubuntu_platform_shim.py"
BASES = {"jammy": "3.10", "noble": "3.12"}
ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x")
# compiled packages allowed to be covered by their sdist (the *-sdist scenarios install them)
SDIST_FALLBACK = {"pyyaml": "yaml/_yaml", "markupsafe": "markupsafe/_speedups"}
# compiled packages with a binary wheel for every target and no fallback (cos_agent's pydantic)
BINARY_ONLY = {"pydantic-core"}
INSTALL_TIMEOUT = 600
# basic.py's LooseVersion, called by the test as the unit calls it
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning")

WHEEL_RE = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$"
)
SDIST_RE = re.compile(r"^(?P<name>.+)-(?P<version>\d[^-]*)\.(?:tar\.gz|zip)$")


def canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheelhouse_files(charm: Path) -> list[Path]:
    return sorted(p for p in (charm / "wheelhouse").iterdir() if not p.name.startswith("."))


# --- what the wheelhouse holds (no install) ----------------------------------------------------
def test_wheelhouse_covers_every_base_and_arch(built_charm):
    """Every package with a compiled wheel has one for cp310 and cp312 (or abi3) on x86_64,
    aarch64, ppc64le and s390x, or an sdist whose pure fallback the *-sdist scenarios install."""
    compiled: dict[str, set[tuple[str, str]]] = {}
    sdists, versions, pure = set(), {}, set()
    for path in wheelhouse_files(built_charm):
        wheel, sdist = WHEEL_RE.match(path.name), SDIST_RE.match(path.name)
        assert wheel or sdist, f"{path.name}: neither a wheel nor an sdist"
        match = wheel or sdist
        name = canon(match["name"])
        versions.setdefault(name, set()).add(match["version"])
        if sdist:
            sdists.add(name)
        elif match["abi"] == "none" and match["plat"] == "any":
            pure.add(name)
        else:
            for py in match["py"].split("."):
                for plat in match["plat"].split("."):
                    arch = next((a for a in ARCHES if plat.endswith("_" + a)), None)
                    if arch and plat.startswith("manylinux"):
                        minor = int(py[3:]) if py.startswith("cp3") else 0
                        if match["abi"] == "abi3":  # abi3 from cp3X runs on every 3.Y >= X
                            for want in BASES.values():
                                if minor <= int(want.split(".")[1]):
                                    compiled.setdefault(name, set()).add((want, arch))
                        elif match["abi"] == py:
                            compiled.setdefault(name, set()).add((f"3.{minor}", arch))
    several = {n: sorted(v) for n, v in versions.items() if len(v) > 1}
    assert not several, f"layer:basic pins one version per package: {several}"
    gaps = []
    for name in sorted(compiled):
        missing = [
            f"cp3{py.split('.')[1]}-{arch}"
            for py in BASES.values()
            for arch in ARCHES
            if (py, arch) not in compiled[name]
        ]
        if missing and not (name in sdists and name in SDIST_FALLBACK):
            gaps.append(f"{name}: no wheel for {', '.join(missing)} and no tested sdist fallback")
    assert not gaps, "\n".join(gaps)
    assert compiled, "expected compiled wheels (PyYAML, MarkupSafe) for the common machines"
    for name in sdists:
        assert name in SDIST_FALLBACK, f"{name} is an sdist but no scenario tests its build"
    for gone in ("cryptography", "cffi", "pycparser"):
        assert gone not in versions, f"{gone} is still in the wheelhouse"
    # the charm's own pins (wheelhouse.txt) win over layer:basic's host-evaluated markers
    assert versions["setuptools"] == {"70.3.0"}
    assert versions["charms-reactive"] == {"1.5.3"}
    # no file needs a compiler on a base that has a wheel: Cython and tomli come pure
    assert {"cython", "tomli"} <= pure


# --- installing it as layer:basic does ---------------------------------------------------------
@dataclass
class Install:
    name: str
    venv: Path
    python: Path
    charm: Path  # a copy of the built charm, as a unit's charm dir
    output: str  # every pip command and what it printed
    compiler_calls: str  # what the failing compiler logger recorded
    env: dict
    sdist: bool


def basic_functions(charm: Path, run, env: dict) -> dict:
    """layer:basic's own wheelhouse functions, compiled from the built charm's basic.py."""
    path = charm / "lib/charms/layer/basic.py"
    wanted = {
        "_load_installed_versions",
        "_load_wheelhouse_versions",
        "_add_back_versions",
        "_update_if_newer",
    }
    tree = ast.parse(path.read_text())
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    assert {n.name for n in nodes} == wanted, f"{path} lacks some of {sorted(wanted)}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from distutils.version import LooseVersion
        except ImportError:  # Python 3.12+ test venv
            from setuptools._distutils.version import LooseVersion
        from pkg_resources import Requirement
    namespace = {
        "os": os,
        "glob": glob.glob,
        "LooseVersion": LooseVersion,
        "Requirement": Requirement,
        "check_call": lambda cmd, env=None: run(cmd),
        "check_output": lambda cmd: subprocess.check_output(cmd, env=env),
        "_get_subprocess_env": lambda: env,
    }
    exec(compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def no_network_no_compiler_env(tmp: Path, venv: Path) -> tuple[dict, Path]:
    """The environment every pip command of the install runs in, and the compiler call log."""
    fake = tmp / "no-compiler"
    fake.mkdir()
    calls = tmp / "compiler-calls.log"
    calls.touch()
    script = f'#!/bin/sh\necho "${{0##*/}} $*" >> {calls}\nexit 1\n'
    for tool in ("cc", "gcc", "c++", "g++", "cpp", "ld", "x86_64-linux-gnu-gcc", "clang"):
        (fake / tool).write_text(script)
        (fake / tool).chmod(0o755)
    keep = {"HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "TERM"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    closed = "http://127.0.0.1:9"  # discard port: nothing listens, every fetch fails at once
    env.update(
        PATH=f"{venv / 'bin'}:{fake}",  # no /usr/bin: no real gcc, cc or ld anywhere
        CC=str(fake / "cc"),
        CXX=str(fake / "c++"),
        CPP=str(fake / "cpp"),
        LDSHARED=f"{fake / 'cc'} -shared",
        LDCXXSHARED=f"{fake / 'c++'} -shared",
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,  # no pip.conf: no extra index, find-links or constraints
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_RETRIES="0",
        PIP_TIMEOUT="5",
        PYTHONNOUSERSITE="1",
        http_proxy=closed,
        https_proxy=closed,
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        LANG=os.environ.get("LANG", "C.UTF-8"),
    )
    return env, calls


def install_like_layer_basic(tmp: Path, charm: Path, python: Path, seed: str, sdist: bool):
    """A unit's venv from the built charm's wheelhouse, the way layer:basic bootstraps it."""
    unit_charm = tmp / "charm"
    shutil.copytree(charm, unit_charm, symlinks=True)
    venv = tmp / "venv"
    log: list[str] = []

    def sh(cmd, env=None):
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=unit_charm,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        log.append(f"$ {' '.join(map(str, cmd))}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}:\n" + "\n".join(log[-3:]))
        return proc

    wheelhouse = unit_charm / "wheelhouse"
    if seed == "venv":
        sh([python, "-m", "venv", venv])
    else:  # jammy: pip from the wheelhouse (jammy seeds 22.0.2, basic upgrades it to this one)
        seedless = ["--never-download", "--no-pip", "--no-setuptools", "--no-wheel"]
        sh([sys.executable, "-m", "virtualenv", "-p", python, *seedless, venv])
    env, calls = no_network_no_compiler_env(tmp, venv)
    if sdist:
        env["PIP_NO_BINARY"] = ",".join(SDIST_FALLBACK)
    vpy, vpip = venv / "bin/python", venv / "bin/pip"
    if seed != "venv":
        pip_wheel = next(wheelhouse.glob("pip-*.whl"))
        sh([vpy, pip_wheel / "pip", "install", "--no-index", "-f", wheelhouse, "pip"], env)

    def run(cmd):
        return sh(cmd, env)

    basic = basic_functions(unit_charm, run, env)
    cwd = os.getcwd()
    os.chdir(unit_charm)  # basic.py reads 'wheelhouse/*' relative to the charm dir
    try:
        pre_install_pkgs = ["pip", "setuptools", "setuptools-scm"]
        basic["_update_if_newer"](str(vpip), pre_install_pkgs)
        versions = basic["_load_wheelhouse_versions"]()
        pkgs = versions.keys() - set(pre_install_pkgs)
        pre_packages = [p for p in pkgs if p in ("wheel", "MarkupSafe")]
        pkgs = [p for p in pkgs if p not in pre_packages]
        for pkgs_set in (pre_packages, pkgs):
            pinned = basic["_add_back_versions"](sorted(pkgs_set), versions)
            if pinned:  # basic.py's command, word for word
                flags = ["-U", "--force-reinstall", "--no-index", "--no-cache-dir"]
                run([vpip, "install", *flags, "-f", "wheelhouse", *pinned])
    finally:
        os.chdir(cwd)
    return Install(
        name=f"{python.name}{'-sdist' if sdist else ''}",
        venv=venv,
        python=vpy,
        charm=unit_charm,
        output="\n".join(log),
        compiler_calls=calls.read_text(),
        env=env,
        sdist=sdist,
    )


SCENARIOS = {
    "jammy": ("jammy", "wheelhouse-pip", False),
    "noble": ("noble", "venv", False),
    "jammy-sdist": ("jammy", "wheelhouse-pip", True),
    "noble-sdist": ("noble", "venv", True),
}


@pytest.fixture(scope="module", params=list(SCENARIOS))
def installed(request, built_charm, tmp_path_factory) -> Install:
    series, seed, sdist = SCENARIOS[request.param]
    version = BASES[series]
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} ({series}'s) under the pyenv root: cannot test {series}")
    tmp = tmp_path_factory.mktemp(request.param)
    return install_like_layer_basic(tmp, built_charm, python, seed, sdist)


INSPECT = r"""
import importlib.metadata as md, json, sys
out = {}
for dist in md.distributions():
    files = [str(f) for f in (dist.files or [])]
    out[dist.metadata["Name"]] = {
        "version": dist.version,
        "extensions": sorted(f for f in files if f.endswith(".so")),
    }
json.dump(out, sys.stdout)
"""


def inspect(install: Install) -> dict:
    proc = subprocess.run(
        [install.python, "-c", INSPECT],
        env=install.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {canon(k): v for k, v in json.loads(proc.stdout).items()}


def built_from_source(output: str) -> set[str]:
    """Packages pip built from an sdist, from its own log lines."""
    names = set()
    for line in output.splitlines():
        match = re.search(r"Building wheels for collected packages: (.+)", line)
        if match:
            names.update(canon(n.strip()) for n in match.group(1).split(","))
        match = re.search(r"(?:Building wheel|Running setup\.py install) for ([\w.-]+)", line)
        if match:
            names.add(canon(match.group(1)))
    return names


def test_everything_in_the_wheelhouse_installed_at_its_version(installed, built_charm):
    dists = inspect(installed)
    expected = {}
    for path in wheelhouse_files(built_charm):
        match = WHEEL_RE.match(path.name) or SDIST_RE.match(path.name)
        expected[canon(match["name"])] = match["version"]
    wrong = {
        n: (v, dists.get(n, {}).get("version"))
        for n, v in expected.items()
        if n != "pip" and dists.get(n, {}).get("version") != v
    }
    assert not wrong, f"{installed.name}: wheelhouse version vs installed: {wrong}"
    # pip is upgraded only when the wheelhouse's is newer (it is not, on noble)
    assert "pip" in dists


def test_no_compiler_needed_or_clean_pure_python_fallback(installed):
    dists = inspect(installed)
    built = built_from_source(installed.output)
    with_ext = {n for n, d in dists.items() if d["extensions"]}
    if not installed.sdist:
        assert not built, f"{installed.name}: pip built {built} from source:\n{installed.output}"
        assert not installed.compiler_calls, f"compiler invoked: {installed.compiler_calls}"
        # the compiled wheels were used (the C speedups are there)
        assert with_ext == set(SDIST_FALLBACK) | BINARY_ONLY, with_ext
    else:
        assert built == set(SDIST_FALLBACK), f"{installed.name}: built {built}"
        assert with_ext == BINARY_ONLY, f"{installed.name}: extensions despite no compiler"
        # the failing compiler was tried for those two only (and they went on without it)
        calls = installed.compiler_calls.splitlines()
        assert calls, "the sdist builds never tried the compiler: was the fallback exercised?"
        strays = [c for c in calls if not any(m in c for m in ("markupsafe", "yaml"))]
        assert not strays, f"compiler called for something else: {strays}"
    for name, dist in dists.items():
        if name not in SDIST_FALLBACK and name not in BINARY_ONLY:
            assert not dist["extensions"], f"{name} has compiled files: {dist['extensions']}"


IMPORTS = r"""
import importlib, json, os, sys, traceback
sys.path.append(os.path.join(os.getcwd(), "lib"))  # as the charm's hooks do
sys.path.append(os.getcwd())
sys.path.append(os.path.join(os.getcwd(), "hooks"))  # the interface layers, as charms.reactive
results = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        results[name] = "ok"
    except BaseException as exc:  # noqa: BLE001 - every failure is reported
        results[name] = f"{type(exc).__name__}: {exc}"
import yaml, markupsafe
results["<yaml C loader>"] = bool(yaml.__with_libyaml__)
try:
    import markupsafe._speedups
    results["<markupsafe speedups>"] = True
except ImportError:
    results["<markupsafe speedups>"] = False
json.dump(results, sys.stdout)
"""


def charm_modules(charm: Path) -> list[str]:
    mods = ["charms.reactive", "charmhelpers.core.hookenv", "charmhelpers.fetch", "jinja2", "yaml"]
    mods += ["charms.layer.basic", "charms.layer.options", "pkg_resources", "setuptools"]
    pkg = charm / "lib/charms/layer/docker_registry"
    mods += ["charms.layer.docker_registry"]
    mods += [
        f"charms.layer.docker_registry.{p.stem}"
        for p in sorted(pkg.glob("*.py"))
        if p.stem != "__init__"
    ]
    mods += [
        f"reactive.{p.stem}"
        for p in sorted((charm / "reactive").glob("*.py"))
        if p.stem != "__init__"
    ]
    # cos_agent's vendored library imports pydantic (compiled core), cosl and ops at load time
    mods += ["relations.cos_agent.provides", "cosl.rules"]
    return mods


def test_charm_modules_import_in_the_unit_venv(installed, tmp_path):
    site = tmp_path / "shim"
    site.mkdir()
    # TEST ONLY: charmhelpers refuses non-Ubuntu hosts; production runs on Ubuntu
    shutil.copy(SHIM, site / "sitecustomize.py")
    env = dict(
        installed.env,
        # the install ran without a compiler on PATH; importing charmhelpers.fetch runs apt-config
        PATH=f"{installed.venv / 'bin'}:/usr/bin:/bin",
        PYTHONPATH=str(site),
        JUJU_CHARM_DIR=str(installed.charm),
        CHARM_DIR=str(installed.charm),
        UNIT_STATE_DB=str(tmp_path / "unit-state.db"),
    )
    mods = charm_modules(installed.charm)
    assert any(m.startswith("reactive.") for m in mods)
    proc = subprocess.run(
        [installed.python, "-c", IMPORTS, *mods],
        cwd=installed.charm,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert results.pop("<yaml C loader>") is not installed.sdist
    assert results.pop("<markupsafe speedups>") is not installed.sdist
    failed = {m: r for m, r in results.items() if r != "ok"}
    assert not failed, f"{installed.name}: imports failed:\n" + "\n".join(
        f"  {m}: {r}" for m, r in failed.items()
    )
