"""One download rate limit shared by every connection (`--max-rate`).

Each received chunk books the next free slot on a single timeline (bytes / rate), so the
limit holds for all connections together and over any stretch longer than a few chunks,
without a thread of its own. Sizes are read as curl, wget and aria2c read them: `500K`,
`12M`, `1G` in multiples of 1024.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Final

_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_RATE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?(?:/S)?\s*$", re.IGNORECASE)
# How far the timeline may run ahead before a caller sleeps: absorbs scheduling jitter
# without letting a burst exceed the limit by more than this many seconds' worth.
_SLACK: Final = 0.05


def parse_rate(text: str) -> int:
    """`"500K"` -> 512000 bytes/s; a bare number is bytes/s.

    Raises:
        ValueError: not a positive size.
    """
    match = _RATE_RE.match(text)
    if match is None:
        msg = f"{text!r} is not a rate; use bytes per second such as 500K, 12M or 1G"
        raise ValueError(msg)
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value < 1:
        msg = f"{text!r} must be at least 1 byte per second"
        raise ValueError(msg)
    return int(value)


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
