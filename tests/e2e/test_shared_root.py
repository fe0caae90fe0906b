"""A shared models folder (ComfyUI's, several manifests, a user's own files) stays safe: nothing of
the user's is replaced or changed, edits never spread, and every placement survives a kill.

Each data-safety test checks the user's bytes byte for byte afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

from tests.support.cli import Cli, spawn, write_manifest
from tests.support.disks import small_disk
from tests.support.hubserver import Fault, HubServer
from tests.support.repos import COMFY_REPO_ID, VAE_REPO_ID, add_repos, comfy_repo
from tests.support.waiting import wait_until
from wanmodels.store.state import StateCache

VAE = "split_files/vae/wan_2.1_vae.safetensors"
USERS = b"the user's own VAE, from somewhere else\n" * 1000


@pytest.fixture(autouse=True)
def _comfy(hub: HubServer) -> None:
    add_repos(hub, comfy_repo())


def vae_manifest(
    workdir: Path, name: str = "one.yaml", target: str = "wan_2.1_vae.safetensors", repo_path: str = VAE
) -> Path:
    return write_manifest(
        workdir / name,
        f"""version: 1
root: ./ComfyUI/models
models:
  - name: vae
    repo: {COMFY_REPO_ID}
    folder: vae
    files:
      {repo_path}: {target}
