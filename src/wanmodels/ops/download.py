"""Run a plan: pin the entries, then one budget of connections over every byte still missing.

Files found on this machine are placed first (`reuse`), the rest go to one `Pool` of
connections (`pool`). Results are reported in manifest order whatever order the transfers
finished in.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Final

from wanmodels._text import count, human_bytes
from wanmodels._threads import own_event
from wanmodels.config import Settings
from wanmodels.errors import (
    EXIT_FAILED,
    DiskFullError,
    LocalIOError,
    OfflineError,
)
from wanmodels.inputs.lockfile import Lockfile
from wanmodels.inputs.manifest import Manifest
from wanmodels.inputs.selection import Selection
from wanmodels.layout import partial_folder
from wanmodels.ops.prune import prune_with
from wanmodels.planning.plan import Action, Plan, PlannedFile, make_plan, with_origins
from wanmodels.progress import NullProgress, ProgressSink
from wanmodels.results import DownloadResult, FileOutcome, ModelResult
from wanmodels.sources.base import ByteSource
from wanmodels.sources.local import Finder
from wanmodels.sources.pins import check_frozen, read_pins, resolve, resolve_selections, save_lock
from wanmodels.store.partial import drop_superseded
from wanmodels.store.place import Placer, conflict
from wanmodels.store.rootlock import root_lock
from wanmodels.store.state import Hashing, StateCache
from wanmodels.transfer.pool import Pool
from wanmodels.transfer.reuse import Reuser, copy_bytes

# Room to leave beyond the plan (journals, the state file, the file system's own blocks): an
# eighth of the plan, from 1 MiB to 64 MiB, so a small plan on a small disk is not refused.
SPACE_MARGIN: Final = 64 << 20
MIN_SPACE_MARGIN: Final = 1 << 20
_log = logging.getLogger(__name__)


def plan(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    repair: bool = False,
    replace: bool = False,
) -> Plan:
    """What `download` would do: every selected file with its action and bytes, nothing fetched.

    Uses the lockfile when it matches (no network), else one listing per repo.

    Raises:
        ManifestError, LockError, SelectionError, HubError: as for `download`.
    """
    settings = settings or Settings()
    selections, _ = resolve_selections(manifest, manifest.select(names), settings, source=source)
    cache = StateCache(manifest.root)
    finder = Finder(manifest.root, settings, cache)
    return _plan(manifest, selections, cache, repair=repair, replace=replace, finder=finder)


def _plan(
    manifest: Manifest,
    selections: tuple[Selection, ...],
    cache: StateCache,
    *,
    repair: bool,
    replace: bool,
    finder: Finder,
) -> Plan:
    """Compare the selections with the disk; `repair` re-hashes instead of trusting the records,
    `replace` plans to move files of the user's aside instead of leaving them (a conflict).
    Unless `settings.reuse` is off, files get their bytes from this machine where it has them."""
    hashing = Hashing.ALWAYS if repair else Hashing.CHANGED
    planned = make_plan(
        manifest.root,
        selections,
        lambda item: cache.inspect(item.local_path, item.remote.size, item.remote.digest, hashing=hashing),
        replace_foreign=replace,
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
    replace: bool = False,
    skip_missing: bool = False,
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
    manifest that it no longer selects (see `wanmodels.prune`). A file wanmodels did not place
    that holds a target with other bytes is left alone and fails (a conflict), unless
    `replace`: it is then moved aside under `<root>/.wanmodels/replaced/`, never deleted.
    With `skip_missing`, entries whose repo, revision or files the Hub does not have are left
    out and listed in the result's `skipped` (exit 1), and the others are fetched.

    Args:
        source: where bytes come from; default: the store of `settings` (`--from`) with the Hub
            behind it, else the Hub of `settings` (see `wanmodels.sources.router.open_source`).

    Raises:
        ManifestError, LockError, SelectionError: bad input (before any byte moves).
        HubError: an entry could not be resolved.
        LocalIOError: not enough space, or another process holds the root (`wait_for_lock=False`).
        Interrupted: `cancel` was set; partial downloads are kept.
    Per-file transfer failures do not raise: they are in the result (`status`, `exit_code`).
    """
    settings = settings or Settings()
    sink = sink or NullProgress()
    with own_event(cancel) as run_cancel:
        return _download(
            manifest,
            names,
            settings,
            source,
            sink,
            run_cancel,
            dry_run=dry_run,
            frozen=frozen,
            repair=repair,
            prune=prune,
            replace=replace,
            skip_missing=skip_missing,
        )


