"""Filesystem safety: turning repo paths into disk paths under a root, and atomic writes.

Every path that comes from a manifest or from the server passes through `check_relative`
(pure, before the disk is touched) and `safe_join`, so no such path can name anything outside
the model root. Folder symlinks inside the root are the user's (wanmodels makes none; ComfyUI
users link `loras/` to another disk) and are followed; a symlink at a target is never written
through (see `wanmodels.store.place`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Final, cast

from wanmodels._text import shorten

MAX_NAME_BYTES: Final = 255  # a file or folder name, on every common file system
MAX_PATH_BYTES: Final = 2048  # a path under the root (Linux allows 4096 for the whole path)
# Characters that change the order text is shown in: a name holding one reads as another name
# ("model\u202egpj.exe" shows as "modelexe.jpg").
DIRECTION_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def check_relative(path: str) -> str | None:
    """Return why `path` is not a safe relative POSIX path, or None when it is."""
    if not path or path.strip() != path:
        return "is empty or has surrounding spaces"
    if "\0" in path:
        return "contains a NUL byte"
    try:
        encoded = path.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a character no file system can store (a lone surrogate)"
    control = next((c for c in path if c in DIRECTION_CONTROLS), None)
    if control is not None:
        return f"contains U+{ord(control):04X}, a text-direction control that makes a name read as another"
    if len(encoded) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in path.split("/")):
        return f"has a name longer than {MAX_NAME_BYTES} bytes, more than file systems store"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "is absolute"
    parts = PurePosixPath(path).parts
    if any(part == ".." for part in parts):
        return "contains '..'"
    if any(part in ("", ".") for part in path.split("/")):
        return "has an empty or '.' component"
    return None


def safe_join(root: Path, relative: str) -> Path:
    """Join a relative POSIX path onto `root`, refusing any that could climb out of it.

    Raises:
        ValueError: the path is empty, absolute, has `..` or a component no filesystem stores.
    """
    reason = check_relative(relative)
    if reason is not None:
        msg = f"path {shorten(repr(relative))} {reason}"
        raise ValueError(msg)
    return root.joinpath(*PurePosixPath(relative).parts)


# FS_IOC_GETVERSION: the inode's generation number, which changes when an inode number is reused.
_GETVERSION: Final = 0x80087601


def inode_generation(path: Path) -> int | None:
    """The generation of the inode at `path` (not following a final symlink), None where the
    filesystem keeps none (or it cannot be opened): with the inode number it tells "the very file"
    from "a new file that got the old one's number", which ext4 hands out again at once."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, _GETVERSION, buf, True)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int.from_bytes(buf[:4], sys.byteorder)


def preallocate(fd: int, size: int) -> bool:
    """Reserve the blocks of the first `size` bytes of `fd` (without writing them); False where the
    filesystem or the platform cannot, which leaves the file sparse.

    Many connections writing one sparse file at scattered offsets make the kernel allocate its
    blocks piece by piece (on ext4 2-3x the CPU of the same writes into reserved blocks, measured),
    and a full disk then shows only mid-transfer. This calls fallocate(2) itself: glibc's
    `posix_fallocate` (`os.posix_fallocate`), where the filesystem has no fallocate (NFSv3, some
    FUSE), writes a byte into every block instead, 8 million writes for a 32 GB file.
    """
    call = _fallocate()
    if call is None or size <= 0:
        return False
    return call(fd, 0, 0, size) == 0


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate(2) with 64-bit offsets, or None off Linux (imported when a part opens)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = getattr(libc, "fallocate64", None) or libc.fallocate
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    call.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", call)


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask: from /proc where Linux shows it, else by setting it and setting it
    straight back (under a lock, so two threads never leave the wrong one behind)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


class TooLarge(ValueError):
    """Raised by `read_at_most` for a file longer than its limit."""


def read_at_most(path: Path, limit: int) -> bytes:
    """The bytes of a file we parse (a manifest, a lockfile, a workflow), refusing one longer than
    `limit` after reading no more than that: a hostile 1 GB file costs nothing.

    Raises:
        TooLarge: the file holds more than `limit` bytes.
        OSError: it cannot be read.
    """
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        msg = f"larger than {limit >> 20} MiB"
        raise TooLarge(msg)
    return data


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename survives a crash (no-op where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """Write to a temp file beside `path`, fsync it, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    `durable=False` skips the fsyncs: a process kill still leaves old or new, a power loss
    may leave neither (for files that are cheap to lose).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file 0600; records and manifests are read by others on a shared root.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Atomically replace `path` with `data` (see `atomic_writer`)."""
    with atomic_writer(path, durable=durable) as f:
        f.write(data)
