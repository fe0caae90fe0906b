"""When to try a failed Hub request again: capped back-off, or the wait the server asked for.

One policy for metadata requests (`wanmodels.sources.hub`) and file transfers (`wanmodels.transfer.fetch`):
a transient failure (5xx, 408, 429, a timeout, a dropped connection) is retried up to
`Settings.retries` times. The wait doubles from `FIRST_WAIT` up to `Settings.retry_wait`,
unless the server named one (`Retry-After`, or the reset of a used-up rate limit): that is
honoured up to `RETRY_AFTER_CAP`, or up to `Settings.rate_limit_wait` for a 429, because the
Hub counts requests in 5-minute windows and asking again sooner only earns another 429.

A stream that trickles is a failure too (`RateFloor`): one that delivers under `MIN_RATE` while
it is waited on, over a window of three read timeouts, is dropped and retried like a cut. And
only real progress (`is_real_progress`) refills the budget, so a server that sends a byte and
hangs up, again and again, runs out of tries like one that sends nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from wanmodels.config import Settings
from wanmodels.errors import HubError, Interrupted, TransientHubError

T = TypeVar("T")

FIRST_WAIT: Final = 0.5
RETRY_AFTER_CAP: Final = 60.0
# A connection slower than this is not worth keeping: a share of 16 on a 128 kbit/s link still
# gets 1 KiB/s, and a 1 GiB file at this rate would take 12 days.
MIN_RATE: Final = 1024
SLOW_WINDOWS: Final = 3  # read timeouts a connection is given to show its rate
# Bytes since the last failure that count as progress (or all that was left, if less).
REAL_PROGRESS: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Wait:
    """How long to wait before the next try, and the setting that shortened it, if one did."""

    seconds: float
    capped_by: str | None = None


class RateFloor:
    """Watches one stream's reads: only time spent waiting for the network counts (not a wait of
    `--max-rate` or a slow disk), in windows of `SLOW_WINDOWS` read timeouts."""

    def __init__(self, settings: Settings, rate: float = MIN_RATE) -> None:
        self.window = SLOW_WINDOWS * settings.timeout
        self.rate = rate
        self._waited = 0.0
        self._bytes = 0

    def read(self, seconds: float, nbytes: int) -> float | None:
        """Count one read that took `seconds`; the rate of a window that fell short, else None."""
        self._waited += seconds
        self._bytes += nbytes
        if self._waited < self.window:
            return None
        rate = self._bytes / self._waited
        self._waited, self._bytes = 0.0, 0
        return rate if rate < self.rate else None

    def why(self, rate: float) -> str:
        """What a stream that fell short did, for the retry line."""
        return f"{rate:.0f} B/s over {self.window:g} s (a connection must keep up {self.rate / 1024:g} KiB/s)"


def is_real_progress(got: int, left: int) -> bool:
    """Whether `got` bytes since the last failure, of `left` still wanted then, refill the budget."""
    return got >= min(REAL_PROGRESS, left) and got > 0


def first_backoff(settings: Settings) -> float:
    """The back-off before the first retry of a failure that named no wait."""
    return min(FIRST_WAIT, settings.retry_wait)


def next_backoff(backoff: float, settings: Settings) -> float:
    """The back-off after one more failure without progress: doubled, capped at `retry_wait`."""
    return min(backoff * 2, settings.retry_wait)


def wait_before_retry(err: TransientHubError, settings: Settings, backoff: float) -> Wait:
    """The server's own wait when it named one (capped), else `backoff`."""
    if err.retry_after is None:
        return Wait(backoff)
    if err.status == 429:
        cap, name = settings.rate_limit_wait, "WANMODELS_RATE_LIMIT_WAIT"
    else:
        cap, name = RETRY_AFTER_CAP, None
    if err.retry_after > cap:
        return Wait(cap, name or f"the {cap:g}s cap")
    return Wait(max(err.retry_after, 0.0))


def announce(err: TransientHubError, wait: Wait, left: int) -> str:
    """The line that says what failed, how long the wait is and how many tries remain."""
    tries = "last try" if left <= 0 else f"{left} more {'try' if left == 1 else 'tries'} after this"
    capped = f", shortened by {wait.capped_by}" if wait.capped_by else ""
    return f"{err.message}; retrying in {wait.seconds:.1f}s{capped} ({tries})"


class Retrier:
    """The retry budget of one request, a listing page or a range: the one retry loop.

    Each transient failure costs a try (`failed`), waited out with capped back-off and
    announced; past `Settings.retries` the failure is final. A failure after real progress
    (see `is_real_progress`) starts the budget afresh, and does not lengthen the back-off.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        notify: Callable[[str], None],
        cancel: threading.Event,
        interrupted: str,
        prefix: str = "",
    ) -> None:
        self.settings = settings
        self.notify = notify
        self.cancel = cancel
        self.interrupted = interrupted
        self.prefix = prefix  # what the final message starts with (the file, for a range)
        self.failures = 0
        self.backoff = first_backoff(settings)

    def failed(self, err: TransientHubError, *, progressed: bool = False) -> None:
        """Count `err` and wait before the next try.

        Raises:
            HubError: the budget is spent (the last failure's message, with the tries made).
            Interrupted: `cancel` was set while waiting.
        """
        settings = self.settings
        self.failures = 0 if progressed else self.failures + 1
        if self.failures > settings.retries:
            msg = f"{self.prefix}{err.message} (gave up after {settings.retries} retries)"
            raise HubError(
                msg, repo_id=err.repo_id, revision=err.revision, status=err.status, hint=err.hint
            ) from None
        pause = wait_before_retry(err, settings, self.backoff)
        self.notify(announce(err, pause, settings.retries - self.failures))
        if self.cancel.wait(pause.seconds):
            raise Interrupted(self.interrupted) from None
        if err.retry_after is None and not progressed:
            self.backoff = next_backoff(self.backoff, settings)


def retried(
    attempt: Callable[[], T],
    settings: Settings,
    *,
    notify: Callable[[str], None],
    cancel: threading.Event,
    interrupted: str,
) -> T:
    """Call `attempt` until it returns, retrying `TransientHubError`s within the budget.

    Each wait is announced through `notify` and cut short by `cancel`.

    Raises:
        HubError: still failing after `settings.retries` retries (the last failure's message).
        Interrupted: `cancel` was set while waiting (message: `interrupted`).
    """
    retrier = Retrier(settings, notify=notify, cancel=cancel, interrupted=interrupted)
    while True:
        try:
            return attempt()
        except TransientHubError as err:
            retrier.failed(err)
