"""Hostile files, written by the tests: manifests, workflows, lockfiles and the root's own files that
are too large, too deep or damaged. Each is refused (or, for the root's own files, ignored and
rebuilt) with one line, having cost little.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.comfy_workflows import model, node, workflow, write
from tests.support.hubserver import HubServer
from wanmodels.errors import LockError, ManifestError
from wanmodels.inputs.comfyui import ModelRef, merge_models, read_workflow
from wanmodels.inputs.lockfile import read_lock
from wanmodels.inputs.manifest import load_manifest


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


# -- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("x" * 300 + ".safetensors", id="a-300-byte-name"),
        pytest.param("/".join(["d" * 200] * 30) + "/w.bin", id="a-6000-byte-path"),
        pytest.param("wan_2.1_vae\u202egpj.safetensors", id="a-direction-override"),
    ],
)
def test_a_listed_name_no_file_system_stores_or_that_reads_as_another_is_refused_at_plan_time(
    cli: Cli, hub: HubServer, workdir: Path, name: str
) -> None:
    hub.add_repo("test/names", {"config.json": b"{}", name: b"bytes"}, hostile=True)
    manifest = write_manifest(workdir / "n.yaml", "version: 1\nmodels:\n  - name: n\n    repo: test/names\n")
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3, run.stderr
    assert "unsafe path" in run.stderr and "Traceback" not in run.stderr
    assert max(len(line) for line in run.stderr.splitlines()) < 400  # one readable line, not 6,000 chars
    assert hub.gets() == []
    assert not (workdir / "models" / ".wanmodels" / "partial").exists()  # no orphan part to retry


def test_a_workflow_name_with_a_direction_override_is_refused(tmp_path: Path) -> None:
    doc = workflow(
        node(3, "VAELoader", model("Comfy-Org/x", "vae/v.safetensors", "vae", name="v\u202egpj.safetensors"))
    )
    path = write(tmp_path / "w.json", doc)
    with pytest.raises(ManifestError, match="contains U\\+202E, a text-direction control"):
        read_workflow(path)


def test_importing_a_look_alike_name_warns(cli: Cli, workdir: Path) -> None:
    lookalike = "v\u0430e"  # the 'а' is Cyrillic
    doc = workflow(node(3, "VAELoader", model("Comfy-Org/x", "vae/v.safetensors", lookalike)))
    path = write(workdir / "w.json", doc)
    run = cli("import", str(path), "-o", str(workdir / "w.yaml"))
    assert run.returncode == 0, run.stderr
    expected = "mixes Cyrillic and Latin letters ('\u0430' is U+0430 CYRILLIC SMALL LETTER A)"
    assert f"warning: '{lookalike}/v.safetensors' (w.json: VAELoader (node 3)) {expected}" in run.stderr
    plain = workflow(node(3, "VAELoader", model("Comfy-Org/x", "vae/v.safetensors", "vae")))
    run = cli("import", str(write(workdir / "p.json", plain)), "-o", str(workdir / "p.yaml"))
    assert run.returncode == 0 and "warning" not in run.stderr
