"""Run a plan: pin the entries, then one budget of connections over every byte still missing.

Workers are daemon threads pulling ranges from one `Scheduler` (largest files first, idle
connections taking over what follows a request in flight), so a small repo never waits behind a
big one and Ctrl-C never waits on a stalled socket. Results are reported in manifest
order whatever order the transfers finished in.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Final

from wanmodels._text import count, human_bytes
from wanmodels.config import Settings
from wanmodels.errors import (
    EXIT_FAILED,
    DiskFullError,
    Interrupted,
    LocalIOError,
    OfflineError,
    RevisionNotFoundError,
    WanmodelsError,
)
from wanmodels.fetch import Transfer, finish, stream_range
from wanmodels.lockfile import Lockfile
from wanmodels.manifest import Manifest
from wanmodels.partial import Extent, drop_superseded
from wanmodels.planner import Action, Plan, PlannedFile, make_plan, with_origins
from wanmodels.progress import NullProgress, ProgressSink
from wanmodels.pruner import prune_with
from wanmodels.ratelimit import RateLimiter
from wanmodels.remote import ByteSource
from wanmodels.resolve import resolve_selections, save_lock
from wanmodels.results import DownloadResult, FileOutcome, ModelResult, Source
from wanmodels.reuse import Finder, Reuser, copy_bytes
from wanmodels.rootlock import root_lock
from wanmodels.scheduler import FileJob, Range, Released, Scheduler
from wanmodels.selection import Selection
from wanmodels.state import Hashing, StateCache, partial_folder

SPACE_MARGIN: Final = 64 << 20
SAVE_EVERY: Final = 2.0  # seconds between writes of the state file while files are placed
_log = logging.getLogger(__name__)


def plan(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    repair: bool = False,
) -> Plan:
    """What `download` would do: every selected file with its action and bytes, nothing fetched.

    Uses the lockfile when it matches (no network), else one listing per repo.

    Raises:
        ManifestError, LockError, SelectionError, HubError: as for `download`.
    """
    settings = settings or Settings()
    selections, _ = resolve_selections(manifest, manifest.select(names), settings, source=source)
    cache = StateCache(manifest.root)
    return _plan(manifest, selections, cache, repair=repair, finder=Finder(manifest.root, settings, cache))


def _plan(
    manifest: Manifest,
    selections: tuple[Selection, ...],
    cache: StateCache,
    *,
    repair: bool,
    finder: Finder,
) -> Plan:
    """Compare the selections with the disk; `repair` re-hashes instead of trusting the cache.
    Unless `settings.reuse` is off, files get their bytes from this machine where it has them."""
    hashing = Hashing.ALWAYS if repair else Hashing.CHANGED
    planned = make_plan(
        manifest.root,
        selections,
        lambda item: cache.inspect(item.local_path, item.remote.size, item.remote.digest, hashing=hashing),
    )
    return with_origins(planned, finder.find) if finder.settings.reuse else planned


def download(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    dry_run: bool = False,
    frozen: bool = False,
    repair: bool = False,
    prune: bool = False,
    sink: ProgressSink | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Make the root hold every selected file of the chosen entries, verified.

    Plans first (one tree listing per repo, or none with a matching lockfile), checks free
    space for the whole plan, then fetches with one budget of connections. Writes the
    lockfile when the manifest has none or when new entries were resolved, and the state
    cache always. With `repair`, every file on disk is re-hashed (not trusted from the
    state cache), so a file damaged in place is re-fetched; good files are kept. With
    `prune`, a successful run then deletes the files wanmodels placed earlier for this
    manifest that it no longer selects (see `wanmodels.prune`).

    Args:
        source: where bytes come from; default: the Hub of `settings`.

    Raises:
        ManifestError, LockError, SelectionError: bad input (before any byte moves).
        HubError: an entry could not be resolved.
        LocalIOError: not enough space, or another process holds the root (`wait_for_lock=False`).
        Interrupted: `cancel` was set; partial downloads are kept.
    Per-file transfer failures do not raise: they are in the result (`status`, `exit_code`).
    """
    settings = settings or Settings()
    sink = sink or NullProgress()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    specs = manifest.select(names)
    with root_lock(manifest.root, settings, sink, enabled=not dry_run):
        selections, lock = resolve_selections(
            manifest, specs, settings, frozen=frozen, source=source, notify=sink.message, cancel=cancel
        )
        cache = StateCache(manifest.root)
        finder = Finder(manifest.root, settings, cache)
        plan = _plan(manifest, selections, cache, repair=repair, finder=finder)
        if dry_run:
            planned = tuple(_unfetched(m.spec.name, m.spec.repo, m.commit, m.files) for m in plan.models)
            pruned = None
            if prune:
                pruned = prune_with(cache, manifest, names, settings=settings, source=source, dry_run=True)
            return DownloadResult(plan, planned, True, time.monotonic() - started, pruned=pruned)
        if plan.to_fetch and settings.offline:
            raise _offline(plan)
        check_space(manifest.root, plan.to_fetch + copy_bytes(plan))
        sink.plan_ready(plan)

        def fetch(todo: Plan) -> dict[str, FileOutcome]:
            nonlocal source
            if settings.offline and todo.to_fetch:  # a reuse candidate turned out damaged
                raise _offline(todo)
            if source is None:
                from wanmodels.hub import Hub

                source = Hub(settings)
            relock = manifest.command("lock")
            return _Pool(todo, source, settings, sink, cancel, cache, manifest.identity, relock=relock).run()

        # Reused files are placed before the network pool starts, this run's twins after it.
        reuser = Reuser(finder, cache, manifest.identity, sink, cancel)
        outcomes = reuser.provide(plan, fetch)
        for item in plan.unique_files:
            if item.action is Action.KEEP:
                cache.claim(item.local_path, manifest.identity)
        cache.save()
        models: list[ModelResult] = []
        for mp in plan.models:
            files = tuple(outcomes.get(f.local_path) or _not_fetched(f) for f in mp.files)
            models.append(ModelResult(mp.spec.name, mp.spec.repo, mp.commit, files))
            sink.model_finished(mp, files)
        # The first successful download pins the stack.
        ok = all(m.ok for m in models)
        if ok:
            _drop_superseded(plan, sink)
        lock_written = _update_lock(manifest, lock, selections) if ok else None
        pruned = None
        if prune and ok:
            pruned = prune_with(cache, manifest, names, settings=settings, source=source)
    return DownloadResult(
        plan, tuple(models), False, time.monotonic() - started, lock_written=lock_written, pruned=pruned
    )


