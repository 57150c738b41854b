"""The package's imports, read from its source: no cycles, and layers that import downward only.

Every ``import`` counts, at the top of a module or inside a function (a function-level import is still a
dependency: it only comes later). The layers, from the top: the command line and the web service, the
tracker, the methods, the store, and under them all the basics (errors, version, lazy imports).
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"basics": "imgvault.basics", "store": "imgvault.store", "methods": "imgvault.methods",
            "tracker": "imgvault.tracker", "cli": "imgvault.cli", "web": "imgvault.web"}  # fmt: skip
# What each layer may import of the others.
ALLOWED = {
    "basics": set(),
    "store": {"basics"},
    "methods": {"store", "basics"},
    "tracker": {"methods", "store", "basics"},
    "web": {"tracker", "methods", "store", "basics"},
    "cli": {"web", "tracker", "methods", "store", "basics"},
}
# Frameworks the lower layers never import: the store and the methods are a library without them.
FRAMEWORKS = ("click", "rich", "mlflow", "fastapi", "starlette", "uvicorn", "jinja2", "matplotlib")


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [part for part in path.relative_to(ROOT / folder).with_suffix("").parts if part != "__init__"]
            found[".".join([package, *parts])] = (path, path.name == "__init__.py")
    return found


def imported_names(name: str, path: Path, is_package: bool) -> set[str]:
    """Every module name that ``name`` imports, absolute, as written (and each imported name appended)."""
    package = name if is_package else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    found = modules()
    graph = {}
    for name, (path, is_package) in found.items():
        graph[name] = {target for target in imported_names(name, path, is_package) if target in found} - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def layer(name: str) -> str:
    return name.split(".")[1]


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_layers_import_downward_only():
    upward = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        for target in targets
        if layer(target) != layer(name) and layer(target) not in ALLOWED[layer(name)]
    )
    assert upward == []


def test_the_store_and_the_methods_import_no_framework():
    found = modules()
    offending = sorted(
        f"{name} imports {target}"
        for name, (path, is_package) in found.items()
        if layer(name) in ("basics", "store", "methods")
        for target in imported_names(name, path, is_package)
        if target.split(".")[0] in FRAMEWORKS
    )
    assert offending == []
