"""The library stays thin: short modules, no import cycle, no hidden imports of serlib's own modules.

A student finds each idea in one short file. These checks read the source (no import needed), so a
new cycle or a 900-line module fails here with the file named, not later in a confusing traceback.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "serlib"
MAX_LINES = 500
LONGER_ALLOWED = {"synth/voice.py": 650}
"""The synthetic voice is one job (a source-filter speech synthesiser) that needs a little more."""


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported_modules(name: str, path: Path, known: set[str]) -> list[tuple[str, ast.AST, bool]]:
    """The serlib modules ``name`` imports: (module, node, inside a function?)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if is_package(path) else name.rpartition(".")[0]
    found = []
    function_nodes = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, node, id(node) in function_nodes))
    return found


def test_no_module_is_too_long():
    too_long = []
    for path in modules().values():
        relative = path.relative_to(PACKAGE).as_posix()
        limit = LONGER_ALLOWED.get(relative, MAX_LINES)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            too_long.append(f"{relative}: {lines} lines (limit {limit})")
    assert not too_long, "split these modules by job: " + "; ".join(too_long)


def test_no_import_cycle_among_serlib_modules():
    """Imports inside functions count too: they are cycles that merely fail later."""
    found = modules()
    graph = {
        name: {target for target, _, _ in imported_modules(name, path, set(found))}
        for name, path in found.items()
    }
    # A package imports its submodules and a submodule its parent package by design of Python;
    # only module-to-module edges outside that relation can form a real cycle.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_serlib_imports_inside_functions_say_why():
    """Allowed only to keep a heavy optional dependency (transformers) out of a light import path,
    with a comment on the import line saying so."""
    found = modules()
    hidden = []
    for name, path in found.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for target, node, inside in imported_modules(name, path, set(found)):
            if inside and "#" not in lines[node.lineno - 1]:
                hidden.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {target}")
    assert not hidden, "move these imports to the top or say why they wait: " + "; ".join(
        sorted(set(hidden))
    )


def test_cycle_check_finds_a_cycle(tmp_path):
    """The checker itself: two modules importing each other are reported."""
    (tmp_path / "a.py").write_text("from serlib import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from serlib import a\n")
    known = {"serlib", "serlib.a", "serlib.b"}
    a_imports = imported_modules("serlib.a", tmp_path / "a.py", known)
    b_imports = imported_modules("serlib.b", tmp_path / "b.py", known)
    assert ("serlib.b", False) in [(t, inside) for t, _, inside in a_imports]
    assert ("serlib.a", True) in [(t, inside) for t, _, inside in b_imports]
