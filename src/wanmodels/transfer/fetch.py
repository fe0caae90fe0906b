"""Move bytes: stream one range of a file into its part with retries, and place a finished file.

A file may arrive over several connections at once (see `wanmodels.transfer.scheduler`); every
range lands at its own offset of one part file (`wanmodels.store.partial`), whose journal lets
a later run fetch only what is missing. A `PrefixHasher` hashes the contiguous prefix as
it grows, from the page cache, so the digest is ready moments after the last byte instead
of after a second read of the whole file. The target is replaced only by an fsynced part
whose size and digest match; a mismatch starts the file once more from zero, then fails.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from wanmodels.config import Settings
from wanmodels.digests import READ_SIZE, Digest, Hasher
from wanmodels.errors import HubError, IntegrityError, Interrupted, LocalIOError, TransientHubError
from wanmodels.planning.plan import PlannedFile
from wanmodels.progress import ProgressSink
from wanmodels.sources.base import ByteSource
from wanmodels.sources.retry import RateFloor, Retrier, is_real_progress
from wanmodels.store.partial import PartFile
from wanmodels.store.place import Placement, Placer
from wanmodels.transfer.ratelimit import RateLimiter
from wanmodels.transfer.scheduler import FileJob, Range, Scheduler

# Dirty bytes written back between flushes: what the fsync before placing may still wait for
# (64 MiB of a 192 MiB file cost 0.05 s after its last byte; 16 MiB is a step no one notices).
FLUSH_STEP: Final = 16 << 20
# Reads are written in batches of up to BATCH_BYTES while more has already arrived: a TLS record
# carries at most 16 KiB, and every write costs two syscalls (the bytes, the journal line) and a
# few locks. Whatever is held is written once the socket holds nothing more, so a slow stream
# keeps nothing back from its part; over TLS the socket may hold only part of the next record,
# and a stall right there keeps up to one batch back until the read fails (then it is written).
BATCH_BYTES: Final = 128 << 10
STOPPED: Final = "interrupted; the partial download is kept"
_log = logging.getLogger(__name__)


class PrefixHasher:
    """Hashes a part's bytes in order as they become contiguous, on a thread of its own."""

    def __init__(self, part: PartFile, algorithm: str) -> None:
        self._part = part
        self._hasher = Hasher(algorithm, part.size)  # type: ignore[arg-type]
        self._hashed = 0
        self._generation = part.generation
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="wanmodels-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        part = self._part
        try:
            while not self._stop.is_set():
                # Woken once a whole read's worth is there (or the file is complete), not per write.
                batch = min(READ_SIZE, part.size - self._hashed) - 1
                prefix, generation = part.wait_prefix(self._hashed + max(0, batch), timeout=0.5)
                if generation != self._generation:
                    with self._done:  # `digest` sees the old generation or the new one, whole
                        self._generation = generation
                        self._hasher.reset()
                        self._hashed = 0
                        self._done.notify_all()
                    continue
                while self._hashed < prefix and not self._stop.is_set():
                    data = part.read(self._hashed, min(READ_SIZE, prefix - self._hashed))
                    if not data:
                        break
                    self._hasher.update(data)
                    self._set_hashed(self._hashed + len(data))
        except OSError as err:
            with self._done:
                self._error = err
                self._done.notify_all()

    def _set_hashed(self, value: int) -> None:
        with self._done:
            self._hashed = value
            self._done.notify_all()

    def digest(self, cancel: threading.Event) -> Digest:
        """The digest of the whole part, once every byte has been hashed.

        Raises:
            Interrupted: `cancel` was set while waiting.
            LocalIOError: the part could not be read back.
        """
        with self._done:
            while self._hashed < self._part.size or self._generation != self._part.generation:
                if self._error is not None:
                    msg = f"cannot read back '{self._part.local_path}': {self._error.strerror}"
                    raise LocalIOError(msg)
                if cancel.is_set():
                    raise Interrupted(STOPPED)
                self._done.wait(0.2)
            return self._hasher.digest()

    def close(self) -> None:
        self._stop.set()
        self._part.poke()
        self._thread.join()


