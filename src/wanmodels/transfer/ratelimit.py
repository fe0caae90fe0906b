"""One download rate limit shared by every connection (`--max-rate`).

Each received chunk books the next free slot on a single timeline (bytes / rate), so the
limit holds for all connections together and over any stretch longer than a few chunks,
without a thread of its own. (The rate itself is read by `wanmodels.config.parse_rate`.)
"""

from __future__ import annotations

import threading
import time
from typing import Final

# How far the timeline may run ahead before a caller sleeps: absorbs scheduling jitter
# without letting a burst exceed the limit by more than this many seconds' worth.
_SLACK: Final = 0.05


class RateLimiter:
    """Paces byte counts to `rate` bytes per second across threads; `rate=None` never waits."""

    def __init__(self, rate: int | None) -> None:
        self.rate = rate
        self._lock = threading.Lock()
        self._next = 0.0

    def take(self, nbytes: int, cancel: threading.Event | None = None) -> None:
        """Account for `nbytes` just received, sleeping as long as the limit requires."""
        if self.rate is None or nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + nbytes / self.rate
            wait = self._next - now - _SLACK
        if wait > 0:
            if cancel is not None:
                cancel.wait(wait)
            else:
                time.sleep(wait)
