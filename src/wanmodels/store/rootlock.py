"""One writer per root: `<root>/.wanmodels/lock` is held by whoever changes files under the root.

Downloads, repairs and prunes take it for the whole run; a plain verify takes it only to save
what it learnt, and only when it is free; a dry run and status never take it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wanmodels.config import Settings
from wanmodels.errors import LocalIOError
from wanmodels.layout import lock_file, locks_folder, partial_folder, work_dir
from wanmodels.progress import ProgressSink

_log = logging.getLogger(__name__)
LINK_HINT = "Remove the link (wanmodels makes the folder again), or pass --root on the disk it points to."
LOCK_HINT = (
    "The root may be read-only, or its lock file may belong to another user: run as that user, "
    "make '{lock}' writable for yours, or pass --root on a folder of your own."
)


def _work_folder(root: Path) -> Path:
    """The root's work folder, refused when it (or the lock, the partial or the preset lock folder
    in it) is a symbolic link: what wanmodels writes there would land wherever the link points.

    Raises:
        LocalIOError: one of them is a link.
    """
    folder = work_dir(root)
    for path in (folder, lock_file(root), partial_folder(root), locks_folder(root)):
        if path.is_symlink():
            to = os.readlink(path)
            msg = f"'{path}' is a symbolic link to '{to}'; wanmodels writes only inside the root"
            raise LocalIOError(msg, hint=LINK_HINT)
    return folder


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

    folder = _work_folder(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"cannot create '{folder}': {err.strerror}"
        raise LocalIOError(msg, hint="Check the root's permissions or pass --root.") from None
    path = lock_file(root)
    lock = FileLock(str(path))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not settings.wait_for_lock:
                msg = f"another wanmodels process is working on '{root}'"
                raise LocalIOError(msg, hint="Wait for it, or drop --no-wait to queue behind it.") from None
            waiting = f"waiting for another wanmodels process to finish with '{root}'…"
            if sink is not None:
                sink.message(waiting)
            else:  # a verify --prune has no progress line of its own: say it on stderr all the same
                _log.warning("%s", waiting)
            lock.acquire()
    except LocalIOError:
        raise
    except OSError as err:  # FileLock's own: a read-only root, or someone else's lock file
        msg = f"cannot lock '{path}': {err.strerror or err}"
        raise LocalIOError(msg, hint=LOCK_HINT.format(lock=path)) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def lock_if_free(root: Path) -> Iterator[bool]:
    """Hold the root lock if no other process does (True), else do nothing (False): for a
    writer of records that can skip its write rather than wait for a download to end."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_file(root)))
    try:
        _work_folder(root).mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except (Timeout, OSError):  # held, linked out of the root, or not writable: nothing saved then
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
