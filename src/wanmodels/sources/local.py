"""Where this machine already holds the bytes of a planned file: leads, never proofs.

Where a file of digest D and size N is looked for, in this order:
```
<root>/.wanmodels/state.json                   this root: another path verified to hold D
<HF_HUB_CACHE>/models--{org}--{name}/blobs/<D>  huggingface_hub's cache (then any repo's blobs/)
<DIR>/.wanmodels/state.json, locks/*.lock       a --reuse-from wanmodels root: its records
<DIR>/**                                        any --reuse-from folder: files of size N, hashed
```
huggingface_hub names a blob by its etag: the sha256 of an LFS/Xet file, the git blob sha1
of a small one, which are exactly the digests a lockfile pins. A candidate's bytes are hashed
again as they are placed (`wanmodels.transfer.reuse`), and a damaged one is never placed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from wanmodels._fs import safe_join
from wanmodels.config import Settings
from wanmodels.digests import Digest, hash_exact
from wanmodels.errors import IntegrityError, WanmodelsError
from wanmodels.inputs.lockfile import read_lock
from wanmodels.layout import WORK_DIR, locks_folder, work_dir
from wanmodels.planning.plan import Found, PlannedFile, Source
from wanmodels.store.state import StateCache

HF_REPO_KINDS: Final = ("models--", "datasets--", "spaces--")
_StatKey = tuple[int, int, int, int, str]  # device, inode, size, mtime_ns, algorithm


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
        except (OSError, IntegrityError):  # unreadable, or it changed while it was hashed
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
