"""The connection workers of one download: one budget of connections over every byte missing.

Workers are daemon threads pulling ranges from one `Scheduler` (largest files first, idle
connections taking over what follows a request in flight), so a small repo never waits behind a
big one and Ctrl-C never waits on a stalled socket. There is one thread per connection the
ceiling allows; those beyond the count the scheduler allows now wait at its gate, idle. The
connection that completes a file hashes the tail and places it; a file that fails fails alone.
"""

from __future__ import annotations

import logging
import threading
import time

from wanmodels.config import Settings
from wanmodels.errors import EXIT_FAILED, Interrupted, LocalIOError, RevisionNotFoundError, WanmodelsError
from wanmodels.layout import partial_folder
from wanmodels.planning.plan import Plan, PlannedFile, Source
from wanmodels.progress import ProgressSink
from wanmodels.results import FileOutcome
from wanmodels.sources.base import ByteSource
from wanmodels.store.partial import Extent
from wanmodels.store.place import Placement, Placer
from wanmodels.transfer.fetch import Transfer, finish, stream_range
from wanmodels.transfer.ratelimit import RateLimiter
from wanmodels.transfer.scheduler import FileJob, Range, Released, Scheduler

_log = logging.getLogger(__name__)


class Pool:
    """The connection workers of one download and the outcome of every file they touch."""

    def __init__(
        self,
        plan: Plan,
        source: ByteSource,
        settings: Settings,
        sink: ProgressSink,
        cancel: threading.Event,
        placer: Placer,
        *,
        relock: str = "wanmodels lock",
    ) -> None:
        self.plan = plan
        self.source = source
        self.settings = settings
        self.sink = sink
        self.cancel = cancel
        self.placer = placer
        self.limiter = RateLimiter(settings.max_rate)
        self.scheduler = Scheduler(
            plan.fetch_order(),
            self._open,
            split=settings.workers > 1,
            connections=settings.workers,
            adapt=settings.adapt,
        )
        self.transfers: dict[FileJob, Transfer] = {}
        self.started: dict[str, float] = {}
        self.outcomes: dict[str, FileOutcome] = {}
        self.relock = relock  # the command that re-pins this manifest, for hints
        self._lock = threading.Lock()
        self._placing = threading.Condition()  # counts workers inside `_finish`
        self._busy = 0
        self._alive = 0  # worker threads still running
        self._parts_closed = False

    def run(self) -> dict[str, FileOutcome]:
        threads = [
            threading.Thread(target=self._worker, name=f"wanmodels-conn-{i}", daemon=True)
            for i in range(self.settings.workers)
        ]
        self._alive = len(threads)
        for t in threads:
            t.start()
        try:
            # Joining in short slices keeps the main thread responsive to Ctrl-C.
            for t in threads:
                while t.is_alive() and not self.cancel.is_set():
                    t.join(0.2)
        except KeyboardInterrupt:
            self.cancel.set()
        if self.cancel.is_set():
            self.scheduler.close()
            # Workers stop at their next chunk. A short grace lets those not blocked in a socket
            # read finish first; one still blocked checks the flag before it writes again, and
            # any byte it did write is the right byte at the right offset.
            deadline = time.monotonic() + 0.1
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            # A file being placed is waited for (no network involved: its fsync and rename), so
            # nothing lands in the root after this run said it was interrupted and let go of it.
            with self._placing:
                self._placing.wait_for(lambda: self._busy == 0)
            for transfer in list(self.transfers.values()):
                transfer.hasher.close()  # reads only: safe to stop under a straggling writer
            self._release_parts()
            try:
                self.placer.cache.save()
            except LocalIOError as err:  # the interrupt is what to report; this is a side note
                _log.warning("%s", err)
            msg = "interrupted; partial downloads are kept. Run the same command again to resume."
            raise Interrupted(msg)
        return self.outcomes

    def _release_parts(self) -> None:
        """Close the parts of an interrupted run, once, when no worker is left to write: a
        descriptor closed under a writer could be reused by the next file opened, and the
        straggler's bytes would land there. The main thread or the last worker out does it."""
        with self._lock:
            if self._alive or self._parts_closed:
                return
            self._parts_closed = True
        for transfer in list(self.transfers.values()):
            transfer.close()

    def _open(self, job: FileJob) -> list[Extent]:
        item = job.item
        self.sink.file_started(item)
        self.started[item.local_path] = time.monotonic()
        try:
            transfer = Transfer.open(partial_folder(self.plan.root), job)
        except WanmodelsError as err:
            self._fail(item, err)
            raise
        self.transfers[job] = transfer
        return transfer.part.missing()

    def _worker(self) -> None:
        try:
            while not self.cancel.is_set():
                rng = self.scheduler.next()
                if rng is None:
                    return
                try:
                    self._serve(rng)
                except Interrupted:
                    return
        finally:
            with self._lock:
                self._alive -= 1
            if self.cancel.is_set():
                self._release_parts()

    def _serve(self, rng: Range) -> None:
        """Fetch one range; the connection that ends a file hashes and places it.

        Any error fails only this file: a worker that died holding a range would leave the
        others waiting for it forever.
        """
        transfer = self.transfers[rng.job]
        try:
            stream_range(
                self.source,
                self.scheduler,
                rng,
                transfer,
                settings=self.settings,
                limiter=self.limiter,
                sink=self.sink,
                cancel=self.cancel,
            )
        except Interrupted:
            raise
        except Exception as err:
            self.scheduler.fail(rng.job, _as_error(err, rng.job.item))
        released = self.scheduler.release(rng)
        if released is Released.FAILED:
            transfer.close()
            self._fail(rng.job.item, rng.job.error, transfer.bytes_fetched)
        elif released is Released.FINISH:
            with self._placing:
                if self.cancel.is_set():  # checked with the count held: `run` waits for the count
                    msg = "interrupted before placing"
                    raise Interrupted(msg)
                self._busy += 1
            try:
                self._finish(rng, transfer)
            finally:
                with self._placing:
                    self._busy -= 1
                    self._placing.notify_all()

    def _finish(self, rng: Range, transfer: Transfer) -> None:
        """Hash the tail, place the file and record it (or fail it)."""
        try:
            placed = finish(
                self.placer,
                transfer,
                self.scheduler,
                sink=self.sink,
                cancel=self.cancel,
                rejected=self._rejected,
            )
        except Interrupted:
            raise
        except Exception as err:
            transfer.close()
            self.scheduler.finished(rng.job)
            self._fail(rng.job.item, _as_error(err, rng.job.item), transfer.bytes_fetched)
            return
        if placed is not None:
            self.scheduler.finished(rng.job)
            self._done(transfer, placed)

    def _rejected(self, item: PlannedFile) -> str | None:
        """Where the bytes that failed `item`'s digest came from, when the source can say (a store)."""
        hook = getattr(self.source, "rejected", None)
        return hook(item.repo_id, item.commit, item.repo_path) if hook is not None else None

    def _done(self, transfer: Transfer, placed: Placement) -> None:
        item = transfer.item
        outcome = FileOutcome.of(
            item,
            ok=True,
            bytes_fetched=transfer.bytes_fetched,
            resumed_from=transfer.part.resumed_bytes,
            seconds=time.monotonic() - self.started.get(item.local_path, time.monotonic()),
            source=Source.NETWORK,
            moved_aside=placed.moved_aside,
        )
        self._report(item, outcome)

    def _fail(self, item: PlannedFile, err: BaseException | None, fetched: int = 0) -> None:
        """Record a failed file, with the bytes that did cross the network for it (a summary
        that said `fetched 0 B` after moving them would hide where the time went)."""
        code = err.exit_code if isinstance(err, WanmodelsError) else EXIT_FAILED
        if isinstance(err, RevisionNotFoundError):
            # The commit came from the lockfile (a fresh listing would have found it): re-pin.
            hint = f"The lockfile pins a commit the Hub no longer has: run `{self.relock}`, then retry."
            err = RevisionNotFoundError(err.message, hint=hint, repo_id=err.repo_id, revision=err.revision)
        outcome = FileOutcome.of(
            item,
            ok=False,
            seconds=time.monotonic() - self.started.get(item.local_path, time.monotonic()),
            error=str(err),
            exit_code=code,
            bytes_fetched=fetched,
            hint=err.hint if isinstance(err, WanmodelsError) else None,
        )
        self._report(item, outcome)

    def _report(self, item: PlannedFile, outcome: FileOutcome) -> None:
        with self._lock:
            if item.local_path in self.outcomes:
                return
            self.outcomes[item.local_path] = outcome
        self.sink.file_finished(item, outcome)


def _as_error(err: Exception, item: PlannedFile) -> WanmodelsError:
    """An expected error as is; anything else (a bug, an odd byte source) named for its file."""
    if isinstance(err, WanmodelsError):
        return err
    return WanmodelsError(f"'{item.local_path}': unexpected {type(err).__name__}: {err}")
