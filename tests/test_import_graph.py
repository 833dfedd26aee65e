"""The import graph of the package has no cycles: between modules, and between subpackages.

Read statically (ast), so it counts the imports inside functions too (a lazy import hides a
cycle at start-up, not in the design). Imports under ``if TYPE_CHECKING:`` are left out: they
never run.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "dataproc"


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, mods: dict[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            found |= {m for n in node.orelse for m in _imports(n, mods)}
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in mods}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in mods:
                    found.add(sub)
                elif node.module in mods:
                    found.add(node.module)
        found |= _imports(node, mods)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (read once for both tests)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        graph[name] = _imports(ast.parse(path.read_text(encoding="utf-8")), mods) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def _floor(module: str) -> str:
    """``dataproc.dedup.clusters`` -> ``dataproc.dedup``; top-level modules are their own."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_modules():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles between modules: {cycles}"


def test_no_import_cycle_between_subpackages():
    floors: dict[str, set[str]] = {}
    for m, deps in _graph().items():
        floors.setdefault(_floor(m), set()).update(_floor(d) for d in deps)
    for f, deps in floors.items():
        deps.discard(f)
    cycles = _cycles(floors)
    assert not cycles, f"import cycles between subpackages: {cycles}"


def test_readers_stand_apart_from_stages():
    """A reader is reusable without the pipeline: it imports no stage, runner or dedup code."""
    upward = ("dataproc.stages", "dataproc.runner", "dataproc.dedup", "dataproc.report")
    found = {
        (m, d)
        for m, deps in _graph().items()
        if m.startswith("dataproc.readers")
        for d in deps
        if d.startswith(upward)
    }
    assert not found, f"readers import from higher floors: {sorted(found)}"


def test_the_check_sees_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
