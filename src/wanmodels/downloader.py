"""Run a plan: resolve entries (from the lockfile when it can), then one pool over all files.

Workers are daemon threads pulling from one queue ordered largest-first, so a small repo
never waits behind a big one and Ctrl-C never waits on a stalled socket. Results are
reported in manifest order whatever order the transfers finished in.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from wanmodels.config import Settings
from wanmodels.errors import (
    EXIT_FAILED,
    EXIT_OK,
    DiskFullError,
    HubError,
    Interrupted,
    LocalIOError,
    OfflineError,
    WanmodelsError,
)
from wanmodels.lockfile import Lockfile
from wanmodels.manifest import Manifest, ModelSpec
from wanmodels.planner import Action, Plan, PlannedFile, Selection, make_plan
from wanmodels.progress import NullProgress, ProgressSink
from wanmodels.resolve import resolve_selections, save_lock
from wanmodels.state import StateCache, work_dir

SPACE_MARGIN: Final = 64 << 20
Status = Literal["ok", "partial", "failed"]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one file."""

    entry: str
    local_path: str
    repo_path: str
    size: int
    action: Action
    ok: bool
    bytes_fetched: int = 0
    resumed_from: int = 0
    seconds: float = 0.0
    error: str | None = None
    exit_code: int = EXIT_OK

    @classmethod
    def of(cls, item: PlannedFile, *, ok: bool, **details: object) -> FileOutcome:
        """An outcome for a planned file; `details` are the optional fields above."""
        return cls(item.entry, item.local_path, item.repo_path, item.size, item.action, ok, **details)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One entry's outcome."""

    name: str
    repo: str
    commit: str
    files: tuple[FileOutcome, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """The outcome of `download`: the plan, every file's fate, and totals."""

    plan: Plan
    models: tuple[ModelResult, ...]
    dry_run: bool
    seconds: float
    lock_written: Path | None = None

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(f for m in self.models for f in m.files if not f.ok)

    @property
    def bytes_fetched(self) -> int:
        return sum(f.bytes_fetched for m in self.models for f in m.files)

    @property
    def status(self) -> Status:
        if not self.failed:
            return "ok"
        return "partial" if any(m.ok for m in self.models) else "failed"

    @property
    def exit_code(self) -> int:
        """0 when all is well, else the most telling code among the failures (4 > 3 > 1)."""
        codes = {f.exit_code for f in self.failed}
        for code in (LocalIOError.exit_code, HubError.exit_code):
            if code in codes:
                return code
        return EXIT_FAILED if codes else EXIT_OK


def plan(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    repair: bool = False,
) -> Plan:
    """What `download` would do: every selected file with its action and bytes, nothing fetched.

    Uses the lockfile when it matches (no network), else one listing per repo.

    Raises:
        ManifestError, LockError, SelectionError, HubError: as for `download`.
    """
    selections, _ = resolve_selections(manifest, manifest.select(names), settings or Settings())
    return _plan(manifest, selections, StateCache(manifest.root), repair=repair)


def _plan(manifest: Manifest, selections: tuple[Selection, ...], cache: StateCache, *, repair: bool) -> Plan:
    """Compare the selections with the disk; `repair` re-hashes instead of trusting the cache."""
    return make_plan(manifest.root, selections, lambda item: cache.probe(item, full=repair))


def download(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    frozen: bool = False,
    repair: bool = False,
    sink: ProgressSink | None = None,
    cancel: threading.Event | None = None,
) -> DownloadResult:
    """Make the root hold every selected file of the chosen entries, verified.

    Plans first (one tree listing per repo, or none with a matching lockfile), checks free
    space for the whole plan, then fetches with one pool. Writes the lockfile when the
    manifest has none or when new entries were resolved, and the state cache always.
    With `repair`, every file on disk is re-hashed (not trusted from the state cache), so a
    file damaged in place is re-fetched; good files are kept.

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
    with _root_lock(manifest.root, settings, sink, enabled=not dry_run):
        selections, lock = resolve_selections(manifest, specs, settings, frozen=frozen)
        cache = StateCache(manifest.root)
        plan = _plan(manifest, selections, cache, repair=repair)
        if dry_run:
            planned = tuple(_unfetched(m.spec, m.commit, m.files) for m in plan.models)
            return DownloadResult(plan, planned, dry_run=True, seconds=time.monotonic() - started)
        sink.plan_ready(plan)
        if plan.to_fetch and settings.offline:
            todo = plan.fetch_order()
            missing = ", ".join(f.local_path for f in todo[:5])
            msg = f"{len(todo)} file(s) need the network, but offline mode is on: {missing}"
            raise OfflineError(msg, hint="Unset HF_HUB_OFFLINE / drop --offline to fetch them.")
        _check_space(manifest.root, plan.to_fetch)
        outcomes = _run_pool(plan, settings, sink, cancel, cache) if plan.to_fetch else {}
        cache.save()
        models: list[ModelResult] = []
        for mp in plan.models:
            files = tuple(outcomes.get(f.local_path) or _not_fetched(f) for f in mp.files)
            models.append(ModelResult(mp.spec.name, mp.spec.repo, mp.commit, files))
            sink.model_finished(mp, files)
        # Like the design says: the first successful download pins the stack.
        ok = all(o.ok for m in models for o in m.files)
        lock_written = _update_lock(manifest, lock, selections) if ok else None
    return DownloadResult(
        plan, tuple(models), dry_run=False, seconds=time.monotonic() - started, lock_written=lock_written
    )


def _update_lock(manifest: Manifest, lock: Lockfile | None, selections: tuple[Selection, ...]) -> Path | None:
    """Write the lockfile if it is missing or lacks (or mis-pins) one of these entries."""
    fresh = Lockfile.from_selections(selections)
    merged = fresh if lock is None else lock.merged(fresh)
    if lock is not None and merged.to_json() == lock.to_json():
        return None
    return save_lock(manifest, merged)


def _run_pool(
    plan: Plan, settings: Settings, sink: ProgressSink, cancel: threading.Event, cache: StateCache
) -> dict[str, FileOutcome]:
    from wanmodels.fetch import fetch_file
    from wanmodels.hub import Hub

    hub = Hub(settings)
    todo: queue.Queue[PlannedFile] = queue.Queue()
    for item in plan.fetch_order():
        todo.put(item)
    outcomes: dict[str, FileOutcome] = {}
    done = threading.Event()
    remaining = [todo.qsize()]
    guard = threading.Lock()

    def worker() -> None:
        while not cancel.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            sink.file_started(item)
            t0 = time.monotonic()
            try:
                fetched = fetch_file(hub, plan.root, item, settings=settings, sink=sink, cancel=cancel)
                cache.record(item.local_path, fetched.stat, item.digest)
                outcome = FileOutcome.of(
                    item,
                    ok=True,
                    bytes_fetched=fetched.bytes_fetched,
                    resumed_from=fetched.resumed_from,
                    seconds=time.monotonic() - t0,
                )
            except Interrupted:
                return
            except WanmodelsError as err:
                outcome = FileOutcome.of(
                    item,
                    ok=False,
                    seconds=time.monotonic() - t0,
                    error=str(err),
                    exit_code=err.exit_code,
                )
            sink.file_finished(item, outcome)
            with guard:
                outcomes[item.local_path] = outcome
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

    threads = [
        threading.Thread(target=worker, name=f"wanmodels-fetch-{i}", daemon=True)
        for i in range(min(settings.workers, todo.qsize()))
    ]
    for t in threads:
        t.start()
    try:
        # Waiting on an Event in short slices keeps the main thread responsive to Ctrl-C.
        while not done.wait(0.2):
            if not any(t.is_alive() for t in threads):
                break
    except KeyboardInterrupt:
        cancel.set()
    if cancel.is_set():
        cache.save()
        msg = "interrupted; partial downloads are kept. Run the same command again to resume."
        raise Interrupted(msg)
    return outcomes


def _check_space(root: Path, needed: int) -> None:
    """Refuse before fetching when the whole plan cannot fit (plus a margin)."""
    if needed <= 0:
        return
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + SPACE_MARGIN:
        msg = f"not enough disk space under '{root}': the plan needs {needed:,} bytes, {free:,} are free"
        raise DiskFullError(msg, hint="Free some space or pass --root on a bigger disk.")


@contextmanager
def _root_lock(root: Path, settings: Settings, sink: ProgressSink, *, enabled: bool) -> Iterator[None]:
    """Hold `<root>/.wanmodels/lock` so two processes never write one root at once."""
    if not enabled:
        yield
        return
    from filelock import FileLock, Timeout

    try:
        work_dir(root).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create '{work_dir(root)}': {err.strerror}"
        raise LocalIOError(msg, hint="Check the root's permissions or pass --root.") from None
    lock = FileLock(str(work_dir(root) / "lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not settings.wait_for_lock:
            msg = f"another wanmodels process is working on '{root}'"
            raise LocalIOError(msg, hint="Wait for it, or drop --no-wait to queue behind it.") from None
        sink.message(f"waiting for another wanmodels process to finish with '{root}'…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


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


def _unfetched(spec: ModelSpec, commit: str, files: tuple[PlannedFile, ...]) -> ModelResult:
    return ModelResult(spec.name, spec.repo, commit, tuple(FileOutcome.of(f, ok=True) for f in files))
