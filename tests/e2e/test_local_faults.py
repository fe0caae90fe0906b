"""Local trouble that must read as one line and exit 4 (or be ignored and rebuilt), never a traceback:
an unreadable Hugging Face token, a root whose lock cannot be taken (read-only, another user's),
damaged files of the root's own, signals in a row, a prune queued behind another process.

The real CLI (`tests.support.clirun`, in a child where the environment or signals matter).
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import types
from pathlib import Path

import pytest
from filelock import FileLock

import wanmodels.sources.hub as hub_module
from tests.support.cli import Cli, read_stderr_until, spawn, write_manifest
from tests.support.disks import fill, small_disk, sparse_disk
from tests.support.hfcache import blob, fill_hf_cache
from tests.support.hubserver import Fault, HubServer
from tests.support.waiting import wait_until
from wanmodels.cli.render import LineProgress, RichProgress, make_console
from wanmodels.cli.run import on_sigterm
from wanmodels.config import Settings
from wanmodels.digests import Digest
from wanmodels.errors import LocalIOError, TransientHubError
from wanmodels.store.partial import list_parts, part_key

REPO = "test/local"
FILES = {"config.json": b'{"l": 1}\n', "w.bin": bytes(range(256)) * 1024}


@pytest.fixture
def manifest(hub: HubServer, workdir: Path) -> Path:
    hub.add_repo(REPO, FILES)
    return write_manifest(workdir / "l.yaml", f"version: 1\nmodels:\n  - name: l\n    repo: {REPO}\n")


def models(workdir: Path) -> Path:
    return workdir / "models"


def one_line(stderr: str) -> str:
    """The single `error:` line of a failed run (and no traceback around it)."""
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# -- the Hugging Face token ----------------------------------------------------------------------------------


@pytest.mark.parametrize("locked", [False, True], ids=["listing", "lockfile"])
def test_an_unreadable_token_file_is_one_line_exit_4(
    cli: Cli, manifest: Path, workdir: Path, tmp_path: Path, locked: bool
) -> None:
    if locked:  # pinned: no listing, so the first request is a file's
        assert cli("lock", "-m", str(manifest)).returncode == 0
    home = tmp_path / "hf-broken"
    (home / "token").mkdir(parents=True)  # `sudo hf auth login` and a shared HF_HOME fail alike
    run = cli("download", "-m", str(manifest), HF_HOME=str(home))
    assert run.returncode == 4, run.stderr
    line = one_line(run.stderr)
    assert f"cannot read the Hugging Face token '{home / 'token'}'" in line
    assert "HF_TOKEN" in line
    assert not (models(workdir) / "l" / "config.json").exists()


# -- the root lock -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [("download",), ("download", "--offline"), ("verify", "--prune")], ids=lambda a: " ".join(a)
)
def test_a_lock_file_that_cannot_be_opened_is_one_line_exit_4(
    cli: Cli, manifest: Path, workdir: Path, args: tuple[str, ...]
) -> None:
    assert cli("download", "-m", str(manifest)).returncode == 0
    lock = models(workdir) / ".wanmodels" / "lock"
    lock.unlink()
    lock.mkdir()  # what FileLock sees of another user's 0644 lock as root sees it: it cannot open it
    run = cli(*args, "-m", str(manifest))
    assert run.returncode == 4, run.stderr
    line = one_line(run.stderr)
    assert f"cannot lock '{lock}'" in line and "--root" in line


@pytest.mark.needs_root
def test_a_read_only_root_is_one_line_exit_4(cli: Cli, manifest: Path, workdir: Path) -> None:
    with small_disk(workdir / "ro", "16m") as disk:
        root = disk / "root"
        assert cli("download", "-m", str(manifest), "--root", str(root)).returncode == 0
        remount = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        assert remount.returncode == 0, remount.stderr
        for args in (("download",), ("download", "--offline"), ("verify", "--prune")):
            run = cli(*args, "-m", str(manifest), "--root", str(root))
            assert run.returncode == 4, run.stderr
            assert "Read-only file system" in one_line(run.stderr)
        assert cli("verify", "-m", str(manifest), "--root", str(root)).returncode == 0  # reading works


def test_verify_prune_says_it_waits_for_the_lock_and_no_wait_exits_4(
    hub: HubServer, cli: Cli, manifest: Path, workdir: Path
) -> None:
    assert cli("download", "-m", str(manifest)).returncode == 0
    held = FileLock(str(models(workdir) / ".wanmodels" / "lock"))
    held.acquire()
    try:
        busy = cli("verify", "-m", str(manifest), "--prune", "--no-wait")
        assert busy.returncode == 4, busy.stderr
        assert "another wanmodels process is working on" in one_line(busy.stderr)
        queued = spawn(hub, workdir, "verify", "-m", str(manifest), "--prune")
        read_stderr_until(queued, "waiting for another wanmodels process to finish with")
    finally:
        held.release()
    _, err = queued.communicate(timeout=60)
    assert queued.returncode == 0, err


# -- the root's own files, damaged ---------------------------------------------------------------------------


def test_a_deeply_nested_state_file_is_ignored_and_rebuilt(cli: Cli, manifest: Path, workdir: Path) -> None:
    assert cli("download", "-m", str(manifest)).returncode == 0
    state = models(workdir) / ".wanmodels" / "state.json"
    state.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    for args in (("status",), ("verify",), ("download",)):
        run = cli(*args, "-m", str(manifest))
        assert run.returncode == 0, run.stderr
        assert "Traceback" not in run.stderr
    assert state.read_text(encoding="utf-8").startswith("{")  # rebuilt


def test_a_deeply_nested_journal_is_ignored_and_the_file_fetched_again(
    cli: Cli, hub: HubServer, manifest: Path, workdir: Path
) -> None:
    assert cli("lock", "-m", str(manifest)).returncode == 0
    entry = hub.file_info(REPO, "w.bin")
    digest = Digest("sha256", entry.sha256) if entry.lfs else Digest("gitsha1", entry.blob_id)
    partial = models(workdir) / ".wanmodels" / "partial"
    partial.mkdir(parents=True)
    key = part_key("l/w.bin", digest)
    (partial / f"{key}.part").write_bytes(FILES["w.bin"][:1000])
    (partial / f"{key}.journal").write_text("[" * 200_000 + "\n0 1000\n", encoding="utf-8")
    status = cli("status", "-m", str(manifest))
    assert status.returncode == 1 and "Traceback" not in status.stderr  # incomplete, and says so
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 0, run.stderr
    assert (models(workdir) / "l" / "w.bin").read_bytes() == FILES["w.bin"]
    assert [g.range for g in hub.gets("w.bin")] == [None]  # the journal promised nothing: from byte 0


# -- signals -------------------------------------------------------------------------------------------------


def test_a_sigterm_handler_ignores_the_next_one() -> None:
    before = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # ignored: nothing is raised
    finally:
        signal.signal(signal.SIGTERM, before)


def test_two_sigterms_in_a_row_during_planning_exit_130_without_a_traceback(
    hub: HubServer, manifest: Path, workdir: Path
) -> None:
    hang = hub.add_fault(Fault(path=f"/api/models/{REPO}/*", api=True, kind="hang", seconds=60, times=None))
    proc = spawn(hub, workdir, "download", "-m", str(manifest))
    wait_until(lambda: hang.applied > 0, "the listing to be asked for")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGTERM)  # what `timeout` does: the child, then its process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err


# -- free space ----------------------------------------------------------------------------------------------


@pytest.mark.needs_root
def test_a_small_plan_fits_a_small_disk(cli: Cli, hub: HubServer, workdir: Path) -> None:
    data = bytes(range(256)) * (16 << 10)  # 4 MiB
    hub.add_repo("test/small", {"w.bin": data})
    manifest = write_manifest(workdir / "s.yaml", "version: 1\nmodels:\n  - name: s\n    repo: test/small\n")
    with small_disk(workdir / "small", "8m") as disk:
        # The margin is an eighth of the plan (from 1 MiB to 64 MiB), not a fixed 64 MiB.
        run = cli("download", "-m", str(manifest), "--root", str(disk / "root"))
        assert run.returncode == 0, run.stderr
        assert (disk / "root" / "s" / "w.bin").read_bytes() == data


# -- OS errors, each at the layer that knows what it was doing -----------------------------------------------


def test_a_cleanup_failure_after_placing_leaves_the_file_placed_and_recorded(
    cli: Cli, manifest: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unlink = Path.unlink

    def failing(self: Path, missing_ok: bool = False) -> None:
        if self.suffix == ".part":
            raise OSError(errno.EIO, "Input/output error", str(self))
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", failing)
    run = cli("download", "-m", str(manifest), "--json")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "unexpected" not in run.stderr
    assert "a partial file of 'l/w.bin': Input/output error; delete it by hand" in run.stderr
    assert (models(workdir) / "l" / "w.bin").read_bytes() == FILES["w.bin"]
    assert {f["status"] for m in run.json()["models"] for f in m["files"]} == {"ok"}
    monkeypatch.undo()
    state = json.loads((models(workdir) / ".wanmodels" / "state.json").read_text(encoding="utf-8"))
    assert state["files"]["l/w.bin"]["placed"] is True  # recorded as placed: prune may remove it later


def test_a_socket_that_cannot_say_whether_bytes_wait_is_read_as_nothing_waiting() -> None:
    class Broken:
        def get_extra_info(self, name: str) -> object:
            if name == "is_readable":
                raise OSError(errno.EBADF, "Bad file descriptor")
            return None

    response = types.SimpleNamespace(extensions={"network_stream": Broken()})
    assert hub_module._arrived(response)() is False  # type: ignore[arg-type]


def test_a_raw_socket_error_under_the_hub_client_is_a_transient_hub_error() -> None:
    hub = hub_module.Hub(Settings(endpoint="http://127.0.0.1:9", offline=True))
    call = hub_module._Call(REPO, "main", None, "w.bin")
    named = r"connection to 127\.0\.0\.1:9 failed for 'w.bin' in 'test/local': Bad file descriptor"
    with pytest.raises(TransientHubError, match=named), hub._translated(call):
        raise OSError(errno.EBADF, "Bad file descriptor")
    # Ours pass through as they are (HubError and LocalIOError are OSErrors too).
    with pytest.raises(LocalIOError, match="ours"), hub._translated(call):
        raise LocalIOError("ours")


@pytest.mark.needs_root("mkfs.ext2")
def test_a_disk_filled_to_the_last_byte_mid_download_keeps_the_report(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    data = bytes(range(256)) * (96 << 10)  # 24 MiB
    hub.add_repo("test/fill", {"a.bin": data, "small.json": b"{}"})
    manifest = write_manifest(workdir / "f.yaml", "version: 1\nmodels:\n  - name: f\n    repo: test/fill\n")
    with sparse_disk(workdir / "full", 64 << 20) as disk:  # no fallocate: the part's blocks come as bytes do
        root = disk / "root"
        hub.throttle_bps = 1 << 20  # 24 s for the file: the filler wins the race for the space
        proc = spawn(hub, workdir, "download", "-m", str(manifest), "--root", str(root), "--json")
        partial = root / ".wanmodels" / "partial"
        wait_until(lambda: any(p.done_bytes for p in list_parts(partial)), "the download's first bytes")
        fill(disk / "filler", leave=0)  # not a block left, for the parts nor for the state file
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 4, err
        assert "Traceback" not in err
        assert "disk full while writing 'f/a.bin'; the partial download is kept" in err  # the file's line
        assert "f: FAILED" in err  # the summary is there
        doc = json.loads(out)
        (model,) = doc["models"]
        assert {f["path"]: f["status"] for f in model["files"]}["f/a.bin"] == "failed"
        (disk / "filler").unlink()
        hub.throttle_bps = None
        run = cli("download", "-m", str(manifest), "--root", str(root))
        assert run.returncode == 0, run.stderr
        assert (root / "f" / "a.bin").read_bytes() == data


# -- the work folder -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", [".wanmodels", ".wanmodels/partial"])
def test_a_work_folder_linked_out_of_the_root_is_refused(
    cli: Cli, manifest: Path, workdir: Path, tmp_path: Path, link: str
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    path = models(workdir) / link
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(outside, target_is_directory=True)
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 4, run.stderr
    line = one_line(run.stderr)
    assert f"'{path}' is a symbolic link to '{outside}'; wanmodels writes only inside the root" in line
    assert list(outside.iterdir()) == []  # no lock, state or part written through the link
    assert not (models(workdir) / "l").exists()


@pytest.mark.needs_root
def test_a_damaged_reuse_candidate_is_counted_again_before_its_bytes_are_fetched(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    data = bytes(range(256)) * (16 << 10)  # 4 MiB
    hub.add_repo("test/reuse", {"w.safetensors": data, "config.json": b"{}"})
    manifest = write_manifest(workdir / "r.yaml", "version: 1\nmodels:\n  - name: r\n    repo: test/reuse\n")
    with small_disk(workdir / "disk", "16m") as disk:
        hf_home = fill_hf_cache(hub, disk, "test/reuse")  # on the root's disk: it would be linked
        damaged = blob(hf_home, hub, "test/reuse", "w.safetensors")
        damaged.write_bytes(data[:-1] + b"\x00")  # same size, wrong bytes
        assert cli("lock", "-m", str(manifest)).returncode == 0
        fill(disk / "filler", leave=2 << 20)  # room for a link, not for 4 MiB more
        hub.clear_log()
        run = cli("download", "-m", str(manifest), "--root", str(disk / "root"), HF_HOME=str(hf_home))
        assert run.returncode == 4, run.stderr
        assert "is damaged" in run.stderr and "not enough disk space" in one_line(run.stderr)
        assert hub.gets("w.safetensors") == []  # refused before a byte of it was fetched


def test_a_progress_line_that_cannot_be_written_fails_no_file() -> None:
    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.EIO, "Input/output error")

    console = make_console(Gone())
    for sink in (LineProgress(console), RichProgress(console)):
        sink.message("'x': retrying in 0.5s (4 more tries after this)")  # nothing raised
