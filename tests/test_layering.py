"""The code's dependencies point one way (docs/architecture.md): no two modules of `transforms`
import each other, directly or through others, counting the imports made inside functions too
(a lazy import hides a circle from Python, not from the reader)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "transforms"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of ``transforms`` -> the modules of ``transforms`` it imports, anywhere in it."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in modules)
        # A package's __init__ re-exports its modules: importing them is not a dependency on it.
        graph[name] = {d for d in deps if d != name and not name.startswith(d + ".")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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


def test_the_circle_finder_finds_a_circle_through_a_third_module():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_transforms_has_no_import_circles():
    graph = import_graph()
    assert len(graph) > 20 and graph["transforms.ingest.pipeline"], "the graph was not read"
    assert circles(graph) == []


# The packages of `transforms`, lowest first: a module may import from its own layer and the layers
# below it, never from one above (docs/architecture.md). The modules directly under `transforms`
# (config, problems, messages, engine, scratch) are the ground every layer stands on.
LAYERS = ("", "contracts", "readers", "stages", "storage", "ingest", "publish", "ops", "tools")


def _layer(module: str) -> int:
    parts = module.split(".")
    package = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""
    return LAYERS.index(package)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import of a module by one of a lower layer, as 'importer -> imported'."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if _layer(d) > _layer(m))


def test_the_layer_rule_catches_an_upward_import():
    assert upward_imports({"transforms.stages.harmonize": {"transforms.storage.warehouse"}}) == [
        "transforms.stages.harmonize -> transforms.storage.warehouse"
    ]
    assert upward_imports({"transforms.tools.cli": {"transforms.config", "transforms.ingest.pipeline"}}) == []


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in import_graph() if m.count(".") >= 2 and m.split(".")[1] not in LAYERS]
    assert unplaced == []


def test_dependencies_point_down_the_layers():
    assert upward_imports(import_graph()) == []
