"""Never download what this machine already has: find the bytes elsewhere and place them.

Where a file of digest D and size N is looked for, in this order:
```
<root>/.wanmodels/state.json                   this root: another path verified to hold D
<HF_HUB_CACHE>/models--{org}--{name}/blobs/<D>  huggingface_hub's cache (then any repo's blobs/)
<DIR>/.wanmodels/state.json, locks/*.lock       a --reuse-from wanmodels root: its records
<DIR>/**                                        any --reuse-from folder: files of size N, hashed
```
huggingface_hub names a blob by its etag: the sha256 of an LFS/Xet file, the git blob sha1
of a small one, which are exactly the digests a lockfile pins. A candidate is a lead, not a
proof: its bytes are hashed again as they are placed, and a damaged one is never placed
(the file is fetched instead, and the run says so). Placing is atomic like a download (see
`wanmodels._place`): a hard link, or a copy, beside the target, then a rename.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from wanmodels._fs import safe_join
from wanmodels._parallel import map_threads
from wanmodels._place import Placement, Placer
from wanmodels._text import count
from wanmodels.config import Settings
from wanmodels.errors import (
    EXIT_FAILED,
    ConflictError,
    IntegrityError,
    Interrupted,
    LocalIOError,
    WanmodelsError,
)
from wanmodels.integrity import Digest, hash_exact
from wanmodels.layout import WORK_DIR, locks_folder, partial_folder, work_dir
from wanmodels.lockfile import read_lock
from wanmodels.partial import PartFile, part_info
from wanmodels.planner import Action, Found, Plan, PlannedFile, Source
from wanmodels.progress import ProgressSink
from wanmodels.results import FileOutcome, Link
from wanmodels.state import StateCache

HF_REPO_KINDS: Final = ("models--", "datasets--", "spaces--")
_StatKey = tuple[int, int, int, int, str]  # device, inode, size, mtime_ns, algorithm
Fetch = Callable[[Plan], dict[str, FileOutcome]]


def _key(st: os.stat_result, algorithm: str) -> _StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, algorithm)


def is_hf_cache(folder: Path) -> bool:
    """Whether `folder` looks like huggingface_hub's cache (`models--org--name/blobs/`)."""
    with contextlib.suppress(OSError):
        return any(p.name.startswith(HF_REPO_KINDS) and (p / "blobs").is_dir() for p in folder.iterdir())
    return False


