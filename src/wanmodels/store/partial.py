"""Partial downloads: the bytes received so far of an unfinished file, and which ranges they are.

```
<root>/.wanmodels/partial/<key>.part      bytes at their final offsets (its blocks reserved up front)
<root>/.wanmodels/partial/<key>.journal   a JSON header line, then "start end" per write
```
Several connections may fill one part at different offsets, so its length says nothing
about what arrived. Each write appends its range to the journal right after the bytes
reach the file; a killed process leaves bytes and journal consistent up to the last
completed write, so the next run fetches exactly the ranges that are missing. A torn
last line is ignored. A part without a journal is a complete file whose placing was cut
short (the journal is removed just before the rename, see `wanmodels.transfer.fetch.finish`): it is
read as a whole prefix, and placed with no byte fetched. Power loss can leave a journal line whose bytes never
reached the disk: the digest check before placing catches it and the file is fetched again.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wanmodels._fs import atomic_write, preallocate
from wanmodels.digests import Digest
from wanmodels.errors import DiskFullError, LocalIOError

JOURNAL_VERSION: Final = 1
Extent = tuple[int, int]  # half-open byte range [start, end)


def part_key(local_path: str, digest: Digest) -> str:
    """The name of a file's part: keyed on target and content, so a changed pin starts afresh."""
    return hashlib.sha256(f"{local_path}\n{digest}".encode()).hexdigest()[:32]


