"""Robustness at the edges: prune never deletes a selected file or races a download, workers
survive unexpected errors and leave nothing behind when cancelled, bad settings and bad state
files are one-line errors, dry runs write nothing, Ctrl-C stops reuse copies.

Each test reproduced a defect found in review (all failed at 607efc7). Mostly driven by the
in-memory byte source (milliseconds, no sockets); the CLI ones use the loopback Hub.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.memsource import MemFault, MemorySource
from tests.support.repos import VAE_REPO_ID
from wanmodels.config import LinkMode, Settings
from wanmodels.digests import Digest
from wanmodels.errors import Interrupted, LocalIOError, ManifestError
from wanmodels.inputs.manifest import Manifest, parse_manifest
from wanmodels.ops.download import download
from wanmodels.ops.status import status
from wanmodels.ops.verify import verify

MIB = 1 << 20


def _manifest(tmp_path: Path, body: str) -> Manifest:
    text = f"version: 1\nroot: ./models\nmodels:\n{body}"
    return parse_manifest(text, source="m.yaml", base_dir=tmp_path, lock_path=tmp_path / "m.lock")


def _settings(**kw: object) -> Settings:
    return Settings(retry_wait=0.01, **kw)  # type: ignore[arg-type]


# -- data safety ---------------------------------------------------------------------------------


def test_prune_never_deletes_a_selected_file_reached_by_another_path(tmp_path: Path) -> None:
    """pruner._remove unlinks a stale path without checking that it is not the very file a
    selected target is (a symlinked folder here; on macOS/Windows a folder renamed by case)."""
    source = MemorySource()
    source.add_repo("t/a", {"w.bin": b"w" * 1000})
    first = _manifest(tmp_path, "  - name: vae\n    repo: t/a\n")
    assert download(first, settings=_settings(), source=source).exit_code == 0
    (first.root / "VAE").symlink_to("vae")  # the user aliases the folder
    renamed = _manifest(tmp_path, "  - name: vae\n    repo: t/a\n    folder: VAE\n")
    result = download(renamed, settings=_settings(), source=source, prune=True)
    assert result.exit_code == 0 and result.plan.to_fetch == 0  # the target was kept as good
    assert (renamed.root / "VAE" / "w.bin").exists(), (
        f"prune removed {result.pruned and result.pruned.removed}: the file the manifest selects"
    )


def test_verify_prune_respects_the_root_lock(tmp_path: Path) -> None:
    """verify --prune (verifier.verify -> prune_with) deletes files while another process holds
    the root lock (a download in flight may be placing or claiming those very files)."""
    from filelock import FileLock

    source = MemorySource()
    source.add_repo("t/a", {"keep.bin": b"k" * 100, "old.bin": b"o" * 100})
    both = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    assert download(both, settings=_settings(), source=source).exit_code == 0
    one = _manifest(tmp_path, "  - name: a\n    repo: t/a\n    include: [keep.bin]\n")
    lock = FileLock(str(one.root / ".wanmodels" / "lock"))
    lock.acquire(timeout=0)
    try:
        with pytest.raises(LocalIOError):
            verify(one, settings=_settings(wait_for_lock=False), source=source, prune=True)
    finally:
        lock.release()
    assert (one.root / "a" / "old.bin").exists(), "pruned while another process held the root"


# -- files that never finish / leaks -------------------------------------------------------------


def test_two_empty_files_in_one_repo_are_both_placed(tmp_path: Path) -> None:
    """Plan.reused() filters on `to_reuse`, which is 0 for a zero-byte file: the second empty
    file (a twin of the first) is never placed and fails as 'a worker stopped unexpectedly'."""
    source = MemorySource()
    source.add_repo("t/a", {"__init__.py": b"", "sub/__init__.py": b"", "w.bin": b"w" * 100})
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    result = download(manifest, settings=_settings(workers=2), source=source)
    assert [f.error for f in result.failed] == []
    assert (manifest.root / "a" / "sub" / "__init__.py").read_bytes() == b""


class _Crashing(MemorySource):
    """A byte source whose stream raises something other than a WanmodelsError for one file."""

    def _chunks(self, request: object, body: bytes) -> Iterator[bytes]:
        if getattr(request, "path", "") == "bad.bin":
            raise ConnectionResetError("peer reset")
        yield from super()._chunks(request, body)  # type: ignore[arg-type]


def test_an_unexpected_error_in_a_worker_fails_the_file_and_never_hangs(tmp_path: Path) -> None:
    """pool.Pool._worker let any non-WanmodelsError kill the thread with its range still
    active: with two or more workers every other worker then waits in Scheduler.next forever."""
    source = _Crashing()
    source.add_repo("t/a", {"bad.bin": b"b" * 5000, "good.bin": b"g" * 3000})
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    cancel = threading.Event()
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = download(manifest, settings=_settings(workers=2), source=source, cancel=cancel)
        except BaseException as err:  # handed to the test thread
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    hung = thread.is_alive()
    cancel.set()  # unblock the hung pool so it does not outlive the test
    thread.join(10)
    assert not hung, "download hung after a worker died"
    result = out["result"]
    assert [f.local_path for f in result.failed] == ["a/bad.bin"]  # type: ignore[attr-defined]
    assert (manifest.root / "a" / "good.bin").exists()


def test_a_cancelled_download_leaves_no_thread_or_descriptor_behind(tmp_path: Path) -> None:
    """Pool.run raised Interrupted without closing the transfers in flight: every cancelled run
    leaks a hasher thread per file (polling forever) and its two part/journal descriptors."""
    import os
    import time

    source = MemorySource(chunk=4096, delay=0.01)
    source.add_repo("t/a", {f"f{i}.bin": bytes([i]) * 400_000 for i in range(4)})
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    fds_before = len(os.listdir("/proc/self/fd"))
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    with pytest.raises(Interrupted):
        download(manifest, settings=_settings(workers=4), source=source, cancel=cancel)

    # Closed by the main thread, or by the last worker out when one outlived the grace (load).
    def leaked() -> list[str]:
        hashers = [t.name for t in threading.enumerate() if t.name == "wanmodels-hash"]
        fds = len(os.listdir("/proc/self/fd")) - fds_before
        return hashers + ([f"{fds} descriptors"] if fds > 0 else [])

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and leaked():
        time.sleep(0.05)
    assert leaked() == []


def test_download_prune_lists_through_the_given_source(tmp_path: Path) -> None:
    """downloader.download calls prune_with without `source`, so entries not in the lockfile are
    listed on the Hub of `settings`, not on the byte source the caller passed; a failure there
    turns a successful download into an exception."""
    source = MemorySource()
    source.add_repo("t/a", {"a.bin": b"a" * 100})
    source.add_repo("t/b", {"b.bin": b"b" * 100})
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n  - name: b\n    repo: t/b\n")
    nowhere = _settings(workers=2, retries=0, endpoint="http://127.0.0.1:9")
    result = download(manifest, ("a",), settings=nowhere, source=source, prune=True)
    assert result.exit_code == 0 and result.pruned is not None


# -- bad input must not raise a traceback --------------------------------------------------------


def test_a_state_file_with_a_bad_digest_is_not_trusted(tmp_path: Path) -> None:
    """Stamp.from_dict keeps any digest string; status (unlocked) and prune call Digest.parse on
    it and raise ValueError: a traceback from `wanmodels status` / `--prune`."""
    work = tmp_path / "models" / ".wanmodels"
    work.mkdir(parents=True)
    stamp = {"size": 5, "mtime_ns": 1, "inode": 1, "digest": "bad", "placed": True, "owners": ["m.yaml"]}
    (work / "state.json").write_text(json.dumps({"version": 2, "files": {"a/x.bin": stamp}}))
    (tmp_path / "models" / "a").mkdir()
    (tmp_path / "models" / "a" / "x.bin").write_bytes(b"hello")
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    status(manifest)  # ValueError: not a digest: 'bad'


def test_a_path_that_cannot_be_encoded_is_a_manifest_error(tmp_path: Path) -> None:
    """check_relative accepts lone surrogates (a JSON workflow's "\\ud800", a YAML "\\ud800");
    `download` then dies with UnicodeEncodeError in partial.part_key / os calls."""
    with pytest.raises(ManifestError):
        _manifest(tmp_path, '  - name: a\n    repo: t/a\n    folder: "x/\\ud800"\n')


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_timeout_is_a_usage_error(cli: Cli, workdir: Path, value: str) -> None:
    """typer's min=0.1 lets NaN and inf through; httpcore then raises ValueError/OverflowError."""
    write_manifest(
        workdir / "wanmodels.yaml",
        f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n",
    )
    run = cli("download", "--dry-run", "--timeout", value)
    assert "Traceback" not in run.stderr, run.stderr[-400:]
    assert run.returncode == 2


def test_a_fractional_hf_hub_download_timeout_is_not_a_traceback(cli: Cli, workdir: Path) -> None:
    """wanmodels accepts HF_HUB_DOWNLOAD_TIMEOUT=2.5, but huggingface_hub parses it as an int when
    it is imported: ValueError traceback."""
    write_manifest(
        workdir / "wanmodels.yaml",
        f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n",
    )
    run = cli("download", "--dry-run", HF_HUB_DOWNLOAD_TIMEOUT="2.5")
    assert "Traceback" not in run.stderr, run.stderr[-400:]


def test_workers_from_the_environment_are_bounded_like_the_flag(cli: Cli, workdir: Path) -> None:
    """--workers is 1..64; WANMODELS_WORKERS=inf is an OverflowError traceback (and 1e9 passes)."""
    write_manifest(
        workdir / "wanmodels.yaml",
        f"version: 1\nroot: ./models\nmodels:\n  - name: vae\n    repo: {VAE_REPO_ID}\n",
    )
    run = cli("download", "--dry-run", WANMODELS_WORKERS="inf")
    assert "Traceback" not in run.stderr, run.stderr[-400:]
    assert run.returncode == 2


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    """`download --dry-run --prune` saves state.json (pruner.prune_with always saves), without
    the root lock that every other writer of state.json holds."""
    source = MemorySource()
    source.add_repo("t/a", {"a.bin": b"a" * 100})
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    assert download(manifest, settings=_settings(), source=source).exit_code == 0
    state = manifest.root / ".wanmodels" / "state.json"
    before = state.read_bytes()
    target = manifest.root / "a" / "a.bin"
    target.touch()  # a changed mtime: the plan re-hashes the file and records a new stamp
    download(manifest, settings=_settings(), source=source, dry_run=True, prune=True)
    assert state.read_bytes() == before


def test_ctrl_c_while_reused_files_are_copied_stops_the_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reuser.provide runs placements on a thread pool whose `cancel` nobody sets on Ctrl-C: the
    main thread's KeyboardInterrupt waits until every copy already started has finished (a
    30 GiB copy across filesystems), and those files are placed after the interrupt."""
    import _thread
    import time

    from wanmodels.store.place import Placer

    source = MemorySource()
    files = {f"w{i}.bin": bytes([i]) * 1000 for i in range(4)}
    source.add_repo("t/a", files)
    other = tmp_path / "other"
    other.mkdir()
    for name, data in files.items():
        (other / name).write_bytes(data)
    real = Placer.place_reused

    def long_copy(*args: object, **kwargs: object) -> object:  # checks `cancel` per chunk, as a copy does
        cancel = kwargs["cancel"]
        for _ in range(300):
            if cancel.is_set():  # type: ignore[attr-defined]
                raise Interrupted("cancelled")
            time.sleep(0.01)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Placer, "place_reused", long_copy)
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises((KeyboardInterrupt, Interrupted)):
        download(manifest, settings=_settings(workers=2, reuse_from=(other,)), source=source)
    timer.join()
    placed = sorted(p.name for p in (manifest.root / "a").glob("*.bin"))
    assert placed == [], f"placed after Ctrl-C: {placed}"


@pytest.mark.parametrize("verified_between", [False, True])
def test_prune_keeps_a_copy_put_back_in_place_of_a_placed_file(
    tmp_path: Path, verified_between: bool
) -> None:
    """docs/cli.md: a copy put back in place of a placed file is another file (another inode)
    and stays, even with the same bytes, and even after a verify re-hashed it (that used to pass
    'placed' on to the new inode); only a mere touch of the placed file is forgiven
    (cli/test_prune.py::test_download_prune_after_success_only)."""
    source = MemorySource()
    source.add_repo("t/a", {"keep.bin": b"k" * 100, "old.bin": b"o" * 100})
    both = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    assert download(both, settings=_settings(), source=source).exit_code == 0
    old = both.root / "a" / "old.bin"
    copy = both.root / "a" / "copy.tmp"
    shutil.copy2(old, copy)  # created while the placed file still exists: surely another inode
    copy.replace(old)  # the user's own copy put in its place: the same bytes, another file
    if verified_between:
        assert verify(both, settings=_settings(), source=source).ok  # re-hashes the copy
    one = _manifest(tmp_path, "  - name: a\n    repo: t/a\n    include: [keep.bin]\n")
    result = download(one, settings=_settings(), source=source, prune=True)
    assert result.pruned is not None and result.pruned.removed == ()
    assert old.exists()


# -- found by a second review (each failed before its fix) -----------------------------------------


def test_a_failed_state_save_is_retried_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """StateCache.save used to clear its dirty flag before writing, so after a failed write (disk
    full) the next save was a no-op and the placed file was never recorded. The changes of a
    failed save must be replayed by the next one."""
    import wanmodels.store.state as state

    real = state.atomic_write
    calls = {"n": 0}

    def flaky(path: Path, data: bytes, **kw: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        real(path, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "atomic_write", flaky)
    root = tmp_path / "models"
    (root / "a").mkdir(parents=True)
    (root / "a" / "w.bin").write_bytes(b"w" * 1000)
    cache = state.StateCache(root)
    stamp = state.Stamp.of((root / "a" / "w.bin").stat(), Digest("sha256", "0" * 64))
    cache.record_placed("a/w.bin", stamp, "m.yaml")
    with pytest.raises(LocalIOError):
        cache.save()
    cache.save()
    assert calls["n"] == 2
    recorded = json.loads((root / ".wanmodels" / "state.json").read_text())["files"]
    assert recorded["a/w.bin"]["placed"] is True, recorded


def test_a_failed_listing_leaves_the_callers_cancel_event_alone(tmp_path: Path) -> None:
    """map_threads sets the `cancel` it is given when a job fails; download passes the caller's
    own event (resolve, reuse), so one failed listing leaves it set and the caller's next
    download with the same event is 'interrupted' at once."""
    from wanmodels.errors import HubError

    class OneMissing(MemorySource):
        def list_repo(self, repo_id: str, revision: str, *, entry: str):  # type: ignore[no-untyped-def]
            if repo_id == "t/gone":
                raise HubError("repository 't/gone' not found", status=404)
            return super().list_repo(repo_id, revision, entry=entry)

    source = OneMissing()
    source.add_repo("t/a", {"w.bin": b"w" * 1000})
    bad = _manifest(tmp_path, "  - name: a\n    repo: t/a\n  - name: b\n    repo: t/gone\n")
    cancel = threading.Event()
    with pytest.raises(HubError):
        download(bad, settings=_settings(), source=source, cancel=cancel)
    assert not cancel.is_set(), "the caller's cancel event was set by a failed listing"


def test_no_file_is_placed_after_an_interrupted_download_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pool.run gives workers 0.1 s after cancel, then raises Interrupted; download() then
    releases the root lock. A worker already past the digest check (fsync of a big file takes
    longer than 0.1 s) still renames its file into the root afterwards: outside the root lock,
    after the state file was saved (never recorded as placed), and after 'interrupted'."""
    import time

    from wanmodels.store.place import Placer

    cancel = threading.Event()
    real = Placer.place_part

    def slow_place(self: Placer, item: object, part: Path, cancel_: threading.Event):  # type: ignore[no-untyped-def]
        cancel.set()  # Ctrl-C arrives while the file is being flushed/placed
        time.sleep(0.5)
        return real(self, item, part, cancel_)  # type: ignore[arg-type]

    monkeypatch.setattr(Placer, "place_part", slow_place)
    source = MemorySource()
    source.add_repo("t/a", {"w.bin": b"w" * 1000})
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    with pytest.raises(Interrupted):
        download(manifest, settings=_settings(workers=1), source=source, cancel=cancel)
    returned = (manifest.root / "a" / "w.bin").exists()
    time.sleep(1.0)
    assert (manifest.root / "a" / "w.bin").exists() == returned, (
        "a file was placed after download() raised Interrupted and released the root lock"
    )


