"""What the library returns: one result type per operation, each with its own exit code.

Every result answers `exit_code` through `worst_exit`, so the CLI never decides a code
itself, and partial success stays visible (pipx's `OperationResult` is the model).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from wanmodels.errors import EXIT_FAILED, EXIT_HUB, EXIT_LOCAL_IO, EXIT_OK, EXIT_USAGE
from wanmodels.inputs.lockfile import Lockfile
from wanmodels.planning.plan import Action, Plan, PlannedFile, Source

# Which code wins when several failures happened: the one a user must act on first.
_PRIORITY: Final = (EXIT_LOCAL_IO, EXIT_HUB, EXIT_USAGE, EXIT_FAILED)


def worst_exit(codes: Iterable[int]) -> int:
    """The exit code that sums up several outcomes: 4 > 3 > 2 > 1 > 0."""
    seen = {code for code in codes if code != EXIT_OK}
    return next((code for code in _PRIORITY if code in seen), min(seen) if seen else EXIT_OK)


class Status(str, Enum):
    """How an operation, an entry or a file came out; prints as its value (`ok`)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    OK = "ok"
    PARTIAL = "partial"  # some entries failed, others are complete
    FAILED = "failed"


def _overall(parts_ok: list[bool]) -> Status:
    if all(parts_ok):
        return Status.OK
    return Status.PARTIAL if any(parts_ok) else Status.FAILED


class Link(str, Enum):
    """How one reused file's bytes arrived."""

    CLONE = "clone"
    HARDLINK = "hardlink"
    COPY = "copy"


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
    source: Source = Source.NONE
    link: Link | None = None  # reused bytes: cloned, hard-linked or copied
    moved_aside: Path | None = None  # where --replace moved the user's file that held the target
    hint: str | None = None  # the fix that ends `error`, so one cause's fix can be said once

    @classmethod
    def of(cls, item: PlannedFile, *, ok: bool, **details: object) -> FileOutcome:
        """An outcome for a planned file; `details` are the optional fields above."""
        return cls(item.entry, item.local_path, item.repo_path, item.size, item.action, ok, **details)  # type: ignore[arg-type]

    @property
    def status(self) -> Status:
        return Status.OK if self.ok else Status.FAILED


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

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(f for f in self.files if not f.ok)


@dataclass(frozen=True, slots=True)
class PruneResult:
    """Files that wanmodels placed earlier and the manifest no longer selects."""

    removed: tuple[str, ...]
    dry_run: bool = False
    released: tuple[str, ...] = ()  # still claimed by another manifest: only this one's claim went
    changed: tuple[str, ...] = ()  # changed since wanmodels placed them: left for the user

    @property
    def exit_code(self) -> int:
        return EXIT_OK


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """An entry left out because the Hub lacks its repo, revision or files (`skip_missing`)."""

    name: str
    repo: str
    error: str


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """The outcome of `download`: the plan, every file's fate, and totals."""

    plan: Plan
    models: tuple[ModelResult, ...]
    dry_run: bool
    seconds: float
    lock_written: Path | None = None
    pruned: PruneResult | None = None
    skipped: tuple[SkippedEntry, ...] = ()  # with `skip_missing`: what the Hub does not have

    @property
    def failed(self) -> tuple[FileOutcome, ...]:
        return tuple(f for m in self.models for f in m.failed)

    @property
    def unique_files(self) -> tuple[FileOutcome, ...]:
        """Each local path once: entries sharing a folder may list the same file."""
        seen: dict[str, FileOutcome] = {}
        for m in self.models:
            for f in m.files:
                seen.setdefault(f.local_path, f)
        return tuple(seen.values())

    @property
    def bytes_fetched(self) -> int:
        return sum(f.bytes_fetched for f in self.unique_files)

    @property
    def bytes_reused(self) -> int:
        return sum(f.size for f in self.unique_files if f.source.is_reuse)

    @property
    def status(self) -> Status:
        return _overall([m.ok for m in self.models] + [False] * len(self.skipped))

    @property
    def exit_code(self) -> int:
        # A skipped entry is a file not provisioned (1), not a Hub error: the rest did arrive.
        return worst_exit([*(f.exit_code for f in self.failed), *(EXIT_FAILED for _ in self.skipped)])


class Problem(str, Enum):
    """Why a file fails verification (or, for `stale`, merits a warning)."""

    MISSING = "missing"
    PARTIAL = "partial"  # missing, but a partial download waits to be resumed
    UNREADABLE = "unreadable"
    SIZE = "size"
    HASH = "hash"
    FORMAT = "format"
    STALE = "stale"  # placed by wanmodels earlier, no longer selected: `--prune` removes it
    OTHER = "other"  # placed for another manifest only, in this one's folders: `wanmodels prune -m` it


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
        return self.problem not in (Problem.STALE, Problem.OTHER)


@dataclass(frozen=True, slots=True)
class ModelReport:
    """One entry's verification."""

    name: str
    repo: str
    commit: str
    checked: int
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of `verify`; `ok` is False when any finding is an error."""

    models: tuple[ModelReport, ...]
    full: bool
    hashed_bytes: int
    seconds: float
    stale: tuple[Finding, ...] = ()  # files of no entry: placed earlier, no longer selected
    pruned: PruneResult | None = None

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for m in self.models for f in m.findings) + self.stale

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.models)

    @property
    def status(self) -> Status:
        return _overall([m.ok for m in self.models])

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FAILED


@dataclass(frozen=True, slots=True)
class RepairResult:
    """`verify`, then re-fetch what failed, then `verify` again."""

    before: VerifyReport
    download: DownloadResult | None  # None when nothing needed fetching
    after: VerifyReport

    @property
    def exit_code(self) -> int:
        codes = [self.after.exit_code]
        if self.download is not None:
            codes.append(self.download.exit_code)
        return worst_exit(codes)


@dataclass(frozen=True, slots=True)
class LockResult:
    """What `lock` found: the fresh lock, how it differs from the old one, where it went."""

    lockfile: Lockfile
    changes: tuple[str, ...]
    written: Path | None
    checked: bool = False  # `--check`: compare only

    @property
    def up_to_date(self) -> bool:
        return not self.changes

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.checked and not self.up_to_date else EXIT_OK


class EntryState(str, Enum):
    """An entry's state on disk, as `status` sees it without hashing."""

    COMPLETE = "complete"
    PARTIAL = "partial"  # some files missing, partial downloads waiting
    MISSING = "missing"
    NOT_LOCKED = "not locked"  # the file list is unknown until `lock` or `download`


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One entry's state on disk."""

    name: str
    repo: str
    folder: str
    state: EntryState
    commit: str | None = None
    files: int = 0
    missing: int = 0
    bytes_present: int = 0
    bytes_expected: int = 0
    partial_bytes: int = 0


@dataclass(frozen=True, slots=True)
class StatusReport:
    models: tuple[ModelStatus, ...]

    @property
    def complete(self) -> bool:
        return all(m.state is EntryState.COMPLETE for m in self.models)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.complete else EXIT_FAILED
