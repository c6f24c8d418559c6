"""The shape the architecture promises (ARCHITECTURE.md), checked on the source: one Juju
boundary for the hook pipeline, modules and functions small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "lib" / "charms" / "layer" / "docker_registry"
BOUNDARY = LIB / "pipeline" / "juju.py"
JUJU_MODULES = ("charmhelpers.core.hookenv", "charms.reactive")
HOOK_TOOL_READERS = {"read", "read_owned", "add_owned"}  # config.credentials: secret-get/add
SOURCES = [*sorted(LIB.rglob("*.py")), ROOT / "reactive" / "docker_registry.py"]


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _library_modules_outside_actions() -> list[Path]:
    return [p for p in LIB.rglob("*.py") if "actions" not in p.relative_to(LIB).parts]


@pytest.mark.parametrize("path", _library_modules_outside_actions(), ids=lambda p: p.name)
def test_only_the_boundary_speaks_to_juju(path):
    # GIVEN a module of the hook pipeline, config, host or images (actions have their own
    # runner, which reads and writes what an action may)
    imports = _imports(ast.parse(path.read_text()))
    # THEN it reaches no hook tool and no interface endpoint but through pipeline/juju.py
    juju = {m for m in imports if m.startswith(JUJU_MODULES)}
    assert not juju or path == BOUNDARY, f"{path.relative_to(ROOT)} imports {sorted(juju)}"


@pytest.mark.parametrize("path", sorted((LIB / "pipeline").glob("*.py")), ids=lambda p: p.name)
def test_the_pipeline_reads_secrets_only_in_gather(path):
    # the credentials module runs the secret hook tools: only the boundary calls them
    tree = ast.parse(path.read_text())
    calls = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "credentials"
    }
    assert not (calls & HOOK_TOOL_READERS) or path == BOUNDARY


def test_the_handlers_only_wire():
    # GIVEN the reactive module THEN it holds no pipeline step: the handlers call gather and
    # reconcile.run, set flags and the status, and every handler is short
    tree = ast.parse((ROOT / "reactive" / "docker_registry.py").read_text())
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert all(f.end_lineno - f.lineno < 15 for f in functions), [
        f.name for f in functions if f.end_lineno - f.lineno >= 15
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400
    long = [
        node.name
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long
