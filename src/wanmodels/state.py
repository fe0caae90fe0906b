"""What the root already holds: partial downloads and a cache of files known to be good.

```
<root>/.wanmodels/
├── lock                  one wanmodels process per root (filelock)
├── state.json            {local path: size, mtime_ns, inode, digest} of verified files
└── partial/<key>.part    bytes of unfinished downloads, resumed from their length
```
The cache lets an unchanged tree be re-checked with one `stat` per file instead of hashing
gigabytes; any change of size, mtime or inode forces a re-hash. A damaged state file is
ignored and rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wanmodels._fs import atomic_write, safe_join
from wanmodels.errors import LocalIOError
from wanmodels.integrity import Digest, hash_file
from wanmodels.manifest import RESERVED_DIR
from wanmodels.planner import LocalState, SelectedFile

WORK_DIR: Final = RESERVED_DIR
STATE_VERSION: Final = 1


def work_dir(root: Path) -> Path:
    return root / WORK_DIR


def part_path(root: Path, local_path: str, digest: Digest) -> Path:
    """Where the partial download of one target lives; keyed on target and content."""
    key = hashlib.sha256(f"{local_path}\n{digest}".encode()).hexdigest()[:32]
    return work_dir(root) / "partial" / f"{key}.part"


@dataclass(frozen=True, slots=True)
class Stamp:
    """The stat facts that, unchanged, mean a file still has the digest it was verified with."""

    size: int
    mtime_ns: int
    inode: int
    digest: str

    @classmethod
    def of(cls, st: os.stat_result, digest: Digest) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, str(digest))

    def still_matches(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)


class StateCache:
    """The verified-files cache of one root; thread-safe, saved atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = work_dir(root) / "state.json"
        self._lock = threading.Lock()
        self._stamps: dict[str, Stamp] = self._load()
        self._dirty = False
        self.hashed_bytes = 0  # bytes read to hash files, so callers can show what the cache saved

    def _load(self) -> dict[str, Stamp]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("version") != STATE_VERSION:
                return {}
            return {k: Stamp(**v) for k, v in raw["files"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def save(self) -> None:
        """Write the cache if it changed (atomically: a crash leaves the old or the new one)."""
        with self._lock:
            if not self._dirty:
                return
            data = {
                "version": STATE_VERSION,
                "files": {
                    k: {"size": s.size, "mtime_ns": s.mtime_ns, "inode": s.inode, "digest": s.digest}
                    for k, s in sorted(self._stamps.items())
                },
            }
            self._dirty = False
        try:
            atomic_write(self.path, (json.dumps(data, indent=1) + "\n").encode())
        except OSError as err:
            msg = f"cannot write the state file '{self.path}': {err.strerror}"
            raise LocalIOError(msg) from None

    def record(self, local_path: str, st: os.stat_result, digest: Digest) -> None:
        with self._lock:
            self._stamps[local_path] = Stamp.of(st, digest)
            self._dirty = True

    def forget(self, local_path: str) -> None:
        with self._lock:
            if self._stamps.pop(local_path, None) is not None:
                self._dirty = True

    def is_known_good(self, local_path: str, st: os.stat_result, expected: Digest) -> bool:
        with self._lock:
            stamp = self._stamps.get(local_path)
        return stamp is not None and stamp.digest == str(expected) and stamp.still_matches(st)

    def check(
        self, local_path: str, expected: Digest, size: int, *, full: bool = False
    ) -> tuple[str, Digest | None]:
        """Check one target against its size and digest.

        Returns ("ok" | "missing" | "size" | "hash" | "unreadable", the digest hashed or None);
        anything that is not a regular file counts as the wrong size. Hashes only when
        `full` or when the file changed since it was last verified.
        """
        try:
            target = safe_join(self.root, local_path)
            st = target.stat()
        except (OSError, ValueError):
            return "missing", None
        if st.st_size != size or not stat.S_ISREG(st.st_mode):
            self.forget(local_path)
            return "size", None
        if not full and self.is_known_good(local_path, st, expected):
            return "ok", None
        try:
            actual = hash_file(target, expected.algorithm, size)
        except OSError:
            self.forget(local_path)
            return "unreadable", None
        with self._lock:
            self.hashed_bytes += size
        if actual != expected:
            self.forget(local_path)
            return "hash", actual
        # Vouch only for the file as it was hashed: if it changed meanwhile, hash it next time.
        with contextlib.suppress(OSError):
            if Stamp.of(target.stat(), expected) == Stamp.of(st, expected):
                self.record(local_path, st, expected)
        return "ok", actual

    def probe(self, item: SelectedFile, *, full: bool = False) -> LocalState:
        """What the disk holds for one selected file (hashing it if unknown, or always with `full`)."""
        status, _ = self.check(item.local_path, item.remote.digest, item.remote.size, full=full)
        if status == "ok":
            return LocalState(complete=True, exists=True)
        part = part_path(self.root, item.local_path, item.remote.digest)
        try:
            part_bytes = part.stat().st_size
        except OSError:
            part_bytes = 0
        return LocalState(complete=False, exists=status != "missing", part_bytes=part_bytes)
