"""Prove the root holds what the manifest promises: every file present, sized, hashed, sane.

The expected files come from the lockfile (no network) or, without one, from the Hub. A
file whose size, mtime and inode are unchanged since it was last verified is trusted from
the state cache; anything else, or everything with `full=True`, is re-hashed, in parallel
across files. Files the manifest does not select are none of verify's business, except
those wanmodels placed itself for this manifest earlier: they are reported as stale.
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from pathlib import Path, PurePosixPath

from wanmodels._fs import safe_join
from wanmodels._text import count, human_bytes
from wanmodels._threads import map_threads
from wanmodels.config import Settings
from wanmodels.errors import LocalIOError
from wanmodels.inputs.lockfile import Lockfile
from wanmodels.inputs.manifest import PRESET_OWNER, Manifest, owner_exists
from wanmodels.inputs.selection import SelectedFile, Selection
from wanmodels.ops.prune import prune_with, stale_files
from wanmodels.planning.plan import Check, LocalState
from wanmodels.progress import ProgressSink
from wanmodels.results import Finding, ModelReport, Problem, RepairResult, VerifyReport
from wanmodels.sources.base import ByteSource
from wanmodels.sources.pins import locked_selection, resolve_selections
from wanmodels.store.formats import check_format
from wanmodels.store.rootlock import lock_if_free, root_lock
from wanmodels.store.state import Hashing, StateCache

_log = logging.getLogger(__name__)


def verify(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    full: bool = False,
    prune: bool = False,
    dry_run: bool = False,
) -> VerifyReport:
    """Check the chosen entries' files on disk.

    Args:
        manifest: the manifest (its lockfile, when present, supplies sizes and digests).
        names: entries to check; all when empty.
        settings: Hub settings, used only when there is no matching lockfile.
        source: where to list repos without a lockfile; default: the Hub of `settings`.
        full: re-hash every file even if the state cache vouches for it.
        prune: then delete the stale files (see `wanmodels.prune`); `dry_run` only lists them.

    Raises:
        ManifestError, LockError, SelectionError: bad input.
        HubError: no lockfile and the Hub could not be asked (OfflineError when offline).
        LocalIOError: a stale file cannot be deleted, or (pruning, `wait_for_lock` off) another
            process holds the root.
    """
    settings = settings or Settings()
    # Pruning deletes files: like a download, it holds the root for the whole look and delete.
    with root_lock(manifest.root, settings, enabled=prune and not dry_run):
        return _verify(manifest, names, settings, source, full=full, prune=prune, dry_run=dry_run)


def _verify(
    manifest: Manifest,
    names: tuple[str, ...],
    settings: Settings,
    source: ByteSource | None,
    *,
    full: bool,
    prune: bool,
    dry_run: bool,
) -> VerifyReport:
    started = time.monotonic()
    chosen, lock = resolve_selections(manifest, manifest.select(names), settings, source=source)
    cache = StateCache(manifest.root)
    jobs = [(sel, item) for sel in chosen for item in sel.files]
    hashing = Hashing.ALWAYS if full else Hashing.CHANGED
    workers = max(1, min(len(jobs), os.cpu_count() or 1, settings.workers))

    def look(job: tuple[Selection, SelectedFile]) -> LocalState:
        item = job[1]
        return cache.inspect(item.local_path, item.remote.size, item.remote.digest, hashing=hashing)

    states = map_threads(look, jobs, workers, name="wanmodels-verify")
    # A shard the index names counts as there when selected: if it is missing or damaged, its own
    # finding says so, and the index is not blamed for it too.
    selected = {item.local_path for _, item in jobs}
    by_entry: dict[str, list[Finding]] = {sel.spec.name: [] for sel in chosen}
    for (sel, item), state in zip(jobs, states, strict=True):
        finding = _finding(manifest, sel.spec.name, item, state, selected)
        if finding is not None:
            by_entry[sel.spec.name].append(finding)
        elif state.complete:
            cache.claim(item.local_path, manifest.identity)
    everything = _all_selections(manifest, chosen, lock)
    stale = _stale(manifest, everything, cache, names) if everything is not None else []
    if everything is not None:
        stale += _others(manifest, everything, cache)
    if not dry_run:
        _save(cache, locked=prune)
    pruned = None
    if prune:
        pruned = prune_with(cache, manifest, names, settings=settings, source=source, dry_run=dry_run)
    models = tuple(
        ModelReport(sel.spec.name, sel.spec.repo, sel.commit, len(sel.files), tuple(by_entry[sel.spec.name]))
        for sel in chosen
    )
    return VerifyReport(
        models,
        full=full,
        hashed_bytes=cache.hashed_bytes,
        seconds=time.monotonic() - started,
        stale=tuple(stale),
        pruned=pruned,
    )


def repair(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    full: bool = False,
    prune: bool = False,
    replace: bool = False,
    sink: ProgressSink | None = None,
    cancel: threading.Event | None = None,
) -> RepairResult:
    """Verify; when something fails, re-fetch only the bad files (good ones are kept); verify again.

    A file wanmodels did not place is repaired only with `replace` (moved aside, as `download`).

    Raises:
        as `verify` and `wanmodels.download`.
    """
    from wanmodels.ops.download import download

    before = verify(manifest, names, settings=settings, source=source, full=full)
    fetched = None
    if not before.ok:
        if sink is not None:
            bad = [f"{f.path} ({f.problem.value})" for f in before.findings if f.is_error]
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            sink.message(f"repairing {count(len(bad), 'file')} that failed: {', '.join(bad[:5])}{more}")
        # The verify just done forgot every bad file's stamp and saved the cache, so the download
        # re-hashes only those: repair=True would read every good file a second time.
        fetched = download(
            manifest, names, settings=settings, source=source, replace=replace, sink=sink, cancel=cancel
        )
    after = (
        verify(manifest, names, settings=settings, source=source, full=full, prune=prune)
        if (fetched is not None or prune)
        else before
    )
    return RepairResult(before, fetched, after)


def _save(cache: StateCache, *, locked: bool) -> None:
    """Remember what was hashed. Without the root lock already held, only if it is free: the
    records are merged under it, and a verify never waits behind a download for a cache."""
    try:
        if locked:
            cache.save()
            return
        with lock_if_free(cache.root) as held:
            if held:
                cache.save()
    except LocalIOError as err:
        # A read-only root can still be verified; it just cannot remember the result.
        _log.warning("%s", err)


def _stale(
    manifest: Manifest, everything: tuple[Selection, ...], cache: StateCache, names: tuple[str, ...]
) -> list[Finding]:
    found = []
    why = "placed by wanmodels earlier, no longer selected"
    for item in stale_files(manifest, everything, cache, names):
        if item.shared:
            detail = f"{why} here (also claimed by {', '.join(item.others)})"
        elif item.unchanged:
            detail = f"{why}; `{manifest.command('verify', '--prune')}` deletes it"
        else:
            detail = f"{why}, and changed since: --prune leaves it; delete it yourself if you do not need it"
        found.append(Finding("", item.path, Problem.STALE, detail))
    return found


def _others(manifest: Manifest, everything: tuple[Selection, ...], cache: StateCache) -> list[Finding]:
    """Files in this manifest's folders that wanmodels placed for other manifests only (say,
    the fp8 files left when a root moved to an fp16 preset): named, with the command that frees them."""
    selected = {f.local_path for sel in everything for f in sel.files}
    folders = {PurePosixPath(spec.folder) for spec in manifest.models}
    found = []
    for path, stamp in sorted(cache.stamps().items()):
        if not stamp.placed or manifest.identity in stamp.owners or path in selected:
            continue
        if not any(PurePosixPath(path).is_relative_to(f) for f in folders):
            continue
        live = [o for o in stamp.owners if owner_exists(manifest.root, o)]
        if not live:
            continue
        free = " or ".join(f"`{_release_command(manifest, o)}`" for o in live)
        detail = f"placed for {', '.join(live)}, which this manifest does not select; {free} removes it"
        found.append(Finding("", path, Problem.OTHER, detail))
    return found


def _release_command(manifest: Manifest, owner: str) -> str:
    """The `wanmodels prune` that releases `owner`'s claim on this root."""
    if owner.startswith(PRESET_OWNER):
        target = owner[len(PRESET_OWNER) :]
    else:
        path = Path(owner)
        target = str(path if path.is_absolute() else os.path.normpath(manifest.root / path))
    return shlex.join(["wanmodels", "prune", "-m", target, "--root", str(manifest.root)])


