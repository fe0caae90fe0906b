"""Manifest options: declared choices with a default each, `when:` entries and `${...}` names, chosen
with `--with` or in the manifest; a bad choice is answered like any manifest error (file, line,
allowed values)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.hubserver import HubServer
from wanmodels.errors import ManifestError, UsageError
from wanmodels.inputs.manifest import load_manifest
from wanmodels.inputs.options import parse_choices
from wanmodels.inputs.presets import open_manifest

MINE = """\
version: 1
description: my VAE, ${kind} weights
root: ./models
options:
  kind:
    description: which weights file
    default: safetensors
    values:
      safetensors: {about: 8 KiB, set: {file: diffusion_pytorch_model.safetensors}}
      bin: {set: {file: diffusion_pytorch_model.bin}}
  extras:
    default: "off"
    values:
      "off": {}
      "on": {}
models:
  - name: vae-${kind}
    repo: stabilityai/sd-vae-ft-mse
    folder: sd-vae
    files:
      ${file}: ${file}
    expect:
      - ${file}
  - name: vae-config
    when: {extras: "on"}
    repo: stabilityai/sd-vae-ft-mse
    folder: sd-vae
    files:
      config.json: config.json
"""


def mine(tmp_path: Path, text: str = MINE) -> Path:
    return write_manifest(tmp_path / "mine.yaml", text)


def test_defaults_resolve_names_files_and_descriptions(tmp_path: Path) -> None:
    manifest = load_manifest(mine(tmp_path))
    assert [m.name for m in manifest.models] == ["vae-safetensors"]
    assert manifest.models[0].files == (("diffusion_pytorch_model.safetensors",) * 2,)
    assert manifest.models[0].expect == ("diffusion_pytorch_model.safetensors",)
    assert manifest.description == "my VAE, safetensors weights"
    assert manifest.chosen == (("kind", "safetensors"), ("extras", "off"))
    assert manifest.choices == ()


def test_choices_pick_values_and_entries(tmp_path: Path) -> None:
    manifest = load_manifest(mine(tmp_path), choices=[("kind", "bin"), ("extras", "on")])
    assert [m.name for m in manifest.models] == ["vae-bin", "vae-config"]
    assert manifest.models[0].files == (("diffusion_pytorch_model.bin",) * 2,)
    assert manifest.choices == (("kind", "bin"), ("extras", "on"))


def test_a_manifest_chooses_by_its_default(tmp_path: Path) -> None:
    manifest = load_manifest(mine(tmp_path, MINE.replace("default: safetensors", "default: bin")))
    assert [m.name for m in manifest.models] == ["vae-bin"]


@pytest.mark.parametrize(
    ("choices", "line", "needle"),
    [
        ([("kind", "ckpt")], 5, "Allowed values: safetensors, bin (default safetensors)"),
        ([("size", "big")], 4, "Options: kind, extras"),
    ],
)
def test_a_bad_choice_names_the_file_line_and_what_is_allowed(
    tmp_path: Path, choices: list[tuple[str, str]], line: int, needle: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(mine(tmp_path), choices=choices)
    text = str(caught.value)
    assert f"mine.yaml:{line}" in text, text
    assert needle in text, text


@pytest.mark.parametrize(
    ("old", "new", "line", "needle"),
    [
        ("default: safetensors", "default: pt", 7, "Allowed values: safetensors, bin"),
        ("${file}: ${file}", "${fil}: ${file}", 21, "${fil} names no option or variable"),
        ("bin: {set: {file: diffusion_pytorch_model.bin}}", "bin: {}", 10, "Every value sets the same"),
        ('when: {extras: "on"}', "when: {extras: yes}", 25, "quote it"),
        ('when: {extras: "on"}', "when: {extra: 'on'}", 25, "Options: kind, extras"),
        ('      "on": {}', "      on: {}", 15, "quote it"),
        ("  kind:\n", "  kind:\n    colour: red\n", 6, "Allowed keys: description, default, values"),
    ],
)
def test_a_broken_options_block_names_the_line(
    tmp_path: Path, old: str, new: str, line: int, needle: str
) -> None:
    assert old in MINE
    with pytest.raises(ManifestError) as caught:
        load_manifest(mine(tmp_path, MINE.replace(old, new, 1)))
    text = str(caught.value)
    assert f"mine.yaml:{line}" in text, text
    assert needle in text, text


def test_when_and_references_need_declared_options(tmp_path: Path) -> None:
    plain = "version: 1\nmodels:\n  - name: a\n    repo: o/r\n    when: {x: y}\n"
    with pytest.raises(ManifestError, match=r"mine.yaml:5.*no option 'x'"):
        load_manifest(mine(tmp_path, plain))
    with pytest.raises(ManifestError, match="declares no options"):
        load_manifest(mine(tmp_path, "version: 1\nmodels:\n  - {name: a, repo: o/r}\n"), choices=[("a", "b")])


def test_with_arguments_parse_and_the_last_wins() -> None:
    assert parse_choices(["a=1", "b = 2", "a=3"]) == (("a", "3"), ("b", "2"))
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_choices(["precision"])


def test_cli_bad_choice_is_one_line_exit_2(cli: Cli) -> None:
    run = cli("download", "-m", "wan2.2-i2v-comfyui", "--with", "precision=fp32", "--dry-run")
    assert run.returncode == 2
    line = run.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert re.search(r"preset 'wan2.2-i2v-comfyui':\d+", line), line
    assert "Allowed values: fp8, fp16 (default fp8)" in line
    malformed = cli("download", "-m", "wan2.2-i2v-comfyui", "--with", "fp16", "--dry-run")
    assert malformed.returncode == 2 and "NAME=VALUE" in malformed.stderr


def test_hints_repeat_the_choices(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest = open_manifest("wan2.1-comfyui", choices=[("precision", "fp16"), ("resolution", "480p")])
    assert manifest.command("lock") == "wanmodels lock -m wan2.1-comfyui --with precision=fp16"
    alias = open_manifest("wan2.1-comfyui-fp16")
    assert alias.command("lock") == "wanmodels lock -m wan2.1-comfyui-fp16"
    assert alias.lock_path.name == "wan2.1-comfyui-fp16.lock"


def test_user_manifest_with_options_downloads_the_choice(cli: Cli, workdir: Path) -> None:
    path = mine(workdir)
    run = cli("download", "-m", str(path), "--with", "extras=on")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (workdir / "models" / "sd-vae").iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    assert cli("verify", "-m", str(path), "--with", "extras=on").returncode == 0


def test_list_groups_presets_by_model_and_runtime_with_each_choice(cli: Cli) -> None:
    run = cli("list", "--json")
    assert run.returncode == 0, run.stderr
    presets = {p["name"]: p for p in run.json()["presets"]}
    comfy = presets["wan2.2-i2v-comfyui"]
    assert comfy["model"] == "Wan 2.2 I2V A14B" and comfy["runtime"].startswith("ComfyUI")
    lora = next(o for o in comfy["options"] if o["name"] == "lora")
    assert lora["default"] == "off" and [v["name"] for v in lora["values"]] == ["off", "on"]
    assert presets["wan2.1-comfyui-fp16"]["alias_of"] == "wan2.1-comfyui"
    assert presets["wan2.1-comfyui-fp16"]["with"] == {"precision": "fp16"}
    lines = run.stderr.splitlines()
    models = [ln for ln in lines if ln.startswith("Wan ")]
    assert models == ["Wan 2.1 I2V 14B", "Wan 2.2 I2V A14B", "Wan 2.2 TI2V 5B"]
    start = lines.index("Wan 2.2 I2V A14B")
    block = lines[start : lines.index("Wan 2.2 TI2V 5B")]
    assert [ln.split(":", 1)[1].split()[0] for ln in block if ln.startswith("  loaded by:")] == [
        "Wan2.2",
        "Diffusers",
        "ComfyUI",
        "ComfyUI",
    ]
    option = next(ln for ln in block if "--with precision=" in ln)
    assert "fp8 (default, 33.2 GiB) | fp16 (64.1 GiB)" in option
