"""Watch a running download's partial bytes from outside, kill it at a chosen point, and read the server log.

A part written by several connections is sparse: its length on disk says nothing about what arrived.
wanmodels appends "start end" to the part's journal after every write, so the journal is what tells how
many bytes are really kept (`wanmodels.store.partial.list_parts` reads it exactly; `JournalWatch` tails it
cheaply while the download runs).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import alive
from wanmodels.store.partial import list_parts


class JournalWatch:
    """Sum of the ranges appended to the journal of the part whose target ends with `name`.

    Reads only what was appended since the last call; starts over if the journal was rewritten
    (a new inode: wanmodels rewrites it when it opens or resets a part).
    """

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self._path: Path | None = None
        self._inode = -1
        self._offset = 0
        self._sum = 0
        self._tail = b""

    def _find(self) -> Path | None:
        for journal in self.folder.glob("*.journal"):
            try:
                with journal.open("rb") as f:
                    header = json.loads(f.readline())
            except (OSError, ValueError):
                continue
            if isinstance(header, dict) and str(header.get("local", "")).endswith(self.name):
                return journal
        return None

    def done_bytes(self) -> int:
        if self._path is None:
            self._path = self._find()
            if self._path is None:
                return 0
        try:
            with self._path.open("rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                if inode != self._inode:
                    self._inode, self._offset, self._sum, self._tail = inode, 0, 0, b""
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return self._sum
        self._offset += len(data)
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            start, _, end = line.partition(b" ")
            if start.isdigit() and end.isdigit():
                self._sum += int(end) - int(start)
        return self._sum


def kill_when(proc: subprocess.Popen[bytes], reached: Callable[[], bool], timeout: float = 600) -> bool:
    """Poll `reached` every 5 ms while `proc` runs; SIGKILL it the first time it is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(proc.pid):
        if reached():
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.005)
    return False


def kept_bytes(folder: Path, name: str) -> int:
    """Bytes the journal of `name`'s part records as written (exact, from `wanmodels.store.partial`)."""
    return sum(p.done_bytes for p in list_parts(folder) if p.local_path.endswith(name))


def largest_file_size(pattern: str) -> int:
    """Size on disk of the largest file matching a glob (for tools that write a plain prefix)."""
    sizes = [os.path.getsize(p) for p in glob.glob(pattern, recursive=True)]
    return max(sizes, default=0)
