"""The library's public surface: `__all__` is the contract scripts import from."""

from __future__ import annotations

import inspect

import wanmodels
from wanmodels import errors


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert wanmodels.__all__ == sorted(wanmodels.__all__)
    for name in wanmodels.__all__:
        assert getattr(wanmodels, name) is not None, name


def test_every_error_class_is_exported() -> None:
    classes = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.WanmodelsError)
    }
    assert classes <= set(wanmodels.__all__)


def test_api_functions_are_functions_not_modules() -> None:
    import wanmodels.ops.download  # importing submodules must not shadow the API
    import wanmodels.ops.verify

    for name in ("download", "plan", "verify", "lock", "load_manifest", "open_manifest", "read_lock"):
        assert inspect.isfunction(getattr(wanmodels, name)), name


def test_the_lazy_table_the_type_checking_imports_and_all_agree() -> None:
    """`__init__` names each export three times (`__all__`, the lazy table, the imports type
    checkers read); they must list the same names, each from the module it really lives in."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(wanmodels.__file__).read_text(encoding="utf-8"))
    typed: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                typed.update({alias.name: str(imp.module) for alias in imp.names})
    lazy = {**wanmodels._LAZY, **dict.fromkeys(wanmodels._ERRORS, "wanmodels.errors")}
    assert typed == lazy
    assert set(wanmodels.__all__) == set(lazy) | {"__version__"}
