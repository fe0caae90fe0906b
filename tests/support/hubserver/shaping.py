"""Network shape: per-connection and whole-link byte rates, and a round trip before every response."""

from __future__ import annotations

import threading
import time

MIN_PIECE = 4 << 10
MAX_PIECE = 64 << 10
UNPACED_PIECE = 1 << 20  # big enough for GB/s, small enough to account for a cut precisely


class Pacer:
    """One rate's slot book: one per TCP connection, and one shared by every connection for the link.

    A piece of `n` bytes at `rate` B/s may leave at its slot and pushes the next slot `n / rate` later;
    a slot is never earlier than now, so idle time earns no burst.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0

    def book(self, nbytes: int, rate: float) -> float:
        """Reserve the next slot for `nbytes` and return the monotonic time it starts."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + nbytes / rate
        return slot


def piece_size(*rates: float | None) -> int:
    """Write size for a body paced at the slowest of `rates` (all None/0 = unpaced)."""
    active = [r for r in rates if r]
    if not active:
        return UNPACED_PIECE
    return int(max(MIN_PIECE, min(MAX_PIECE, min(active) / 64)))


def wait_until(deadline: float, stop: threading.Event) -> None:
    """Sleep until `deadline` (monotonic) unless the server stops first."""
    delay = deadline - time.monotonic()
    if delay > 0:
        stop.wait(delay)


def pace(
    nbytes: int,
    *,
    conn: Pacer,
    conn_rate: float | None,
    link: Pacer,
    link_rate: float | None,
    stop: threading.Event,
) -> None:
    """Hold a piece of `nbytes` until both its connection and the link may carry it.

    The connection's slot comes first, then a slot on the shared link, so neither rate is ever exceeded.
    Waiting sleeps on the server's stop event (no spinning, and `stop()` wakes it); pieces of 4-64 KiB
    carry at most ~1/64 s of data (see `piece_size`) so the rate holds at a fine grain.
    """
    if conn_rate:
        wait_until(conn.book(nbytes, conn_rate), stop)
    if link_rate:
        wait_until(link.book(nbytes, link_rate), stop)


def round_trip(rtt: float, stop: threading.Event) -> None:
    """The delay every response pays before its first byte (request travel plus answer travel)."""
    if rtt > 0:
        stop.wait(rtt)
