"""verify end to end: good trees pass, each kind of damage is named, --json is stable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.files import flip_last_byte
from tests.support.hubserver import HubServer
from tests.support.memsource import MemorySource
from tests.support.repos import safetensors_bytes
from wanmodels.config import Settings
from wanmodels.inputs.manifest import parse_manifest
from wanmodels.ops.download import download
from wanmodels.ops.verify import repair
from wanmodels.store import state

MODELS = "models"


@pytest.fixture
def provisioned(cli: Cli, workdir: Path) -> Path:
    run = cli("download")
    assert run.returncode == 0, run.stderr
    return workdir / MODELS


def findings(doc: dict) -> dict[str, str]:
    return {f["path"]: f["problem"] for m in doc["models"] for f in m["findings"]}


def test_verify_passes_on_a_good_tree(cli: Cli, provisioned: Path, hub: HubServer) -> None:
    hub.clear_log()
    run = cli("verify", "--json")
    assert run.returncode == 0, run.stderr
    doc = run.json()
    assert doc["status"] == "ok"
    assert findings(doc) == {}
    assert sum(m["files_checked"] for m in doc["models"]) == 26
    assert hub.requests == []  # the lockfile and state cache answer everything
    assert "verified" in run.stderr


def test_verify_reports_deleted_file_as_missing(cli: Cli, provisioned: Path) -> None:
    (provisioned / "sd-vae" / "config.json").unlink()
    run = cli("verify", "--json")
    assert run.returncode == 1
    assert findings(run.json()) == {"sd-vae/config.json": "missing"}
    assert "sd-vae/config.json" in run.stderr


def test_verify_reports_truncated_file_as_size(cli: Cli, provisioned: Path) -> None:
    target = provisioned / "clip-vit-large" / "model.safetensors"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    run = cli("verify", "--json")
    assert run.returncode == 1
    doc = run.json()
    assert findings(doc) == {"clip-vit-large/model.safetensors": "size"}
    finding = doc["models"][1]["findings"][0]
    assert finding["expected"] == str(len(data))
    assert finding["actual"] == str(len(data) // 2)


def test_verify_reports_partial_download_in_place_of_a_file(
    cli: Cli, provisioned: Path, workdir: Path
) -> None:
    target = provisioned / "t5-base" / "pytorch_model.bin"
    data = target.read_bytes()
    target.unlink()
    lock = (provisioned / ".wanmodels" / "locks" / "wan2.1-i2v.lock").read_text()
    assert "t5-base/pytorch_model.bin" in lock
    # What an interrupted download of an older wanmodels leaves: a prefix of the bytes, no journal.
    from wanmodels.inputs.lockfile import read_lock
    from wanmodels.store.partial import part_key

    locked = read_lock(provisioned / ".wanmodels" / "locks" / "wan2.1-i2v.lock")
    assert locked is not None
    entry = next(f for m in locked.models for f in m.files if f.local == "t5-base/pytorch_model.bin")
    part = provisioned / ".wanmodels" / "partial" / f"{part_key(entry.local, entry.digest)}.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data[:100])
    run = cli("verify", "--json")
    assert run.returncode == 1
    assert findings(run.json()) == {"t5-base/pytorch_model.bin": "partial"}
    assert "resume" in run.stderr
    again = cli("download")
    assert again.returncode == 0, again.stderr
    assert target.read_bytes() == data


def test_verify_flags_changed_bytes_when_mtime_moved(cli: Cli, provisioned: Path) -> None:
    target = provisioned / "sd-vae" / "diffusion_pytorch_model.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    run = cli("verify", "--json")
    assert run.returncode == 1
    doc = run.json()
    assert findings(doc) == {"sd-vae/diffusion_pytorch_model.safetensors": "hash"}
    assert doc["hashed_bytes"] == len(data)  # only the changed file was re-hashed


def test_a_damaged_shard_is_blamed_once_not_on_its_index_too(cli: Cli, provisioned: Path) -> None:
    """The index names the damaged shard, which is there: only the shard's hash is a finding."""
    flip_last_byte(provisioned / "wan2.1-i2v" / "diffusion_pytorch_model-00002-of-00003.safetensors")
    run = cli("verify", "--json")
    assert run.returncode == 1
    assert findings(run.json()) == {"wan2.1-i2v/diffusion_pytorch_model-00002-of-00003.safetensors": "hash"}


