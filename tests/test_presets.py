"""Every bundled preset plans cleanly against fixture repos of the same names, so a typo in a
preset's file names or patterns fails CI instead of a user's download."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.fixtures import add_repos, comfy_repo, safetensors_bytes, seed_repos
from tests.hubserver import HubServer
from wanmodels.presets import list_presets

PRESETS = list_presets()


def diffusers_repo() -> dict[str, bytes]:
    """A tiny copy of the Wan 2.1 I2V Diffusers layout."""
    shard = safetensors_bytes({"w": ("F16", [512])}, seed=1)
    files: dict[str, bytes] = {
        "model_index.json": b'{"_class_name": "WanImageToVideoPipeline"}',
        "README.md": b"# Wan 2.1 I2V Diffusers\n",
        ".gitattributes": b"*.safetensors filter=lfs\n",
        "assets/logo.png": b"\x89PNG",
        "examples/i2v_input.JPG": b"\xff\xd8",
        "image_encoder/config.json": b"{}",
        "image_encoder/model.safetensors": shard,
        "image_processor/preprocessor_config.json": b"{}",
        "scheduler/scheduler_config.json": b"{}",
        "text_encoder/config.json": b"{}",
        "text_encoder/model-00001-of-00001.safetensors": shard,
        "text_encoder/model.safetensors.index.json": (
            b'{"weight_map": {"w": "model-00001-of-00001.safetensors"}}'
        ),
        "tokenizer/tokenizer_config.json": b"{}",
        "tokenizer/spiece.model": b"\x00spm",
        "transformer/config.json": b"{}",
        "transformer/diffusion_pytorch_model.safetensors.index.json": (
            b'{"weight_map": {"w": "diffusion_pytorch_model-00001-of-00001.safetensors"}}'
        ),
        "transformer/diffusion_pytorch_model-00001-of-00001.safetensors": shard,
        "vae/config.json": b"{}",
        "vae/diffusion_pytorch_model.safetensors": shard,
    }
    return files


@pytest.fixture
def preset_hub(hub: HubServer) -> HubServer:
    seeds = seed_repos()
    wan = seeds["Wan-AI/Wan2.1-I2V-14B-480P"]
    hub.add_repo("Wan-AI/Wan2.1-I2V-14B-720P", wan)
    hub.add_repo("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", diffusers_repo())
    add_repos(hub, comfy_repo())
    return hub


def test_all_expected_presets_are_bundled() -> None:
    assert set(PRESETS) >= {
        "wan2.1-i2v",
        "wan2.1-i2v-480p",
        "wan2.1-i2v-720p",
        "wan2.1-i2v-480p-diffusers",
        "wan2.1-comfyui",
        "wan2.1-comfyui-fp16",
    }


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_plans_cleanly(preset: str, cli: Cli, preset_hub: HubServer) -> None:
    run = cli("download", "-m", preset, "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    doc = run.json()
    assert doc["bytes"]["to_fetch"] > 0
    paths = [f["path"] for m in doc["models"] for f in m["files"]]
    assert not any("/assets/" in p or "/examples/" in p or p.endswith(".gitattributes") for p in paths)
    assert preset_hub.gets() == []


def test_native_preset_downloads_the_wan_layout(cli: Cli, preset_hub: HubServer, workdir: Path) -> None:
    run = cli("download", "-m", "wan2.1-i2v-720p")
    assert run.returncode == 0, run.stderr
    folder = workdir / "models" / "Wan2.1-I2V-14B-720P"
    for name in (
        "Wan2.1_VAE.pth",
        "google/umt5-xxl/tokenizer.json",
        "diffusion_pytorch_model.safetensors.index.json",
    ):
        assert (folder / name).is_file(), name
    assert not (folder / "assets").exists()
    assert cli("verify", "-m", "wan2.1-i2v-720p").returncode == 0


def test_comfyui_preset_maps_files_into_comfy_folders(cli: Cli, preset_hub: HubServer, workdir: Path) -> None:
    root = workdir / "ComfyUI" / "models"
    run = cli("download", "-m", "wan2.1-comfyui", "--root", str(root))
    assert run.returncode == 0, run.stderr
    found = {p.relative_to(root).as_posix() for p in root.rglob("*.safetensors")}
    assert found == {
        "diffusion_models/wan2.1_i2v_480p_14B_fp8_scaled.safetensors",
        "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "clip_vision/clip_vision_h.safetensors",
        "vae/wan_2.1_vae.safetensors",
    }
    listings = [r for r in preset_hub.requests if "/tree/" in r.path]
    assert len(listings) == 1  # four entries, one repo: listed once
    assert cli("verify", "-m", "wan2.1-comfyui", "--root", str(root)).returncode == 0


def test_init_writes_an_editable_manifest_and_never_overwrites(cli: Cli, workdir: Path) -> None:
    run = cli("init", "--preset", "wan2.1-comfyui")
    assert run.returncode == 0, run.stderr
    written = workdir / "wanmodels.yaml"
    assert "Comfy-Org/Wan_2.1_ComfyUI_repackaged" in written.read_text()
    written.write_text(written.read_text() + "# my edit\n")
    again = cli("init")
    assert again.returncode == 2
    assert "--force" in again.stderr
    assert written.read_text().endswith("# my edit\n")
    forced = cli("init", "--force")
    assert forced.returncode == 0
    assert "Wan-AI/Wan2.1-I2V-14B-480P" in written.read_text()
    listed = cli("list", "--json")  # ./wanmodels.yaml is now the default manifest
    assert listed.json()["manifest"] == "wanmodels.yaml"


def test_init_unknown_preset_exits_2(cli: Cli) -> None:
    run = cli("init", "--preset", "nope")
    assert run.returncode == 2
    assert "wan2.1-comfyui" in run.stderr


def test_shell_completion_script_is_generated(cli: Cli) -> None:
    run = cli("--show-completion", "bash")
    assert run.returncode == 0
    assert "complete" in run.stdout and "wanmodels" in run.stdout
