"""Reuse: files already on this machine (huggingface_hub's cache, other roots and folders, this
run's twins) are placed instead of downloaded, and only after their bytes hash right."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.disks import reflink_disk, small_disk
from tests.support.hfcache import blob, fill_hf_cache
from tests.support.hubserver import HubServer
from tests.support.paths import REPO_ROOT
from tests.support.repos import VAE_REPO_ID, seed_repos
from wanmodels.config import LinkMode, Settings, hf_hub_cache, resolve_settings
from wanmodels.digests import Digest, hash_file
from wanmodels.errors import IntegrityError, UsageError
from wanmodels.planning.plan import Action, Found, ModelPlan, Plan, PlannedFile, Source, with_origins
from wanmodels.results import Link
from wanmodels.sources.local import Finder
from wanmodels.store.place import SMALL_FILE, Placer
from wanmodels.store.state import StateCache

LARGEST = "diffusion_pytorch_model-00001-of-00003.safetensors"
WAN = "Wan-AI/Wan2.1-I2V-14B-480P"
TWICE = """\
version: 1
root: ./models
models:
  - name: vae-a
    repo: stabilityai/sd-vae-ft-mse
    folder: vae-a
    include: ["config.json", "*.safetensors"]
  - name: vae-b
    repo: stabilityai/sd-vae-ft-mse
    folder: vae-b
    include: ["config.json", "*.safetensors"]