@dataclass(eq=False)
class Transfer:
    """One file in flight: its part, its hasher and what it has cost so far."""

    job: FileJob
    part: PartFile
    hasher: PrefixHasher
    bytes_fetched: int = 0
    requests: int = 0
    rounds: int = 1
    unflushed: int = 0
    flusher: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, folder: Path, job: FileJob) -> Transfer:
        """Open the part of `job`'s file (resuming what it holds) and start hashing it.

        Raises:
            LocalIOError: the part cannot be opened.
        """
        item = job.item
        part = PartFile(folder, item.local_path, item.size, item.digest).open()
        return cls(job, part, PrefixHasher(part, item.digest.algorithm))

    @property
    def item(self) -> PlannedFile:
        return self.job.item

    def wrote(self, nbytes: int) -> None:
        with self.lock:
            self.bytes_fetched += nbytes
            self.unflushed += nbytes
            if self.unflushed < FLUSH_STEP or (self.flusher is not None and self.flusher.is_alive()):
                return
            self.unflushed = 0
            # Flushing as the part grows means the final fsync waits only for the tail.
            self.flusher = threading.Thread(target=self.part.flush_async, name="wanmodels-flush", daemon=True)
            self.flusher.start()

    def close(self) -> None:
        self.hasher.close()
        if self.flusher is not None:
            self.flusher.join()
        self.part.close()


def stream_range(
    source: ByteSource,
    scheduler: Scheduler,
    rng: Range,
    transfer: Transfer,
    *,
    settings: Settings,
    limiter: RateLimiter,
    sink: ProgressSink,
    cancel: threading.Event,
) -> None:
    """Stream `rng` into its part until it ends (its end may move closer meanwhile).

    Transient failures are retried from where the bytes stopped, with capped back-off; a stream
    that trickles (`RateFloor`) is dropped and retried the same way. The budget of retries
    resets only on real progress (`is_real_progress`), so no trickle refills it forever.

    Raises:
        HubError: the server refused, or failed past the retry budget (part kept).
        LocalIOError: disk full or not writable (part kept).
        Interrupted: `cancel` was set (part kept).
    """
    item = transfer.item
    retrier = Retrier(
        settings, notify=sink.message, cancel=cancel, interrupted=STOPPED, prefix=f"'{item.local_path}': "
    )
    since, left = rng.pos, scheduler.limit(rng) - rng.pos  # at the last failure
    while rng.pos < scheduler.limit(rng):
        if cancel.is_set():
            raise Interrupted(STOPPED)
        floor = RateFloor(settings)
        try:
            _stream_once(
                source, scheduler, rng, transfer, limiter=limiter, sink=sink, cancel=cancel, floor=floor
            )
        except TransientHubError as err:
            scheduler.flowing(rng, False, status=err.status)
            real = is_real_progress(rng.pos - since, left)
            since, left = rng.pos, scheduler.limit(rng) - rng.pos
            err.repo_id, err.revision = item.repo_id, item.commit  # the final error names the file's pin
            retrier.failed(err, progressed=real)


