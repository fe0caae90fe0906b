"""Scripted misbehaviour: what a `Fault` targets, when it is live, and which one a request gets."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = frozenset(
    {"cut", "short", "reset", "status", "corrupt", "stall", "ignore_range", "hang", "trickle", "redirect"}
    | {"body", "edit"}
)
ANSWER_FAULTS = frozenset({"status", "redirect"})  # answered instead of the request
PAYLOAD_FAULTS = frozenset({"body", "edit"})  # replace or change an API answer's JSON
BODY_FAULTS = FAULT_KINDS - ANSWER_FAULTS - PAYLOAD_FAULTS - {"hang"}  # applied while the body is written
ORIGINS = frozenset({"hub", "cdn", "s3"})  # "s3": the proxy of tests.support.s3server

# The Hub's rate-limit headers (IETF draft ratelimit-headers), as huggingface_hub parses them.
RATELIMIT_POLICY = '"fixed window";"api";q=500;w=300'

_DEFAULT_TIMES = -1  # resolved in __post_init__: once, or every request inside a `for_seconds` window


def ratelimit_headers(reset_seconds: int, remaining: int = 0) -> dict[str, str]:
    """`RateLimit`/`RateLimit-Policy` as the Hub sends them; `remaining=0` makes a 429 a rate limit."""
    return {"RateLimit": f'"api";r={remaining};t={reset_seconds}', "RateLimit-Policy": RATELIMIT_POLICY}


@dataclass
class Fault:
    """A scripted misbehaviour, applied to matching requests.

    Which requests: `origin` (`"hub"`, `"cdn"` for the CDN listener of `HubServer(cdn=True)`, or
    `"s3"` for the proxy of `tests.support.s3server.S3Server`, where `path` matches the key and
    `repo_id` the bucket); `path`, an fnmatch pattern against the repo file path for resolve and CDN
    requests (a CDN request is mapped back to the file its signed URL was issued for), or against the
    unquoted URL path when `api=True`; `repo_id` (fnmatch); `methods` (only GETs unless told, e.g.
    `("GET", "HEAD")`).

    How often: `times` matching requests (`None` = no limit). With `for_seconds`, the fault is live only
    for that long after `HubServer.add_fault` armed it, and `times` then defaults to no limit: every
    matching request in the window fails, later ones do not.

    Kinds: `cut`/`short` (full Content-Length, `after_bytes` of body, then FIN), `reset` (same but an
    RST), `status` (answer `status` with `headers`; `ratelimit_reset=N` adds the Hub's rate-limit headers
    saying "0 left, resets in N s", e.g. `Fault(kind="status", status=429, ratelimit_reset=3)`), `corrupt`
    (right length, wrong bytes), `stall` (send headers and `after_bytes` of body, go quiet for `seconds`,
    then finish), `hang` (send nothing at all for `seconds`, then answer normally), `ignore_range`
    (answer a Range request with 200 and the full body; spent only on requests that carry a Range),
    `trickle` (send `after_bytes` of body at the usual pace, then the rest at `rate` bytes/s: a
    slow-drip server, on files and API answers alike), `redirect` (answer 302 to `location`, any
    address a hostile Hub or mirror may name). API answers only: `body` (send the bytes `body` in
    place of the JSON: oversized, deeply nested or broken documents) and `edit` (send
    `edit(payload)` in place of the payload, e.g. a listing whose sizes are negative).
    One byte per response, then a close, is `Fault(kind="cut", after_bytes=1, times=None)`.
    Stalls, hangs and trickles end early when the client hangs up or the server stops.
    """

    path: str = "*"
    kind: str = "status"
    times: int | None = _DEFAULT_TIMES
    after_bytes: int = 0
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 30.0
    api: bool = False
    repo_id: str | None = None
    methods: tuple[str, ...] = ("GET",)
    origin: str = "hub"
    for_seconds: float | None = None
    ratelimit_reset: int | None = None
    rate: float = 1.0
    location: str = ""
    body: bytes = b""
    edit: Callable[[Any], Any] | None = None
    applied: int = field(default=0, compare=False)
    armed_at: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.times == _DEFAULT_TIMES:
            self.times = None if self.for_seconds is not None else 1
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        if self.origin not in ORIGINS:
            raise ValueError(f"origin must be one of {sorted(ORIGINS)}, not {self.origin!r}")
        if self.api and self.origin == "cdn":
            raise ValueError("the CDN has no API: api=True needs origin='hub'")
        if self.for_seconds is not None and self.for_seconds < 0:
            raise ValueError("for_seconds must be >= 0 or None")
        if self.kind == "trickle" and not self.rate > 0:
            raise ValueError("a trickle needs rate > 0 (bytes per second)")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect needs a location")
        if self.kind in PAYLOAD_FAULTS and not self.api:
            raise ValueError(f"a {self.kind!r} fault changes an API answer: it needs api=True")
        if self.kind == "edit" and self.edit is None:
            raise ValueError("an 'edit' fault needs edit=<function of the payload>")
        self.methods = tuple(m.upper() for m in self.methods)

    @property
    def spent(self) -> bool:
        """Whether the fault has been applied as many times as asked."""
        return self.times is not None and self.applied >= self.times

    def live(self, now: float | None = None) -> bool:
        """Not spent, and (if windowed) armed and still inside its window."""
        if self.spent:
            return False
        if self.for_seconds is None:
            return True
        if self.armed_at is None:
            return False
        return (time.monotonic() if now is None else now) < self.armed_at + self.for_seconds

    def matches(self, *, api: bool, path: str, repo_id: str | None, method: str, origin: str = "hub") -> bool:
        """Whether this fault targets the given request (ignoring whether it is live)."""
        if api != self.api or origin != self.origin or method not in self.methods:
            return False
        if self.repo_id is not None and (repo_id is None or not fnmatch.fnmatchcase(repo_id, self.repo_id)):
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def response_headers(self) -> dict[str, str]:
        """Headers of a `status` answer: the given ones, plus rate-limit headers if asked."""
        extra = ratelimit_headers(self.ratelimit_reset) if self.ratelimit_reset is not None else {}
        return {**extra, **self.headers}


@dataclass(frozen=True)
class Target:
    """The request a fault is being looked up for."""

    api: bool
    path: str
    repo_id: str | None
    method: str
    origin: str


class FaultBook:
    """Armed faults in arming order; the first live match of an asked kind is taken (and counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            fault.armed_at = time.monotonic()
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, target: Target, kinds: frozenset[str]) -> Fault | None:
        now = time.monotonic()
        with self._lock:
            for fault in self._faults:
                if (
                    fault.kind in kinds
                    and fault.live(now)
                    and fault.matches(
                        api=target.api,
                        path=target.path,
                        repo_id=target.repo_id,
                        method=target.method,
                        origin=target.origin,
                    )
                ):
                    fault.applied += 1
                    return fault
        return None
