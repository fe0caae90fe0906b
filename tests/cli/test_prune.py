"""--prune and stale files: only what wanmodels placed itself, and the manifest no longer selects, may go."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.hubserver import HubServer
from tests.support.repos import COMFY_REPO_ID, add_repos, comfy_repo

REPO = COMFY_REPO_ID


@pytest.fixture(autouse=True)
def _comfy(hub: HubServer) -> None:
    add_repos(hub, comfy_repo())


def comfy_manifest(workdir: Path, precision: str) -> Path:
    """An editable ComfyUI stack whose diffusion model is the fp8 or fp16 file (as after `init`)."""
    name = f"wan2.1_i2v_480p_14B_{precision}.safetensors"
    return write_manifest(
        workdir / "wanmodels.yaml",
        f"""version: 1
root: ./ComfyUI/models
models:
  - name: diffusion
    repo: {REPO}
    folder: diffusion_models
    files:
      split_files/diffusion_models/{name}: {name}
  - name: vae
    repo: {REPO}
    folder: vae
    files:
      split_files/vae/wan_2.1_vae.safetensors: wan_2.1_vae.safetensors
""",
    )


def users_models(root: Path) -> dict[Path, bytes]:
    """Models a ComfyUI user already keeps beside ours, which wanmodels never placed."""
    mine = {
        root / "diffusion_models" / f"other_model_{i}.safetensors": f"user model {i}".encode()
        for i in range(8)
    }
    mine[root / "vae" / "my_vae.safetensors"] = b"my vae"
    mine[root / "vae" / "sub" / "thing.gguf"] = b"gguf"
    mine[root / "loras" / "style.safetensors"] = b"lora"
    for path, data in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return mine


def assert_untouched(mine: dict[Path, bytes]) -> None:
    for path, data in mine.items():
        assert path.read_bytes() == data, path


def test_prune_never_touches_files_it_did_not_place(cli: Cli, hub: HubServer, workdir: Path) -> None:
    root = workdir / "ComfyUI" / "models"
    mine = users_models(root)
    assert cli("download", "-m", "wan2.1-comfyui", "--root", str(root)).returncode == 0
    verify = cli("verify", "-m", "wan2.1-comfyui", "--root", str(root), "--json")
    assert verify.returncode == 0, verify.stderr
    doc = verify.json()
    assert doc["stale"] == [] and all(not m["findings"] for m in doc["models"])
    assert "other_model" not in verify.stderr  # no warning pushes the user towards --prune
    pruned = cli("verify", "-m", "wan2.1-comfyui", "--root", str(root), "--prune", "--json")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.json()["pruned"]["removed"] == []
    assert_untouched(mine)


def test_prune_removes_what_a_switched_stack_no_longer_selects(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    root = workdir / "ComfyUI" / "models"
    mine = users_models(root)
    fp8 = root / "diffusion_models" / "wan2.1_i2v_480p_14B_fp8_scaled.safetensors"
    comfy_manifest(workdir, "fp8_scaled")
    assert cli("download").returncode == 0
    assert fp8.is_file()
    comfy_manifest(workdir, "fp16")  # the user switches the stack to fp16
    assert cli("download").returncode == 0
    verify = cli("verify", "--json")
    assert verify.returncode == 0  # a stale file is a warning, not a failure
    assert [f["path"] for f in verify.json()["stale"]] == ["diffusion_models/" + fp8.name]
    assert "--prune" in verify.stderr
    preview = cli("verify", "--prune", "--dry-run", "--json")
    assert preview.json()["pruned"] == {
        "dry_run": True,
        "removed": ["diffusion_models/" + fp8.name],
        "released": [],
        "changed": [],
    }
    assert "would remove diffusion_models/" + fp8.name in preview.stderr
    assert fp8.is_file()
    run = cli("verify", "--prune", "--json")
    assert run.returncode == 0, run.stderr
    assert run.json()["pruned"]["removed"] == ["diffusion_models/" + fp8.name]
    assert not fp8.exists()
    assert (root / "diffusion_models" / "wan2.1_i2v_480p_14B_fp16.safetensors").is_file()
    assert_untouched(mine)
    again = cli("verify", "--json")
    assert again.json()["stale"] == []


def test_prune_keeps_a_placed_file_the_user_changed(cli: Cli, hub: HubServer, workdir: Path) -> None:
    root = workdir / "ComfyUI" / "models"
    fp8 = root / "diffusion_models" / "wan2.1_i2v_480p_14B_fp8_scaled.safetensors"
    comfy_manifest(workdir, "fp8_scaled")
    assert cli("download").returncode == 0
    comfy_manifest(workdir, "fp16")
    fp8.write_bytes(b"the user's own edit")  # same path, now someone else's bytes
    run = cli("download", "--prune", "--json")
    assert run.returncode == 0, run.stderr
    assert run.json()["pruned"]["removed"] == []
    assert fp8.read_bytes() == b"the user's own edit"


def test_prune_keeps_a_file_another_manifest_still_uses(cli: Cli, hub: HubServer, workdir: Path) -> None:
    root = workdir / "ComfyUI" / "models"
    vae = root / "vae" / "wan_2.1_vae.safetensors"
    comfy_manifest(workdir, "fp8_scaled")
    assert cli("download").returncode == 0
    # A second stack in the same root selects the same VAE.
    assert cli("download", "-m", "wan2.1-comfyui", "--root", str(root)).returncode == 0
    name = "wan2.1_i2v_480p_14B_fp8_scaled.safetensors"
    write_manifest(
        workdir / "wanmodels.yaml",
        f"""version: 1
root: ./ComfyUI/models
models:
  - name: diffusion
    repo: {REPO}
    folder: diffusion_models
    files:
      split_files/diffusion_models/{name}: {name}
""",
    )
    run = cli("verify", "--prune", "--json")
    assert run.returncode == 0, run.stderr
    assert run.json()["pruned"]["removed"] == []
    assert vae.is_file()
    assert cli("verify", "-m", "wan2.1-comfyui", "--root", str(root)).returncode == 0


def test_download_prune_after_success_only(cli: Cli, hub: HubServer, workdir: Path) -> None:
    root = workdir / "ComfyUI" / "models"
    fp8 = root / "diffusion_models" / "wan2.1_i2v_480p_14B_fp8_scaled.safetensors"
    comfy_manifest(workdir, "fp8_scaled")
    assert cli("download").returncode == 0
    comfy_manifest(workdir, "fp16")
    os.utime(fp8)  # a touch changes the mtime, not the bytes: still ours once re-hashed
    run = cli("download", "--prune")
    assert run.returncode == 0, run.stderr
    assert f"removed diffusion_models/{fp8.name}" in run.stderr
    assert not fp8.exists()