def test_verify_full_catches_changed_bytes_even_with_mtime_restored(cli: Cli, provisioned: Path) -> None:
    target = provisioned / "sd-vae" / "diffusion_pytorch_model.safetensors"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    with target.open("r+b") as f:  # same inode, same size
        f.write(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    plain = cli("verify", "--json")
    assert plain.returncode == 0  # the cache trusts an unchanged stat: that is what --full is for
    full = cli("verify", "--full", "--json")
    assert full.returncode == 1
    doc = full.json()
    assert findings(doc) == {"sd-vae/diffusion_pytorch_model.safetensors": "hash"}
    detail = doc["models"][2]["findings"][0]["detail"]
    assert "expected sha256:" in detail and "got sha256:" in detail


def test_verify_leaves_files_it_did_not_place_alone(cli: Cli, provisioned: Path) -> None:
    (provisioned / "sd-vae" / "notes.txt").write_text("mine")
    run = cli("verify", "--json")
    assert run.returncode == 0
    doc = run.json()
    assert findings(doc) == {}
    assert doc["stale"] == []
    assert "notes.txt" not in run.stderr
    assert (provisioned / "sd-vae" / "notes.txt").exists()


def test_verify_catches_safetensors_with_lying_header(hub: HubServer, cli: Cli, workdir: Path) -> None:
    good = safetensors_bytes({"w": ("F32", [1024])}, seed=3)
    hub.add_repo("test/st", {"model.safetensors": good})
    manifest = write_manifest(workdir / "st.yaml", "version: 1\nmodels:\n  - name: st\n    repo: test/st\n")
    assert cli("download", "-m", str(manifest)).returncode == 0
    # Same size, but the header now claims more data than the file holds.
    bad = bytearray(good)
    bad[0:8] = (len(good)).to_bytes(8, "little")
    (workdir / "models" / "st" / "model.safetensors").write_bytes(bytes(bad))
    run = cli("verify", "-m", str(manifest), "--json")
    assert run.returncode == 1
    problems = findings(run.json())
    assert problems["st/model.safetensors"] in {"hash", "format"}


def test_verify_without_lockfile_asks_the_hub(
    cli: Cli, provisioned: Path, workdir: Path, hub: HubServer
) -> None:
    (provisioned / ".wanmodels" / "locks" / "wan2.1-i2v.lock").unlink()
    hub.clear_log()
    run = cli("verify")
    assert run.returncode == 0, run.stderr
    assert hub.gets() == []  # listings only, no file bytes
    assert any(r.path.startswith("/api/") for r in hub.requests)


def test_verify_reports_broken_safetensors_served_by_the_repo(
    hub: HubServer, cli: Cli, workdir: Path
) -> None:
    good = safetensors_bytes({"w": ("F32", [4096])}, seed=5)
    hub.add_repo("test/cut", {"model.safetensors": good[: len(good) - 1000]})  # truncated at the source
    manifest = write_manifest(
        workdir / "cut.yaml", "version: 1\nmodels:\n  - name: cut\n    repo: test/cut\n"
    )
    assert cli("download", "-m", str(manifest)).returncode == 0  # the bytes match what the Hub lists
    run = cli("verify", "-m", str(manifest), "--json")
    assert run.returncode == 1
    assert findings(run.json()) == {"cut/model.safetensors": "format"}
    assert "safetensors" in run.stderr


def test_repair_reads_each_good_file_once_per_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify --full --repair` hashes every file, re-fetches the bad one, verifies again: the
    download in between re-hashes only the file found bad (the verify forgot its stamp)."""
    source = MemorySource()
    source.add_repo("t/a", {"good.bin": b"g" * 4000, "bad.bin": b"b" * 3000})
    text = "version: 1\nroot: ./models\nmodels:\n  - name: a\n    repo: t/a\n"
    manifest = parse_manifest(text, source="m.yaml", base_dir=tmp_path, lock_path=tmp_path / "m.lock")
    settings = Settings(retry_wait=0.01)
    assert download(manifest, settings=settings, source=source).exit_code == 0
    (manifest.root / "a" / "bad.bin").write_bytes(b"x" * 3000)  # damaged in place, same size
    hashed: list[str] = []
    real = state.hash_file

    def counting(path: Path, *args: object, **kwargs: object) -> object:
        hashed.append(path.name)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "hash_file", counting)
    result = repair(manifest, settings=settings, source=source, full=True)
    assert not result.before.ok and result.after.ok
    assert (manifest.root / "a" / "bad.bin").read_bytes() == b"b" * 3000
    # verify --full: both; the download: only the bad one; verify --full again: both.
    assert sorted(hashed) == ["bad.bin", "bad.bin", "bad.bin", "good.bin", "good.bin"]
