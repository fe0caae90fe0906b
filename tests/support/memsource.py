"""An in-memory `ByteSource` with scripted faults, for fast unit tests of the transfer logic.

It stands where the Hub stands (`download(..., source=MemorySource())`), so retry, resume,
range splitting and integrity checks run in milliseconds. The end-to-end tests against the
loopback Hub prove the real client; these prove the logic above it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from wanmodels.digests import Digest
from wanmodels.errors import HubError, RemoteFileNotFoundError, TransientHubError
from wanmodels.repos import RemoteFile, RemoteRepo
from wanmodels.sources.base import Stream


@dataclass
class Request:
    """One `open_range` call and what it delivered."""

    path: str
    start: int
    end: int | None
    sent: int = 0
    fault: str | None = None


@dataclass
class MemFault:
    """Misbehave on the next `times` reads of `path`.

    Kinds: `transient`, `fatal`, `cut` (after `after` bytes), `corrupt`, `ignore_range`.
    """

    path: str
    kind: str
    times: int = 1
    after: int = 0  # bytes sent before a `cut`
    applied: int = field(default=0, compare=False)


class MemorySource:
    """Repos held in memory; thread-safe; every read is logged in `requests`."""

    def __init__(self, chunk: int = 64 << 10, delay: float = 0.0) -> None:
        self.chunk = chunk
        self.delay = delay  # seconds per chunk: a slow link, so idle connections get to split ranges
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[Request] = []
        self.faults: list[MemFault] = []
        self.listings = 0
        self._lock = threading.Lock()

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> str:
        self.repos[repo_id] = dict(files)
        commit = hashlib.sha1(repr(sorted(files)).encode() + repo_id.encode()).hexdigest()
        self.commits[repo_id] = commit
        return commit

    def add_fault(self, fault: MemFault) -> MemFault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def sent(self, path: str) -> int:
        """Bytes handed out for one repo path over every read."""
        return sum(r.sent for r in self.requests if r.path == path)

    # -- the ByteSource protocol ---------------------------------------------------------------

    def list_repo(self, repo_id: str, revision: str, *, entry: str) -> RemoteRepo:
        with self._lock:
            self.listings += 1
        files = tuple(
            RemoteFile(path, len(data), Digest("sha256", hashlib.sha256(data).hexdigest()))
            for path, data in sorted(self.repos[repo_id].items())
        )
        return RemoteRepo(repo_id, revision, self.commits[repo_id], files)

    @contextmanager
    def open_range(
        self, repo_id: str, commit: str, path: str, *, start: int = 0, end: int | None = None
    ) -> Iterator[Stream]:
        data = self.repos[repo_id].get(path)
        request = Request(path, start, end)
        with self._lock:
            self.requests.append(request)
            fault = next((f for f in self.faults if f.path == path and f.applied < f.times), None)
            if fault is not None:
                fault.applied += 1
                request.fault = fault.kind
        if data is None:
            msg = f"'{path}' is not in '{repo_id}'"
            raise RemoteFileNotFoundError(msg, repo_id=repo_id)
        kind = fault.kind if fault is not None else None
        if kind == "transient":
            msg = f"scripted 503 for '{path}'"
            raise TransientHubError(msg, status=503)
        if kind == "fatal":
            msg = f"scripted 403 for '{path}'"
            raise HubError(msg, status=403)
        stop = len(data) if end is None else end
        offset = 0 if kind == "ignore_range" else start
        stop = len(data) if kind == "ignore_range" else stop
        body = data[offset:stop]
        if kind == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        limit = fault.after if kind == "cut" and fault is not None else len(body)
        sent = body[:limit]
        yield Stream(
            offset=offset,
            length=len(body),
            chunks=self._chunks(request, sent),
            whole=kind == "ignore_range",
            # Without a delay the next chunk is as good as in a socket buffer already; a cut
            # connection reads as ready too, as a socket does once its end of file is there.
            waiting=lambda: not self.delay and (request.sent < len(sent) or kind == "cut"),
        )

    def _chunks(self, request: Request, body: bytes) -> Iterator[bytes]:
        for at in range(0, len(body), self.chunk):
            if self.delay:
                time.sleep(self.delay)
            piece = body[at : at + self.chunk]
            with self._lock:
                request.sent += len(piece)
            yield piece