def _download(
    manifest: Manifest,
    names: tuple[str, ...],
    settings: Settings,
    source: ByteSource | None,
    sink: ProgressSink,
    cancel: threading.Event,
    *,
    dry_run: bool,
    frozen: bool,
    repair: bool,
    prune: bool,
    replace: bool,
    skip_missing: bool,
) -> DownloadResult:
    started = time.monotonic()
    specs = manifest.select(names)
    if frozen:  # before the root lock: a refusal leaves nothing behind in the root
        check_frozen(manifest, specs, read_pins(manifest))
    with root_lock(manifest.root, settings, sink, enabled=not dry_run):
        resolved = resolve(
            manifest,
            specs,
            settings,
            frozen=frozen,
            skip_missing=skip_missing,
            skip_command=manifest.command("download", "--skip-missing"),
            source=source,
            notify=sink.message,
            cancel=cancel,
        )
        selections, lock, skipped = resolved.selections, resolved.lock, resolved.skipped
        cache = StateCache(manifest.root)
        finder = Finder(manifest.root, settings, cache)
        plan = _plan(manifest, selections, cache, repair=repair, replace=replace, finder=finder)
        for warning in claimed_elsewhere(plan, cache, manifest.identity):
            sink.message(warning)
        if dry_run:
            planned = tuple(_unfetched(m.spec.name, m.spec.repo, m.commit, m.files) for m in plan.models)
            pruned = None
            if prune and not skipped:
                pruned = prune_with(cache, manifest, names, settings=settings, source=source, dry_run=True)
            return DownloadResult(
                plan, planned, True, time.monotonic() - started, pruned=pruned, skipped=skipped
            )
        if plan.to_fetch and settings.offline:
            raise _offline(plan)
        check_space(manifest.root, plan.to_allocate + copy_bytes(plan))
        sink.plan_ready(plan)

        def fetch(todo: Plan) -> dict[str, FileOutcome]:
            nonlocal source
            if todo.to_fetch > plan.to_fetch:  # a reuse candidate turned out damaged
                if settings.offline:
                    raise _offline(todo)
                # It was counted as linked (no space); its bytes now come over the network.
                check_space(manifest.root, todo.to_allocate)
            relock = manifest.command("lock")
            if source is not None:
                return Pool(todo, source, settings, sink, cancel, placer, relock=relock).run()
            from wanmodels.sources.router import close_source, open_source

            opened = open_source(settings, plan, notify=sink.message, cancel=cancel)
            try:
                return Pool(todo, opened, settings, sink, cancel, placer, relock=relock).run()
            finally:
                close_source(opened)  # undo what it changed in the process (a Hub's tweaks)

        placer = Placer(
            manifest.root,
            cache,
            manifest.identity,
            replace_foreign=replace,
            link_mode=settings.link_mode,
            fix=manifest.command("download", "--replace"),
        )
        # Reused files are placed before the network pool starts, this run's twins after it.
        reuser = Reuser(finder, placer, sink, cancel)
        outcomes = reuser.provide(plan, fetch)
        for item in plan.unique_files:
            if item.action is Action.CONFLICT:
                err = conflict(manifest.root, item, item.foreign, placer.fix)
                outcomes[item.local_path] = FileOutcome.of(
                    item, ok=False, error=str(err), exit_code=err.exit_code, hint=err.hint
                )
        for item in plan.unique_files:
            if item.action is Action.KEEP:
                cache.claim(item.local_path, manifest.identity)
        models: list[ModelResult] = []
        for mp in plan.models:
            files = tuple(outcomes.get(f.local_path) or _not_fetched(f) for f in mp.files)
            models.append(ModelResult(mp.spec.name, mp.spec.repo, mp.commit, files))
            sink.model_finished(mp, files)
        ok = all(m.ok for m in models)
        _save_state(cache, sink, ok=ok)
        # The first successful download pins the stack.
        if ok:
            _drop_superseded(plan, sink)
        lock_written = _update_lock(manifest, lock, selections) if ok else None
        pruned = None
        if prune and ok and not skipped:
            pruned = prune_with(cache, manifest, names, settings=settings, source=source)
    return DownloadResult(
        plan,
        tuple(models),
        False,
        time.monotonic() - started,
        lock_written=lock_written,
        pruned=pruned,
        skipped=skipped,
    )


def claimed_elsewhere(plan: Plan, cache: StateCache, owner: str) -> list[str]:
    """Warnings for files this plan replaces that wanmodels placed for another manifest with
    other bytes: two manifests that pin one path to different files undo each other."""
    warnings = []
    for item in plan.unique_files:
        if item.action not in (Action.REPLACE, Action.RESUME, Action.DOWNLOAD):
            continue
        stamp = cache.stamp(item.local_path)
        if stamp is None or not stamp.placed or stamp.digest in (None, item.digest):
            continue
        others = [o for o in stamp.owners if o != owner]
        if others and cache.is_ours(item.local_path):
            warnings.append(
                f"warning: '{item.local_path}' was placed for {', '.join(others)} as {stamp.digest.short}; "
                f"this manifest pins {item.digest.short} there and replaces it (the other manifest "
                "will put its own back when it runs: give one of them another path)"
            )
    return warnings


def _save_state(cache: StateCache, sink: ProgressSink, *, ok: bool) -> None:
    """Save the state file after the run; when files failed (a full disk fails both), the failures
    are the report and the save's own error a line beside them, never in their place.

    Raises:
        LocalIOError: it cannot be written after a run in which every file came out right.
    """
    try:
        cache.save()
    except LocalIOError as err:
        if ok:
            raise
        sink.message(f"{err}; the next run checks the files again")


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
    margin = min(SPACE_MARGIN, max(MIN_SPACE_MARGIN, needed // 8))
    if free < needed + margin:
        msg = (
            f"not enough disk space under '{root}': the plan needs {human_bytes(needed)} "
            f"(plus {human_bytes(margin)} to spare), {human_bytes(free)} are free"
        )
        raise DiskFullError(msg, hint="Free some space or pass --root on a bigger disk.")


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
        name, repo, commit, tuple(FileOutcome.of(f, ok=True, source=f.planned_source) for f in files)
    )
