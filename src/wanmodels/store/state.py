"""What the root already holds: one look at each target, and the records of what wanmodels did there.

(The files: see `wanmodels.layout`.)
The records let an unchanged tree be re-checked with one `stat` per file instead of hashing
gigabytes; any change of size, mtime or inode forces a re-hash. They also say which files
wanmodels wrote itself: only those may ever be replaced without `--replace`, or deleted by
`--prune`. A placement is journaled before its rename, so a killed run forgets none, and a
journal line counts only if the file at its path is that very inode. Every write of state.json
re-reads it and replays this process's changes under the root lock, so two processes never
drop each other's records. A damaged state file is ignored and rebuilt, never trusted (and
then nothing counts as placed by wanmodels).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final

from wanmodels._fs import atomic_write, inode_generation, safe_join
from wanmodels.digests import Digest, hash_file
from wanmodels.errors import LocalIOError
from wanmodels.layout import journal_file, partial_folder, state_file
from wanmodels.planning.plan import Check, LocalState
from wanmodels.store.partial import part_info

STATE_VERSION: Final = 3
_MAX_RECORD_BYTES: Final = 64 << 20  # a state file or journal larger than this is not ours: ignored


class Hashing(str, Enum):
    """How hard `inspect` looks at a file of the right size."""

    NEVER = "never"  # sizes only (status)
    CHANGED = "changed"  # hash unless the records vouch for it (plan, verify)
    ALWAYS = "always"  # hash everything (verify --full, --repair)


@dataclass(frozen=True, slots=True)
class Stamp:
    """What is known of the file at one path: its stat facts, what those bytes hashed to, and
    whether wanmodels created that inode there (and for which manifests)."""

    size: int
    mtime_ns: int
    inode: int
    digest: Digest | None = None  # None: not hashed since it last changed
    generation: int | None = None  # the inode's generation, where the filesystem keeps one
    placed: bool = False
    owners: tuple[str, ...] = ()  # manifests that placed or still select it (prune scope)

    @classmethod
    def of(cls, st: os.stat_result, digest: Digest | None, generation: int | None = None) -> Stamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, digest, generation)

    def unchanged(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)

    def vouches(self, st: os.stat_result, digest: Digest) -> bool:
        """The one trust rule: a file whose stat is unchanged since it hashed to `digest` still does."""
        return self.digest == digest and self.unchanged(st)

    def same_inode(self, st: os.stat_result, generation: int | None) -> bool:
        """Whether `st` is the very inode recorded (not a new file that was given its number)."""
        if st.st_ino != self.inode:
            return False
        return self.generation is None or generation is None or generation == self.generation

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "inode": self.inode,
            "digest": str(self.digest) if self.digest is not None else None,
        }
        if self.generation is not None:
            data["generation"] = self.generation
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
        digest = raw.get("digest")
        generation = raw.get("generation")
        return cls(
            int(raw["size"]),
            int(raw["mtime_ns"]),
            int(raw["inode"]),
            Digest.parse(str(digest)) if digest is not None else None,  # ValueError: not a digest
            int(generation) if generation is not None else None,
            raw.get("placed") is True,
            tuple(owners),
        )


_Op = Callable[[dict[str, Stamp]], None]


class StateCache:
    """The records of one root; thread-safe. Changes are kept as operations, so a save can
    replay them onto whatever another process wrote meanwhile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = state_file(root)
        self.journal = journal_file(root)
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._stamps: dict[str, Stamp] = self._read()
        self._ops: list[_Op] = []
        self.hashed_bytes = 0  # bytes read to hash files, so callers can show what the records saved

    # -- reading -------------------------------------------------------------------------------

    def _read(self) -> dict[str, Stamp]:
        """state.json with the journal folded in; whatever is damaged counts as unknown."""
        stamps = _load_state(self.path)
        for line in _journal_lines(self.journal):
            self._fold(stamps, line)
        return stamps

    def _fold(self, stamps: dict[str, Stamp], line: dict[str, Any]) -> None:
        """Apply one journaled placement if the file at its path is the inode it names."""
        try:
            path = str(line["path"])
            owner = str(line["owner"])
            stamp = Stamp.from_dict(line)
            st = safe_join(self.root, path).lstat()
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return
        if not stat.S_ISREG(st.st_mode) or not stamp.unchanged(st) or stamp.digest is None:
            return  # the rename never happened, or the file has been replaced since
        _placed(stamps, path, stamp, owner)

    # -- saving --------------------------------------------------------------------------------

    def save(self) -> None:
        """Merge this process's changes into state.json (atomically) and empty the journal.

        The caller holds the root lock: state.json is re-read and the changes replayed onto
        it, so records another process wrote since this one read them are kept.

        Raises:
            LocalIOError: it cannot be written.
        """
        with self._save_lock:
            with self._lock:
                ops = list(self._ops)
            if not ops and not self.journal.exists():
                return
            fresh = self._read()
            for op in ops:
                op(fresh)
            data = {"version": STATE_VERSION, "files": {k: s.to_dict() for k, s in sorted(fresh.items())}}
            try:
                atomic_write(self.path, (json.dumps(data, indent=1) + "\n").encode())
                self.journal.unlink(missing_ok=True)
            except OSError as err:
                msg = f"cannot write the state file '{self.path}': {err.strerror}"
                raise LocalIOError(msg) from None
            with self._lock:
                del self._ops[: len(ops)]
                for op in self._ops:  # changes made while the file was written
                    op(fresh)
                self._stamps = fresh

    # -- recording -----------------------------------------------------------------------------

    def _apply(self, op: _Op) -> None:
        with self._lock:
            op(self._stamps)
            self._ops.append(op)

    def record(
        self, local_path: str, st: os.stat_result, digest: Digest | None, *, owner: str | None = None
    ) -> None:
        """Remember what the file at `local_path` hashed to (None: not hashed); `owner` adds a
        claim. Whether wanmodels placed it carries over only to the very same inode."""
        generation = inode_generation(self.root / local_path)

        def op(stamps: dict[str, Stamp]) -> None:
            old = stamps.get(local_path)
            stamp = Stamp.of(st, digest, generation)
            if old is not None and old.placed and old.same_inode(st, generation):
                stamp = replace(stamp, generation=old.generation, placed=True, owners=old.owners)
            if owner is not None and stamp.placed and owner not in stamp.owners:
                stamp = replace(stamp, owners=(*stamp.owners, owner))
            _set(stamps, local_path, stamp)

        self._apply(op)

    def record_placed(self, local_path: str, stamp: Stamp, owner: str) -> None:
        """Remember a file wanmodels has just placed for the manifest `owner` (see `journal_placed`)."""
        self._apply(lambda stamps: _placed(stamps, local_path, stamp, owner))

    def journal_placed(self, local_path: str, stamp: Stamp, owner: str) -> None:
        """Append a placement about to happen to the journal, durably, before its rename.

        Best effort: a journal that cannot be written only means a kill before the next save
        would forget this placement.
        """
        line = {**stamp.to_dict(), "path": local_path, "owner": owner}
        try:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                os.write(fd, (json.dumps(line) + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass

    def claim(self, local_path: str, owner: str) -> None:
        """Count `owner` among the manifests that select a file wanmodels placed."""

        def op(stamps: dict[str, Stamp]) -> None:
            old = stamps.get(local_path)
            if old is not None and old.placed and owner not in old.owners:
                _set(stamps, local_path, replace(old, owners=(*old.owners, owner)))

        self._apply(op)

    def disown(self, local_path: str, owner: str) -> Stamp | None:
        """Drop `owner`'s claim on a placed file; returns the stamp as it was."""
        with self._lock:
            old = self._stamps.get(local_path)

        def op(stamps: dict[str, Stamp]) -> None:
            was = stamps.get(local_path)
            if was is not None and owner in was.owners:
                _set(stamps, local_path, replace(was, owners=tuple(o for o in was.owners if o != owner)))

        self._apply(op)
        return old

    def forget(self, local_path: str) -> None:
        def op(stamps: dict[str, Stamp]) -> None:
            stamps.pop(local_path, None)

        self._apply(op)

    def stamps(self) -> dict[str, Stamp]:
        with self._lock:
            return dict(self._stamps)

    def stamp(self, local_path: str) -> Stamp | None:
        with self._lock:
            return self._stamps.get(local_path)

    def placed_by(self, owner: str) -> dict[str, Stamp]:
        """Files wanmodels placed that `owner` placed or claimed."""
        with self._lock:
            return {p: s for p, s in self._stamps.items() if s.placed and owner in s.owners}

    def is_ours(self, local_path: str) -> bool:
        """Whether the file at `local_path` is the very inode wanmodels placed there (a symlink
        never is: wanmodels makes none)."""
        stamp = self.stamp(local_path)
        if stamp is None or not stamp.placed:
            return False
        try:
            target = safe_join(self.root, local_path)
            st = target.lstat()
        except (OSError, ValueError):
            return False
        return stat.S_ISREG(st.st_mode) and stamp.same_inode(st, inode_generation(target))

    # -- looking -------------------------------------------------------------------------------

    def inspect(
        self, local_path: str, size: int, digest: Digest, *, hashing: Hashing = Hashing.CHANGED
    ) -> LocalState:
        """One look at a target and, when it is not complete, at its partial download.

        A target that is not a regular file counts as the wrong size; hashing happens only as
        `hashing` allows, and an unchanged file the records vouch for is never re-read. A file
        found wrong stays recorded as wanmodels' when it is (so it can be repaired), and as
        wrong, so a later look without hashing knows it is damaged.
        """
        try:
            target = safe_join(self.root, local_path)
        except ValueError:
            return LocalState(Check.MISSING)
        try:
            st = target.stat()  # a symlinked file is judged by what it points at
        except OSError:
            # A dangling symlink is still something of the user's at the target.
            check = Check.NOT_FILE if target.is_symlink() else Check.MISSING
            return self._with_part(LocalState(check), local_path, size, digest)
        if not stat.S_ISREG(st.st_mode):
            self.forget(local_path)
            return self._with_part(LocalState(Check.NOT_FILE), local_path, size, digest)
        stamp = self.stamp(local_path)
        if st.st_size != size:
            self.record(local_path, st, None)
            state = LocalState(Check.WRONG_SIZE, st.st_size, ours=self.is_ours(local_path))
            return self._with_part(state, local_path, size, digest)
        if hashing is not Hashing.ALWAYS and stamp is not None and stamp.vouches(st, digest):
            return LocalState(Check.OK, size)
        if hashing is Hashing.NEVER:
            if stamp is not None and stamp.unchanged(st) and stamp.digest is not None:
                # Hashed before, to something else, and unchanged since: still wrong.
                state = LocalState(Check.WRONG_HASH, size, stamp.digest, ours=self.is_ours(local_path))
                return self._with_part(state, local_path, size, digest)
            return LocalState(Check.UNHASHED, size)
        try:
            actual = hash_file(target, digest.algorithm, size)
        except OSError:
            return LocalState(Check.UNREADABLE, size, ours=self.is_ours(local_path))
        with self._lock:
            self.hashed_bytes += size
        # Record only the file as it was hashed: if it changed meanwhile, hash it next time.
        with contextlib.suppress(OSError):
            if Stamp.of(target.stat(), None) == Stamp.of(st, None):
                self.record(local_path, st, actual)
        if actual != digest:
            state = LocalState(Check.WRONG_HASH, size, actual, ours=self.is_ours(local_path))
            return self._with_part(state, local_path, size, digest)
        return LocalState(Check.OK, size, actual)

    def _with_part(self, state: LocalState, local_path: str, size: int, digest: Digest) -> LocalState:
        info = part_info(partial_folder(self.root), local_path, digest, size)
        if info is None:
            return state
        return replace(state, part_bytes=info.done_bytes, part_reserved=info.reserved)


def _set(stamps: dict[str, Stamp], local_path: str, stamp: Stamp) -> None:
    stamps[local_path] = stamp


def _placed(stamps: dict[str, Stamp], local_path: str, stamp: Stamp, owner: str) -> None:
    """Record `stamp` as placed for `owner`; claims on the same path carry over (another
    manifest that selects the path still selects it)."""
    old = stamps.get(local_path)
    owners = tuple(o for o in (old.owners if old and old.placed else ()) if o != owner)
    stamps[local_path] = replace(stamp, placed=True, owners=(*owners, owner))


def _read_bounded(path: Path) -> str | None:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    if len(data) > _MAX_RECORD_BYTES:
        return None
    return data.decode("utf-8", errors="replace")


def _load_state(path: Path) -> dict[str, Stamp]:
    text = _read_bounded(path)
    if text is None:
        return {}
    try:
        raw = json.loads(text)
        if raw.get("version") not in (2, STATE_VERSION):
            return {}
        entries = raw["files"].items()
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return {}
    stamps = {}
    for path_key, entry in entries:
        # A damaged entry is forgotten (its file gets re-hashed), not the whole state.
        with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
            stamps[str(path_key)] = Stamp.from_dict(entry)
    return stamps


def _journal_lines(path: Path) -> list[dict[str, Any]]:
    text = _read_bounded(path)
    if not text:
        return []
    lines = []
    for raw in text.splitlines():
        # A line cut by a kill, or damaged, is skipped: it can only make a placement unknown.
        with contextlib.suppress(ValueError, RecursionError):
            line = json.loads(raw)
            if isinstance(line, dict):
                lines.append(line)
    return lines