def merge(extents: list[Extent]) -> list[Extent]:
    """The sorted union of byte ranges, adjacent ones joined."""
    out: list[Extent] = []
    for start, end in sorted(e for e in extents if e[1] > e[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def gaps(done: list[Extent], size: int) -> list[Extent]:
    """The ranges of `[0, size)` not covered by the merged extents `done`."""
    out: list[Extent] = []
    at = 0
    for start, end in done:
        if start > at:
            out.append((at, min(start, size)))
        at = max(at, end)
    if at < size:
        out.append((at, size))
    return [g for g in out if g[1] > g[0]]


@dataclass(frozen=True, slots=True)
class PartInfo:
    """What a part holds, read without opening it for writing (for `status` and planning)."""

    local_path: str
    size: int
    digest: Digest | None
    done: tuple[Extent, ...]
    reserved: int = 0  # disk the part occupies (its blocks are reserved when it opens), at most its size

    @property
    def done_bytes(self) -> int:
        return sum(end - start for start, end in self.done)


class PartFile:
    """An open partial download, written by one or more connections at once; thread-safe."""

    def __init__(self, folder: Path, local_path: str, size: int, digest: Digest) -> None:
        key = part_key(local_path, digest)
        self.path = folder / f"{key}.part"
        self.journal_path = folder / f"{key}.journal"
        self.local_path = local_path
        self.size = size
        self.digest = digest
        self._lock = threading.Lock()
        self.changed = threading.Condition(self._lock)
        self._done: list[Extent] = []
        self._fd = -1
        self._jfd = -1
        self.resumed_bytes = 0
        self.generation = 0  # bumped by `reset`, so readers of the prefix know to start over
        self._wakes = 0  # bumped by `poke`, so waiters return at once
        self._awaited: list[int] = []  # what each `wait_prefix` waits to pass: writes below wake no one

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> PartFile:
        """Open (creating) the part and its journal; what they already hold counts as done.

        Raises:
            LocalIOError: the partial folder cannot be created or the files cannot be opened.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            done = self._recover()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if not done or os.fstat(self._fd).st_size > self.size:
                os.ftruncate(self._fd, self.size if done else 0)
            self._write_journal(done)
            self._jfd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
            # Only now that the journal says what the part holds: a part of full length without
            # one reads as a finished file (module docstring).
            preallocate(self._fd, self.size)
        except OSError as err:
            self.close()
            msg = f"cannot open the partial download of '{self.local_path}': {err.strerror}"
            raise LocalIOError(msg) from None
        self._done = done
        self.resumed_bytes = sum(e - s for s, e in done)
        return self

    def _recover(self) -> list[Extent]:
        info = part_info(self.path.parent, self.local_path, self.digest, self.size)
        return list(info.done) if info is not None else []

    def _write_journal(self, done: list[Extent]) -> None:
        header = {
            "version": JOURNAL_VERSION,
            "local": self.local_path,
            "size": self.size,
            "digest": str(self.digest),
        }
        lines = [json.dumps(header)] + [f"{s} {e}" for s, e in done]
        atomic_write(self.journal_path, ("\n".join(lines) + "\n").encode(), durable=False)

    def close(self) -> None:
        for name in ("_fd", "_jfd"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    def delete(self) -> None:
        """Close and remove the part and its journal (after placing, or when its bytes are wrong).

        Raises:
            LocalIOError: one of them cannot be removed.
        """
        self.close()
        for path in (self.path, self.journal_path):
            self._unlink(path)

    def forget_journal(self) -> None:
        """Drop the journal of a part that holds every byte (it is about to be placed).

        Raises:
            LocalIOError: it cannot be removed (the part is then not placed).
        """
        with self._lock:
            if self._jfd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._jfd)
                self._jfd = -1
        self._unlink(self.journal_path)

    def _unlink(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            msg = f"cannot remove '{path.name}', a partial file of '{self.local_path}': {err.strerror}"
            raise LocalIOError(msg) from None

    def reset(self) -> None:
        """Forget every byte: the server sent something other than what was asked for."""
        with self._lock:
            self._done = []
            self.generation += 1
            try:
                os.ftruncate(self._fd, 0)
                self._write_journal([])
                os.close(self._jfd)
                self._jfd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
            except OSError as err:
                msg = f"cannot reset the partial download of '{self.local_path}': {err.strerror}"
                raise LocalIOError(msg) from None
            self.changed.notify_all()

    # -- bytes ---------------------------------------------------------------------------------

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write `data` at `offset`, then record the range in the journal.

        Raises:
            DiskFullError: the disk is full (what was written stays, for a later resume).
            LocalIOError: any other write failure.
        """
        view = memoryview(data)
        at = offset
        generation = self.generation
        try:
            while view:
                n = os.pwrite(self._fd, view, at)
                if n <= 0:
                    raise OSError(errno.ENOSPC, "no progress writing to disk")
                view = view[n:]
                at += n
            with self._lock:
                if self.generation != generation:
                    return  # a reset came between: those bytes belong to the forgotten part
                os.write(self._jfd, b"%d %d\n" % (offset, at))
                self._add((offset, at))
                if self._awaited and self._prefix() > min(self._awaited):
                    self.changed.notify_all()
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                msg = f"disk full while writing '{self.local_path}'; the partial download is kept"
                raise DiskFullError(
                    msg, hint="Free some space and re-run the same command to resume."
                ) from None
            msg = f"cannot write the partial download of '{self.local_path}': {err.strerror}"
            raise LocalIOError(msg) from None

    def _add(self, extent: Extent) -> None:
        """Add to the sorted, disjoint `_done` (lock held); it holds about one extent per connection."""
        last = self._done[-1] if self._done else None
        if last is not None and last[1] == extent[0]:
            self._done[-1] = (last[0], extent[1])  # the common case: a stream growing its own run
            return
        i = bisect.bisect_left(self._done, extent)
        before = self._done[i - 1] if i else None
        after = self._done[i] if i < len(self._done) else None
        if before is not None and before[1] == extent[0] and (after is None or after[0] > extent[1]):
            self._done[i - 1] = (before[0], extent[1])
            return
        self._done = merge([*self._done, extent])

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def sync(self) -> None:
        """Flush the part's bytes to disk (before it is renamed into place)."""
        try:
            os.fsync(self._fd)
        except OSError as err:
            msg = f"cannot flush '{self.local_path}' to disk: {err.strerror}"
            raise LocalIOError(msg) from None

    def flush_async(self) -> None:
        """Write dirty pages back now (this blocks: callers run it on a thread of its own), so the
        fsync before placing waits only for the tail."""
        with contextlib.suppress(OSError):
            os.fdatasync(self._fd)

    def disk_size(self) -> int:
        return os.fstat(self._fd).st_size

    # -- what is there -------------------------------------------------------------------------

    @property
    def done(self) -> list[Extent]:
        with self._lock:
            return list(self._done)

    @property
    def done_bytes(self) -> int:
        with self._lock:
            return sum(e - s for s, e in self._done)

    def missing(self) -> list[Extent]:
        with self._lock:
            return gaps(self._done, self.size)

    def _prefix(self) -> int:
        return self._done[0][1] if self._done and self._done[0][0] == 0 else 0

    def wait_prefix(self, beyond: int, timeout: float) -> tuple[int, int]:
        """Block until the prefix grows past `beyond` (or `timeout`, or a reset).

        Writes that leave the prefix at or below `beyond` do not wake the waiter: a thread
        woken for every write received costs more CPU than the hashing it does.
        Returns the prefix and the generation it belongs to.
        """
        with self._lock:
            generation, wakes = self.generation, self._wakes
            self._awaited.append(beyond)
            try:
                self.changed.wait_for(
                    lambda: self._prefix() > beyond or self.generation != generation or self._wakes != wakes,
                    timeout=timeout,
                )
            finally:
                self._awaited.remove(beyond)
            return self._prefix(), self.generation

    def poke(self) -> None:
        """Wake anything waiting on this part (a transfer stopped)."""
        with self._lock:
            self._wakes += 1
            self.changed.notify_all()


def read_part(part: Path, journal: Path) -> PartInfo | None:
    """What a part holds, from its journal (or, for an older part without one, its length)."""
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        try:
            st = part.stat()
        except OSError:
            return None
        length = st.st_size
        return PartInfo("", -1, None, ((0, length),) if length else (), _reserved(st, length))
    except OSError:
        return None
    try:
        st = part.stat()
    except OSError:
        return None  # a journal whose bytes are gone (placed, or deleted by hand) promises nothing
    length = st.st_size
    lines = raw.split(b"\n")
    try:
        header = json.loads(lines[0])
        if header.get("version") != JOURNAL_VERSION:
            return None
        size = int(header["size"])
        digest = Digest.parse(str(header["digest"]))
        local = str(header["local"])
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # a damaged journal promises nothing: the part starts again
    extents: list[Extent] = []
    # The last element is what follows the final newline: empty, or a torn line from a kill.
    for line in lines[1:-1]:
        start, _, end = line.partition(b" ")
        if start.isdigit() and end.isdigit() and int(start) < int(end) <= min(size, length):
            extents.append((int(start), int(end)))
    return PartInfo(local, size, digest, tuple(merge(extents)), _reserved(st, size))


def _reserved(st: os.stat_result, size: int) -> int:
    return min(st.st_blocks * 512, max(size, 0))


def list_parts(folder: Path) -> Iterator[PartInfo]:
    """Every journal-backed part in a partial folder."""
    with contextlib.suppress(OSError):
        for journal in sorted(folder.glob("*.journal")):
            info = read_part(journal.with_suffix(".part"), journal)
            if info is not None and info.digest is not None:
                yield info


def part_info(folder: Path, local_path: str, digest: Digest, size: int) -> PartInfo | None:
    """What the part of one target holds, if it has one that can continue."""
    key = part_key(local_path, digest)
    info = read_part(folder / f"{key}.part", folder / f"{key}.journal")
    if info is None or info.digest not in (None, digest) or info.size not in (-1, size):
        return None
    if info.size == -1 and info.done_bytes > size:
        return None  # an old prefix part longer than the file cannot be a prefix of it
    return info


def drop_superseded(folder: Path, pinned: dict[str, Digest]) -> int:
    """Delete the parts of `pinned` targets that were for other content (an older pin): nothing
    can ever resume them, and one can be 30 GB. Returns the bytes they held."""
    freed = 0
    for info in list_parts(folder):
        wanted = pinned.get(info.local_path)
        if wanted is None or info.digest is None or info.digest == wanted:
            continue
        key = part_key(info.local_path, info.digest)
        for name in (f"{key}.part", f"{key}.journal"):
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        freed += info.done_bytes
    return freed
