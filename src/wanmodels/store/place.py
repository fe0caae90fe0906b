"""Put verified bytes at a target: the one rename into the root, and how reused bytes arrive.

Every file wanmodels places goes through `Placer.put`: the target is checked first (a file
wanmodels did not place is never replaced, unless `--replace` asked for it to be moved aside
under `.wanmodels/replaced/`), the placement is journaled, then the ready file is renamed
over the target and the rename made durable. Reused bytes land under a temporary name beside
the target first, as a copy (small files: each root owns its configs), a reflink (copy on
write: an edit never reaches the other copy) or a hard link made read-only (one inode shared
with the cache: an edit would change both), are checked against the digest, then put.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from wanmodels._fs import fsync_dir, inode_generation, safe_join
from wanmodels._text import human_bytes
from wanmodels.config import LinkMode
from wanmodels.digests import Digest, hash_exact
from wanmodels.errors import ConflictError, IntegrityError, LocalIOError
from wanmodels.layout import replaced_folder
from wanmodels.planning.plan import Check, LocalState, PlannedFile
from wanmodels.results import Link
from wanmodels.store.state import Stamp, StateCache

# Below this, `auto` copies: configs, tokenizers and indexes are cheap to own, and edited most.
SMALL_FILE: Final = 4 << 20
_FICLONE: Final = 0x40049409  # ioctl(dst, FICLONE, src): share src's extents, copy on write


@dataclass(frozen=True, slots=True)
class Placement:
    """A file put in place: what it is on disk now, and what happened on the way."""

    stat: os.stat_result
    link: Link | None = None  # for reused bytes: how they arrived
    moved_aside: Path | None = None  # where the user's file that was there went (--replace)


def conflict(root: Path, item: PlannedFile, found: LocalState | None, fix: str) -> ConflictError:
    """The refusal for a target held by a file wanmodels did not place; `fix` is the command
    that moves it aside instead."""
    if found is not None and found.check is Check.NOT_FILE:
        what = "something that is not a regular file"
    elif found is not None and found.size is not None:
        what = f"a file of {human_bytes(found.size)}"
        if found.actual is not None:
            what += f" that hashes to {found.actual.short}"
        elif found.size != item.size:
            what += f" (the manifest's file has {human_bytes(item.size)})"
    else:
        what = "a file"
    msg = (
        f"'{item.local_path}' (in {root}) holds {what} that wanmodels did not place and that is "
        f"not the manifest's file ({item.digest.short}); it was left as it is"
    )
    hint = f"Move it away, or run `{fix}` to move it aside under .wanmodels/replaced/."
    return ConflictError(msg, path=item.local_path, hint=hint)


@dataclass
class Placer:
    """Places the files of one run into one root, for one manifest."""

    root: Path
    cache: StateCache
    owner: str
    replace_foreign: bool = False
    link_mode: LinkMode = LinkMode.AUTO
    fix: str = "wanmodels download --replace"  # the command that allows moving a file aside
    _run: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))

    # -- the one rename ------------------------------------------------------------------------

    def put(self, item: PlannedFile, ready: Path) -> Placement:
        """Rename `ready` (verified bytes, on the target's filesystem) over `item`'s target.

        Raises:
            ConflictError: a file wanmodels did not place holds the target and moving it
                aside was not asked for (nothing is placed).
            LocalIOError: the target is unsafe or cannot be written.
        """
        try:
            target = safe_join(self.root, item.local_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            aside = None
            with contextlib.suppress(FileNotFoundError):
                target.lstat()
                if not self.cache.is_ours(item.local_path):
                    if not self.replace_foreign:
                        raise conflict(self.root, item, item.foreign, self.fix)
                    aside = self._move_aside(item.local_path, target)
            st = ready.stat()
            stamp = Stamp.of(st, item.digest, inode_generation(ready))
            self.cache.journal_placed(item.local_path, stamp, self.owner)
            safe_join(self.root, item.local_path)  # re-check: a symlink may have appeared meanwhile
            os.replace(ready, target)
            fsync_dir(target.parent)
        except (OSError, ValueError) as err:
            msg = f"cannot place '{item.local_path}': {err}"
            raise LocalIOError(msg) from None
        self.cache.record_placed(item.local_path, stamp, self.owner)
        return Placement(st, moved_aside=aside)

    def _move_aside(self, local_path: str, target: Path) -> Path:
        """Move the user's file at `target` under `.wanmodels/replaced/<run>/`, never deleting it;
        beside itself when that is another filesystem (a symlinked folder on another disk)."""
        aside = replaced_folder(self.root) / self._run / local_path
        aside.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(target, aside)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            aside = target.with_name(f"{target.name}.replaced-{self._run}")
            os.rename(target, aside)
        return aside

    # -- a download's part ---------------------------------------------------------------------

    def place_part(self, item: PlannedFile, part: Path, cancel: threading.Event) -> Placement:
        """Put a verified part in place; across filesystems (a symlinked folder on another disk)
        it is copied beside the target first, hashed again as it is copied.

        Raises:
            ConflictError, LocalIOError: as `put`; IntegrityError: the copy came out different.
        """
        if not _other_device(part, self._tmp_beside(item).parent):
            return self.put(item, part)
        copied = self.place_reused(item, part, vouched=lambda st: False, cancel=cancel, mode=LinkMode.COPY)
        with contextlib.suppress(OSError):
            part.unlink()
        return Placement(copied.stat, moved_aside=copied.moved_aside)

    # -- bytes from elsewhere on this machine --------------------------------------------------

    def place_reused(
        self,
        item: PlannedFile,
        source: Path,
        *,
        vouched: Callable[[os.stat_result], bool],
        cancel: threading.Event,
        mode: LinkMode | None = None,
    ) -> Placement:
        """Put `source`'s bytes at `item`'s target, only if they hash to its digest.

        The bytes arrive beside the target as `mode` (default: the run's link mode) says; they
        are hashed unless `vouched` says these exact bytes were already checked.

        Raises:
            IntegrityError: the bytes are not `item`'s (nothing is placed).
            ConflictError: as `put`.
            LocalIOError: the target is unsafe or cannot be written; the source cannot be read.
            Interrupted: `cancel` was set (nothing is placed).
        """
        tmp = self._tmp_beside(item)
        try:
            link, actual = self._arrive(item, source, tmp, vouched, cancel, mode or self.link_mode)
            if actual is not None:
                self._check(item, actual, source)
            placed = self.put(item, tmp)
        except OSError as err:
            msg = f"cannot place '{item.local_path}' from '{source}': {err}"
            raise LocalIOError(msg) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return Placement(placed.stat, link, placed.moved_aside)

    def _arrive(
        self,
        item: PlannedFile,
        source: Path,
        tmp: Path,
        vouched: Callable[[os.stat_result], bool],
        cancel: threading.Event,
        mode: LinkMode,
    ) -> tuple[Link, Digest | None]:
        """Bring the bytes to `tmp`; the digest they hashed to, None when they were vouched for."""
        small = item.size < SMALL_FILE
        if mode is LinkMode.CLONE or (mode is LinkMode.AUTO and not small):
            before = source.stat()
            if _clone(source, tmp):
                same = before.st_size == item.size and _same_stat(before, source.stat()) and vouched(before)
                return Link.CLONE, None if same else _hash_path(tmp, item, cancel)
        if (mode is LinkMode.HARDLINK or (mode is LinkMode.AUTO and not small)) and _hard_link(source, tmp):
            st = tmp.stat()
            actual = None if st.st_size == item.size and vouched(st) else _hash_path(tmp, item, cancel)
            return Link.HARDLINK, actual
        with source.open("rb", buffering=0) as src:
            return Link.COPY, _copy_hashed(src, tmp, item, cancel)

    # -- helpers -------------------------------------------------------------------------------

    def _tmp_beside(self, item: PlannedFile) -> Path:
        """A short temporary name in the target's folder (made if missing; a long file name would
        not fit twice)."""
        try:
            target = safe_join(self.root, item.local_path)
            target.parent.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as err:
            msg = f"cannot place '{item.local_path}': {err}"
            raise LocalIOError(msg) from None
        return target.with_name(f".wm-{secrets.token_hex(6)}.tmp")

    @staticmethod
    def _check(item: PlannedFile, actual: Digest, source: Path) -> None:
        if actual != item.digest:
            msg = f"'{source}' is not '{item.local_path}': expected {item.digest} got {actual}"
            raise IntegrityError(msg, path=item.local_path, expected=str(item.digest), actual=actual.short)


def _other_device(source: Path, folder: Path) -> bool:
    try:
        return source.stat().st_dev != folder.stat().st_dev
    except OSError:
        return False


def _same_stat(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_size, b.st_mtime_ns)


def _hard_link(source: Path, tmp: Path) -> bool:
    """Hard-link `source` to `tmp` and make that one inode read-only: it is shared with the cache
    (or another root) now, and an edit in place would change both. False when either fails."""
    try:
        os.link(source, tmp)  # follows a symlinked blob (huggingface_hub's shared store)
    except OSError:
        return False  # another filesystem, links refused (protected_hardlinks), unsupported...
    try:
        os.chmod(tmp, stat.S_IMODE(tmp.stat().st_mode) & ~0o222)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False  # not ours to protect (another user's cache): copy it instead
    return True


def _clone(source: Path, tmp: Path) -> bool:
    """Reflink `source` to a new `tmp`; False where the filesystem cannot (nothing left behind)."""
    try:
        src = os.open(source, os.O_RDONLY)
    except OSError:
        return False
    try:
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError:
        os.close(src)
        return False
    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError:
        os.close(dst)
        with contextlib.suppress(OSError):
            tmp.unlink()
        return False
    finally:
        os.close(src)
    os.close(dst)
    return True


def _hash_path(path: Path, item: PlannedFile, cancel: threading.Event) -> Digest:
    with path.open("rb", buffering=0) as f:
        return hash_exact(f, item.digest.algorithm, item.size, cancel=cancel)


def _copy_hashed(src: BinaryIO, tmp: Path, item: PlannedFile, cancel: threading.Event) -> Digest:
    """Copy `src` to a new `tmp`, hashing the bytes as they are written; fsync it."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb", buffering=0) as dst:
        actual = hash_exact(src, item.digest.algorithm, item.size, dst=dst, cancel=cancel)
        os.fsync(dst.fileno())
    return actual
