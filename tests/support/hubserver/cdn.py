"""The CDN origin: signed, expiring, content-addressed URLs issued by `resolve`, and the bytes behind them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from tests.support.hubserver.faults import Target
from tests.support.hubserver.files import send_file
from tests.support.hubserver.log import Ctx
from tests.support.hubserver.model import FileEntry

if TYPE_CHECKING:
    from tests.support.hubserver.handler import Handler


@dataclass(frozen=True)
class Grant:
    """What one signed URL stands for."""

    repo_id: str
    commit: str
    entry: FileEntry
    expires: str  # as written in the URL: unix time with milliseconds, "" = never
    serial: int


class Signer:
    """Issue and check the CDN's signed URLs (HMAC with a per-server random key).

    Each URL is remembered with the repo, commit and file it was issued for, so the request log can say
    which file a CDN request moved.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._key = os.urandom(16)
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}
        self._expired_upto = 0  # serials up to this one count as expired (see expire_all)

    def issue(self, repo_id: str, commit: str, entry: FileEntry, ttl: float | None) -> str:
        """A fresh URL for `entry`, valid for `ttl` seconds from now (None = forever)."""
        expires = "" if ttl is None else f"{time.time() + ttl:.3f}"
        serial = next(self._serial)
        message = f"{entry.sha256}|{expires}|{serial}".encode()
        sig = hmac.new(self._key, message, hashlib.sha256).hexdigest()[:40]
        with self._lock:
            self._grants[sig] = Grant(repo_id, commit, entry, expires, serial)
        query = urlencode({"expires": expires, "sig": sig} if expires else {"sig": sig})
        return f"{self.base_url}/{entry.sha256}?{query}"

    def check(self, path: str, query: str) -> tuple[Grant | None, str | None]:
        """The grant a CDN URL names (None if none) and why it is refused (None = valid)."""
        params = parse_qs(query)
        sig = params.get("sig", [""])[-1]
        with self._lock:
            grant = self._grants.get(sig)
            expired_upto = self._expired_upto
        if grant is None or path != f"/{grant.entry.sha256}":
            return None, "Invalid signature"
        if params.get("expires", [""])[-1] != grant.expires:
            return grant, "Invalid signature"
        if grant.serial <= expired_upto or (grant.expires and time.time() > float(grant.expires)):
            return grant, "Request has expired"
        return grant, None

    def expire_all(self) -> None:
        """Make every URL issued so far unusable, as if hours had passed."""
        with self._lock:
            self._expired_upto = max((g.serial for g in self._grants.values()), default=0)


def cdn_etag(entry: FileEntry) -> str:
    """An opaque object tag like an S3 one: stable per content, and deliberately not the sha256."""
    return '"' + hashlib.sha1(b"cdn\0" + entry.sha256.encode()).hexdigest()[:32] + '"'


def serve(h: Handler, ctx: Ctx) -> None:
    """Answer one request on the CDN listener.

    Like the real one (cdn-lfs, cas-bridge), the CDN ignores `Authorization`, honours `Range`, speaks none
    of the Hub's headers (no `X-Repo-Commit`; its ETag is its own), and answers 403 to a URL whose
    signature is unknown or whose `expires` has passed.
    """
    signer = h.hub._cdn
    assert signer is not None
    if h.command not in ("GET", "HEAD"):
        _refuse(h, ctx, 405, "MethodNotAllowed", "Method not allowed")
        return
    grant, refusal = signer.check(ctx.path, ctx.query)
    if grant is not None:
        ctx.repo_id, ctx.revision, ctx.file = grant.repo_id, grant.commit, grant.entry.path
    target = Target(False, ctx.file if ctx.file is not None else ctx.path, ctx.repo_id, h.command, "cdn")
    if h.answered_by_fault(ctx, target):
        return
    if grant is None or refusal is not None:
        _refuse(h, ctx, 403, "AccessDenied", refusal or "Invalid signature")
        return
    headers = {
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": cdn_etag(grant.entry),
        "X-Cache": "Hit from fakecdn",
    }
    send_file(h, ctx, grant.entry, target, headers)


def _refuse(h: Handler, ctx: Ctx, status: int, code: str, message: str) -> None:
    body = f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>{code}</Code><Message>{message}</Message>"
    body += "</Error>"
    h.send_raw(ctx, status, {"Content-Type": "application/xml"}, body.encode())
