"""The suite's own shape (tests/README.md): helpers come from tests/support/, conftest.py holds
fixtures only, no test module imports another, every test that mounts a filesystem says so, and
each test file sits on the one naming axis of its folder."""

from __future__ import annotations

import ast
from pathlib import Path

import typer.main

from tests.support.paths import PACKAGE, REPO_ROOT
from wanmodels.cli.app import app

TESTS = REPO_ROOT / "tests"
MOUNTS = {"small_disk": (), "reflink_disk": ("mkfs.xfs",)}  # helper: the commands its mark names


def _modules(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if ".venv" not in p.parts)


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _tests() -> list[tuple[Path, ast.FunctionDef]]:
    """Every module-level test function of the suite, with its file."""
    return [
        (path, node)
        for path in _modules(TESTS)
        if path.name.startswith("test_")
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(REPO_ROOT)}:{line}"


def test_nothing_imports_conftest_or_a_test_module() -> None:
    """pytest loads conftest.py as a plugin and test modules as tests: sharing goes through support/."""
    offenders = [
        f"{_where(path, line)}: {module}"
        for path in _modules(TESTS, REPO_ROOT / "benchmarks")
        for line, module in _imported(path)
        if module.split(".")[0] == "tests"
        and (module.split(".")[-1] == "conftest" or any(p.startswith("test_") for p in module.split(".")))
    ]
    assert offenders == []


def test_benchmarks_import_only_the_shared_test_infrastructure() -> None:
    offenders = [
        f"{_where(path, line)}: {module}"
        for path in _modules(REPO_ROOT / "benchmarks")
        for line, module in _imported(path)
        if module.startswith("tests.") and not module.startswith("tests.support.")
    ]
    assert offenders == []


def test_conftest_defines_only_fixtures_and_hooks() -> None:
    tree = ast.parse((TESTS / "conftest.py").read_text(encoding="utf-8"))
    public = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    helpers = [
        n.name
        for n in public
        if not n.name.startswith("pytest_")
        and not any("fixture" in ast.unparse(d) for d in n.decorator_list)
    ]
    assignments = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Assign | ast.AnnAssign)]
    assert helpers == []
    assert [a for a in assignments if not a.startswith("_")] == []


def test_every_test_that_mounts_a_filesystem_is_marked_needs_root() -> None:
    """Unmarked, it would skip only once it tried to mount, after its servers started, or fail
    for want of `mkfs.xfs`; marked, `-m 'not needs_root'` leaves it out and `-ra` says why."""
    offenders = []
    for path, test in _tests():
        calls = [n.func for n in ast.walk(test) if isinstance(n, ast.Call)]
        called = {f.id for f in calls if isinstance(f, ast.Name)}
        marks = [ast.unparse(d).replace('"', "'") for d in test.decorator_list]
        for helper in sorted(called & MOUNTS.keys()):
            wanted = f"pytest.mark.needs_root({', '.join(map(repr, MOUNTS[helper]))})"
            wanted = wanted.removesuffix("()")
            if wanted not in marks:
                offenders.append(f"{_where(path, test.lineno)}: {test.name} calls {helper}: add @{wanted}")
    assert offenders == []


def _names(stem: str, subjects: set[str]) -> bool:
    """`test_<subject>.py` or `test_<subject>_<topic>.py` (one subject's tests, split by topic)."""
    name = stem.removeprefix("test_")
    return any(name == s or name.startswith(f"{s}_") for s in subjects)


def _modules_of(package: Path) -> set[str]:
    """The modules of `package`, without the leading underscore of a private one (`_fs` -> `fs`)."""
    return {p.stem.lstrip("_") for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}


def test_every_test_file_is_named_after_its_module_or_command() -> None:
    """tests/unit/<package>/test_<module>.py, tests/unit/test_<module>.py for the base modules,
    tests/cli/test_<command>.py (or test_wanmodels.py: the program as a whole); no test file at
    the top of tests/ (a new flat file belongs in one of the folders of tests/README.md)."""
    commands = set(typer.main.get_command(app).commands) | {"wanmodels"}
    offenders = [f"tests/{p.name}: move it into unit/, cli/ or e2e/" for p in TESTS.glob("test_*.py")]
    for path in sorted((TESTS / "unit").rglob("test_*.py")):
        package = PACKAGE / path.parent.relative_to(TESTS / "unit")
        if not package.is_dir():
            offenders.append(f"{_where(path, 1)}: src/wanmodels has no package {package.name}")
        elif not _names(path.stem, _modules_of(package)):
            where = package.relative_to(REPO_ROOT)
            offenders.append(f"{_where(path, 1)}: {where} has no module of that name")
    offenders += [
        f"{_where(path, 1)}: wanmodels has no command of that name"
        for path in sorted((TESTS / "cli").glob("test_*.py"))
        if not _names(path.stem, commands)
    ]
    assert offenders == []
