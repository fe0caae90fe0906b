"""Prove the root holds what the manifest promises: every file present, sized, hashed, sane.

The expected files come from the lockfile (no network) or, without one, from the Hub. A
file whose size, mtime and inode are unchanged since it was last verified is trusted from
the state cache; anything else, or everything with `full=True`, is re-hashed, in parallel
across files. Verify never deletes or fetches anything: it returns a `VerifyReport`.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

from wanmodels._fs import safe_join
from wanmodels.config import Settings
from wanmodels.errors import EXIT_FAILED, EXIT_OK, LocalIOError
from wanmodels.formats import check_format
from wanmodels.manifest import Manifest
from wanmodels.planner import SelectedFile, Selection
from wanmodels.resolve import resolve_selections
from wanmodels.state import WORK_DIR, StateCache, part_path

_log = logging.getLogger(__name__)


class Problem(str, Enum):
    """Why a file fails (or, for `extra`, merits a warning)."""

    MISSING = "missing"
    PARTIAL = "partial"  # missing, but a partial download waits to be resumed
    SIZE = "size"
    HASH = "hash"
    FORMAT = "format"
    EXTRA = "extra"  # on disk in an entry's folder, not selected by the manifest


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one file."""

    entry: str
    path: str
    problem: Problem
    detail: str
    expected: str | None = None
    actual: str | None = None

    @property
    def is_error(self) -> bool:
        return self.problem is not Problem.EXTRA


@dataclass(frozen=True, slots=True)
class ModelReport:
    """One entry's verification."""

    name: str
    repo: str
    commit: str
    checked: int
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.is_error for f in self.findings)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify`; `ok` is False when any finding is an error."""

    models: tuple[ModelReport, ...]
    full: bool
    hashed_bytes: int
    seconds: float

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for m in self.models for f in m.findings)

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FAILED


def verify(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    full: bool = False,
) -> VerifyReport:
    """Check the chosen entries' files on disk.

    Args:
        manifest: the manifest (its lockfile, when present, supplies sizes and digests).
        names: entries to check; all when empty.
        settings: Hub settings, used only when there is no matching lockfile.
        full: re-hash every file even if the state cache vouches for it.

    Raises:
        ManifestError, LockError, SelectionError: bad input.
        HubError: no lockfile and the Hub could not be asked (OfflineError when offline).
        LocalIOError: the state cache cannot be written.
    """
    settings = settings or Settings()
    started = time.monotonic()
    selections, _ = resolve_selections(manifest, manifest.select(names), settings)
    cache = StateCache(manifest.root)
    jobs = [(sel, item) for sel in selections for item in sel.files]
    workers = max(1, min(len(jobs), os.cpu_count() or 1, settings.workers))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wanmodels-verify") as pool:
        results = list(pool.map(lambda job: _check(cache, job[0], job[1], full), jobs))
    try:
        cache.save()
    except LocalIOError as err:
        # A read-only root can still be verified; it just cannot remember the result.
        _log.warning("%s", err)
    by_entry: dict[str, list[Finding]] = {sel.spec.name: [] for sel in selections}
    good: set[str] = set()
    for (sel, item), finding in zip(jobs, results, strict=True):
        if finding is None:
            good.add(item.local_path)
        else:
            by_entry[sel.spec.name].append(finding)
    for sel, item in jobs:
        if item.local_path in good:
            problem = _format(manifest, item, good)
            if problem is not None:
                by_entry[sel.spec.name].append(
                    Finding(sel.spec.name, item.local_path, Problem.FORMAT, problem)
                )
    models = tuple(
        ModelReport(
            sel.spec.name,
            sel.spec.repo,
            sel.commit,
            len(sel.files),
            tuple(by_entry[sel.spec.name]) + _extras(manifest, sel),
        )
        for sel in selections
    )
    return VerifyReport(
        models, full=full, hashed_bytes=cache.hashed_bytes, seconds=time.monotonic() - started
    )


def _check(cache: StateCache, sel: Selection, item: SelectedFile, full: bool) -> Finding | None:
    remote = item.remote
    status, actual = cache.check(item.local_path, remote.digest, remote.size, full=full)
    if status == "ok":
        return None
    entry = sel.spec.name
    part = part_path(cache.root, item.local_path, remote.digest)
    part_bytes = part.stat().st_size if part.exists() else None
    if status == "missing":
        if part_bytes is not None:
            detail = (
                f"partial download present: {part_bytes:,} of {remote.size:,} bytes; "
                "run `wanmodels download` to resume"
            )
            return Finding(entry, item.local_path, Problem.PARTIAL, detail, str(remote.size), str(part_bytes))
        return Finding(entry, item.local_path, Problem.MISSING, "missing", str(remote.size), None)
    if status == "unreadable":
        return Finding(entry, item.local_path, Problem.MISSING, "cannot be read", str(remote.size), None)
    if status == "size":
        st = safe_join(cache.root, item.local_path).stat()
        size = st.st_size
        if not stat.S_ISREG(st.st_mode):
            detail = "is not a regular file"
            return Finding(entry, item.local_path, Problem.SIZE, detail, str(remote.size), None)
        detail = f"size is {size:,} bytes, expected {remote.size:,} (truncated or replaced)"
        return Finding(entry, item.local_path, Problem.SIZE, detail, str(remote.size), str(size))
    detail = f"content does not match: expected {remote.digest} got {actual}"
    return Finding(entry, item.local_path, Problem.HASH, detail, str(remote.digest), str(actual))


def _format(manifest: Manifest, item: SelectedFile, good: set[str]) -> str | None:
    parent = PurePosixPath(item.local_path).parent
    siblings = frozenset(
        str(PurePosixPath(p).relative_to(parent)) for p in good if PurePosixPath(p).is_relative_to(parent)
    )
    return check_format(safe_join(manifest.root, item.local_path), siblings)


def _extras(manifest: Manifest, sel: Selection) -> tuple[Finding, ...]:
    """Files in the entry's folder that the manifest does not select (reported, never deleted)."""
    folder = manifest.root / sel.spec.folder
    if not folder.is_dir():
        return ()
    wanted = {item.local_path for item in sel.files}
    extras = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != WORK_DIR)
        for name in sorted(filenames):
            rel = (
                PurePosixPath(sel.spec.folder)
                / PurePosixPath(os.path.relpath(os.path.join(dirpath, name), folder))
            ).as_posix()
            if rel not in wanted:
                extras.append(Finding(sel.spec.name, rel, Problem.EXTRA, "not selected by the manifest"))
    return tuple(extras)


def prune(manifest: Manifest, report: VerifyReport) -> tuple[str, ...]:
    """Delete the files `report` found in entry folders that the manifest does not select.

    Only `extra` findings are touched, each re-checked to lie inside the root.

    Raises:
        LocalIOError: a file cannot be deleted.
    """
    removed = []
    for finding in report.findings:
        if finding.problem is not Problem.EXTRA:
            continue
        try:
            safe_join(manifest.root, finding.path).unlink()
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as err:
            msg = f"cannot delete '{finding.path}': {err}"
            raise LocalIOError(msg) from None
        removed.append(finding.path)
    return tuple(removed)