class Finder:
    """Where this machine already holds the bytes of a planned file; one per run.

    Lookups by digest (this root's state, other roots' records, huggingface_hub's cache)
    only `stat`; plain folders are indexed by size once and only files of the right size
    are hashed. What was hashed is remembered (by device, inode, size and mtime), so a file
    hashed while planning is not read again when it is placed.
    """

    def __init__(self, root: Path, settings: Settings, cache: StateCache) -> None:
        self.root = root
        self.settings = settings
        self.cache = cache
        self.hf_caches = [settings.hf_cache] if settings.hf_cache is not None else []
        self.roots: list[Path] = []
        self.folders: list[Path] = []
        for folder in settings.reuse_from:
            if is_hf_cache(folder):
                self.hf_caches.append(folder)
                continue
            if work_dir(folder).is_dir():
                self.roots.append(folder)
            self.folders.append(folder)
        self._own: dict[Digest, list[Path]] | None = None
        self._records: dict[Digest, list[Path]] | None = None
        self._sizes: dict[int, list[Path]] | None = None
        self._hf_repos: dict[Path, list[Path]] = {}
        self._hashed: dict[_StatKey, Digest] = {}
        self._lock = threading.Lock()

    # -- looking -------------------------------------------------------------------------------

    def find(self, item: PlannedFile) -> Found | None:
        """The first file elsewhere on this machine that should hold `item`'s bytes, if any."""
        target = self.root / item.local_path
        if self._own is None:
            self._own = {}
            for local, stamp in self.cache.stamps().items():
                self._note(self._own, self.root, local, stamp.digest)
        for path in self._own.get(item.digest, []):
            if path != target and self._sized(path, item.size):
                return Found(Source.LOCAL, path)
        for hf_cache in self.hf_caches:
            blob = self._hf_blob(hf_cache, item)
            if blob is not None:
                return Found(Source.HF_CACHE, blob)
        for path in self._by_record(item.digest):
            if path != target and self._sized(path, item.size):
                return Found(Source.LOCAL, path)
        for path in self._by_size(item.size):
            if path != target and self.hashes_to(path, item.digest):
                return Found(Source.LOCAL, path)
        return None

    def _hf_blob(self, hf_cache: Path, item: PlannedFile) -> Path | None:
        own = hf_cache / ("models--" + item.repo_id.replace("/", "--"))
        if hf_cache not in self._hf_repos:
            try:
                found = sorted(p for p in hf_cache.iterdir() if p.name.startswith(HF_REPO_KINDS))
            except OSError:
                found = []
            self._hf_repos[hf_cache] = found
        for repo in [own, *(p for p in self._hf_repos[hf_cache] if p != own)]:
            blob = repo / "blobs" / item.digest.hexdigest
            if self._sized(blob, item.size):
                return blob
        return None

    def _by_record(self, digest: Digest) -> list[Path]:
        """Files other wanmodels roots recorded with `digest` (state cache first, then lockfiles)."""
        if self._records is None:
            records: dict[Digest, list[Path]] = {}
            for root in self.roots:
                for local, stamp in StateCache(root).stamps().items():
                    self._note(records, root, local, stamp.digest)
                for lock_path in sorted(locks_folder(root).glob("*.lock")):
                    try:
                        lock = read_lock(lock_path)
                    except WanmodelsError:
                        continue  # a damaged record only means fewer leads
                    for model in lock.models if lock is not None else ():
                        for f in model.files:
                            self._note(records, root, f.local, f.digest)
            self._records = records
        return self._records.get(digest, [])

    def _note(self, records: dict[Digest, list[Path]], root: Path, local: str, digest: Digest | None) -> None:
        path = self._inside(root, local)
        if digest is not None and path is not None and path not in records.setdefault(digest, []):
            records[digest].append(path)

    def _by_size(self, size: int) -> list[Path]:
        if self._sizes is None:
            sizes: dict[int, list[Path]] = {}
            for folder in self.folders:
                for path, st in _walk(folder):
                    sizes.setdefault(st.st_size, []).append(path)
            self._sizes = sizes
        return self._sizes.get(size, [])

    @staticmethod
    def _inside(root: Path, local: str) -> Path | None:
        try:
            return safe_join(root, local)
        except ValueError:
            return None  # a record naming a path outside its root is no lead

    @staticmethod
    def _sized(path: Path, size: int) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == size

    # -- trusting ------------------------------------------------------------------------------

    def hashes_to(self, path: Path, digest: Digest) -> bool:
        """Hash a candidate (once per version of the file) and say whether it holds `digest`."""
        try:
            st = path.stat()
            known = self.hashed(st, digest.algorithm)
            if known is None:
                with path.open("rb", buffering=0) as f:
                    known = hash_exact(f, digest.algorithm, st.st_size)
                self.remember(st, known)
        except (OSError, Interrupted):
            return False
        return known == digest

    def hashed(self, st: os.stat_result, algorithm: str) -> Digest | None:
        """The digest this version of a file was found to have, if it was hashed in this run."""
        with self._lock:
            return self._hashed.get(_key(st, algorithm))

    def remember(self, st: os.stat_result, digest: Digest) -> None:
        with self._lock:
            self._hashed[_key(st, digest.algorithm)] = digest

    def vouched(self, st: os.stat_result, digest: Digest, source: Path) -> bool:
        """Whether these bytes need no re-hash: this version of the file was hashed in this run,
        or `source` is a file of this root whose state-cache stamp (size, mtime, inode) `st`
        still matches: the trust `verify` gives without `--full`."""
        if self.hashed(st, digest.algorithm) == digest:
            return True
        try:
            local = source.relative_to(self.root).as_posix()
        except ValueError:
            return False
        stamp = self.cache.stamp(local)
        return stamp is not None and stamp.vouches(st, digest)


