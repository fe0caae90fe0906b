"""Hostile files, written by the tests: manifests, workflows, lockfiles and the root's own files that
are too large, too deep or damaged. Each is refused (or, for the root's own files, ignored and
rebuilt) with one line, having cost little.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Cli, write_manifest
from wanmodels.errors import LockError, ManifestError
from wanmodels.lockfile import read_lock
from wanmodels.manifest import load_manifest
from wanmodels.workflow import ModelRef, merge_models, read_workflow


def test_a_manifest_past_the_node_cap_is_refused_as_it_is_read(tmp_path: Path) -> None:
    entries = 200_000
    lines = ["version: 1", "models:"] + [f"  - name: m{i}\n    repo: org/r{i}" for i in range(entries)]
    path = tmp_path / "huge.yaml"
    # A syntax error at the very end: a reader that composed the whole document first would report it.
    path.write_text("\n".join(lines) + "\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="too deeply nested or too large") as err:
        load_manifest(path)
    line = int(str(err.value).split(":")[1])
    assert line < 2 * entries // 4  # refused a quarter of the way in, where the 100,000th node is


def test_a_manifest_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\ndescription: " + "x" * (9 << 20) + "\nmodels: []\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="larger than 8 MiB; not reading it"):
        load_manifest(path)


def test_a_workflow_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('{"nodes": [], "pad": "' + "x" * (33 << 20) + '"}', encoding="utf-8")
    with pytest.raises(ManifestError, match="the workflow is larger than 32 MiB; not reading it"):
        read_workflow(path)


def test_naming_the_models_of_a_workflow_is_linear() -> None:
    # 20,000 models sharing one stem, in 7 folders and 7 repo names: past the first 15, every
    # name is numbered. Quadratic naming took 34.5 s here; linear takes 0.26 s.
    count = 20_000
    refs = tuple(
        ModelRef("w.json", f"node {i}", f"d{i % 7}", f"model.x{i}", f"o{i}/r{i % 7}", "main", f"model.x{i}")
        for i in range(count)
    )
    started = time.monotonic()
    models = merge_models([refs])
    assert time.monotonic() - started < 20
    names = [m.name for m in models]
    assert len(set(names)) == count
    assert names[:3] == ["model", "d1-model", "d2-model"]
    assert names[-1] == "model-19986"  # the names numbering gave before: stable across versions


def test_deeply_nested_json_in_a_lockfile_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    path.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(LockError, match=r"not a valid lockfile \(nested too deeply\)"):
        read_lock(path)


def test_a_lockfile_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    with path.open("wb") as f:
        f.truncate(65 << 20)  # sparse: costs no disk
    with pytest.raises(LockError, match=r"not a valid lockfile \(it is larger than 64 MiB\)"):
        read_lock(path)


def test_a_huge_manifest_is_one_line_at_the_cli(cli: Cli, workdir: Path) -> None:
    path = write_manifest(workdir / "big.yaml", "version: 1\nmodels:\n" + "  - name: x\n" * (1 << 20))
    run = cli("download", "-m", str(path), "--dry-run")
    assert run.returncode == 2, run.stderr
    assert f"{path}: the manifest is larger than 8 MiB; not reading it" in run.stderr
    assert "Traceback" not in run.stderr
