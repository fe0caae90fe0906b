"""The package's shape: layers that import only downward, no import cycles, and each heavy
dependency behind the one module that owns it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import PACKAGE

# Each layer may import itself and the layers before it, never one after it. The base modules
# (the top-level ones) are the vocabulary everyone shares; `__init__` and `__main__` sit above all.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_text", "digests", "config", "_fs", "layout", "repos", "_threads"),
    ("inputs",),
    ("planning",),
    ("results", "progress"),
    ("store",),
    ("sources",),
    ("transfer",),
    ("ops",),
    ("cli",),
)
TOP: frozenset[str] = frozenset({"__init__", "__main__"})
# Third-party packages and the only modules allowed to import them.
OWNERS = {
    "boto3": set(),  # botocore is enough (see pyproject.toml, the s3 extra)
    "botocore": {"sources.s3"},
    "huggingface_hub": {"sources.hub"},
    "httpx2": {"sources.hub"},
    "httpcore2": {"sources.hub"},
    "rich": {"cli.render"},
    "typer": {"cli.app", "cli.options", "cli.run"},
    "yaml": {"inputs._yaml"},
}


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name under `wanmodels` (`store.state`)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def module_imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules `path` imports; with `top_level_only`, not those imported inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = ast.walk(tree) if not top_level_only else _outside_functions(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import mod`
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


def ours(imported: set[str], known: dict[str, Path]) -> set[str]:
    """The wanmodels modules among `imported` (names under `wanmodels.`, those that exist)."""
    return {m.removeprefix("wanmodels.") for m in imported if m.removeprefix("wanmodels.") in known}


def layer_of(module: str) -> int:
    head = module.split(".")[0]
    return next(i for i, names in enumerate(LAYERS) if head in names)


def graph(*, top_level_only: bool = True) -> dict[str, set[str]]:
    """Module -> wanmodels modules it imports (type-checking imports included)."""
    known = modules()
    return {
        name: ours(module_imports(path, top_level_only=top_level_only), known) - {name}
        for name, path in known.items()
    }


def test_every_module_belongs_to_a_layer() -> None:
    for name in modules():
        if name not in TOP:
            layer_of(name)  # StopIteration: a package or base module no layer names


def test_layers_import_only_downward() -> None:
    """Function-level imports count too: a lazy import upward is still an upward dependency."""
    wrong = []
    for name, deps in graph(top_level_only=False).items():
        if name in TOP:
            continue
        for dep in deps:
            if dep not in TOP and layer_of(dep) > layer_of(name):
                wrong.append(f"{name} -> {dep}")
    assert not wrong, "imports against the layer order: " + ", ".join(sorted(wrong))


def test_package_inits_are_empty() -> None:
    """An import of `wanmodels.store.state` must not load the rest of its layer (start-up cost),
    and `wanmodels.ops.download` must stay a module, never shadowing `wanmodels.download`."""
    for name, path in modules().items():
        if path.name == "__init__.py" and name not in ("__init__", "cli"):
            assert not ast.parse(path.read_text(encoding="utf-8")).body, f"{name}/__init__.py is not empty"


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
        name
        for name, path in modules().items()
        if any(
            m == package or m.startswith(package + ".") for m in module_imports(path, top_level_only=False)
        )
    }
    assert users <= OWNERS[package], f"{package} is imported by {sorted(users - OWNERS[package])}"


def test_the_library_never_imports_the_cli() -> None:
    for name, path in modules().items():
        if name == "cli" or name.startswith("cli.") or name in TOP:
            continue
        imported = module_imports(path, top_level_only=False)
        assert not any(m == "wanmodels.cli" or m.startswith("wanmodels.cli.") for m in imported), name