def _walk(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Regular files under `folder` (file symlinks followed, folder symlinks and work dirs not)."""
    for top, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != WORK_DIR)
        for name in sorted(files):
            path = Path(top) / name
            with contextlib.suppress(OSError):
                st = path.stat()
                if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                    yield path, st


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Reuser:
    """Places the reused files of one download around its network transfers."""

    finder: Finder
    placer: Placer
    sink: ProgressSink
    cancel: threading.Event

    @property
    def cache(self) -> StateCache:
        return self.placer.cache

    def provide(self, plan: Plan, fetch: Fetch) -> dict[str, FileOutcome]:
        """Place every file found on this machine, fetch the rest with `fetch` (not called when
        nothing needs the network), then place this run's twins from the files they copy.

        A damaged or unreadable candidate is never placed: its file joins the network fetch,
        with a message saying why.

        Raises:
            Interrupted, and whatever `fetch` raises.
        """
        outcomes: dict[str, FileOutcome] = {}
        found = [f for f in plan.reused() if f.twin_of is None]
        results: list[FileOutcome | None] = []
        if found:
            # Placing is hashing: one file per core (hashlib releases the GIL).
            workers = min(self.finder.settings.workers, os.cpu_count() or 1, len(found))
            try:
                results = map_threads(self._place, found, workers, name="wanmodels-reuse", cancel=self.cancel)
            except (Interrupted, KeyboardInterrupt):
                self.cache.save()  # what was placed before the interrupt stays recorded
                raise
        fallback = {item.local_path for item, outcome in zip(found, results, strict=True) if outcome is None}
        for outcome in results:
            if outcome is not None:
                outcomes[outcome.local_path] = outcome
        if self.cancel.is_set():
            self.cache.save()
            msg = "interrupted; partial downloads are kept. Run the same command again to resume."
            raise Interrupted(msg)
        plan = self._to_network(plan, fallback)
        if plan.fetch_order():  # also a part that holds every byte: it still has to be hashed and placed
            outcomes.update(fetch(plan))
        for twin in (f for f in plan.reused() if f.twin_of is not None):
            outcomes[twin.local_path] = self._place_twin(twin, outcomes.get(twin.twin_of or ""))
        reused = [o for o in outcomes.values() if o.ok and o.source.is_reuse]
        if reused:
            self._summary(reused)
        return outcomes

    def _place(self, item: PlannedFile) -> FileOutcome | None:
        """Place one file found elsewhere; None when it must come from the network instead."""
        started = time.monotonic()
        where = "the Hugging Face cache" if item.origin is Source.HF_CACHE else "this machine"
        try:
            placed = self._copy_in(item)
        except IntegrityError as err:
            self.sink.message(
                f"'{item.local_path}': the copy in {where} ({item.reuse_from}) is damaged "
                f"(expected {item.digest.short}, got {err.actual}); "
                "fetching it from the network instead"
            )
            return None
        except ConflictError as err:
            return FileOutcome.of(item, ok=False, error=str(err), exit_code=err.exit_code, hint=err.hint)
        except LocalIOError as err:
            self.sink.message(f"'{item.local_path}': cannot reuse it from {where} ({err}); fetching it")
            return None
        except Interrupted:
            return None
        return self._done(item, placed, started)

    def _place_twin(self, twin: PlannedFile, first: FileOutcome | None) -> FileOutcome:
        started = time.monotonic()
        if first is None or not first.ok:
            return FileOutcome.of(
                twin,
                ok=False,
                error=f"'{twin.local_path}' was not placed: '{twin.twin_of}' (the same bytes) failed",
                exit_code=first.exit_code if first is not None else EXIT_FAILED,
            )
        try:
            placed = self._copy_in(twin)
        except WanmodelsError as err:
            return FileOutcome.of(twin, ok=False, error=str(err), exit_code=err.exit_code)
        return self._done(twin, placed, started)

    def _copy_in(self, item: PlannedFile) -> Placement:
        """Bring `item.reuse_from`'s bytes into place, checked against the digest (see Placer)."""
        source = item.reuse_from
        assert source is not None
        return self.placer.place_reused(
            item, source, vouched=lambda st: self.finder.vouched(st, item.digest, source), cancel=self.cancel
        )

    def _done(self, item: PlannedFile, placed: Placement, started: float) -> FileOutcome:
        self.finder.remember(placed.stat, item.digest)
        try:  # placed: a part left over is said, never this file's failure
            PartFile(partial_folder(self.finder.root), item.local_path, item.size, item.digest).delete()
        except LocalIOError as err:
            self.sink.message(f"{err}; delete it by hand, nothing needs it")
        outcome = FileOutcome.of(
            item,
            ok=True,
            seconds=time.monotonic() - started,
            source=item.planned_source,
            link=placed.link,
            moved_aside=placed.moved_aside,
        )
        self.sink.file_finished(item, outcome)
        return outcome

    def _summary(self, outcomes: list[FileOutcome]) -> None:
        ways = {
            Link.CLONE: "cloned (copy on write)",
            Link.HARDLINK: "hard-linked read-only (shared with the other copy)",
            Link.COPY: "copied",
        }
        parts = [f"{n} {text}" for link, text in ways.items() if (n := sum(o.link is link for o in outcomes))]
        noun = count(len(outcomes), "file")
        self.sink.message(f"reused {noun} already on this machine: {', '.join(parts)}")

    def _to_network(self, plan: Plan, paths: set[str]) -> Plan:
        """The plan with `paths` fetched from the network after all (resuming any partial download)."""
        if not paths:
            return plan

        def back(f: PlannedFile) -> PlannedFile:
            if f.local_path not in paths:
                return f
            info = part_info(partial_folder(plan.root), f.local_path, f.digest, f.size)
            present = info.done_bytes if info is not None else 0
            action = Action.RESUME if present else f.action
            return replace(f, origin=Source.NETWORK, reuse_from=None, action=action, present=present)

        return replace(
            plan, models=tuple(replace(m, files=tuple(back(f) for f in m.files)) for m in plan.models)
        )


def copy_bytes(plan: Plan) -> int:
    """Bytes of reused files that will likely be copied (their source is on another filesystem)."""
    try:
        device = _device(plan.root)
    except OSError:
        return 0
    total = 0
    for item in plan.reused():
        with contextlib.suppress(OSError):
            if (
                item.twin_of is None
                and item.reuse_from is not None
                and item.reuse_from.stat().st_dev != device
            ):
                total += item.size
    return total


def _device(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.stat().st_dev