""",
    )


def comfy_root(workdir: Path) -> Path:
    return workdir / "ComfyUI" / "models"


# -- 1. a file of the user's at a target path ---------------------------------------------------------


@pytest.mark.parametrize(
    "users", [USERS, comfy_repo()[COMFY_REPO_ID][VAE][:1000]], ids=["other", "truncated"]
)
def test_a_users_file_at_a_target_is_never_replaced(cli: Cli, workdir: Path, users: bytes) -> None:
    vae_manifest(workdir)
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(users)
    plan = cli("download", "-m", "one.yaml", "--dry-run", "--json")
    assert [f["action"] for m in plan.json()["models"] for f in m["files"]] == ["conflict"]
    run = cli("download", "-m", "one.yaml", "--json")
    assert run.returncode == 1, run.stderr
    assert target.read_bytes() == users  # byte for byte
    (line,) = [ln for ln in run.stderr.splitlines() if "vae/wan_2.1_vae.safetensors" in ln and "failed" in ln]
    assert "wanmodels did not place" in line and "left as it is" in line
    assert "--replace" in line and "-m one.yaml" in line  # the fix keeps the user's -m
    assert "Traceback" not in run.stderr
    stamp = StateCache(comfy_root(workdir)).stamps().get("vae/wan_2.1_vae.safetensors")
    assert stamp is None or not stamp.placed  # never recorded as wanmodels' (so never pruned)


def test_replace_moves_the_users_file_aside_and_says_where(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir)
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(USERS)
    run = cli("download", "-m", "one.yaml", "--replace", "--json")
    assert run.returncode == 0, run.stderr
    (item,) = [f for m in run.json()["models"] for f in m["files"]]
    aside = Path(item["moved_aside"])
    assert aside.read_bytes() == USERS  # moved, never deleted
    assert aside.is_relative_to(comfy_root(workdir) / ".wanmodels" / "replaced")
    assert f"aside to '{aside}'" in run.stderr
    assert target.read_bytes() == comfy_repo()[COMFY_REPO_ID][VAE]
    assert cli("verify", "-m", "one.yaml", "--full").returncode == 0


def test_a_damaged_file_wanmodels_placed_stays_repairable(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir)
    assert cli("download", "-m", "one.yaml").returncode == 0
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    with target.open("r+b") as f:  # damage in place: same inode, the file wanmodels placed
        f.seek(100)
        f.write(b"\0" * 8)
    assert cli("verify", "-m", "one.yaml", "--repair").returncode == 0
    assert target.read_bytes() == comfy_repo()[COMFY_REPO_ID][VAE]
    assert not (comfy_root(workdir) / ".wanmodels" / "replaced").exists()  # nothing of the user's moved


def test_verify_repair_leaves_a_users_file_unless_replace(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir)
    assert cli("download", "-m", "one.yaml").returncode == 0
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    target.unlink()
    target.write_bytes(USERS)  # the user put a file of their own there
    run = cli("verify", "-m", "one.yaml", "--repair")
    assert run.returncode == 1, run.stderr
    assert target.read_bytes() == USERS
    assert "wanmodels did not place" in run.stderr
    assert cli("verify", "-m", "one.yaml", "--repair", "--replace").returncode == 0
    assert target.read_bytes() == comfy_repo()[COMFY_REPO_ID][VAE]
    (aside,) = (comfy_root(workdir) / ".wanmodels" / "replaced").rglob("wan_2.1_vae.safetensors")
    assert aside.read_bytes() == USERS


def test_a_users_file_with_the_right_bytes_is_kept_but_never_claimed(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir)
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(comfy_repo()[COMFY_REPO_ID][VAE])
    inode = target.stat().st_ino
    run = cli("download", "-m", "one.yaml", "--json")
    assert run.returncode == 0, run.stderr
    assert [f["action"] for m in run.json()["models"] for f in m["files"]] == ["keep"]
    assert target.stat().st_ino == inode
    assert not StateCache(comfy_root(workdir)).stamps()["vae/wan_2.1_vae.safetensors"].placed


# -- 3. a kill loses no placement --------------------------------------------------------------------


def test_files_placed_before_a_sigkill_are_owned_by_the_rerun(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    """kill -9 after some files are in place: `status` counts them, and the rerun owns them (so a
    later manifest change can prune them), as the placements were journaled before their rename."""
    root = workdir / "models"
    hub.add_fault(Fault(path="diffusion_pytorch_model-00001-of-00003.safetensors", kind="stall", seconds=60))
    proc = spawn(hub, workdir, "download", "--workers", "2", quiet=True)
    try:
        wait_until(lambda: len(_on_disk(root)) >= 8, "eight files in place")  # then kill at once
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    on_disk = _on_disk(root)
    assert _placed(root) == on_disk  # every file in place is known as wanmodels', before any rerun
    placed_before = on_disk
    hub.clear_faults()
    assert cli("download").returncode == 0
    after = StateCache(root).stamps()
    assert all(after[p].placed and after[p].owners == ("preset:wan2.1-i2v",) for p in placed_before)
    status = cli("status", "--json").json()
    assert all(m["state"] == "complete" for m in status["models"])


def _on_disk(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".wanmodels" not in p.relative_to(root).parts and not p.name.startswith(".wm-")
    }


def _placed(root: Path) -> set[str]:
    """What a later run would read as placed: state.json with the journal folded in."""
    return {p for p, s in StateCache(root).stamps().items() if s.placed}


# -- 4, 5. owners that moved, and a root switched to another preset ------------------------------------


def test_moving_the_project_keeps_its_claims(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    """Owners are recorded relative to the root: the project moved whole keeps them, and prune
    still works after a file is deselected."""
    write_manifest(
        workdir / "wanmodels.yaml",
        f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n",
    )
    assert cli("download").returncode == 0
    moved = tmp_path / "moved"
    shutil.move(str(workdir), moved)
    only_json = f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n"
    write_manifest(moved / "wanmodels.yaml", only_json + '    include: ["*.json"]\n')
    run = cli("verify", "--prune", cwd=moved)
    assert run.returncode == 0, run.stderr
    assert "removed vae/diffusion_pytorch_model.safetensors" in run.stderr
    assert sorted(p.name for p in (moved / "models" / "vae").iterdir()) == ["config.json"]


def test_a_claim_of_a_manifest_that_is_gone_does_not_block_prune(cli: Cli, workdir: Path) -> None:
    base = f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n"
    write_manifest(workdir / "a.yaml", base)
    write_manifest(workdir / "b.yaml", base)
    assert cli("download", "-m", "a.yaml").returncode == 0
    assert cli("download", "-m", "b.yaml").returncode == 0  # b claims every file too
    write_manifest(workdir / "a.yaml", base + '    include: ["*.json"]\n')
    held = cli("verify", "-m", "a.yaml", "--prune", "--dry-run")
    assert "also claimed by b.yaml" in held.stderr.replace("../", "")  # the message names the owner
    (workdir / "b.yaml").unlink()  # b is gone: its claim holds nothing back
    run = cli("verify", "-m", "a.yaml", "--prune")
    assert run.returncode == 0, run.stderr
    assert not (workdir / "models" / "vae" / "diffusion_pytorch_model.safetensors").exists()


def test_switching_presets_names_the_old_files_and_prune_frees_them(cli: Cli, workdir: Path) -> None:
    root = workdir / "cm"
    assert cli("download", "-m", "wan2.1-comfyui", "--root", "cm").returncode == 0
    assert cli("download", "-m", "wan2.1-comfyui-fp16", "--root", "cm").returncode == 0
    fp8 = root / "diffusion_models" / "wan2.1_i2v_480p_14B_fp8_scaled.safetensors"
    run = cli("verify", "-m", "wan2.1-comfyui-fp16", "--root", "cm", "--json")
    assert run.returncode == 0, run.stderr
    others = {f["path"]: f["detail"] for f in run.json()["stale"] if f["problem"] == "other"}
    assert set(others) == {
        "diffusion_models/wan2.1_i2v_480p_14B_fp8_scaled.safetensors",
        "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
    }
    assert "wanmodels prune -m wan2.1-comfyui --root" in others[f"diffusion_models/{fp8.name}"]
    mine = root / "loras" / "mine.safetensors"
    mine.parent.mkdir()
    mine.write_bytes(b"my lora")
    preview = cli("prune", "-m", "wan2.1-comfyui", "--root", "cm", "--dry-run", "--json")
    assert preview.returncode == 0, preview.stderr
    assert fp8.exists()
    pruned = preview.json()["pruned"]
    assert sorted(pruned["removed"]) == sorted(others)
    assert sorted(pruned["released"]) == [
        "clip_vision/clip_vision_h.safetensors",
        "vae/wan_2.1_vae.safetensors",
    ]
    assert cli("prune", "-m", "wan2.1-comfyui", "--root", "cm").returncode == 0
    assert not fp8.exists()
    assert mine.read_bytes() == b"my lora"
    assert (
        cli("verify", "-m", "wan2.1-comfyui-fp16", "--root", "cm", "--full").returncode == 0
    )  # shared files stay


# -- 6. two manifests, one path, two digests ---------------------------------------------------------------


def test_two_manifests_pinning_one_path_to_different_files_are_warned(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir, "a.yaml")
    vae_manifest(workdir, "b.yaml", repo_path="split_files/clip_vision/clip_vision_h.safetensors")
    assert cli("download", "-m", "a.yaml").returncode == 0
    plan = cli("download", "-m", "b.yaml", "--dry-run")
    assert "warning: 'vae/wan_2.1_vae.safetensors' was placed for" in plan.stderr
    assert "a.yaml" in plan.stderr
    run = cli("download", "-m", "b.yaml")
    assert run.returncode == 0, run.stderr
    assert "a.yaml" in run.stderr and "replaces it" in run.stderr


# -- 7. a plain verify never drops another process's records ---------------------------------------------


def test_a_plain_verify_during_another_download_keeps_its_records(
    cli: Cli, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify -m A pauses while it hashes; meanwhile a download of D places and claims files. The
    verify's save must merge, not overwrite: D's claims survive, and `verify --prune -m A` then
    deletes nothing D selects."""
    import wanmodels.store.state as state
    from wanmodels.config import Settings
    from wanmodels.inputs.presets import open_manifest
    from wanmodels.ops.verify import verify

    root = comfy_root(workdir)
    vae_manifest(workdir, "a.yaml")
    write_manifest(
        workdir / "a.yaml",
        (workdir / "a.yaml").read_text()
        + "  - name: fp8\n    repo: Comfy-Org/Wan_2.1_ComfyUI_repackaged\n    folder: diffusion_models\n"
        "    files:\n      split_files/diffusion_models/wan2.1_i2v_480p_14B_fp8_scaled.safetensors:"
        " wan2.1_i2v_480p_14B_fp8_scaled.safetensors\n",
    )
    d_text = (
        (workdir / "a.yaml")
        .read_text()
        .replace(
            "split_files/vae/wan_2.1_vae.safetensors: wan_2.1_vae.safetensors",
            "split_files/clip_vision/clip_vision_h.safetensors: clip_vision_h.safetensors",
        )
        .replace("folder: vae", "folder: clip_vision")
    )
    write_manifest(workdir / "d.yaml", d_text)
    assert cli("download", "-m", "a.yaml").returncode == 0
    (root / "vae" / "wan_2.1_vae.safetensors").touch()  # so the verify has something to hash

    hashing = threading.Event()
    resume = threading.Event()
    real = state.hash_file

    def paused(path: Path, *args: object, **kw: object) -> object:
        if threading.current_thread().name.startswith("wanmodels-verify"):
            hashing.set()
            assert resume.wait(60)
        return real(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "hash_file", paused)
    monkeypatch.chdir(workdir)
    a = open_manifest(str(workdir / "a.yaml"))
    result: list[object] = []
    verifying = threading.Thread(target=lambda: result.append(verify(a, settings=Settings())))
    verifying.start()
    try:
        assert hashing.wait(60)
        assert cli("download", "-m", "d.yaml", process=True).returncode == 0  # places clip, claims fp8
    finally:
        resume.set()
        verifying.join(60)
    fp8 = "diffusion_models/wan2.1_i2v_480p_14B_fp8_scaled.safetensors"
    owners = StateCache(root).stamps()[fp8].owners
    assert any(o.endswith("d.yaml") for o in owners), owners  # D's claim survived the verify's save
    assert StateCache(root).stamps()["clip_vision/clip_vision_h.safetensors"].placed
    write_manifest(workdir / "a.yaml", vae_manifest(workdir, "tmp.yaml").read_text())  # A drops fp8
    assert cli("verify", "-m", "a.yaml", "--prune").returncode == 0
    assert (root / fp8).is_file()  # D still selects it


