"""Waiting for a state, never for a fixed time, so a busy machine only makes a test slower."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Poll `check` until it holds: tests wait for a state, never a fixed time, so load only slows them."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)