def _stream_once(
    source: ByteSource,
    scheduler: Scheduler,
    rng: Range,
    transfer: Transfer,
    *,
    limiter: RateLimiter,
    sink: ProgressSink,
    cancel: threading.Event,
    floor: RateFloor,
) -> None:
    item = transfer.item
    stop = scheduler.request(rng)
    if stop <= rng.pos:
        return  # cut to nothing meanwhile (the file failed elsewhere): an empty Range is invalid
    asked = None if stop >= item.size else stop  # to the file's end: a plain GET when from 0
    with transfer.lock:
        transfer.requests += 1
    with source.open_range(item.repo_id, item.commit, item.repo_path, start=rng.pos, end=asked) as stream:
        if stream.offset != rng.pos and not stream.whole:
            msg = f"the server sent '{item.repo_path}' from byte {stream.offset}, not {rng.pos}"
            raise HubError(msg, repo_id=item.repo_id, revision=item.commit)
        if stream.whole:
            # The server ignores Range: this file continues as one stream from byte 0.
            sink.advance(item, -transfer.part.done_bytes)
            scheduler.single_stream(rng.job, rng)
            transfer.part.reset()
            asked = None
        stop = item.size if asked is None else asked
        expected = stop - stream.offset
        if stream.length is not None and stream.length != expected:
            msg = (
                f"the server offers {stream.length} bytes of '{item.repo_path}' from byte "
                f"{stream.offset}, but {expected} were asked for"
            )
            raise HubError(msg, repo_id=item.repo_id, revision=item.commit)

        def land(data: bytes | bytearray | memoryview) -> None:
            """Write `data`, the range's next bytes, as far as the range still reaches."""
            wanted = min(len(data), scheduler.limit(rng) - rng.pos)
            if wanted <= 0:
                return
            transfer.part.write(rng.pos, data if wanted == len(data) else memoryview(data)[:wanted])
            scheduler.advance(rng, wanted)
            transfer.wrote(wanted)
            sink.advance(item, wanted)
            limiter.take(wanted, cancel)

        at = stream.offset
        batch = bytearray()
        chunks = iter(stream.chunks)
        try:
            while True:
                asked_at = time.monotonic()
                chunk = next(chunks, None)
                if chunk is None:
                    break
                slow = floor.read(time.monotonic() - asked_at, len(chunk))
                if cancel.is_set():
                    raise Interrupted(STOPPED)
                if at + len(chunk) > item.size:
                    msg = f"the server sent more than the {item.size} bytes of '{item.repo_path}'"
                    raise HubError(msg, repo_id=item.repo_id, revision=item.commit)
                at += len(chunk)
                scheduler.flowing(rng)  # at once, batch or not: idle connections may now help
                if slow is None and len(batch) + len(chunk) < BATCH_BYTES and at < stop and stream.waiting():
                    batch += chunk  # more is here already: write them together
                    continue
                if batch:
                    batch += chunk
                    full, batch = batch, bytearray()  # emptied first: a failed write is not redone
                    land(full)
                else:
                    land(chunk)
                if at >= min(stop, scheduler.limit(rng)):
                    return  # this request is done, or another connection took over the range's tail
                if slow is not None:  # what arrived is kept; the retry asks for the rest
                    sender = stream.source or "the server"
                    msg = f"{sender} sent '{item.repo_path}' at {floor.why(slow)}"
                    raise TransientHubError(msg, repo_id=item.repo_id, revision=item.commit)
        finally:
            # What came before a failure is kept (the retry starts after it, and it counts against
            # --max-rate); after Ctrl-C nothing more is written, as the pool expects.
            if batch and not cancel.is_set():
                land(batch)
    if rng.pos < scheduler.limit(rng):
        msg = f"the connection ended after {rng.pos} of {item.size} bytes of '{item.repo_path}'"
        raise TransientHubError(msg, repo_id=item.repo_id, revision=item.commit)


def finish(
    placer: Placer,
    transfer: Transfer,
    scheduler: Scheduler,
    *,
    sink: ProgressSink,
    cancel: threading.Event,
    rejected: Callable[[PlannedFile], str | None] | None = None,
) -> Placement | None:
    """Check a complete part's digest and put it in place; None when it is being fetched again.

    On a mismatch `rejected` (the source's) names where the bad bytes came from, if it can.

    Raises:
        IntegrityError: the bytes did not match twice (the part is deleted).
        ConflictError: a file wanmodels did not place took the target meanwhile (part kept).
        LocalIOError: it cannot be flushed or placed.
        Interrupted: `cancel` was set while the last bytes were hashed.
    """
    item = transfer.item
    actual = transfer.hasher.digest(cancel)
    if actual == item.digest and transfer.part.disk_size() == item.size:
        transfer.part.sync()
        # The journal goes first: a kill before the rename then leaves a complete part that
        # reads as a whole prefix, never a journal whose bytes have moved away.
        transfer.part.forget_journal()
        placed = placer.place_part(item, transfer.part.path, cancel)
        # Placed: a failure to tidy up now is a leftover for a later run, never this file's failure.
        transfer.close()
        _delete_leftover(transfer)
        return placed
    named = rejected(item) if rejected is not None else None
    origin = named or f"'{item.repo_id}'"
    if transfer.rounds >= 2:
        transfer.close()
        _delete_leftover(transfer)
        msg = (
            f"'{item.local_path}' from {origin} does not match: expected {item.digest} "
            f"got {actual}. Nothing was placed and the partial file was deleted."
        )
        hint = "Re-run the same command; if it repeats, the server or a proxy is sending wrong bytes."
        raise IntegrityError(
            msg, path=item.local_path, expected=str(item.digest), actual=str(actual), hint=hint
        )
    transfer.rounds += 1
    sink.message(
        f"'{item.local_path}'{f' from {named}' if named else ''} failed its {item.digest.algorithm} "
        "check; fetching it again from byte 0"
    )
    sink.advance(item, -item.size)
    transfer.part.reset()
    scheduler.restart(transfer.job)
    return None


def _delete_leftover(transfer: Transfer) -> None:
    """Remove a part that is done with (placed, or wrong); one that stays is said, not raised."""
    try:
        transfer.part.delete()
    except LocalIOError as err:
        _log.warning("%s; delete it by hand, nothing needs it", err)