# -- 8. a manifest cannot aim at hidden folders ---------------------------------------------------------


def test_a_manifest_cannot_aim_at_a_hidden_folder(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / ".ssh").mkdir(parents=True)
    (tmp_path / "m").mkdir()
    keys = victim / ".ssh" / "authorized_keys"
    keys.write_bytes(b"ssh-ed25519 AAAA the user's key\n")
    evil = (
        f"version: 1\nroot: ../victim\nmodels:\n  - name: keys\n    repo: {VAE_REPO_ID}\n    folder: .ssh\n"
    )
    write_manifest(tmp_path / "m" / "evil.yaml", evil + "    files:\n      config.json: authorized_keys\n")
    run = cli("download", "-m", str(tmp_path / "m" / "evil.yaml"))
    assert run.returncode == 2, run.stderr
    assert "hidden folder '.ssh'" in run.stderr and "evil.yaml:6" in run.stderr
    assert keys.read_bytes() == b"ssh-ed25519 AAAA the user's key\n"
    allowed = evil.replace("version: 1\n", "version: 1\nallow_hidden: true\n")
    write_manifest(tmp_path / "m" / "evil.yaml", allowed + "    files:\n      config.json: authorized_keys\n")
    run = cli("download", "-m", str(tmp_path / "m" / "evil.yaml"))
    assert run.returncode == 1  # even allowed, the user's file is a conflict, never replaced
    assert keys.read_bytes() == b"ssh-ed25519 AAAA the user's key\n"
    assert f"(in {victim})" in run.stderr  # the refusal shows where the root really is