def _drop_superseded(plan: Plan, sink: ProgressSink) -> None:
    """Parts left by an older pin of these targets can never be resumed: delete them."""
    pinned = {f.local_path: f.digest for f in plan.unique_files}
    try:
        freed = drop_superseded(partial_folder(plan.root), pinned)
    except OSError as err:
        _log.warning("cannot delete a superseded partial download: %s", err)
        return
    if freed:
        sink.message(f"deleted partial downloads of an older pin ({human_bytes(freed)})")


def _offline(plan: Plan) -> OfflineError:
    todo = plan.fetch_order()
    missing = ", ".join(f.local_path for f in todo[:5])
    need = "needs" if len(todo) == 1 else "need"
    msg = f"{count(len(todo), 'file')} {need} the network, but offline mode is on: {missing}"
    return OfflineError(msg, hint="Unset HF_HUB_OFFLINE / drop --offline to fetch them.")


def _update_lock(manifest: Manifest, lock: Lockfile | None, selections: tuple[Selection, ...]) -> Path | None:
    """Write the lockfile if it is missing or lacks (or mis-pins) one of these entries."""
    fresh = Lockfile.from_selections(selections)
    merged = fresh if lock is None else lock.merged(fresh)
    if lock is not None and merged.to_json() == lock.to_json():
        return None
    return save_lock(manifest, merged)