def _finding(
    manifest: Manifest, entry: str, item: SelectedFile, state: LocalState, selected: set[str]
) -> Finding | None:
    remote = item.remote
    path = item.local_path
    expected = str(remote.size)
    if state.check is Check.MISSING:
        if state.part_bytes:
            detail = (
                f"partial download present: {human_bytes(state.part_bytes)} of {human_bytes(remote.size)}; "
                f"run `{manifest.command('download')}` to resume"
            )
            return Finding(entry, path, Problem.PARTIAL, detail, expected, str(state.part_bytes))
        return Finding(entry, path, Problem.MISSING, "not on disk", expected, None)
    if state.check is Check.UNREADABLE:
        return Finding(entry, path, Problem.UNREADABLE, "cannot be read", expected, None)
    if state.check is Check.NOT_FILE:
        return Finding(entry, path, Problem.SIZE, "is not a regular file", expected, None)
    if state.check is Check.WRONG_SIZE:
        detail = f"size is {state.size:,} bytes, expected {remote.size:,} (truncated or replaced)"
        return Finding(entry, path, Problem.SIZE, detail, expected, str(state.size))
    if state.check is Check.WRONG_HASH:
        detail = f"content does not match: expected {remote.digest} got {state.actual}"
        return Finding(entry, path, Problem.HASH, detail, str(remote.digest), str(state.actual))
    problem = _format(manifest, item, selected)
    return Finding(entry, path, Problem.FORMAT, problem) if problem is not None else None


def _format(manifest: Manifest, item: SelectedFile, selected: set[str]) -> str | None:
    parent = PurePosixPath(item.local_path).parent
    siblings = frozenset(
        str(PurePosixPath(p).relative_to(parent)) for p in selected if PurePosixPath(p).is_relative_to(parent)
    )
    return check_format(safe_join(manifest.root, item.local_path), siblings)


def _all_selections(
    manifest: Manifest, chosen: tuple[Selection, ...], lock: Lockfile | None
) -> tuple[Selection, ...] | None:
    """Every entry's selection without asking the Hub again; None when some entry is not locked.

    Stale files are judged against all entries (folders may be shared), and a guess would
    call a file stale that an unresolved entry still selects.
    """
    known = {sel.spec.name: sel for sel in chosen}
    for spec in manifest.models:
        if spec.name in known:
            continue
        locked = lock.get(spec.name) if lock is not None else None
        if locked is None or not locked.matches(spec):
            return None
        known[spec.name] = locked_selection(manifest, locked, spec)
    return tuple(known[spec.name] for spec in manifest.models)
