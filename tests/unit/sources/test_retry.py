"""The retry policy: how long to wait before each retry, what the wait says, when to give up or
stop (the reading of the Hub's answers that feeds it: test_hub_http.py). Pure functions, no server."""

from __future__ import annotations

import threading
import time

import pytest

from wanmodels.config import Settings
from wanmodels.errors import HubError, Interrupted, TransientHubError
from wanmodels.sources.retry import RETRY_AFTER_CAP, Wait, announce, retried, wait_before_retry

SETTINGS = Settings(retry_wait=8.0, rate_limit_wait=300.0)


def transient(status: int | None = 503, retry_after: float | None = None) -> TransientHubError:
    return TransientHubError("the Hub answered HTTP 503 for 'a/b'", status=status, retry_after=retry_after)


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, None, Wait(0.5)),  # no wait named: the back-off
        (503, 3.0, Wait(3.0)),  # Retry-After honoured
        (503, 600.0, Wait(RETRY_AFTER_CAP, f"the {RETRY_AFTER_CAP:g}s cap")),  # but not for ten minutes
        (429, 240.0, Wait(240.0)),  # a rate limit's reset: minutes are fine
        (429, 3600.0, Wait(300.0, "WANMODELS_RATE_LIMIT_WAIT")),  # up to the documented cap
    ],
)
def test_the_wait_before_a_retry(status: int, retry_after: float | None, expected: Wait) -> None:
    assert wait_before_retry(transient(status, retry_after), SETTINGS, 0.5) == expected


def test_the_announcement_says_what_how_long_and_how_many_tries_are_left() -> None:
    err = transient(429, 3600.0)
    line = announce(err, Wait(300.0, "WANMODELS_RATE_LIMIT_WAIT"), 1)
    assert line == (
        "the Hub answered HTTP 503 for 'a/b'; retrying in 300.0s, shortened by WANMODELS_RATE_LIMIT_WAIT "
        "(1 more try after this)"
    )
    assert announce(err, Wait(0.5), 0).endswith("retrying in 0.5s (last try)")


def test_retried_retries_within_the_budget_then_gives_up() -> None:
    calls: list[int] = []
    lines: list[str] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise transient()
        return "listed"

    fast = Settings(retry_wait=0.0, retries=5)
    assert retried(flaky, fast, notify=lines.append, cancel=threading.Event(), interrupted="x") == "listed"
    assert len(calls) == 3
    assert len(lines) == 2 and "4 more tries after this" in lines[0]

    def broken() -> str:
        raise transient()

    with pytest.raises(HubError, match=r"gave up after 2 retries") as raised:
        retried(
            broken,
            Settings(retry_wait=0.0, retries=2),
            notify=lines.append,
            cancel=threading.Event(),
            interrupted="x",
        )
    assert not isinstance(raised.value, TransientHubError)
    assert raised.value.status == 503


def test_retried_stops_waiting_when_cancelled() -> None:
    cancel = threading.Event()
    cancel.set()

    def limited() -> str:
        raise transient(429, 250.0)

    started = time.monotonic()
    with pytest.raises(Interrupted, match="waiting to list"):
        retried(limited, SETTINGS, notify=lambda _line: None, cancel=cancel, interrupted="waiting to list")
    assert time.monotonic() - started < 5  # not the 250 s the server named