def test_a_range_cut_to_nothing_is_not_requested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stream_range checks `rng.pos < limit` and only then _stream_once calls scheduler.request;
    a fail() (or single_stream()) from another connection in between sets end = pos, so the
    request asks for [pos, pos): `Range: bytes=pos-(pos-1)`, which RFC 9110 says a server must
    ignore -> 200 with the whole file -> single_stream() resets the (kept!) part and the failed
    file is streamed again from byte 0."""
    from contextlib import contextmanager

    from wanmodels.errors import HubError
    from wanmodels.store.partial import list_parts
    from wanmodels.transfer.scheduler import Scheduler

    class Rfc(MemorySource):
        @contextmanager
        def open_range(self, repo_id, commit, path, *, start=0, end=None):  # type: ignore[no-untyped-def]
            if end is not None and end <= start:  # an unsatisfiable byte-range-spec is ignored
                empty.append((start, end))
                start, end = 0, None
                self.add_fault(MemFault(path, "ignore_range"))
            with super().open_range(repo_id, commit, path, start=start, end=end) as stream:
                yield stream

    real = Scheduler.request
    calls = {"n": 0}
    empty: list[tuple[int, int]] = []

    def request(self: Scheduler, rng):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # another connection gives up on the file in the window
            self.fail(rng.job, HubError("another range of it failed for good"))
        return real(self, rng)

    monkeypatch.setattr(Scheduler, "request", request)
    data = bytes(range(256)) * 4096  # 1 MiB
    source = Rfc(chunk=4096)
    source.add_repo("t/a", {"w.bin": data})
    source.add_fault(MemFault("w.bin", "cut", after=300_000))  # the first request ends early
    manifest = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    result = download(manifest, settings=_settings(workers=1), source=source)
    assert result.exit_code != 0
    kept = [p.done_bytes for p in list_parts(manifest.root / ".wanmodels" / "partial")]
    assert not empty, f"asked for empty ranges {empty}; {source.sent('w.bin')} bytes sent, part holds {kept}"
    assert kept == [300_000], (
        f"part of the failed file holds {kept}, and {source.sent('w.bin')} bytes were sent"
    )


def test_prune_removes_a_stale_twin(tmp_path: Path) -> None:
    """A twin (the same bytes selected twice) hard-linked to its first copy. Once its entry
    is dropped, prune's new `kept` check sees the first copy's inode and keeps the twin forever,
    while verify keeps reporting it as stale with "`verify --prune` deletes it"."""
    source = MemorySource()
    source.add_repo("t/a", {"w.bin": b"w" * 1000})
    two = _manifest(tmp_path, "  - name: a\n    repo: t/a\n  - name: b\n    repo: t/a\n")
    hardlink = _settings(link_mode=LinkMode.HARDLINK)
    assert download(two, settings=hardlink, source=source).exit_code == 0
    assert (two.root / "b" / "w.bin").stat().st_ino == (two.root / "a" / "w.bin").stat().st_ino
    one = _manifest(tmp_path, "  - name: a\n    repo: t/a\n")
    result = download(one, settings=_settings(), source=source, prune=True)
    assert result.pruned is not None and result.pruned.removed == ("b/w.bin",), result.pruned


def test_settings_refuse_zero_workers() -> None:
    """A library caller's `Settings(workers=0)` started no connection and failed every file as
    'a worker stopped unexpectedly'; it is a usage error, as `--workers 0` is."""
    from wanmodels.errors import UsageError

    with pytest.raises(UsageError, match="workers"):
        Settings(workers=0)
