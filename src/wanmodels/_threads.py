"""Map a function over items on a few daemon threads, with Ctrl-C still reaching the caller.

`ThreadPoolExecutor` cannot do that: on Ctrl-C its `with` block (and the interpreter's exit)
waits for every job already started, which for a 30 GiB hash or copy means minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from wanmodels.errors import Interrupted

T = TypeVar("T")
R = TypeVar("R")

GRACE = 1.0  # seconds a job that watches `cancel` gets to stop after Ctrl-C


def map_threads(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    *,
    name: str,
    cancel: threading.Event | None = None,
    grace: float = GRACE,
) -> list[R]:
    """`[fn(x) for x in items]` on up to `workers` daemon threads, results in order.

    A job that raises sets `cancel` (the run fails anyway: the others stop where they watch
    it), and the first error in item order is re-raised, a real one before an `Interrupted`.
    On Ctrl-C, `cancel` is set, the jobs get `grace` seconds to stop, and KeyboardInterrupt goes
    on. Interrupted when `cancel` was set from elsewhere before every job ran.
    """
    cancel = cancel or threading.Event()
    results: dict[int, R] = {}
    errors: dict[int, BaseException] = {}
    pending = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while not cancel.is_set():
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = fn(items[index])
            except BaseException as err:  # handed to the calling thread
                errors[index] = err
                if not isinstance(err, Interrupted):
                    cancel.set()

    threads = [
        threading.Thread(target=work, name=f"{name}-{i}", daemon=True)
        for i in range(max(1, min(workers, len(items))))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        cancel.set()
        deadline = time.monotonic() + grace
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        raise
    ordered = [errors[i] for i in sorted(errors)]
    real = [e for e in ordered if not isinstance(e, Interrupted)]
    if ordered:
        raise (real or ordered)[0]
    if len(results) < len(items):  # `cancel` was set from elsewhere before every job ran
        msg = "interrupted"
        raise Interrupted(msg)
    return [results[i] for i in range(len(items))]


@contextmanager
def own_event(parent: threading.Event | None) -> Iterator[threading.Event]:
    """An event for one run, set whenever `parent` (the caller's) is set, never the other way.

    Inside a run a failure sets the event to stop the other jobs; done on the caller's own event,
    that would leave it set, and the caller's next run would be 'interrupted' at once.
    """
    own = threading.Event()
    if parent is None:
        yield own
        return
    done = threading.Event()

    def relay() -> None:
        while not done.is_set():
            if parent.wait(0.1):
                own.set()
                return

    if parent.is_set():
        own.set()
    thread = threading.Thread(target=relay, name="wanmodels-cancel", daemon=True)
    thread.start()
    try:
        yield own
    finally:
        done.set()
