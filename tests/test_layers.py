"""The package's shape: no import cycles, and each heavy dependency behind the one module that owns it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "wanmodels"
# Third-party packages and the only modules allowed to import them.
OWNERS = {
    "boto3": set(),  # botocore is enough (see pyproject.toml, the s3 extra)
    "botocore": {"s3"},
    "huggingface_hub": {"hub"},
    "httpx2": {"hub"},
    "rich": {"report"},
    "typer": {"cli", "cli_help", "cli_run"},
    "yaml": {"_yaml", "workflow"},
}


def module_imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules `path` imports; with `top_level_only`, not those imported inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = ast.walk(tree) if not top_level_only else _outside_functions(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _outside_functions(tree: ast.AST) -> list[ast.AST]:
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                stack.append(child)
    return out


def graph() -> dict[str, set[str]]:
    """Module -> wanmodels modules it imports at module level (type-checking imports included)."""
    edges = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = path.stem
        deps = {
            m.split(".")[1] for m in module_imports(path, top_level_only=True) if m.startswith("wanmodels.")
        }
        edges[name] = deps - {name}
    return edges


def test_the_module_import_graph_has_no_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*trail[trail.index(node) :], node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            visit(dep, [*trail, node])
        state[node] = 2

    for node in edges:
        visit(node, [])


@pytest.mark.parametrize("package", sorted(OWNERS))
def test_each_dependency_is_imported_by_its_owner_only(package: str) -> None:
    users = {
        path.stem
        for path in PACKAGE.glob("*.py")
        if any(
            m == package or m.startswith(package + ".") for m in module_imports(path, top_level_only=False)
        )
    }
    assert users <= OWNERS[package], f"{package} is imported by {sorted(users - OWNERS[package])}"


def test_the_library_never_imports_the_cli() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("cli", "__main__"):
            continue
        assert "wanmodels.cli.app" not in module_imports(path, top_level_only=False), path.name
