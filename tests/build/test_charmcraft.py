"""charmcraft.yaml: the production build definition, and what `charm build` makes of the whole
repository (its `source: .`)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.build.conftest import ROOT
from tests.support.prereq import missing

LAYER_CACHE = Path(os.environ.get("LAYER_CACHE", ROOT.parent / "shared" / "layers"))
SERIES = {"jammy": "22.04", "noble": "24.04"}
ARCHES = ("amd64", "arm64", "ppc64el", "s390x")


def test_charmcraft_yaml_builds_every_base_and_arch_natively_with_the_reactive_plugin():
    spec = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())
    assert spec["type"] == "charm"
    assert "bases" not in spec and "base" not in spec  # multi-base platforms only
    series = yaml.safe_load((ROOT / "metadata.yaml").read_text())["series"]
    want = {f"ubuntu@{SERIES[s]}:{arch}" for s in series for arch in ARCHES}
    platforms = spec["platforms"]
    assert len(platforms) == len(want)
    for name, platform in platforms.items():
        # built on the base and machine it is for: the binary wheels fit the unit
        assert platform["build-on"] == platform["build-for"], name
        assert len(platform["build-for"]) == 1, name
        base, arch = platform["build-for"][0].split(":")
        assert name == f"{base.replace('@', '-')}-{arch}"
    assert {p["build-for"][0] for p in platforms.values()} == want
    part = spec["parts"]["charm"]
    assert part["plugin"] == "reactive"
    assert part["source"] == "."
    assert any(s.split("/")[0] == "charm" for s in part["build-snaps"])
    assert "--binary-wheels" in part["reactive-charm-build-arguments"]
    assert "scripts/fetch-layers.sh" in part["override-build"]
    assert "craftctl default" in part["override-build"]


def charm_files(charm: Path) -> set[str]:
    files = set()
    for path in charm.rglob("*"):
        rel = path.relative_to(charm).as_posix()
        if path.is_file() and not rel.startswith("wheelhouse/") and path.name != ".gitignore":
            files.add(rel)
    return files


# the repository's development side: none of it may reach a built charm
DEVELOPMENT_PATHS = (
    "tools",
    "tests",
    "scripts",
    ".ci",
    "charmcraft.yaml",
    "pyproject.toml",
    "CONTRIBUTING.md",
    "ARCHITECTURE.md",
    "BENCHMARKS.md",
)


def development_files_in(charm: Path) -> list[str]:
    found = [name for name in DEVELOPMENT_PATHS if (charm / name).exists()]
    # the Makefile there is layer:basic's, not the repository's
    if (charm / "Makefile").read_text() == (ROOT / "Makefile").read_text():
        found.append("Makefile")
    return found


def imported_top_modules(charm: Path) -> dict[str, set[str]]:
    """Each Python file of the built charm (its wheelhouse aside) -> the top-level names it
    imports, hooks and actions included (they are Python scripts without a .py suffix)."""
    imports: dict[str, set[str]] = {}
    for path in charm.rglob("*"):
        rel = path.relative_to(charm).as_posix()
        if not path.is_file() or path.is_symlink() or rel.startswith("wheelhouse/"):
            continue
        source = path.read_bytes()
        first_line = source.split(b"\n", 1)[0]
        if path.suffix != ".py" and not (first_line.startswith(b"#!") and b"python" in first_line):
            continue
        tree = ast.parse(source, filename=rel)
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        imports[rel] = names
    return imports


def test_built_charm_ships_no_development_files(built_charm):
    # GIVEN the charm scripts/build-charm.sh built  THEN none of the development side is in it
    assert development_files_in(built_charm) == []


def test_built_charm_imports_nothing_from_the_development_side(built_charm):
    # GIVEN the built charm's Python (lib, reactive, hooks, actions)
    imports = imported_top_modules(built_charm)
    assert "reactive/docker_registry.py" in imports
    # THEN no hook or action needs the local model or the tests to run
    offenders = {rel: names & {"tools", "tests"} for rel, names in imports.items()}
    assert {rel: names for rel, names in offenders.items() if names} == {}


def test_charm_build_of_the_whole_repository_makes_the_same_charm(built_charm, tmp_path):
    """charmcraft runs `charm build` on the repository itself: layer.yaml's exclude list keeps
    tests/, tools/, scripts/, build/, .venv/, the development docs ... out, giving the files
    scripts/build-charm.sh stages."""
    if not (LAYER_CACHE / "layers/basic").is_dir():
        missing(f"no layer cache at {LAYER_CACHE}")
    src = tmp_path / "docker-registry"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.charm", "__pycache__"),
    )
    for junk in (
        "build/docker-registry/x",
        ".venv/bin/python",
        "tests/__pycache__/x.pyc",
        ".mypy_cache/x",
    ):
        (src / junk).parent.mkdir(parents=True, exist_ok=True)
        (src / junk).write_text("not the charm\n")
    charm_build = Path(sys.prefix) / "bin/charm-build"
    if not charm_build.exists():
        charm_build = ROOT / ".venv/bin/charm-build"
    env = dict(
        os.environ,
        CHARM_LAYERS_DIR=str(LAYER_CACHE / "layers"),
        CHARM_INTERFACES_DIR=str(LAYER_CACHE / "interfaces"),
        CHARM_HIDE_METRICS="1",
        CHARM_CACHE_DIR=str(tmp_path / "cache"),
    )
    flags = ["--hide-metrics", "--no-report", "--binary-wheels", "--log-level", "WARNING"]
    proc = subprocess.run(
        [charm_build, *flags, "--build-dir", tmp_path / "out", "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 100), proc.stdout[-2000:] + proc.stderr[-2000:]
    whole = charm_files(tmp_path / "out/docker-registry")
    assert development_files_in(tmp_path / "out/docker-registry") == []
    assert whole == charm_files(built_charm), (
        f"only in the whole-repo build: {sorted(whole - charm_files(built_charm))}; "
        f"only in build-charm.sh's: {sorted(charm_files(built_charm) - whole)}"
    )
