"""Place a file's bytes from another file on this machine: linked or copied, hashed, atomic.

The bytes land under a temporary name beside the target (a hard link, which needs no write
permission on the source; or a copy, hashed as it is written and fsynced, when linking fails
for any reason: another filesystem, links refused), are checked against the target's digest,
and only then renamed into place. Wrong bytes are never placed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from wanmodels._fs import fsync_dir, safe_join
from wanmodels.errors import IntegrityError, Interrupted, LocalIOError
from wanmodels.integrity import READ_SIZE, Digest, Hasher
from wanmodels.planner import PlannedFile


@dataclass(frozen=True, slots=True)
class Placed:
    """A reused file put in place."""

    stat: os.stat_result
    linked: bool  # a hard link (no bytes written) rather than a copy


def place_reused(
    root: Path,
    item: PlannedFile,
    source: Path,
    *,
    vouched: Callable[[os.stat_result], bool],
    cancel: threading.Event,
) -> Placed:
    """Put `source`'s bytes at `item`'s target, atomically, only if they hash to its digest.

    Links `source` to a temporary name beside the target (copies it there, hashing as it
    writes and then fsyncing, when linking fails for any reason), checks size and digest
    unless `vouched` says these exact bytes were already checked, then renames it into place.

    Raises:
        IntegrityError: the bytes are not `item`'s (nothing is placed).
        LocalIOError: the target is unsafe or cannot be written; the source cannot be read.
        Interrupted: `cancel` was set (nothing is placed).
    """
    try:
        target = safe_join(root, item.local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as err:
        msg = f"cannot place '{item.local_path}': {err}"
        raise LocalIOError(msg) from None
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.reuse")
    try:
        linked = _try_link(source, tmp)
        if linked:
            st = tmp.stat()
            actual = None if st.st_size == item.size and vouched(st) else _hash_path(tmp, item, cancel)
        else:
            actual = _copy(source, tmp, item, cancel)
        if actual is not None and actual != item.digest:
            msg = f"'{source}' is not '{item.local_path}': expected {item.digest} got {actual}"
            raise IntegrityError(msg, path=item.local_path, expected=str(item.digest), actual=actual.short)
        safe_join(root, item.local_path)  # re-check: a symlink may have appeared meanwhile
        os.replace(tmp, target)
        fsync_dir(target.parent)
        return Placed(target.stat(), linked)
    except (OSError, ValueError) as err:
        msg = f"cannot place '{item.local_path}' from '{source}': {err}"
        raise LocalIOError(msg) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _try_link(source: Path, tmp: Path) -> bool:
    try:
        os.link(source, tmp)  # follows a symlinked blob to its file
    except OSError:
        return False  # another filesystem, links refused (protected_hardlinks), unsupported...
    return True


def _hash_path(path: Path, item: PlannedFile, cancel: threading.Event) -> Digest:
    with path.open("rb", buffering=0) as f:
        return hash_stream_exact(f, item.digest.algorithm, item.size, None, cancel)


def _copy(source: Path, tmp: Path, item: PlannedFile, cancel: threading.Event) -> Digest:
    """Copy `source` to a new `tmp`, hashing the bytes as they are written; fsync it."""
    with source.open("rb", buffering=0) as src:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb", buffering=0) as dst:
            actual = hash_stream_exact(src, item.digest.algorithm, item.size, dst, cancel)
            os.fsync(dst.fileno())
    return actual


def hash_stream_exact(
    src: BinaryIO, algorithm: str, size: int, dst: BinaryIO | None, cancel: threading.Event
) -> Digest:
    """Hash `src` to its end, writing each chunk to `dst` too when given.

    Raises:
        IntegrityError: `src` does not hold exactly `size` bytes.
        Interrupted: `cancel` was set.
    """
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    total = 0
    hasher = Hasher(algorithm, size)  # type: ignore[arg-type]
    while total <= size:
        if cancel.is_set():
            msg = "interrupted while placing a reused file; nothing was placed"
            raise Interrupted(msg)
        n = src.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        total += n
        hasher.update(view[:n])
        if dst is not None:
            dst.write(view[:n])
    if total != size:
        got = f"{total:,} bytes" if total < size else f"more than {size:,} bytes"
        msg = f"expected {size:,} bytes, found {got}"
        raise IntegrityError(msg, path="", expected=f"{size:,} bytes", actual=got)
    return hasher.digest()
