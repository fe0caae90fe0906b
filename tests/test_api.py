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
