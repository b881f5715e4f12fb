"""No import cycle between the project's modules.

Every module of the product packages is parsed with :mod:`ast` (nothing is imported).  An edge A → B is an
``import``/``from … import`` in A that names module B, wherever it sits in A: at module level or inside a function
(a function-level import that dodges a cycle is still a cycle).  Imports under ``if TYPE_CHECKING:`` are left out:
they never run.  ``from package import name`` counts as an edge to ``package.name`` when that is a module, else to
the package's ``__init__``.  Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, but those implicit
edges are not counted: a package's ``__init__`` re-exporting its own modules is not a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "pipelines", "actors", "cli", "config", "sandbox")

#: Imports known to close a cycle, as (importer, imported) — each one is in another branch's area and is removed
#: there.  The lead empties this list once those branches are merged; an entry that no longer exists fails the test.
KNOWN_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import under ``node``, skipping the body (not the ``else``) of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_in(other)
            continue
        yield from _import_nodes_in(child)


def _import_nodes_in(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _import_nodes(node)


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``module`` imports."""
    targets: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in modules)
            continue
        base = node.module or ""
        if node.level:
            anchor = module.split(".")
            if not is_package:
                anchor.pop()
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            if candidate in modules:
                targets.add(candidate)
            elif base in modules:
                targets.add(base)
    targets.discard(module)
    return targets


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (type-checking-only imports excluded)."""
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: every strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as ``[a, b, …, a]``."""
    members = set(component)
    start = component[0]
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    return [*paths[node], start]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def test_the_graph_sees_the_project() -> None:
    graph = import_graph()
    assert "engine.errors" in graph and "cli.main" in graph
    assert "engine.errors" in graph["engine.broker.bootstrap"]  # a module-level import is an edge


def test_a_function_level_import_is_an_edge_and_a_type_checking_one_is_not(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from engine import errors\n"
        "def f():\n    from engine.jobs import job\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source)
    modules = {"engine.errors": path, "engine.jobs.job": path, "engine.jobs": path}
    assert _imported("probe", path, modules) == {"engine.jobs.job"}


def test_cycles_are_found_and_printed() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    components = _strongly_connected(graph)
    assert components == [["a", "b", "c"]]
    assert _one_cycle(graph, components[0]) == ["a", "b", "c", "a"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    present = {(a, b) for a, targets in graph.items() for b in targets}
    stale = sorted(KNOWN_CYCLE_EDGES - present)
    assert not stale, f"allow-listed imports that no longer exist, remove them from KNOWN_CYCLE_EDGES: {stale}"
    for importer, imported in KNOWN_CYCLE_EDGES:
        graph[importer].discard(imported)
    cycles = [" → ".join(_one_cycle(graph, component)) for component in _strongly_connected(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