# -- 10. symlinks, decided before any byte moves -----------------------------------------------------------


def test_a_symlinked_folder_the_user_made_works(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    other_disk = tmp_path / "bigdisk" / "vae"
    other_disk.mkdir(parents=True)
    vae_manifest(workdir)
    (comfy_root(workdir)).mkdir(parents=True)
    (comfy_root(workdir) / "vae").symlink_to(other_disk, target_is_directory=True)
    run = cli("download", "-m", "one.yaml")
    assert run.returncode == 0, run.stderr
    assert (other_disk / "wan_2.1_vae.safetensors").read_bytes() == comfy_repo()[COMFY_REPO_ID][VAE]
    hub.clear_log()
    assert cli("verify", "-m", "one.yaml", "--full").returncode == 0
    assert cli("download", "-m", "one.yaml").returncode == 0
    assert hub.gets() == []


@pytest.mark.needs_root
def test_a_folder_linked_to_another_filesystem_gets_a_copy(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    """The part lives in <root>/.wanmodels/partial; a rename cannot cross to another disk, so the
    verified part is copied beside the target (hashed again as it is copied), then renamed."""
    with small_disk(tmp_path / "other-fs", "8m") as other_disk:
        vae_manifest(workdir)
        comfy_root(workdir).mkdir(parents=True)
        (comfy_root(workdir) / "vae").symlink_to(other_disk, target_is_directory=True)
        run = cli("download", "-m", "one.yaml")
        assert run.returncode == 0, run.stderr
        assert (other_disk / "wan_2.1_vae.safetensors").read_bytes() == comfy_repo()[COMFY_REPO_ID][VAE]
        assert sorted(p.name for p in other_disk.iterdir()) == ["wan_2.1_vae.safetensors"]  # no temp left
        assert not list((comfy_root(workdir) / ".wanmodels" / "partial").iterdir())
        assert cli("verify", "-m", "one.yaml", "--full").returncode == 0


@pytest.mark.parametrize("right", [True, False], ids=["right_bytes", "wrong_bytes"])
def test_a_symlinked_file_is_judged_by_its_bytes_and_never_written_through(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path, right: bool
) -> None:
    elsewhere = tmp_path / "elsewhere.safetensors"
    data = comfy_repo()[COMFY_REPO_ID][VAE] if right else USERS
    elsewhere.write_bytes(data)
    vae_manifest(workdir)
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    target.parent.mkdir(parents=True)
    target.symlink_to(elsewhere)
    hub.clear_log()
    plan = cli("download", "-m", "one.yaml", "--dry-run", "--json").json()
    assert [f["action"] for m in plan["models"] for f in m["files"]] == ["keep" if right else "conflict"]
    run = cli("download", "-m", "one.yaml")
    assert run.returncode == (0 if right else 1), run.stderr
    assert hub.gets() == []  # decided before any byte moved
    assert target.is_symlink() and elsewhere.read_bytes() == data


# -- 11. records others can read ---------------------------------------------------------------------------


def test_records_honour_the_umask(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir)
    old = os.umask(0o022)
    try:
        assert cli("download", "-m", "one.yaml", process=True).returncode == 0
    finally:
        os.umask(old)
    for path in (comfy_root(workdir) / ".wanmodels" / "state.json", workdir / "one.lock"):
        assert oct(path.stat().st_mode & 0o777) == oct(0o644), path


# -- 12. status and prune tell the truth ------------------------------------------------------------------


def test_status_is_not_complete_after_verify_found_a_damaged_file(cli: Cli, workdir: Path) -> None:
    vae_manifest(workdir)
    assert cli("download", "-m", "one.yaml").returncode == 0
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    st = target.stat()
    with target.open("r+b") as f:
        f.seek(200)
        f.write(b"\xff")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with its mtime put back
    assert cli("verify", "-m", "one.yaml").returncode == 0  # the stat is unchanged: trusted...
    assert cli("verify", "-m", "one.yaml", "--full").returncode == 1  # ...until hashed
    run = cli("status", "-m", "one.yaml")
    assert run.returncode == 1, run.stderr


def test_a_new_file_given_a_freed_inode_number_is_not_wanmodels(cli: Cli, workdir: Path) -> None:
    """ext4 hands a freed inode number to the next file at once: `rm f; cp copy f` can give the
    user's copy the number wanmodels recorded. The inode generation tells them apart."""
    from wanmodels._fs import inode_generation

    vae_manifest(workdir)
    assert cli("download", "-m", "one.yaml").returncode == 0
    target = comfy_root(workdir) / "vae" / "wan_2.1_vae.safetensors"
    if inode_generation(target) is None:
        pytest.skip("this filesystem keeps no inode generation")
    copy = workdir / "copy.bin"
    shutil.copy2(target, copy)
    data = copy.read_bytes()
    for _ in range(50):  # until the freed number comes back (it does on the first try on ext4)
        inode = target.stat().st_ino
        target.unlink()
        shutil.copy2(copy, target)
        if target.stat().st_ino == inode:
            break
    else:
        pytest.skip("the filesystem did not reuse the inode number")
    # The VAE is no longer selected: stale, and --prune looks at it.
    vae_manifest(workdir, "one.yaml", "renamed_vae.safetensors")
    run = cli("download", "-m", "one.yaml", "--prune")
    assert run.returncode == 0, run.stderr
    assert target.read_bytes() == data  # the user's copy stays, though its bytes and number match


def test_the_stale_warning_tells_the_truth_about_a_changed_file(cli: Cli, workdir: Path) -> None:
    write_manifest(
        workdir / "wanmodels.yaml",
        f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n",
    )
    assert cli("download").returncode == 0
    config = workdir / "models" / "vae" / "config.json"
    with config.open("a") as f:
        f.write("\n")
    weights = f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n"
    write_manifest(workdir / "wanmodels.yaml", weights + '    include: ["*.safetensors"]\n')
    run = cli("verify")
    (line,) = [ln for ln in run.stderr.splitlines() if "vae/config.json" in ln]
    assert "changed since: --prune leaves it" in line
    assert "deletes it" not in line
    prune = cli("verify", "--prune")
    assert config.exists()
    assert "kept vae/config.json: changed since wanmodels placed it" in prune.stderr


def test_state_json_lists_what_the_journal_held(workdir: Path) -> None:
    """The journal is folded into state.json by the next save and then emptied."""
    root = workdir / "models"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.bin").write_bytes(b"x")
    from wanmodels.digests import Digest
    from wanmodels.store.state import Stamp

    cache = StateCache(root)
    stamp = Stamp.of((root / "a" / "x.bin").stat(), Digest("sha256", "1" * 64))
    cache.journal_placed("a/x.bin", stamp, "m.yaml")
    assert StateCache(root).stamps()["a/x.bin"].placed  # read back from the journal alone
    fresh = StateCache(root)
    fresh.claim("a/x.bin", "other.yaml")
    fresh.save()
    assert not (root / ".wanmodels" / "placed.jsonl").exists()
    saved = json.loads((root / ".wanmodels" / "state.json").read_text())["files"]["a/x.bin"]
    assert saved["placed"] and sorted(saved["owners"]) == ["m.yaml", "other.yaml"]