"""


def files_of(doc: dict) -> list[dict]:
    return [f for m in doc["models"] for f in m["files"]]


# -- huggingface_hub's cache ------------------------------------------------------------------------


def test_files_in_the_hf_cache_need_no_request_and_verify_full(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    hf_home = fill_hf_cache(hub, tmp_path, *seed_repos())
    assert cli("lock", HF_HOME=str(hf_home)).returncode == 0
    hub.clear_log()
    plan = cli("download", "--dry-run", "--json", HF_HOME=str(hf_home)).json()
    assert plan["bytes"]["to_fetch"] == 0 and plan["bytes"]["to_reuse"] == plan["bytes"]["total"]
    assert {f["source"] for f in files_of(plan)} == {"hf-cache"}
    assert all(f["reuse_from"].startswith(str(hf_home / "hub")) for f in files_of(plan))

    run = cli("download", "--json", "--link-mode", "hardlink", HF_HOME=str(hf_home))
    assert run.returncode == 0, run.stderr
    assert hub.requests == []  # not one request: the lockfile pins, the cache holds every byte
    doc = run.json()
    assert doc["bytes"]["fetched"] == 0 and doc["bytes"]["reused"] == doc["bytes"]["total"]
    assert {(f["source"], f["origin"]) for f in files_of(doc)} == {("hf-cache", "hf-cache")}
    assert {f["link"] for f in files_of(doc)} == {"hardlink"}
    assert "reused 26 files already on this machine: 26 hard-linked read-only" in run.stderr
    assert "reused 214.7 KiB" in run.stderr.splitlines()[-1]
    target = workdir / "models" / "wan2.1-i2v" / LARGEST
    assert os.path.samefile(target, blob(hf_home, hub, WAN, LARGEST))  # a hard link: no extra space
    assert stat.S_IMODE(target.stat().st_mode) & 0o222 == 0  # one inode with the cache: read-only
    check = cli("verify", "--full")
    assert check.returncode == 0, check.stderr
    assert hub.requests == []


def test_without_a_lockfile_only_the_listing_is_requested(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    hf_home = fill_hf_cache(hub, tmp_path, *seed_repos())
    hub.clear_log()
    run = cli("download", HF_HOME=str(hf_home))
    assert run.returncode == 0, run.stderr
    assert hub.gets() == []
    assert all(r.file is None for r in hub.requests)  # metadata only, no file bytes


def test_damaged_blob_is_caught_and_fetched_instead(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    hf_home = fill_hf_cache(hub, tmp_path, WAN)
    damaged = blob(hf_home, hub, WAN, LARGEST)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    damaged.write_bytes(bytes(data))
    write_manifest(workdir / "w.yaml", f"version: 1\nmodels:\n  - name: wan\n    repo: {WAN}\n")
    hub.clear_log()
    run = cli("download", "-m", "w.yaml", "--json", HF_HOME=str(hf_home))
    assert run.returncode == 0, run.stderr
    assert f"'wan/{LARGEST}': the copy in the Hugging Face cache" in run.stderr
    assert "is damaged" in run.stderr and "fetching it from the network instead" in run.stderr
    assert [r.file for r in hub.gets()] == [LARGEST]
    by_path = {f["path"]: f for f in files_of(run.json())}
    assert (by_path[f"wan/{LARGEST}"]["origin"], by_path[f"wan/{LARGEST}"]["source"]) == (
        "hf-cache",
        "network",
    )
    target = workdir / "models" / "wan" / LARGEST
    assert target.read_bytes() == seed_repos()[WAN][LARGEST]
    assert not os.path.samefile(target, damaged)
    assert cli("verify", "-m", "w.yaml", "--full").returncode == 0
    assert not list((workdir / "models" / "wan").glob(".*.reuse"))  # no temp file left behind


def test_a_cache_with_huggingface_hubs_shared_blob_store_is_followed(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    """huggingface_hub 2.4+ may keep a repo's `blobs/<etag>` as a relative symlink into a cache-wide
    store (`<cache>/blobs/<xx>/<xet hash>`, utils/_shared_blobs.py). Reuse follows the link, and
    still hashes what it finds: a damaged store entry is fetched instead."""
    hf_home = fill_hf_cache(hub, tmp_path, *seed_repos())
    cache = hf_home / "hub"
    for repo_blob in sorted(cache.glob("models--*/blobs/*")):
        xet_hash = hashlib.sha256(repo_blob.name.encode()).hexdigest()  # any 64-hex name will do
        shared = cache / "blobs" / xet_hash[:2] / xet_hash
        shared.parent.mkdir(parents=True, exist_ok=True)
        repo_blob.replace(shared)
        repo_blob.symlink_to(os.path.relpath(shared, repo_blob.parent))
    assert cli("lock", HF_HOME=str(hf_home)).returncode == 0
    damaged = blob(hf_home, hub, WAN, LARGEST).resolve()
    data = bytearray(damaged.read_bytes())
    data[-1] ^= 0xFF
    damaged.write_bytes(bytes(data))
    hub.clear_log()
    run = cli("download", "--json", HF_HOME=str(hf_home))
    assert run.returncode == 0, run.stderr
    assert [r.file for r in hub.gets()] == [LARGEST]  # only the damaged one, every other from the store
    assert {f["source"] for f in files_of(run.json()) if f["repo_path"] != LARGEST} == {"hf-cache"}
    assert cli("verify", "--full").returncode == 0


@pytest.mark.needs_root
def test_cache_on_another_filesystem_is_copied(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "other-fs", "16m") as other:
        hf_home = fill_hf_cache(hub, other, *seed_repos())
        assert cli("lock", HF_HOME=str(hf_home)).returncode == 0
        hub.clear_log()
        run = cli("download", HF_HOME=str(hf_home))
        assert run.returncode == 0, run.stderr
        assert hub.requests == []
        assert "reused 26 files already on this machine: 26 copied" in run.stderr
        target = workdir / "models" / "wan2.1-i2v" / LARGEST
        assert target.stat().st_nlink == 1
        assert target.read_bytes() == seed_repos()[WAN][LARGEST]
        assert cli("verify", "--full").returncode == 0


def test_read_only_cache_works(cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path) -> None:
    hf_home = fill_hf_cache(hub, tmp_path, *seed_repos())
    assert cli("lock", HF_HOME=str(hf_home)).returncode == 0
    for top, _, names in os.walk(hf_home):
        for name in names:
            if not Path(top, name).is_symlink():
                Path(top, name).chmod(0o444)
        Path(top).chmod(0o555)
    try:
        hub.clear_log()
        run = cli("download", "--offline", HF_HOME=str(hf_home))  # offline is fine: nothing to fetch
        assert run.returncode == 0, run.stderr
        assert hub.requests == []
        assert cli("verify", "--full").returncode == 0
        assert not any(".reuse" in p.name for p in hf_home.rglob("*"))  # nothing written into the cache
    finally:
        for top, _, _ in os.walk(hf_home):
            Path(top).chmod(0o755)


def test_no_reuse_fetches_everything(cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path) -> None:
    hf_home = fill_hf_cache(hub, tmp_path, *seed_repos())
    hub.clear_log()
    run = cli("download", "--no-reuse", "--json", HF_HOME=str(hf_home))
    assert run.returncode == 0, run.stderr
    assert len(hub.gets()) == 26
    assert {f["source"] for f in files_of(run.json())} == {"network"}
    assert "reused" not in run.stderr


# -- this run, this root, other roots and folders -------------------------------------------------------


def test_same_file_selected_twice_is_fetched_once(cli: Cli, hub: HubServer, workdir: Path) -> None:
    write_manifest(workdir / "twice.yaml", TWICE)
    plan = cli("download", "-m", "twice.yaml", "--dry-run", "--json").json()
    assert plan["bytes"]["to_fetch"] == plan["bytes"]["total"] // 2
    hub.clear_log()
    run = cli("download", "-m", "twice.yaml", "--json", "--link-mode", "hardlink")
    assert run.returncode == 0, run.stderr
    fetched = sorted(r.file for r in hub.gets())
    assert fetched == ["config.json", "diffusion_pytorch_model.safetensors"]  # once each
    assert "reused 2 files already on this machine: 2 hard-linked" in run.stderr  # the twins count
    sources = {f["path"]: f["source"] for f in files_of(run.json())}
    assert sources == {
        "vae-a/config.json": "network",
        "vae-a/diffusion_pytorch_model.safetensors": "network",
        "vae-b/config.json": "local",
        "vae-b/diffusion_pytorch_model.safetensors": "local",
    }
    models = workdir / "models"
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        assert os.path.samefile(models / "vae-a" / name, models / "vae-b" / name)
    assert cli("verify", "-m", "twice.yaml", "--full").returncode == 0


def test_a_second_manifest_in_the_same_root_reuses_the_first_ones_files(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    one = "version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n"
    write_manifest(workdir / "one.yaml", one + '    include: ["*.safetensors"]\n')
    write_manifest(
        workdir / "two.yaml", one.replace("name: vae", "name: other") + '    include: ["*.safetensors"]\n'
    )
    assert cli("download", "-m", "one.yaml").returncode == 0
    hub.clear_log()
    run = cli("download", "-m", "two.yaml", "--link-mode", "hardlink")
    assert run.returncode == 0, run.stderr
    assert hub.gets() == []
    assert os.path.samefile(
        workdir / "models" / "vae" / "diffusion_pytorch_model.safetensors",
        workdir / "models" / "other" / "diffusion_pytorch_model.safetensors",
    )


def test_reuse_from_another_wanmodels_root(cli: Cli, hub: HubServer, workdir: Path) -> None:
    assert cli("download").returncode == 0  # fills ./models and pins the preset there
    shutil.copy(workdir / "models" / ".wanmodels" / "locks" / "wan2.1-i2v.lock", workdir / "pins.lock")
    hub.clear_log()
    plan = cli("download", "--root", "other", "--reuse-from", "models", "--dry-run", "--json").json()
    assert {f["source"] for f in files_of(plan)} == {"local"}
    run = cli("download", "--root", "other", "--reuse-from", "models")
    assert run.returncode == 0, run.stderr
    assert hub.gets() == []
    mine, theirs = workdir / "other" / "sd-vae" / "config.json", workdir / "models" / "sd-vae" / "config.json"
    assert mine.read_bytes() == theirs.read_bytes()
    assert not os.path.samefile(mine, theirs)  # a small file is copied: an edit stays in its root
    assert cli("verify", "--root", "other", "--full").returncode == 0


def test_reuse_from_a_plain_folder_matches_by_size_then_hash(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "ComfyUI" / "models" / "vae"
    plain.mkdir(parents=True)
    data = seed_repos()[VAE_REPO_ID]["diffusion_pytorch_model.safetensors"]
    (plain / "my_vae.safetensors").write_bytes(data)
    (plain / "same_size_other_bytes.safetensors").write_bytes(bytes(len(data)))
    vae = "version: 1\nmodels:\n  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n"
    write_manifest(workdir / "v.yaml", vae + '    include: ["*.safetensors"]\n')
    hub.clear_log()
    run = cli("download", "-m", "v.yaml", "--json", WANMODELS_REUSE_FROM=str(tmp_path / "ComfyUI"))
    assert run.returncode == 0, run.stderr
    assert hub.gets() == []
    (item,) = files_of(run.json())
    assert (item["source"], item["reuse_from"]) == ("local", str(plain / "my_vae.safetensors"))


def test_reuse_from_a_missing_folder_is_a_usage_error(cli: Cli, workdir: Path) -> None:
    run = cli("download", "--reuse-from", "nowhere", "--dry-run")
    assert run.returncode == 2
    assert "--reuse-from 'nowhere' is not a folder" in run.stderr
    both = cli("download", "--reuse-from", ".", "--no-reuse", "--dry-run")
    assert both.returncode == 2 and "contradict" in both.stderr


# -- the module's pieces --------------------------------------------------------------------------------


def _item(local: str, data: bytes, action: Action = Action.DOWNLOAD, repo: str = "org/a") -> PlannedFile:
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    return PlannedFile("e", repo, "c" * 40, local, local, len(data), digest, action, 0)


def _plan(root: Path, *files: PlannedFile) -> Plan:
    from wanmodels.inputs.manifest import ModelSpec

    spec = ModelSpec(name="e", repo="org/a", folder="e")
    return Plan(root, (ModelPlan(spec, "c" * 40, files),))


def test_with_origins_fetches_each_digest_once_and_prefers_what_is_in_place(tmp_path: Path) -> None:
    asked: list[str] = []

    def find(item: PlannedFile) -> Found | None:
        asked.append(item.local_path)
        return Found(Source.HF_CACHE, tmp_path / "blob") if item.local_path == "e/c1" else None

    plan = with_origins(
        _plan(
            tmp_path,
            _item("e/a1", b"A"),
            _item("e/a2", b"A"),
            _item("e/b1", b"B", Action.KEEP),
            _item("e/b2", b"B"),
            _item("e/c1", b"C"),
            _item("e/c2", b"C"),
        ),
        find,
    )
    got = {f.local_path: (f.origin, f.reuse_from, f.twin_of) for f in plan.files}
    assert got == {
        "e/a1": (Source.NETWORK, None, None),
        "e/a2": (Source.LOCAL, tmp_path / "e/a1", "e/a1"),
        "e/b1": (Source.NETWORK, None, None),
        "e/b2": (Source.LOCAL, tmp_path / "e/b1", None),
        "e/c1": (Source.HF_CACHE, tmp_path / "blob", None),
        "e/c2": (Source.LOCAL, tmp_path / "e/c1", "e/c1"),
    }
    assert asked == ["e/a1", "e/c1"]  # one lookup per digest; none for bytes already in place
    assert [f.local_path for f in plan.fetch_order()] == ["e/a1"]
    assert plan.to_fetch == 1 and plan.to_reuse == 4


def test_finder_hashes_only_files_of_the_right_size(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "right.bin").write_bytes(b"x" * 100)
    (folder / "same-size.bin").write_bytes(b"y" * 100)
    (folder / "other-size.bin").write_bytes(b"x" * 101)
    finder = Finder(tmp_path / "root", Settings(reuse_from=(folder,)), StateCache(tmp_path / "root"))
    found = finder.find(_item("e/w.bin", b"x" * 100))
    assert found == Found(Source.LOCAL, folder / "right.bin")
    assert len(finder._hashed) <= 2  # never the file of another size
    assert finder.find(_item("e/none.bin", b"z" * 7)) is None


def _placer(root: Path, mode: LinkMode = LinkMode.AUTO) -> Placer:
    return Placer(root, StateCache(root), "m.yaml", link_mode=mode)


def test_place_reused_never_places_wrong_bytes(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"not the right bytes")
    item = _item("e/file.bin", b"the right bytes....")  # same size
    with pytest.raises(IntegrityError):
        _placer(tmp_path / "root").place_reused(
            item, source, vouched=lambda st: False, cancel=threading.Event()
        )
    assert sorted(p.name for p in (tmp_path / "root" / "e").iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "size", "link"),
    [
        pytest.param(LinkMode.HARDLINK, 7000, Link.HARDLINK, id="hardlink"),
        pytest.param(LinkMode.COPY, SMALL_FILE + 1, Link.COPY, id="copy"),
        pytest.param(LinkMode.AUTO, 7000, Link.COPY, id="auto_small_is_copied"),
        pytest.param(LinkMode.AUTO, SMALL_FILE, Link.HARDLINK, id="auto_large_is_linked_where_no_clone"),
        pytest.param(LinkMode.CLONE, SMALL_FILE, Link.COPY, id="clone_falls_back_to_a_copy_on_ext4"),
    ],
)
def test_place_reused_links_or_copies_atomically(
    tmp_path: Path, mode: LinkMode, size: int, link: Link
) -> None:
    """tmp_path is on ext4 or tmpfs here, neither of which can reflink (see the next test)."""
    data = (b"payload" * (size // 7 + 1))[:size]
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    item = _item("e/file.bin", data)
    placer = _placer(tmp_path / "root", mode)
    placed = placer.place_reused(item, source, vouched=lambda st: False, cancel=threading.Event())
    target = tmp_path / "root" / "e" / "file.bin"
    assert placed.link is link
    assert os.path.samefile(target, source) is (link is Link.HARDLINK)
    assert hash_file(target, "sha256") == item.digest
    assert sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]
    writable = 0o666 & ~_umask()
    assert stat.S_IMODE(target.stat().st_mode) == (writable & ~0o222 if link is Link.HARDLINK else writable)
    assert StateCache(tmp_path / "root").stamps()["e/file.bin"].placed  # journaled as it was placed


@pytest.mark.needs_root("mkfs.xfs")
def test_a_large_file_is_cloned_where_the_filesystem_can(tmp_path: Path) -> None:
    """On a filesystem with reflinks (XFS here), `auto` clones a large file: no bytes copied, yet
    a file of its own, so an edit changes the placed file and never the source."""
    with reflink_disk(tmp_path / "xfs") as disk:
        data = os.urandom(SMALL_FILE + 4096)
        source = disk / "cache" / "blob"
        source.parent.mkdir()
        source.write_bytes(data)
        item = _item("e/file.bin", data)
        placed = _placer(disk / "root").place_reused(
            item, source, vouched=lambda st: False, cancel=threading.Event()
        )
        target = disk / "root" / "e" / "file.bin"
        assert placed.link is Link.CLONE
        assert not os.path.samefile(target, source)
        with target.open("r+b") as f:
            f.write(b"edited")
        assert source.read_bytes() == data


def test_an_edit_of_a_reused_small_file_never_reaches_the_cache(
    cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path
) -> None:
    """Default link mode: configs and other small files are copied, so `echo >> config.json` in a
    project changes only that project's copy (the HF blob and other roots stay as they were)."""
    hf_home = fill_hf_cache(hub, tmp_path, *seed_repos())
    run = cli("download", "--json", HF_HOME=str(hf_home))
    assert run.returncode == 0, run.stderr
    assert {f["link"] for f in files_of(run.json())} == {"copy"}  # every fixture file is under 4 MiB
    config = workdir / "models" / "sd-vae" / "config.json"
    cached = blob(hf_home, hub, VAE_REPO_ID, "config.json")
    before = cached.read_bytes()
    with config.open("a") as f:
        f.write("my notes\n")
    assert cached.read_bytes() == before
    assert not os.path.samefile(config, cached)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_hf_hub_cache_is_resolved_like_huggingface_hub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hf_hub_cache() == tmp_path / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hf_hub_cache() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", "~/hfhome")
    assert hf_hub_cache() == tmp_path / "hfhome" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", str(tmp_path / "legacy"))
    assert hf_hub_cache() == tmp_path / "legacy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "new"))
    assert hf_hub_cache() == tmp_path / "new"
    code = "from huggingface_hub import constants; print(constants.HF_HUB_CACHE)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert Path(out.strip()) == hf_hub_cache()
    assert resolve_settings().hf_cache == tmp_path / "new"
    assert resolve_settings(reuse=False).hf_cache is None
    with pytest.raises(UsageError):
        resolve_settings(reuse_from=(str(tmp_path / "missing"),))


def test_dry_run_table_says_where_bytes_come_from(cli: Cli, hub: HubServer, workdir: Path) -> None:
    write_manifest(workdir / "twice.yaml", TWICE)
    run = cli("download", "-m", "twice.yaml", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "from" in run.stderr and "local" in run.stderr and "network" in run.stderr
    assert "reused from this machine" in run.stderr
    assert (
        json.loads(cli("download", "-m", "twice.yaml", "--dry-run", "--json").stdout)["bytes"]["to_reuse"] > 0
    )


@pytest.mark.slow
def test_reuse_benchmark_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.reuse", "--mib", "8", "--repeat", "1"],
        cwd=REPO_ROOT,
        env=dict(os.environ),  # cleaned by the clean_env fixture; the script starts its own Hub
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "B |" in line]
    assert len(rows) == 3
    assert rows[1].split(" | ")[1] == "0 B" and rows[2].split(" | ")[1:3] == ["0 B", "0"]
