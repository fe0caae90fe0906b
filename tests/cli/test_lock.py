"""Lockfile behaviour through the CLI: written once, stable, checked, frozen, repaired."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cli import Cli, write_manifest
from tests.support.hubserver import HubServer
from tests.support.repos import safetensors_bytes, seed_repos

LOCK = "models/.wanmodels/locks/wan2.1-i2v.lock"  # a preset's pin lives in its root


def test_lock_writes_without_downloading_and_is_stable(cli: Cli, hub: HubServer, workdir: Path) -> None:
    run = cli("lock")
    assert run.returncode == 0, run.stderr
    first = (workdir / LOCK).read_bytes()
    assert hub.gets() == []  # metadata only
    assert [p.name for p in (workdir / "models").iterdir()] == [".wanmodels"]  # the pin, no model file
    again = cli("lock")
    assert again.returncode == 0
    assert "unchanged" in again.stderr
    assert (workdir / LOCK).read_bytes() == first
    assert first.endswith(b"\n")


def test_lock_check_catches_a_moved_branch(cli: Cli, hub: HubServer, workdir: Path) -> None:
    assert cli("lock").returncode == 0
    assert cli("lock", "--check").returncode == 0
    files = dict(seed_repos()["stabilityai/sd-vae-ft-mse"])
    files["config.json"] = b'{"changed": true}'
    hub.add_repo("stabilityai/sd-vae-ft-mse", files)  # main moves to a new commit
    run = cli("lock", "--check", "--json")
    assert run.returncode == 1
    assert "entry 'sd-vae': 'main' moved from" in run.stderr
    assert run.json()["status"] == "out_of_date"


def test_download_uses_the_locked_commit_after_the_branch_moves(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    assert cli("download").returncode == 0
    files = dict(seed_repos()["stabilityai/sd-vae-ft-mse"])
    files["config.json"] = b'{"changed": true}'
    hub.add_repo("stabilityai/sd-vae-ft-mse", files)
    (workdir / "models" / "sd-vae" / "config.json").unlink()
    hub.clear_log()
    assert cli("download").returncode == 0
    old = seed_repos()["stabilityai/sd-vae-ft-mse"]["config.json"]
    assert (workdir / "models" / "sd-vae" / "config.json").read_bytes() == old
    assert not any(r.path.startswith("/api/") for r in hub.requests)


def test_frozen_refuses_an_edited_manifest(cli: Cli, workdir: Path) -> None:
    manifest = write_manifest(
        workdir / "m.yaml", "version: 1\nmodels:\n  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n"
    )
    no_lock = cli("download", "-m", str(manifest), "--frozen")
    assert no_lock.returncode == 2
    assert "no lockfile" in no_lock.stderr
    assert cli("download", "-m", str(manifest)).returncode == 0
    assert (workdir / "m.lock").is_file()
    assert cli("download", "-m", str(manifest), "--frozen").returncode == 0
    write_manifest(
        manifest,
        "version: 1\nmodels:\n  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n    include: ['*.json']\n",
    )
    run = cli("download", "-m", str(manifest), "--frozen")
    assert run.returncode == 2
    assert "changed in the manifest" in run.stderr
    assert "wanmodels lock" in run.stderr


def test_malformed_lockfile_exits_2_with_one_line(cli: Cli, workdir: Path) -> None:
    (workdir / LOCK).parent.mkdir(parents=True)
    (workdir / LOCK).write_text('{"version": 1, "models": [{"name": 3}]}')
    run = cli("download", "--dry-run")
    assert run.returncode == 2
    assert "wan2.1-i2v.lock" in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_repair_refetches_exactly_the_damaged_file(cli: Cli, hub: HubServer, workdir: Path) -> None:
    assert cli("download").returncode == 0
    target = workdir / "models" / "sd-vae" / "diffusion_pytorch_model.safetensors"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    with target.open("r+b") as f:
        f.write(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # hide the change from the stat cache
    hub.clear_log()
    plain = cli("download")
    assert plain.returncode == 0
    assert hub.gets() == []  # the cache vouches for it: that is what --repair is for
    run = cli("download", "--repair", "--json")
    assert run.returncode == 0, run.stderr
    assert [r.file for r in hub.gets()] == ["diffusion_pytorch_model.safetensors"]
    actions = {f["path"]: f["action"] for m in run.json()["models"] for f in m["files"]}
    assert actions["sd-vae/diffusion_pytorch_model.safetensors"] == "replace"
    assert cli("verify", "--full").returncode == 0


def test_status_reports_complete_missing_and_partial(cli: Cli, workdir: Path) -> None:
    not_locked = cli("status", "--json")
    assert not_locked.returncode == 1
    assert {m["state"] for m in not_locked.json()["models"]} == {"not locked"}
    assert cli("download").returncode == 0
    assert cli("status").returncode == 0
    (workdir / "models" / "t5-base" / "spiece.model").unlink()
    run = cli("status", "--json")
    assert run.returncode == 1
    states = {m["name"]: (m["state"], m["missing"]) for m in run.json()["models"]}
    assert states["t5-base"] == ("missing", 1)
    assert states["sd-vae"] == ("complete", 0)


def test_list_shows_presets_and_entries(cli: Cli) -> None:
    run = cli("list", "--json")
    assert run.returncode == 0, run.stderr
    doc = run.json()
    presets = {p["name"]: p["description"] for p in doc["presets"]}
    assert "wan2.1-i2v" in presets
    assert all(" GiB" in text for text in presets.values()), presets  # sizes, before a byte moves
    assert "about 23.0 GiB" in run.stderr  # the ComfyUI fp8 stack, in the human listing too
    assert [m["name"] for m in doc["models"]] == ["wan2.1-i2v", "clip-vit-large", "sd-vae", "t5-base"]
    assert doc["models"][0]["repo"] == "Wan-AI/Wan2.1-I2V-14B-480P"


def test_verify_repair_ends_with_a_verified_tree(cli: Cli, hub: HubServer, workdir: Path) -> None:
    assert cli("download").returncode == 0
    (workdir / "models" / "t5-base" / "spiece.model").unlink()
    target = workdir / "models" / "sd-vae" / "config.json"
    target.write_bytes(target.read_bytes() + b" ")
    hub.clear_log()
    run = cli("verify", "--repair", "--json")
    assert run.returncode == 0, run.stderr
    assert run.json()["status"] == "ok"
    assert sorted(r.file for r in hub.gets()) == ["config.json", "spiece.model"]


def test_flipped_byte_in_a_10mb_file_is_reported_with_both_hashes(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    data = safetensors_bytes({"w": ("F32", [(10 << 20) // 4])}, seed=9)
    hub.add_repo("test/ten", {"model.safetensors": data})
    manifest = write_manifest(
        workdir / "ten.yaml", "version: 1\nmodels:\n  - name: ten\n    repo: test/ten\n"
    )
    assert cli("download", "-m", str(manifest)).returncode == 0
    target = workdir / "models" / "ten" / "model.safetensors"
    flipped = bytearray(data)
    flipped[5 << 20] ^= 0x10
    target.write_bytes(bytes(flipped))  # mtime moves: plain verify re-hashes
    run = cli("verify", "-m", str(manifest), "--json")
    assert run.returncode == 1
    finding = run.json()["models"][0]["findings"][0]
    assert finding["problem"] == "hash"
    assert finding["expected"].startswith("sha256:") and finding["actual"].startswith("sha256:")
    assert finding["expected"] != finding["actual"]
    hub.clear_log()
    assert cli("download", "-m", str(manifest), "--repair").returncode == 0
    assert {r.file for r in hub.gets()} == {"model.safetensors"}  # the damaged file, over any connections
    assert target.read_bytes() == data


def test_commit_revision_needs_no_revision_lookup(cli: Cli, hub: HubServer, workdir: Path) -> None:
    commit = hub.resolve("stabilityai/sd-vae-ft-mse")
    manifest = write_manifest(
        workdir / "pinned.yaml",
        f"version: 1\nmodels:\n  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n    revision: {commit}\n",
    )
    run = cli("lock", "-m", str(manifest))
    assert run.returncode == 0, run.stderr
    api = [r.path for r in hub.requests if r.path.startswith("/api/")]
    assert api == [f"/api/models/stabilityai/sd-vae-ft-mse/tree/{commit}"]


def test_touching_mtime_forces_a_rehash_and_an_unchanged_tree_does_not(cli: Cli, workdir: Path) -> None:
    assert cli("download").returncode == 0
    assert cli("verify", "--json").json()["hashed_bytes"] == 0
    target = workdir / "models" / "sd-vae" / "diffusion_pytorch_model.safetensors"
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = cli("verify", "--json")
    assert touched.returncode == 0
    assert touched.json()["hashed_bytes"] == st.st_size
    assert cli("verify", "--json").json()["hashed_bytes"] == 0
