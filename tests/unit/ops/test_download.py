"""The transfer logic (ranges, retries, resume, integrity) driven by an in-memory byte source.

No sockets and no subprocess: each test runs in milliseconds. tests/cli/test_download.py and
tests/e2e/test_reliability.py prove the same behaviours through the real client and the loopback Hub.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.files import count_writes
from tests.support.memsource import MemFault, MemorySource
from wanmodels.config import Settings
from wanmodels.digests import Digest
from wanmodels.errors import EXIT_FAILED, EXIT_HUB, Interrupted
from wanmodels.inputs.manifest import Manifest, parse_manifest
from wanmodels.ops.download import download
from wanmodels.planning.plan import PlannedFile, Source
from wanmodels.progress import NullProgress
from wanmodels.store.partial import PartFile, list_parts, merge
from wanmodels.transfer.fetch import BATCH_BYTES
from wanmodels.transfer.ratelimit import RateLimiter
from wanmodels.transfer.scheduler import CpuShare

REPO = "test/mem"
MIB = 1 << 20


def blob(size: int, seed: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d-%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


FILES = {"big.bin": blob(6 * MIB, 1), "mid.bin": blob(300_000, 2), "a.json": b"{}", "b.txt": b"hello"}


def manifest_for(tmp_path: Path) -> Manifest:
    text = f"version: 1\nroot: ./models\nmodels:\n  - name: mem\n    repo: {REPO}\n"
    return parse_manifest(text, source="mem.yaml", base_dir=tmp_path, lock_path=tmp_path / "mem.lock")


def settings(workers: int = 4) -> Settings:
    return Settings(workers=workers, retry_wait=0.01)


@pytest.fixture
def source() -> MemorySource:
    mem = MemorySource()
    mem.add_repo(REPO, FILES)
    return mem


def on_disk(manifest: Manifest) -> dict[str, bytes]:
    return {name: (manifest.root / "mem" / name).read_bytes() for name in FILES}


def test_every_file_arrives_whole_over_several_connections(tmp_path: Path) -> None:
    source = MemorySource(delay=0.002)  # a slow link: idle connections take over halves of ranges
    source.add_repo(REPO, FILES)
    manifest = manifest_for(tmp_path)
    result = download(manifest, settings=settings(workers=6), source=source)
    assert result.exit_code == 0, result.failed
    assert on_disk(manifest) == FILES
    big = [r for r in source.requests if r.path == "big.bin"]
    assert len(big) > 1, "no connection took over part of the big file"
    # A connection whose range was shortened stops at its next chunk: little is read twice.
    assert source.sent("big.bin") <= len(FILES["big.bin"]) + 6 * source.chunk
    assert all(o.source is Source.NETWORK for o in result.unique_files)
    assert not list(list_parts(manifest.root / ".wanmodels" / "partial"))


def test_one_worker_is_one_plain_stream_per_file(tmp_path: Path, source: MemorySource) -> None:
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(workers=1), source=source).exit_code == 0
    assert sorted((r.path, r.start, r.end) for r in source.requests) == sorted(
        (name, 0, None) for name in FILES
    )


def test_transient_failures_are_retried(tmp_path: Path, source: MemorySource) -> None:
    source.add_fault(MemFault("mid.bin", "transient", times=3))
    manifest = manifest_for(tmp_path)
    result = download(manifest, settings=settings(workers=1), source=source)
    assert result.exit_code == 0
    assert [r.fault for r in source.requests if r.path == "mid.bin"] == ["transient"] * 3 + [None]


def test_a_file_past_its_retry_budget_fails_alone(tmp_path: Path, source: MemorySource) -> None:
    source.add_fault(MemFault("mid.bin", "transient", times=1000))
    manifest = manifest_for(tmp_path)
    result = download(manifest, settings=settings(), source=source)
    assert result.exit_code == EXIT_HUB
    assert [f.local_path for f in result.failed] == ["mem/mid.bin"]
    assert "gave up after 5 retries" in (result.failed[0].error or "")
    assert len([r for r in source.requests if r.path == "mid.bin"]) == 6  # nobody else piles on
    assert (manifest.root / "mem" / "big.bin").read_bytes() == FILES["big.bin"]


def test_a_cut_resumes_from_the_exact_byte(tmp_path: Path, source: MemorySource) -> None:
    source.add_fault(MemFault("mid.bin", "cut", after=100_000))
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(workers=1), source=source).exit_code == 0
    mid = [r for r in source.requests if r.path == "mid.bin"]
    assert [(r.start, r.sent) for r in mid] == [(0, 100_000), (100_000, 200_000)]
    assert (manifest.root / "mem" / "mid.bin").read_bytes() == FILES["mid.bin"]


def test_small_reads_are_written_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = MemorySource(chunk=16 << 10)  # as a TLS record arrives: at most 16 KiB per read
    source.add_repo(REPO, {"big.bin": FILES["big.bin"]})
    writes = count_writes(monkeypatch)
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(workers=1), source=source).exit_code == 0
    assert (manifest.root / "mem" / "big.bin").read_bytes() == FILES["big.bin"]
    reads = len(FILES["big.bin"]) // source.chunk
    assert sum(writes) == len(FILES["big.bin"])
    assert len(writes) <= reads // (BATCH_BYTES // source.chunk) + 1  # a batch every 8 reads
    assert max(writes) <= BATCH_BYTES


def test_on_a_slow_link_reads_are_written_as_they_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each read waits for its bytes: nothing is held back from the part (a kill would lose none).
    source = MemorySource(chunk=16 << 10, delay=0.001)
    source.add_repo(REPO, {"mid.bin": FILES["mid.bin"]})
    writes = count_writes(monkeypatch)
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(workers=1), source=source).exit_code == 0
    assert max(writes) <= source.chunk
    assert sum(writes) == len(FILES["mid.bin"])


def test_bytes_held_when_a_connection_is_cut_are_written_and_the_retry_starts_after_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cut socket reads as ready (its end of file is there), so the reads before the cut are
    # held in a batch when the stream fails: they must reach the part, and the retry follow them.
    source = MemorySource(chunk=16 << 10)
    source.add_repo(REPO, {"mid.bin": FILES["mid.bin"]})
    source.add_fault(MemFault("mid.bin", "cut", after=100_000))
    writes = count_writes(monkeypatch)
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(workers=1), source=source).exit_code == 0
    assert [(r.start, r.sent) for r in source.requests] == [(0, 100_000), (100_000, 200_000)]
    assert writes[0] == 100_000  # held, then written once the stream failed
    assert sum(writes) == len(FILES["mid.bin"])
    assert (manifest.root / "mem" / "mid.bin").read_bytes() == FILES["mid.bin"]


def test_bytes_held_when_a_connection_is_cut_still_count_against_max_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every byte written must be booked on the rate limiter, or a link that keeps cutting
    # connections (each ending with a held batch, written unpaced) runs past --max-rate.
    source = MemorySource(chunk=16 << 10)
    source.add_repo(REPO, {"mid.bin": FILES["mid.bin"]})
    source.add_fault(MemFault("mid.bin", "cut", after=100_000, times=2))
    booked: list[int] = []
    take = RateLimiter.take

    def counted(self: RateLimiter, nbytes: int, cancel: threading.Event | None = None) -> None:
        booked.append(nbytes)
        take(self, nbytes, cancel)

    monkeypatch.setattr(RateLimiter, "take", counted)
    writes = count_writes(monkeypatch)
    manifest = manifest_for(tmp_path)
    limited = Settings(workers=1, retry_wait=0.01, max_rate=1 << 30)  # high: no test time spent
    assert download(manifest, settings=limited, source=source).exit_code == 0
    assert sum(writes) == len(FILES["mid.bin"])
    assert sum(booked) == sum(writes), "bytes written without being paced"


def test_wrong_bytes_are_fetched_once_more_then_never_placed(tmp_path: Path, source: MemorySource) -> None:
    source.add_fault(MemFault("mid.bin", "corrupt", times=2))
    manifest = manifest_for(tmp_path)
    result = download(manifest, settings=settings(), source=source)
    assert result.exit_code == EXIT_FAILED
    (failed,) = result.failed
    assert failed.local_path == "mem/mid.bin" and "does not match" in (failed.error or "")
    assert not (manifest.root / "mem" / "mid.bin").exists()
    assert not list((manifest.root / ".wanmodels" / "partial").glob("*"))  # wrong bytes are not kept


def test_wrong_bytes_once_then_right_ones_are_placed(tmp_path: Path, source: MemorySource) -> None:
    source.add_fault(MemFault("mid.bin", "corrupt", times=1))
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(), source=source).exit_code == 0
    assert (manifest.root / "mem" / "mid.bin").read_bytes() == FILES["mid.bin"]


def test_a_refetched_file_costs_about_as_many_requests_as_the_first_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a link that caps each connection (the client idles): helpers join, spans shrink with
    # what is left. A file fetched twice (wrong bytes the first time) costs about the same twice.
    monkeypatch.setattr(CpuShare, "busy", property(lambda self: False))
    monkeypatch.setattr(CpuShare, "saturated", property(lambda self: False))
    size = 32 * MIB
    big = blob(size, 11)
    source = MemorySource(delay=0.001)
    source.add_repo(REPO, {"big.bin": big})
    source.add_fault(MemFault("big.bin", "corrupt", times=1))
    manifest = manifest_for(tmp_path)
    result = download(manifest, settings=settings(workers=4), source=source)
    assert result.exit_code == 0
    assert (manifest.root / "mem" / "big.bin").read_bytes() == big
    second = next(i for i, r in enumerate(source.requests) if i and r.start == 0)  # the refetch
    first_round, second_round = source.requests[:second], source.requests[second:]
    assert len(second_round) <= 2 * len(first_round) + 4, (
        f"{len(first_round)} requests the first time, {len(second_round)} the second "
        f"(spans {sorted({((r.end or size) - r.start) >> 10 for r in second_round})} KiB)"
    )


def test_a_server_ignoring_ranges_makes_the_file_one_stream(tmp_path: Path) -> None:
    source = MemorySource(delay=0.002)
    source.add_repo(REPO, FILES)
    source.add_fault(MemFault("big.bin", "ignore_range", times=1000))
    manifest = manifest_for(tmp_path)
    assert download(manifest, settings=settings(workers=6), source=source).exit_code == 0
    assert (manifest.root / "mem" / "big.bin").read_bytes() == FILES["big.bin"]


class StopAfter(NullProgress):
    """Sets `cancel` once `limit` bytes of one file have been written, like a Ctrl-C mid-transfer."""

    def __init__(self, cancel: threading.Event, limit: int) -> None:
        self.cancel = cancel
        self.limit = limit
        self.seen = 0
        self._lock = threading.Lock()

    def advance(self, item: PlannedFile, nbytes: int) -> None:
        with self._lock:
            self.seen += nbytes
            if self.seen >= self.limit:
                self.cancel.set()


def test_an_interrupted_multi_range_file_resumes_only_what_is_missing(tmp_path: Path) -> None:
    # ~12 MiB/s per connection: slow enough that helpers join (once the first CPU sample, just
    # after the first byte, shows the link and not this process sets the rate) before 3 MiB are
    # in. 24 MiB in 6 ranges: each request asks for ~2 MiB, so the stop leaves holes between them.
    big = blob(24 * MIB, 7)
    source = MemorySource(delay=0.005)
    source.add_repo(REPO, {"big.bin": big})
    manifest = manifest_for(tmp_path)
    cancel = threading.Event()
    with pytest.raises(Interrupted):
        download(
            manifest,
            settings=settings(workers=6),
            source=source,
            sink=StopAfter(cancel, 3 * MIB),
            cancel=cancel,
        )
    (part,) = list_parts(manifest.root / ".wanmodels" / "partial")
    assert 0 < part.done_bytes < len(big)
    assert len(part.done) > 1  # several ranges were in flight
    first = len(source.requests)
    result = download(manifest, settings=settings(workers=6), source=source)
    assert result.exit_code == 0
    assert (manifest.root / "mem" / "big.bin").read_bytes() == big
    size = len(big)
    asked = merge([(r.start, r.end or size) for r in source.requests[first:]])
    overlap = sum(max(0, min(e, de) - max(s, ds)) for s, e in asked for ds, de in part.done)
    assert overlap == 0, "the second run asked again for bytes the journal held"
    assert result.bytes_fetched == size - part.done_bytes


def test_a_rate_limit_holds_across_connections(tmp_path: Path, source: MemorySource) -> None:
    manifest = manifest_for(tmp_path)
    limited = Settings(workers=4, retry_wait=0.01, max_rate=16 * MIB)
    started = time.monotonic()
    assert download(manifest, settings=limited, source=source).exit_code == 0
    total = sum(len(data) for data in FILES.values())
    # A lower bound only: a busy machine may be slower, never faster than the limit allows.
    assert time.monotonic() - started >= 0.8 * total / (16 * MIB)


def test_a_part_holding_every_byte_is_placed_without_a_request(tmp_path: Path, source: MemorySource) -> None:
    manifest = manifest_for(tmp_path)
    (entry,) = manifest.models
    data = FILES["mid.bin"]
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    part = PartFile(
        manifest.root / ".wanmodels" / "partial", f"{entry.folder}/mid.bin", len(data), digest
    ).open()
    part.write(0, data)  # a run that died after the last byte, before placing
    part.close()
    result = download(manifest, ("mem",), settings=Settings(workers=2, offline=False), source=source)
    assert result.exit_code == 0, result.failed
    assert (manifest.root / "mem" / "mid.bin").read_bytes() == data
    assert not [r for r in source.requests if r.path == "mid.bin"]


def test_placed_files_are_recorded_while_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after placing some files must not forget them (they would be re-hashed, and
    never pruned): the state file records each placement during the run, not only at its end."""
    from wanmodels.ops import download as downloader
    from wanmodels.store.state import StateCache

    release = threading.Event()

    class Held(MemorySource):
        def _chunks(self, request: object, body: bytes) -> Iterator[bytes]:
            if getattr(request, "path", "") == "slow.bin":
                release.wait(60)
            yield from super()._chunks(request, body)  # type: ignore[arg-type]

    source = Held()
    source.add_repo("t/a", {"fast.bin": b"f" * 1000, "slow.bin": b"s" * 1000})
    text = "version: 1\nroot: ./models\nmodels:\n  - name: a\n    repo: t/a\n"
    manifest = parse_manifest(text, source="m.yaml", base_dir=tmp_path, lock_path=tmp_path / "m.lock")
    run = threading.Thread(
        target=downloader.download,
        args=(manifest,),
        kwargs={"settings": Settings(workers=2), "source": source},
    )
    run.start()
    try:
        deadline = time.monotonic() + 30
        recorded: dict[str, object] = {}
        # Placements are journaled (.wanmodels/placed.jsonl) before their rename.
        while time.monotonic() < deadline and "a/fast.bin" not in recorded:
            # What another process (a later run after a kill) would read: state.json and the journal.
            recorded = {p: s for p, s in StateCache(manifest.root).stamps().items() if s.placed}
            time.sleep(0.02)
        assert "a/fast.bin" in recorded, "the placed file was not recorded while the run went on"
        assert run.is_alive()  # ...and it was recorded before the run ended
    finally:
        release.set()
        run.join(30)


def test_a_part_of_an_older_pin_is_deleted_once_the_new_one_is_placed(
    tmp_path: Path, source: MemorySource
) -> None:
    """A part keyed on old content can never be resumed (one can be 30 GB): once the target is
    placed with its new content, the old part goes; other files' parts stay."""
    source.add_fault(MemFault("mid.bin", "fatal"))
    manifest = manifest_for(tmp_path)
    source.add_fault(MemFault("mid.bin", "cut", after=100_000))
    source.faults.reverse()  # the cut first (a part of 100,000 bytes), then the refusal
    assert download(manifest, settings=settings(workers=1), source=source).exit_code != 0
    partial = manifest.root / ".wanmodels" / "partial"
    assert [p.stat().st_size > 0 for p in partial.glob("*.part")] == [True]
    changed = dict(FILES, **{"mid.bin": blob(300_000, 3)})
    source.add_repo(REPO, changed)  # a new commit: mid.bin has new content
    assert download(manifest, settings=settings(workers=1), source=source).exit_code == 0
    assert (manifest.root / "mem" / "mid.bin").read_bytes() == changed["mid.bin"]
    assert not list(partial.glob("*.part")) and not list(partial.glob("*.journal"))
