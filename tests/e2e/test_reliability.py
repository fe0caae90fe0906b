"""The fault matrix: what the network, the disk and the user throw at a download."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli, read_stderr_until, spawn, write_manifest
from tests.support.disks import fill, small_disk, sparse_disk
from tests.support.hubserver import Fault, HubServer
from tests.support.repos import safetensors_bytes
from tests.support.waiting import wait_until
from wanmodels.store.partial import list_parts

BIG = "big.safetensors"


def big_repo(hub: HubServer, workdir: Path, size: int = 4 << 20) -> tuple[Path, bytes]:
    data = safetensors_bytes({"w": ("F32", [size // 4])}, seed=11)
    hub.add_repo("test/big", {"config.json": b"{}", BIG: data})
    manifest = write_manifest(
        workdir / "big.yaml", "version: 1\nmodels:\n  - name: big\n    repo: test/big\n"
    )
    return manifest, data


def target(workdir: Path) -> Path:
    return workdir / "models" / "big" / BIG


def parts(workdir: Path) -> list[Path]:
    folder = workdir / "models" / ".wanmodels" / "partial"
    return list(folder.glob("*.part")) if folder.exists() else []


def received(workdir: Path, name: str = BIG) -> int:
    """Bytes of `name` that the journal of its unfinished download says have arrived."""
    infos = list_parts(workdir / "models" / ".wanmodels" / "partial")
    return sum(p.done_bytes for p in infos if p.local_path.endswith("/" + name))


def test_server_errors_are_retried_then_succeed(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, data = big_repo(hub, workdir)
    hub.add_fault(Fault(path=BIG, kind="status", status=503, times=3))
    run = cli("download", "-m", str(manifest), "--workers", "1")
    assert run.returncode == 0, run.stderr
    assert target(workdir).read_bytes() == data
    assert [r.status for r in hub.gets(BIG)] == [503, 503, 503, 200]
    assert "HTTP 503" in run.stderr and "retrying" in run.stderr


def test_server_errors_past_the_budget_exit_3_naming_file_and_status(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    manifest, _ = big_repo(hub, workdir)
    hub.add_fault(Fault(path=BIG, kind="status", status=502, times=None))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3
    assert "big/big.safetensors" in run.stderr and "HTTP 502" in run.stderr
    # One try plus five retries: the idle connections do not pile onto a failing server.
    assert len(hub.gets(BIG)) == 6
    assert (workdir / "models" / "big" / "config.json").is_file()  # the rest landed


def test_retry_after_is_honoured(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, _ = big_repo(hub, workdir)
    hub.add_fault(Fault(path=BIG, kind="status", status=429, headers={"Retry-After": "1"}, times=1))
    run = cli("download", "-m", str(manifest), "--workers", "1")
    assert run.returncode == 0, run.stderr
    first, second = hub.gets(BIG)
    assert first.status == 429
    assert second.started - first.started >= 0.95


def test_stalled_stream_times_out_and_resumes(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, data = big_repo(hub, workdir)
    hub.add_fault(Fault(path=BIG, kind="stall", after_bytes=1 << 20, seconds=120, times=1))
    started = time.monotonic()
    run = cli("download", "-m", str(manifest), "--timeout", "1", "--workers", "1", timeout=180)
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 60  # the 1 s timeout fired, not the 120 s stall's end
    assert target(workdir).read_bytes() == data
    assert hub.wait_idle(10)  # the log skips a stalled request until the server has seen the client leave
    gets = hub.gets(BIG)
    assert len(gets) == 2
    assert gets[1].range == f"bytes={1 << 20}-"


def test_ignored_range_restarts_the_part_cleanly(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, data = big_repo(hub, workdir)
    hub.add_fault(Fault(path=BIG, kind="cut", after_bytes=1 << 20, times=1))
    hub.add_fault(Fault(path=BIG, kind="ignore_range", times=1))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 0, run.stderr
    assert target(workdir).read_bytes() == data


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_exits_130_quickly_and_keeps_the_part(
    hub: HubServer, workdir: Path, sig: int, cli: Cli
) -> None:
    manifest, data = big_repo(hub, workdir, 16 << 20)
    hub.throttle_bps = 512 << 10  # 32 s for the file: far longer than the exit may take
    proc = spawn(hub, workdir, "download", "-m", str(manifest))
    wait_until(lambda: received(workdir) > 256 << 10, "the big file to stream")
    sent = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert elapsed < 15  # ~0.6 s measured (up to 0.5 s for workers to stop); slack for a busy machine
    assert "run" in err.lower() and "again" in err.lower()
    assert "Traceback" not in err
    kept = received(workdir)
    assert 0 < kept < len(data)
    # Paced, so each connection has about one write in flight when its range is split: the
    # accounting below is then exact to that much.
    hub.throttle_bps = 64 << 20
    # The killed process's requests end only when the server notices the closed sockets: let them
    # be logged before the log is cleared, or they would count as the re-run's.
    assert hub.wait_idle(30)
    hub.clear_log()
    rerun = cli("download", "-m", str(manifest))
    assert rerun.returncode == 0, rerun.stderr
    assert target(workdir).read_bytes() == data
    gets = hub.gets(BIG)
    assert gets and all(g.range is not None for g in gets)  # every request continues a kept range
    assert sum(g.bytes_sent for g in gets) <= len(data) - kept + (1 << 20)


def test_second_process_waits_then_finds_nothing_to_do(hub: HubServer, workdir: Path, cli: Cli) -> None:
    manifest, data = big_repo(hub, workdir, 8 << 20)
    hub.throttle_bps = 8 << 20
    # One connection, so no range is ever split and the server's count below is exact.
    first = spawn(hub, workdir, "download", "-m", str(manifest), "--workers", "1", quiet=True)
    wait_until(lambda: received(workdir), "the first process to start fetching")
    # Hold the first one mid-download (its root lock stays held) until the second is seen
    # waiting: however slowly the others start, the first cannot finish before them.
    first.send_signal(signal.SIGSTOP)
    try:
        busy = cli("download", "-m", str(manifest), "--no-wait")
        assert busy.returncode == 4
        assert "another wanmodels process" in busy.stderr
        second = spawn(hub, workdir, "download", "-m", str(manifest), "--json")
        waited = read_stderr_until(second, "waiting for another wanmodels process")
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = second.communicate(timeout=60)
    first.wait(60)
    assert first.returncode == 0
    assert second.returncode == 0, waited + err
    assert json.loads(out)["bytes"]["fetched"] == 0
    assert target(workdir).read_bytes() == data
    assert hub.bytes_sent(BIG) == len(data)  # only the first process fetched, and only once


@pytest.mark.needs_root
def test_plan_that_does_not_fit_is_refused_before_fetching(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, _ = big_repo(hub, workdir, 4 << 20)
    with small_disk(workdir / "tiny", "2m") as tiny:
        run = cli("download", "-m", str(manifest), "--root", str(tiny))
        assert run.returncode == 4
        assert "not enough disk space" in run.stderr and "needs" in run.stderr
        assert hub.gets() == []


def _fill_repo(hub: HubServer, workdir: Path) -> tuple[Path, bytes]:
    data = safetensors_bytes({"w": ("F32", [(24 << 20) // 4])}, seed=2)
    hub.add_repo("test/fill", {"a.safetensors": data})
    manifest = write_manifest(
        workdir / "f.yaml", "version: 1\nmodels:\n  - name: fill\n    repo: test/fill\n"
    )
    return manifest, data


def _streaming(
    hub: HubServer, workdir: Path, manifest: Path, disk: Path
) -> tuple[subprocess.Popen[str], Path]:
    """A download into `disk/root` at 1 MiB/s (24 s for the file), once its first bytes are in the
    part; the process and the partial folder."""
    hub.throttle_bps = 1 << 20
    proc = spawn(hub, workdir, "download", "-m", str(manifest), "--root", str(disk / "root"))
    partial = disk / "root" / ".wanmodels" / "partial"
    wait_until(lambda: any(p.done_bytes for p in list_parts(partial)), "the download's first bytes")
    return proc, partial


@pytest.mark.needs_root("mkfs.ext2")
def test_disk_filling_mid_file_keeps_the_part(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, data = _fill_repo(hub, workdir)
    # ext2 has no fallocate: the part's blocks are not reserved up front, so the disk can fill
    # under it (elsewhere the next test's reservation keeps the download going).
    with sparse_disk(workdir / "tiny", 160 << 20) as tiny:
        # The up-front check passes (24 MiB + a 3 MiB margin fit); then another writer fills the
        # disk while the file streams. At 1 MiB/s the download would need 24 s to finish, far
        # longer than filling takes, and the filler stops at ~1 MiB free or at ENOSPC, whichever
        # comes first, so however the two writers interleave the download is the one that hits
        # the full disk.
        proc, partial = _streaming(hub, workdir, manifest, tiny)
        fill(tiny / "filler", leave=1 << 20)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 4, err
        assert "disk full" in err
        (part,) = partial.glob("*.part")
        assert part.stat().st_size > 0
        (tiny / "filler").unlink()
        hub.throttle_bps = None
        run = cli("download", "-m", str(manifest), "--root", str(tiny / "root"))
        assert run.returncode == 0, run.stderr
        assert (tiny / "root" / "fill" / "a.safetensors").read_bytes() == data


@pytest.mark.needs_root
def test_a_part_reserved_up_front_survives_another_writer_filling_the_disk(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    manifest, data = _fill_repo(hub, workdir)
    with small_disk(workdir / "tiny", "160m") as tiny:
        proc, _ = _streaming(hub, workdir, manifest, tiny)  # the filler is done long before
        fill(tiny / "filler", leave=1 << 20)
        assert shutil.disk_usage(tiny).free <= 1 << 20  # the disk is full while the file streams
        hub.throttle_bps = None
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert (tiny / "root" / "fill" / "a.safetensors").read_bytes() == data


@pytest.mark.needs_root
def test_a_resume_on_a_nearly_full_disk_counts_the_parts_reserved_blocks_once(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    manifest, data = _fill_repo(hub, workdir)
    with small_disk(workdir / "tiny", "40m") as tiny:
        proc, partial = _streaming(hub, workdir, manifest, tiny)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        (info,) = list_parts(partial)
        assert info.reserved == len(data) and info.done_bytes < len(data) // 2
        # Less free than the bytes still to fetch: they go into blocks the part already holds.
        fill(tiny / "filler", leave=4 << 20)
        assert shutil.disk_usage(tiny).free < len(data) - info.done_bytes
        hub.throttle_bps = None
        run = cli("download", "-m", str(manifest), "--root", str(tiny / "root"))
        assert run.returncode == 0, run.stderr
        assert (tiny / "root" / "fill" / "a.safetensors").read_bytes() == data


def test_hostile_tree_path_is_refused(cli: Cli, hub: HubServer, workdir: Path, tmp_path: Path) -> None:
    hub.add_repo(
        "test/evil", {"ok.json": b"{}", "../../escape.json": b"{}", "/abs.json": b"{}"}, hostile=True
    )
    manifest = write_manifest(
        workdir / "e.yaml", "version: 1\nmodels:\n  - name: evil\n    repo: test/evil\n"
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    run = cli("download", "-m", str(manifest))
    assert run.returncode in (2, 3), run.stderr
    assert "unsafe path" in run.stderr or "escape" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not (workdir / "escape.json").exists()


def test_offline_with_complete_tree_succeeds_without_requests(cli: Cli, hub: HubServer) -> None:
    assert cli("download").returncode == 0
    hub.clear_log()
    run = cli("download", HF_HUB_OFFLINE="1")
    assert run.returncode == 0, run.stderr
    assert cli("verify", "--offline").returncode == 0
    assert hub.requests == []


def test_offline_with_missing_files_exits_3_naming_them(cli: Cli, hub: HubServer, workdir: Path) -> None:
    assert cli("download").returncode == 0
    (workdir / "models" / "sd-vae" / "config.json").unlink()
    hub.clear_log()
    run = cli("download", "--offline")
    assert run.returncode == 3
    assert "sd-vae/config.json" in run.stderr
    assert hub.requests == []


def test_offline_without_lockfile_exits_3_without_requests(cli: Cli, hub: HubServer) -> None:
    run = cli("download", "--offline")
    assert run.returncode == 3
    assert "offline" in run.stderr
    assert hub.requests == []


def test_truncated_state_file_is_rebuilt_not_trusted(cli: Cli, workdir: Path) -> None:
    assert cli("download").returncode == 0
    state = workdir / "models" / ".wanmodels" / "state.json"
    state.write_text(state.read_text()[:40])
    run = cli("verify", "--json")
    assert run.returncode == 0, run.stderr
    assert run.json()["hashed_bytes"] > 0  # everything was re-hashed
    again = cli("verify", "--json")
    assert again.json()["hashed_bytes"] == 0  # and the rebuilt cache is trusted next time


def test_listed_file_missing_at_download_exits_3_naming_it(cli: Cli, hub: HubServer, workdir: Path) -> None:
    manifest, _ = big_repo(hub, workdir)
    hub.add_fault(
        Fault(path=BIG, kind="status", status=404, headers={"X-Error-Code": "EntryNotFound"}, times=None)
    )
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3
    assert "big.safetensors" in run.stderr and "not found" in run.stderr


def test_verbose_traces_requests_without_the_token(cli: Cli, hub: HubServer) -> None:
    token = "hf_verbose_secret_token_456"
    run = cli("download", "-v", HF_TOKEN=token)
    assert run.returncode == 0, run.stderr
    assert "GET " in run.stderr and "/resolve/" in run.stderr
    assert token not in run.stderr and token not in run.stdout