class _Pool:
    """The connection workers of one download and the outcome of every file they touch."""

    def __init__(
        self,
        plan: Plan,
        source: ByteSource,
        settings: Settings,
        sink: ProgressSink,
        cancel: threading.Event,
        cache: StateCache,
        owner: str,
        *,
        relock: str = "wanmodels lock",
    ) -> None:
        self.plan = plan
        self.source = source
        self.settings = settings
        self.sink = sink
        self.cancel = cancel
        self.cache = cache
        self.owner = owner
        self.limiter = RateLimiter(settings.max_rate)
        self.scheduler = Scheduler(
            plan.fetch_order(), self._open, split=settings.workers > 1, connections=settings.workers
        )
        self.transfers: dict[FileJob, Transfer] = {}
        self.started: dict[str, float] = {}
        self.outcomes: dict[str, FileOutcome] = {}
        self.relock = relock  # the command that re-pins this manifest, for hints
        self._lock = threading.Lock()
        self._saved = time.monotonic()

    def run(self) -> dict[str, FileOutcome]:
        threads = [
            threading.Thread(target=self._worker, name=f"wanmodels-conn-{i}", daemon=True)
            for i in range(self.settings.workers)
        ]
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
            self._close_all(idle=not any(t.is_alive() for t in threads))
            self.cache.save()
            msg = "interrupted; partial downloads are kept. Run the same command again to resume."
            raise Interrupted(msg)
        return self.outcomes

    def _close_all(self, *, idle: bool) -> None:
        """Stop the hasher threads of an interrupted run and, once no worker can still write
        (`idle`), close its parts: a descriptor closed under a writer could be reused by the
        next file opened, and the straggler's bytes would land there."""
        for transfer in list(self.transfers.values()):
            if idle:
                transfer.close()
            else:
                transfer.hasher.close()

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
        while not self.cancel.is_set():
            rng = self.scheduler.next()
            if rng is None:
                return
            try:
                self._serve(rng)
            except Interrupted:
                return

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
            self._fail(rng.job.item, rng.job.error)
        elif released is Released.FINISH:
            try:
                placed = finish(self.plan.root, transfer, self.scheduler, sink=self.sink, cancel=self.cancel)
            except Interrupted:
                raise
            except Exception as err:
                transfer.close()
                self.scheduler.finished(rng.job)
                self._fail(rng.job.item, _as_error(err, rng.job.item))
                return
            if placed is not None:
                self.scheduler.finished(rng.job)
                self._done(transfer, placed.stat)

    def _done(self, transfer: Transfer, st: os.stat_result) -> None:
        item = transfer.item
        self.cache.record_placed(item.local_path, st, item.digest, self.owner)
        self._save_now_and_then()
        outcome = FileOutcome.of(
            item,
            ok=True,
            bytes_fetched=transfer.bytes_fetched,
            resumed_from=transfer.part.resumed_bytes,
            seconds=time.monotonic() - self.started.get(item.local_path, time.monotonic()),
            source=Source.NETWORK,
        )
        self._report(item, outcome)

    def _save_now_and_then(self) -> None:
        """Record placed files as the run goes, so a killed run does not forget what it placed
        (it would re-hash them, and never prune them): at most one write of the state file per
        SAVE_EVERY seconds, one writer at a time."""
        with self._lock:
            now = time.monotonic()
            if now - self._saved < SAVE_EVERY:
                return
            self._saved = now
            try:
                self.cache.save()
            except LocalIOError as err:
                _log.warning("%s", err)  # saved again at the end, where a failure is reported

    def _fail(self, item: PlannedFile, err: BaseException | None) -> None:
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
        )
        self._report(item, outcome)

    def _report(self, item: PlannedFile, outcome: FileOutcome) -> None:
        with self._lock:
            if item.local_path in self.outcomes:
                return
            self.outcomes[item.local_path] = outcome
        self.sink.file_finished(item, outcome)


def check_space(root: Path, needed: int) -> None:
    """Refuse before fetching when the whole plan cannot fit (plus a margin).

    Raises:
        DiskFullError: it does not fit.
    """
    if needed <= 0:
        return
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + SPACE_MARGIN:
        msg = (
            f"not enough disk space under '{root}': the plan needs {human_bytes(needed)} "
            f"(plus {human_bytes(SPACE_MARGIN)} to spare), {human_bytes(free)} are free"
        )
        raise DiskFullError(msg, hint="Free some space or pass --root on a bigger disk.")


def _as_error(err: Exception, item: PlannedFile) -> WanmodelsError:
    """An expected error as is; anything else (a bug, an odd byte source) named for its file."""
    if isinstance(err, WanmodelsError):
        return err
    return WanmodelsError(f"'{item.local_path}': unexpected {type(err).__name__}: {err}")


def _not_fetched(item: PlannedFile) -> FileOutcome:
    """A file the pool never reported on: kept if it needed nothing, else a failure."""
    if item.action is Action.KEEP:
        return FileOutcome.of(item, ok=True)
    return FileOutcome.of(
        item,
        ok=False,
        error=f"'{item.local_path}' was not fetched (a worker stopped unexpectedly)",
        exit_code=EXIT_FAILED,
    )


def _unfetched(name: str, repo: str, commit: str, files: tuple[PlannedFile, ...]) -> ModelResult:
    return ModelResult(
        name, repo, commit, tuple(FileOutcome.of(f, ok=True, source=Source.planned(f)) for f in files)
    )
