"""The package's import graph: no cycle (type-only imports included), layers respected, no research code.

Layers, lowest first (a module imports only from its own layer or below):

    floor      errors, names, values, configs, env, home, urls, locks, display, processes
    data       data.*
    features   features.*
    dataset    dataset, scenario (what-if panels rebuilt through the dataset builder)
    models     models.*, experiment (the validated experiment names model specs and options)
    evaluation evaluation.*, explain, card (the forecast card's wording)
    tracking   tracking.*, tuning.* (studies are MLflow runs)
    workflow   workflow, whatif, monitor, export (JSON/CSV of forecasts, scenarios and monitors)
    cli        cli

The one import from a lower layer to a higher one is ``dataset -> experiment``: a dataset is built as an experiment
says (data source, feature set, horizon).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

SRC = REPO / "src"
PACKAGE = "smallcap_regime"
FLOOR = {"errors", "names", "values", "configs", "env", "home", "urls", "locks", "display", "processes"}
LAYERS = {"data": 1, "features": 2, "dataset": 3, "scenario": 3, "models": 4, "experiment": 4, "evaluation": 5,
          "explain": 5, "card": 5, "tracking": 6, "tuning": 6, "workflow": 7, "whatif": 7, "monitor": 7, "export": 7,
          "cli": 8}
ALLOWED_UPWARD = {("dataset", "experiment")}
FORBIDDEN_ROOTS = ("benchmarks", "research", f"{PACKAGE}.research")


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names an import statement reaches (``from . import x`` -> ``pkg.x`` too)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module.split(".")
    if node.level:
        base = base[:len(base) - node.level + (1 if path.name == "__init__.py" else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target, *(f"{target}.{alias.name}" for alias in node.names)]


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(graph, external)``: package module -> package modules it imports (every import statement, also inside
    functions and ``if TYPE_CHECKING``; package ``__init__`` files left out as targets, since importing
    ``pkg.sub`` runs them anyway), and module -> every absolute name it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    external: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported(module, path, node):
                external[module].add(name)
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name and name != module and modules[name].name != "__init__.py":
                    graph[module].add(name)
    return graph, external


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    if top in FLOOR or not top:
        return 0
    assert top in LAYERS, f"{module}: no layer; add it to LAYERS in tests/test_layers.py and the README drawing"
    return LAYERS[top]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package():
    graph, _ = import_graph()
    assert len(graph) > 50
    assert cycles(graph) == []


def test_layers_are_respected():
    graph, _ = import_graph()
    short = {m: m.removeprefix(f"{PACKAGE}.") for m in graph}
    upward = {(short[m], short[t]) for m, targets in graph.items() for t in targets if layer(t) > layer(m)}
    assert upward <= ALLOWED_UPWARD, f"imports from a lower layer to a higher one: {sorted(upward - ALLOWED_UPWARD)}"
    assert len(ALLOWED_UPWARD) <= 1


@pytest.mark.parametrize("root", FORBIDDEN_ROOTS)
def test_the_package_imports_no_benchmark_or_research_code(root):
    _, external = import_graph()
    offenders = sorted(m for m, names in external.items()
                       if any(name == root or name.startswith(f"{root}.") for name in names))
    assert offenders == []
    assert not (SRC / PACKAGE / "research").exists()
