"""The request log: what each request asked for and what was done, readable without racing handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    """What the server saw and did for one request; never holds the token itself.

    `origin` is the listener that answered: `"hub"`, or `"cdn"` for the CDN of `HubServer(cdn=True)`.
    A CDN request carries the `repo_id`, `revision` (commit sha) and `file` its signed URL was issued
    for, so per-file accounting works whichever origin moved the bytes. `authorized` says whether an
    `Authorization` header arrived (a CDN request should have none).
    """

    method: str
    path: str
    query: str
    repo_id: str | None
    revision: str | None
    file: str | None
    range: str | None
    status: int
    bytes_sent: int
    authorized: bool
    fault: str | None = None
    started: float = 0.0
    elapsed: float = 0.0
    origin: str = "hub"
    host: str | None = None  # the host the request was meant for (Host header, or a proxy request's URL)
    last_send: float | None = None  # when the last write of its answer began (None: nothing was sent)

    @property
    def sending_until(self) -> float:
        """Until when this request held its connection for the answer: its last write, not its
        log entry, which a busy server makes a moment later (by then the client may have sent
        its next request on another connection). An answer a fault stalled or cut holds the
        connection past its last write: its log entry."""
        if self.last_send is None or self.fault is not None:
            return self.started + self.elapsed
        return self.last_send


def peak_in_flight(records: Iterable[RequestRecord]) -> int:
    """The most requests being answered at one moment, each from its arrival to its last write:
    the connections a client had busy, counted from the server's side."""
    events: list[tuple[float, int]] = []
    for r in records:
        events += [(r.started, 1), (r.sending_until, -1)]
    now = top = 0
    for _, step in sorted(events):  # at one instant an end (-1) sorts before a start
        now += step
        top = max(top, now)
    return top


@dataclass
class Ctx:
    """Mutable bookkeeping for the request being served; frozen into a RequestRecord at the end."""

    method: str
    path: str
    query: str
    range: str | None
    authorized: bool
    started: float
    origin: str = "hub"
    host: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    file: str | None = None
    status: int = 0
    bytes_sent: int = 0
    fault: str | None = None
    headers_sent: bool = False
    is_resolve: bool = False
    last_send: float | None = None

    def freeze(self) -> RequestRecord:
        return RequestRecord(
            method=self.method,
            path=self.path,
            query=self.query,
            repo_id=self.repo_id,
            revision=self.revision,
            file=self.file,
            range=self.range,
            status=self.status,
            bytes_sent=self.bytes_sent,
            authorized=self.authorized,
            fault=self.fault,
            started=self.started,
            elapsed=time.monotonic() - self.started,
            origin=self.origin,
            host=self.host,
            last_send=self.last_send,
        )


class RequestLog:
    """Records (returned in start order), with a count of requests still being answered.

    Deliberately stalled requests are "parked": a snapshot waits for in-flight requests except those,
    so a test that has read the last byte sees the record without racing the handler thread.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[RequestRecord] = []
        self._inflight = 0
        self._parked = 0
        self._cutoff = 0.0  # requests started before this (monotonic) were cleared, even if still running
        self.errors: list[str] = []

    def snapshot(self, settle_timeout: float) -> list[RequestRecord]:
        with self._cond:
            self._cond.wait_for(lambda: self._inflight == self._parked, timeout=settle_timeout)
            # Handlers log when they finish, which can be after the client's next request has finished.
            return sorted(self._records, key=lambda r: r.started)

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def clear(self) -> None:
        """Forget every request started so far, including those still being answered."""
        with self._cond:
            self._records.clear()
            self._cutoff = time.monotonic()

    def begin(self) -> None:
        with self._cond:
            self._inflight += 1

    def end(self, ctx: Ctx) -> None:
        record = ctx.freeze()
        with self._cond:
            if record.started >= self._cutoff:
                self._records.append(record)
            self._inflight -= 1
            self._cond.notify_all()

    def park(self, parked: bool) -> None:
        with self._cond:
            self._parked += 1 if parked else -1
            self._cond.notify_all()

    def note_error(self, text: str) -> None:
        with self._cond:
            self.errors.append(text)
