"""The import direction of the packages, checked on the source (no imports run).

    contracts  <-  runtime  <-  ingest, streams, projections  <-  msgmem

A package may import only the layers below it; the three process packages never import
one another; nothing imports ``msgmem``; ``contracts`` does no I/O (no client libraries);
and no two modules import each other, directly or around a longer loop, at import time.
An import-linter configuration would say the same; this keeps the rule without a new
dependency and checks module cycles too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ALLOWED: dict[str, set[str]] = {
    "contracts": set(),
    "runtime": {"contracts"},
    "ingest": {"contracts", "runtime"},
    "streams": {"contracts", "runtime"},
    "projections": {"contracts", "runtime"},
    "msgmem": {"contracts", "runtime", "ingest", "streams", "projections"},
}
PACKAGES = tuple(ALLOWED)
# Libraries that talk to the outside world: contracts declares data and must not reach them.
IO_LIBRARIES = {
    "aiokafka", "kafka", "faust", "asyncpg", "httpx", "httpcore", "aiohttp", "openai", "supabase", "uvicorn",
    "fastapi", "socket", "subprocess", "prometheus_client",
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name: str, path: Path, *, import_time_only: bool) -> set[str]:
    """Absolute names ``path`` imports; with ``import_time_only``, not those inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import) and not (import_time_only and in_function):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and not (import_time_only and in_function):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: never imported at run time
            visit(child, nested)

    visit(tree, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def test_each_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for name, path in modules().items():
        own = name.split(".")[0]
        for imported in imports(name, path, import_time_only=False):
            top = imported.split(".")[0]
            if top in PACKAGES and top != own and top not in ALLOWED[own]:
                wrong.append(f"{name} imports {imported}")
    assert not sorted(set(wrong)), "\n".join(sorted(set(wrong)))


def test_contracts_does_no_io() -> None:
    wrong = [
        f"{name} imports {imported}"
        for name, path in modules().items() if name.split(".")[0] == "contracts"
        for imported in imports(name, path, import_time_only=False) if imported.split(".")[0] in IO_LIBRARIES
    ]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for imported in imports(name, path, import_time_only=True):
            # ``from a.b import c`` names a.b.c, a module or an attribute of a.b: keep the modules
            while imported and imported not in known:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                targets.add(imported)  # a package's __init__ runs before its modules: not a loop
        graph[name] = targets
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                strongconnect(target)
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

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return found


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "x.py"
    module.write_text("from msgmem.cli import main\ndef f():\n    import projections.consumer\n")
    assert {"msgmem.cli", "msgmem.cli.main", "projections.consumer"} <= imports("streams.x", module, import_time_only=False)
    assert "projections.consumer" not in imports("streams.x", module, import_time_only=True)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
