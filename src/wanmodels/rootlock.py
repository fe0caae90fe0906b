"""One writer per root: `<root>/.wanmodels/lock` is held by whoever changes files under the root.

Downloads, repairs and prunes take it for the whole run; a plain verify takes it only to save
what it learnt, and only when it is free; a dry run and status never take it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wanmodels.config import Settings
from wanmodels.errors import LocalIOError
from wanmodels.progress import ProgressSink
from wanmodels.state import work_dir


@contextmanager
def root_lock(
    root: Path, settings: Settings, sink: ProgressSink | None = None, *, enabled: bool = True
) -> Iterator[None]:
    """Hold `<root>/.wanmodels/lock` so two processes never write one root at once.

    Raises:
        LocalIOError: the work folder cannot be created, or `wait_for_lock` is off and it is held.
    """
    if not enabled:
        yield
        return
    from filelock import FileLock, Timeout

    try:
        work_dir(root).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create '{work_dir(root)}': {err.strerror}"
        raise LocalIOError(msg, hint="Check the root's permissions or pass --root.") from None
    lock = FileLock(str(work_dir(root) / "lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not settings.wait_for_lock:
            msg = f"another wanmodels process is working on '{root}'"
            raise LocalIOError(msg, hint="Wait for it, or drop --no-wait to queue behind it.") from None
        if sink is not None:
            sink.message(f"waiting for another wanmodels process to finish with '{root}'…")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextmanager
def lock_if_free(root: Path) -> Iterator[bool]:
    """Hold the root lock if no other process does (True), else do nothing (False): for a
    writer of records that can skip its write rather than wait for a download to end."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(work_dir(root) / "lock"))
    try:
        work_dir(root).mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except (Timeout, OSError):  # held, or a root this user cannot write: nothing to save then
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
