"""How many connections a download may hold now: as few as fill the link, up to a ceiling.

A CDN that caps each connection (tens of MB/s each) needs dozens of them on a fast link; a home
line or a LAN mirror that one connection fills needs one or two, and more only burden the user's
network and the server. Nothing says which case a run is in, so the count is measured out: start
with `START`, and after each step compare what the step added with what that many more
connections at the current per-connection rate would have added. While a step adds at least
`GAIN` of that, the connection count is what limits the rate, and the count grows (by half at
first, so a link that one connection fills sees at most 6 at once, then doubling); once a step
adds less, the link, the server or this process is the limit, and the count settles where the
best per-connection rate measured just fills what the link gave (`MARGIN` above it): never above
the count before the step when the step added under 10% or lost throughput, never below `START`
(a stall inside a window looks like a step that brought nothing; fewer is for 429/503 alone).

While settled, the rate is watched: a fall by a fifth at the same count (the per-connection cap
dropped mid-run) starts growing again at once, and a probe of a quarter more connections goes
out now and then (`PROBE_EVERY`, doubling while probes find nothing, up to `PROBE_MAX`). A 429 or
503 halves the count and blocks growth for a while (`COOLDOWN`, doubling while they repeat). The
count never grows while this process's CPU is busy (`busy`, the scheduler's `CpuShare`): another
connection would then add contention, not bytes.

Pure bookkeeping under the scheduler's lock: it is told the time, the bytes that arrived, how
many ranges are held and when a new range's first byte came, and returns the count to allow.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

_log = logging.getLogger("wanmodels.connections")

START: Final = 4
GAIN: Final = 0.5  # a step that adds at least this share of its connections' worth keeps growing
STRONG: Final = 0.8  # ... and at least this share: the link is far from full, grow four times over
NO_GAIN: Final = 1.1  # a step that left the rate below this many times the last is undone outright
MARGIN: Final = 1.25  # settle this much above what the measured per-connection rate needs
DROP: Final = 0.8  # a settled rate below this share of the reference starts growing again
PROBE_EVERY: Final = 2.0  # seconds between probes while settled, doubled per fruitless probe
PROBE_MAX: Final = 16.0
COOLDOWN: Final = 5.0  # seconds without growth after a 429/503, doubled while they repeat
COOLDOWN_MAX: Final = 60.0
SETTLE_MIN: Final = 0.01  # after a change, before a window: new ranges' first bytes, then this
SETTLE_MAX: Final = 1.0  # a range still silent after this does not hold the measurement up
WINDOW_MIN: Final = 0.05  # seconds of bytes one judgement rests on, at least
WINDOW_RTTS: Final = 2  # ... and at least this many round trips
HOLD_WINDOW: Final = 0.5  # the windows between probes while settled
RTT_DEFAULT: Final = 0.05  # before any range's first byte was timed


class Phase(Enum):
    GROW = "grow"  # each window judges the last step (a probe included)
    HOLD = "hold"  # settled: watch for a drop, probe now and then
    FIXED = "fixed"  # not adapting: the ceiling is the count


@dataclass(frozen=True, slots=True)
class Window:
    """What one measurement saw: bytes per second and the mean number of ranges held."""

    rate: float
    held: float

    @property
    def per_connection(self) -> float:
        return self.rate / max(self.held, 1e-9)


class ConnectionCount:
    """The number of connections to allow, from the rate each count achieved."""

    def __init__(
        self,
        ceiling: int,
        *,
        adapt: bool = True,
        busy: Callable[[], bool] = lambda: False,
        now: float = 0.0,
    ) -> None:
        self.ceiling = ceiling
        self._busy = busy  # this process's CPU is the limit: no growth
        self.phase = Phase.GROW if adapt and ceiling > 1 else Phase.FIXED
        self.allowed = min(START, ceiling) if self.phase is Phase.GROW else ceiling
        self.peak = self.allowed
        self.scaled = False  # a step was seen to add throughput: connections, not CPU, set the rate
        self._held = 0
        self._since = now  # when `_held` last changed
        self._silent = 0  # held ranges whose first byte has not come yet
        self._rtts: deque[float] = deque(maxlen=16)
        self._changed = now  # when `allowed` last changed: the window starts after settling
        self._start: float | None = None  # the current window's start, once settled
        self._bytes = 0
        self._held_time = 0.0  # integral of held over the window
        self._last: Window | None = None  # the window before the last step
        self._measured: Window | None = None  # the last window measured
        self._best = 0.0  # highest per-connection rate seen since the last regime change
        self._reference: Window | None = None  # what the settled count achieves
        self._probe_from = 0
        self._probe_every = PROBE_EVERY
        self._probe_at = math.inf
        self._cooldown = COOLDOWN
        self._cool_until = -math.inf
        self._refused_at = -math.inf
        self._ending = False  # the plan's last stretch: no window is judged

    # -- what the scheduler reports ------------------------------------------------------------------

    def held(self, now: float, count: int, silent: int) -> None:
        """`count` ranges are held now, `silent` of them have had no byte yet."""
        self._account(now)
        self._held, self._silent = count, silent

    def first_byte(self, seconds: float, silent: int) -> None:
        """A new range's first byte came `seconds` after its first request went out."""
        self._rtts.append(seconds)
        self._silent = silent

    def arrived(self, now: float, nbytes: int) -> bool:
        """`nbytes` arrived; True when `allowed` changed."""
        if self.phase is Phase.FIXED:
            return False
        self._bytes += nbytes
        return self.tick(now)

    def refused(self, now: float, status: int | None) -> bool:
        """A request was answered 429 or 503: halve the count, no growth for a while. True when
        `allowed` changed. Refusals within one window of the last count once: many connections
        refused at once are one signal."""
        if self.phase is Phase.FIXED or status not in (429, 503):
            return False
        if now - self._refused_at < self._window_length():
            return False
        repeated = now - self._refused_at < self._cooldown * 2
        self._refused_at = now
        self._cooldown = min(COOLDOWN_MAX, self._cooldown * 2) if repeated else COOLDOWN
        self._cool_until = now + self._cooldown
        self._best = 0.0
        self._reference = None
        self.phase = Phase.HOLD
        self._probe_every = PROBE_EVERY
        self._probe_at = self._cool_until
        return self._set(now, max(1, self.allowed // 2), f"HTTP {status}")

    def ending(self, now: float, ending: bool) -> bool:
        """Whether the plan is in its last stretch: there the rate falls as the work runs out and
        the scheduler lets more ranges be held than allowed (to cover their round trips), so a
        window would read a drop or a step that is neither. None is judged while it lasts.
        True when this changed it."""
        if ending == self._ending:
            return False
        self._ending = ending
        self._start = None  # a window after it starts afresh, once settled
        self._changed = now
        return True

    @property
    def settled(self) -> bool:
        """Done growing for now (probes aside): the count found what fills the link."""
        return self.phase is Phase.HOLD

    def tick(self, now: float) -> bool:
        """Close the window if it is due and act on it; True when `allowed` changed."""
        if self.phase is Phase.FIXED or self._ending:
            return False
        if self._start is None:
            settled = self._silent == 0 and now - self._changed >= SETTLE_MIN
            if not (settled or now - self._changed >= SETTLE_MAX):
                self._bytes = 0
                return False
            self._begin(now)
            return False
        length = HOLD_WINDOW if self.phase is Phase.HOLD else self._window_length()
        if now - self._start < length:
            return False
        self._account(now)
        seconds = now - self._start
        window = Window(self._bytes / seconds, self._held_time / seconds)
        if window.rate > 0 and window.held >= 0.5:
            self._measured = window
        self._begin(now)
        return self._judge(now, window)

    # -- decisions ------------------------------------------------------------------------------------

    def _judge(self, now: float, window: Window) -> bool:
        if window.rate <= 0 or window.held < 0.5:
            return False  # a stall: nothing to compare with
        if window.held < self.allowed - 0.5 and self.phase is not Phase.HOLD:
            # Fewer ranges than allowed were held (too little work left to split, or this process
            # too busy to split it): this count says nothing about the next.
            self._last = window
            return False
        self._best = max(self._best, window.per_connection)
        if self.phase is Phase.HOLD:
            return self._hold(now, window)
        last = self._last
        self._last = window
        if last is None or window.held - last.held < 0.5:
            return self._grow(now, window, "first measurement" if last is None else "no step yet")
        expected = (window.held - last.held) * last.per_connection
        gain = (window.rate - last.rate) / expected
        if gain >= GAIN:
            self.scaled = True
            return self._grow(now, window, f"the last step added {gain:.0%} of its worth", gain >= STRONG)
        if window.rate < NO_GAIN * last.rate:
            # The link was full before the step already: as many as the best rate per
            # connection needs for it, never more than before the step.
            need = last.rate / self._best * MARGIN
            # Never below the start on this judgement: a stall inside a window looks like a step
            # that brought nothing, and fewer than `START` is for 429/503 alone.
            count = max(min(START, self.ceiling), min(round(last.held), math.ceil(need)))
            why = f"the last step added {max(gain, 0):.0%} of its worth; {need / MARGIN:.1f} fill the link"
            self._reference = last
        else:
            need = max(window.rate, last.rate) / self._best * MARGIN
            count = min(round(window.held), max(round(last.held), math.ceil(need)))
            why = f"the last step added {gain:.0%} of its worth; {need / MARGIN:.1f} fill the link"
            self._reference = window
        self._settle(now)
        return self._set(now, count, why)

    def _hold(self, now: float, window: Window) -> bool:
        reference = self._reference
        if reference is None or (window.held >= reference.held - 0.5 and window.rate > reference.rate):
            self._reference = window  # the first settled window, or a better one at the same count
            reference = window
        if window.held < self.allowed - 0.5:
            return False  # the work is running out or split too little: nothing to judge
        if window.rate < DROP * reference.rate and not self.cooling(now):
            self._best = window.per_connection  # a new regime: rates before the drop are gone
            self._probe_every = PROBE_EVERY
            self.phase = Phase.GROW
            self._last = window
            why = f"the rate fell to {window.rate / reference.rate:.0%} at the same count"
            return self._step(now, why)
        if now >= self._probe_at and not self.cooling(now) and self._may_grow():
            self.phase = Phase.GROW
            self._probe_from = self.allowed
            self._last = window
            return self._set(now, self.allowed + max(1, self.allowed // 4), "probing")
        return False

    def _grow(self, now: float, window: Window, why: str, strong: bool = False) -> bool:
        if self._probe_from:
            self._probe_from = 0  # a probe found more: keep growing, probe soon again
            self._probe_every = PROBE_EVERY
        if not self._may_grow() or self.cooling(now):
            self._reference = window
            self._settle(now)
            return False
        return self._step(now, why, strong)

    def _step(self, now: float, why: str, strong: bool = False) -> bool:
        """Half again from `START` (so a link one connection fills sees at most 6); then double,
        or four times over while a step brings nearly all it could."""
        if self.allowed <= START:
            count = self.allowed + max(1, self.allowed // 2)
        else:
            count = self.allowed * (4 if strong else 2)
        return self._set(now, count, why)

    def _settle(self, now: float) -> None:
        if self._probe_from:
            self._probe_every = min(PROBE_MAX, self._probe_every * 2)  # it found nothing
            self._probe_from = 0
        self.phase = Phase.HOLD
        self._probe_at = max(now + self._probe_every, self._cool_until)

    def _may_grow(self) -> bool:
        return self.allowed < self.ceiling and not self._busy()

    def cooling(self, now: float) -> bool:
        """A 429 or 503 came lately: the server asked for fewer connections, not more."""
        return now < self._cool_until

    def _set(self, now: float, count: int, why: str) -> bool:
        count = max(1, min(self.ceiling, count))
        if count == self.allowed:
            return False
        _log.debug("connections: %d -> %d (%s)", self.allowed, count, why)
        self.allowed = count
        self.peak = max(self.peak, count)
        self._changed = now
        self._start = None
        return True

    # -- windows --------------------------------------------------------------------------------------

    def _begin(self, now: float) -> None:
        self._account(now)
        self._start = now
        self._bytes = 0
        self._held_time = 0.0

    def _account(self, now: float) -> None:
        if self._start is not None:
            self._held_time += self._held * (now - max(self._since, self._start))
        self._since = now

    @property
    def rtt(self) -> float:
        """The shortest recent wait for a new range's first byte: about one round trip."""
        return min(self._rtts) if self._rtts else RTT_DEFAULT

    @property
    def adapting(self) -> bool:
        return self.phase is not Phase.FIXED

    @property
    def per_connection(self) -> float | None:
        """The best bytes per second one connection was measured to carry lately (None before)."""
        return self._best or None

    @property
    def share(self) -> float | None:
        """What one of the connections allowed now may expect: the last window's rate over them
        (or less, if each carried less), None before a window was measured."""
        last = self._measured
        if last is None:
            return None
        return min(last.per_connection, last.rate / self.allowed)

    def _window_length(self) -> float:
        # Before a direct request was timed, `rtt` holds the first requests' redirect too.
        rtts = WINDOW_RTTS if len(self._rtts) > START else WINDOW_RTTS - 1
        return max(WINDOW_MIN, rtts * self.rtt)
