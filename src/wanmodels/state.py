"""What the root already holds: one look at each target, and the cache of files known to be good.

```
<root>/.wanmodels/
├── lock                  one wanmodels process per root (filelock)
├── state.json            per local path: size, mtime_ns, inode, digest, and whether
│                         wanmodels placed it and for which manifests
├── locks/<preset>.lock   the pins of bundled presets provisioned into this root
└── partial/              unfinished downloads (see `wanmodels.partial`)
```
The cache lets an unchanged tree be re-checked with one `stat` per file instead of hashing
gigabytes; any change of size, mtime or inode forces a re-hash. It also remembers which
files wanmodels wrote itself: `--prune` may only ever delete those. A damaged state file
is ignored and rebuilt, never trusted (and then nothing counts as placed by wanmodels).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final

from wanmodels._fs import atomic_write, safe_join
from wanmodels.errors import LocalIOError
from wanmodels.integrity import Digest, hash_file
from wanmodels.manifest import RESERVED_DIR
from wanmodels.partial import part_info
from wanmodels.planner import Check, LocalState

WORK_DIR: Final = RESERVED_DIR
STATE_VERSION: Final = 2


def work_dir(root: Path) -> Path:
    return root / WORK_DIR


def partial_folder(root: Path) -> Path:
    return work_dir(root) / "partial"


class Hashing(str, Enum):
    """How hard `inspect` looks at a file of the right size."""

    NEVER = "never"  # sizes only (status)
    CHANGED = "changed"  # hash unless the cache vouches for it (plan, verify)
    ALWAYS = "always"  # hash everything (verify --full, --repair)


@dataclass(frozen=True, slots=True)
class Stamp:
    """The stat facts that, unchanged, mean a file still has the digest it was verified with."""

    size: int
    mtime_ns: int
    inode: int
    digest: str
    placed: bool = False  # wanmodels wrote these bytes
    owners: tuple[str, ...] = ()  # manifests that placed or still select it (prune scope)

    @classmethod
    def of(cls, st: os.stat_result, digest: Digest) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, str(digest))

    def still_matches(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "inode": self.inode,
            "digest": self.digest,
        }
        if self.placed:
            data["placed"] = True
            data["owners"] = sorted(self.owners)
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Stamp:
        owners = raw.get("owners", [])
        if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
            msg = "owners"
            raise TypeError(msg)
        return cls(
            int(raw["size"]),
            int(raw["mtime_ns"]),
            int(raw["inode"]),
            str(Digest.parse(str(raw["digest"]))),  # ValueError: not a digest
            raw.get("placed") is True,
            tuple(owners),
        )


class StateCache:
    """The verified-files cache of one root; thread-safe, saved atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = work_dir(root) / "state.json"
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._stamps: dict[str, Stamp] = self._load()
        self._dirty = False
        self.hashed_bytes = 0  # bytes read to hash files, so callers can show what the cache saved

    def _load(self) -> dict[str, Stamp]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("version") not in (1, STATE_VERSION):
                return {}
            entries = raw["files"].items()
        except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return {}  # RecursionError: JSON nested deeper than Python parses
        stamps = {}
        for path, entry in entries:
            # A damaged entry is forgotten (its file gets re-hashed), not the whole cache.
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                stamps[str(path)] = Stamp.from_dict(entry)
        return stamps

    def save(self) -> None:
        """Write the cache if it changed (atomically: a crash leaves the old or the new one).

        Raises:
            LocalIOError: it cannot be written.
        """
        # One writer at a time, so an older snapshot is never written last; and a write that
        # failed leaves the cache dirty, so the next save tries again.
        with self._save_lock:
            with self._lock:
                if not self._dirty:
                    return
                data = {
                    "version": STATE_VERSION,
                    "files": {k: s.to_dict() for k, s in sorted(self._stamps.items())},
                }
                self._dirty = False
            try:
                atomic_write(self.path, (json.dumps(data, indent=1) + "\n").encode())
            except OSError as err:
                with self._lock:
                    self._dirty = True
                msg = f"cannot write the state file '{self.path}': {err.strerror}"
                raise LocalIOError(msg) from None

    # -- recording -----------------------------------------------------------------------------

    def record(
        self, local_path: str, st: os.stat_result, digest: Digest, *, owner: str | None = None
    ) -> None:
        """Remember a verified file; same bytes keep their history, `owner` adds a claim."""
        with self._lock:
            old = self._stamps.get(local_path)
            stamp = Stamp.of(st, digest)
            # Same bytes in the same file (inode) keep their history; a copy put in its place is
            # the user's file, never "placed by wanmodels", whatever it hashes to.
            if old is not None and old.digest == stamp.digest and old.placed and old.inode == stamp.inode:
                stamp = replace(stamp, placed=True, owners=old.owners)
            if owner is not None and stamp.placed and owner not in stamp.owners:
                stamp = replace(stamp, owners=(*stamp.owners, owner))
            self._set(local_path, stamp)

    def record_placed(self, local_path: str, st: os.stat_result, digest: Digest, owner: str) -> None:
        """Remember a file wanmodels has just written for the manifest `owner`."""
        with self._lock:
            old = self._stamps.get(local_path)
            owners = tuple(o for o in (old.owners if old and old.placed else ()) if o != owner)
            self._set(local_path, replace(Stamp.of(st, digest), placed=True, owners=(*owners, owner)))

    def claim(self, local_path: str, owner: str) -> None:
        """Count `owner` among the manifests that select a file wanmodels placed."""
        with self._lock:
            old = self._stamps.get(local_path)
            if old is not None and old.placed and owner not in old.owners:
                self._set(local_path, replace(old, owners=(*old.owners, owner)))

    def disown(self, local_path: str, owner: str) -> Stamp | None:
        """Drop `owner`'s claim on a placed file; returns the stamp as it was."""
        with self._lock:
            old = self._stamps.get(local_path)
            if old is not None and owner in old.owners:
                self._set(local_path, replace(old, owners=tuple(o for o in old.owners if o != owner)))
            return old

    def forget(self, local_path: str) -> None:
        with self._lock:
            if self._stamps.pop(local_path, None) is not None:
                self._dirty = True

    def _set(self, local_path: str, stamp: Stamp) -> None:
        if self._stamps.get(local_path) != stamp:
            self._stamps[local_path] = stamp
            self._dirty = True

    def stamps(self) -> dict[str, Stamp]:
        with self._lock:
            return dict(self._stamps)

    def placed_by(self, owner: str) -> dict[str, Stamp]:
        """Files wanmodels placed that `owner` placed or claimed."""
        with self._lock:
            return {p: s for p, s in self._stamps.items() if s.placed and owner in s.owners}

    # -- looking -------------------------------------------------------------------------------

    def inspect(
        self, local_path: str, size: int, digest: Digest, *, hashing: Hashing = Hashing.CHANGED
    ) -> LocalState:
        """One look at a target and, when it is not complete, at its partial download.

        A target that is not a regular file counts as the wrong size; hashing happens only as
        `hashing` allows, and an unchanged file the cache vouches for is never re-read.
        """
        try:
            target = safe_join(self.root, local_path)
            st = target.stat()
        except (OSError, ValueError):
            return self._with_part(LocalState(Check.MISSING), local_path, size, digest)
        if not stat.S_ISREG(st.st_mode):
            self.forget(local_path)
            return self._with_part(LocalState(Check.NOT_FILE), local_path, size, digest)
        if st.st_size != size:
            self.forget(local_path)
            return self._with_part(LocalState(Check.SIZE, st.st_size), local_path, size, digest)
        if hashing is not Hashing.ALWAYS and self._vouches(local_path, st, digest):
            return LocalState(Check.OK, size)
        if hashing is Hashing.NEVER:
            return LocalState(Check.SIZED, size)
        try:
            actual = hash_file(target, digest.algorithm, size)
        except OSError:
            self.forget(local_path)
            return LocalState(Check.UNREADABLE, size)
        with self._lock:
            self.hashed_bytes += size
        if actual != digest:
            self.forget(local_path)
            return self._with_part(LocalState(Check.HASH, size, actual), local_path, size, digest)
        # Vouch only for the file as it was hashed: if it changed meanwhile, hash it next time.
        with contextlib.suppress(OSError):
            if Stamp.of(target.stat(), digest) == Stamp.of(st, digest):
                self.record(local_path, st, digest)
        return LocalState(Check.OK, size, actual)

    def _vouches(self, local_path: str, st: os.stat_result, digest: Digest) -> bool:
        with self._lock:
            stamp = self._stamps.get(local_path)
        return stamp is not None and stamp.digest == str(digest) and stamp.still_matches(st)

    def _with_part(self, state: LocalState, local_path: str, size: int, digest: Digest) -> LocalState:
        info = part_info(partial_folder(self.root), local_path, digest, size)
        return replace(state, part_bytes=info.done_bytes) if info is not None else state
