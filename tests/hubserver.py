"""Serve a fake Hugging Face Hub on 127.0.0.1 so tests and benchmarks can drive the real client offline.

The server speaks the subset of the Hub protocol that `huggingface_hub` 2.4 uses to download model
repos: repo info (`/api/models/{id}[/revision/{rev}]`), tree listings
(`/api/models/{id}/tree/{rev}[/{path}]`), paths-info (`POST /api/models/{id}/paths-info/{rev}`) and file
resolution (`HEAD`/`GET /{id}/resolve/{rev}/{path}`) with byte ranges. It never sends Xet headers, so the
client stays on plain HTTP.

On top of that it can misbehave on purpose (see `Fault`), throttle bandwidth and log every request,
because the point is to prove that the downloader survives what real networks and the real Hub do to it.

Stdlib only: benchmarks import it too, outside pytest.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import itertools
import json
import os
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "FAULT_KINDS",
    "LFS_SUFFIXES",
    "LFS_THRESHOLD",
    "Fault",
    "FileEntry",
    "HubServer",
    "RequestRecord",
    "client_env",
    "git_blob_sha1",
    "is_lfs",
    "lfs_pointer",
]

LFS_SUFFIXES: tuple[str, ...] = (
    ".safetensors",
    ".bin",
    ".pth",
    ".pt",
    ".h5",
    ".msgpack",
    ".ckpt",
    ".onnx",
    ".gguf",
)
LFS_THRESHOLD = 1 << 20  # files strictly larger than this are stored in LFS whatever their name

FAULT_KINDS = frozenset({"cut", "short", "reset", "status", "corrupt", "stall", "ignore_range"})
_BODY_FAULTS = FAULT_KINDS - {"status"}

_PIECE = 1 << 20  # write size for unthrottled bodies: big enough for GB/s, small enough to account precisely
_THROTTLED_PIECE = 64 << 10
_HASH_PIECE = 8 << 20
_CORRUPT_STRIDE = 4096  # flip one byte in every stride (plus the last one) so any hash check notices

FileSource = bytes | bytearray | memoryview | Path


def is_lfs(path: str, size: int) -> bool:
    """Say whether the Hub would store this file in LFS, which decides its ETag and tree `lfs` block."""
    return path.lower().endswith(LFS_SUFFIXES) or size > LFS_THRESHOLD


def git_blob_sha1(data: bytes | bytearray | memoryview) -> str:
    """Git object id of a blob, which is what the Hub reports as `oid`/`blobId` for regular files."""
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Git LFS pointer text: the Hub's `oid` for an LFS file is the git sha1 of this, not of the content."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class FileEntry:
    """One file of one commit, with every hash a client may check it against.

    `blob_id` is what the Hub advertises (`oid` in trees, `blobId` in siblings, ETag of regular files):
    the git sha1 of the content for regular files, of the LFS pointer for LFS files. `git_sha1` and
    `sha256` are always those of the content, so tests can build manifests without re-hashing.
    """

    path: str
    size: int
    lfs: bool
    git_sha1: str
    sha256: str
    blob_id: str
    data: bytes | None = field(default=None, repr=False, compare=False)
    source: Path | None = None

    @property
    def etag(self) -> str:
        """Value the client stores the blob under: sha256 for LFS files, git sha1 otherwise."""
        return self.sha256 if self.lfs else self.git_sha1

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file, reported as `pointerSize`."""
        return len(lfs_pointer(self.sha256, self.size))

    def read(self) -> bytes:
        """Whole content, for small files and assertions."""
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


@dataclass(frozen=True)
class RequestRecord:
    """What the server saw and did for one request; never holds the token itself."""

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


@dataclass
class Fault:
    """A scripted misbehaviour, applied to the next `times` matching requests (`None` = forever).

    `path` is an fnmatch pattern against the repo file path for resolve requests, or against the unquoted
    URL path when `api=True`. Kinds: `cut`/`short` (full Content-Length, `after_bytes` of body, then FIN),
    `reset` (same but an RST), `status` (answer `status` with `headers`), `corrupt` (right length, wrong
    bytes), `stall` (send `after_bytes` then go quiet for `seconds`), `ignore_range` (answer a Range
    request with 200 and the full body). Only GETs are affected unless `methods` says otherwise, e.g.
    `methods=("GET", "HEAD")` to hit metadata calls too.
    """

    path: str = "*"
    kind: str = "status"
    times: int | None = 1
    after_bytes: int = 0
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 30.0
    api: bool = False
    repo_id: str | None = None
    methods: tuple[str, ...] = ("GET",)
    applied: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
        if self.after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        self.methods = tuple(m.upper() for m in self.methods)

    @property
    def spent(self) -> bool:
        """Whether the fault has been applied as many times as asked."""
        return self.times is not None and self.applied >= self.times

    def matches(self, *, api: bool, path: str, repo_id: str | None, method: str) -> bool:
        """Whether this fault targets the given request (ignoring whether it is spent)."""
        if api != self.api or method not in self.methods:
            return False
        if self.repo_id is not None and (repo_id is None or not fnmatch.fnmatchcase(repo_id, self.repo_id)):
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True)
class _Commit:
    sha: str
    files: Mapping[str, FileEntry]
    dirs: frozenset[str]
    date: str
    title: str


@dataclass
class _Repo:
    repo_id: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


@dataclass
class _Access:
    token: str
    gated: bool


@dataclass
class _Ctx:
    """Mutable bookkeeping for the request being served; frozen into a RequestRecord at the end."""

    method: str
    path: str
    query: str
    range: str | None
    authorized: bool
    started: float
    repo_id: str | None = None
    revision: str | None = None
    file: str | None = None
    status: int = 0
    bytes_sent: int = 0
    fault: str | None = None
    headers_sent: bool = False
    is_resolve: bool = False


class _AbortConnection(Exception):
    """Raised after a deliberate cut so the handler drops the connection without answering further."""


def _validate_repo_path(path: str) -> None:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid repo file path {path!r}")


def _utc_stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _hash_source(path: str, value: FileSource) -> FileEntry:
    """Hash a file once at add time: serving must never rehash, benchmarks push gigabytes through."""
    if isinstance(value, Path):
        size = value.stat().st_size
        sha1 = hashlib.sha1(b"blob %d\0" % size)
        sha256 = hashlib.sha256()
        with value.open("rb") as f:
            while chunk := f.read(_HASH_PIECE):
                sha1.update(chunk)
                sha256.update(chunk)
        data, source = None, value
    else:
        data = bytes(value)
        size = len(data)
        sha1 = hashlib.sha1(b"blob %d\0" % size)
        sha1.update(data)
        sha256 = hashlib.sha256(data)
        source = None
    lfs = is_lfs(path, size)
    content_sha1, content_sha256 = sha1.hexdigest(), sha256.hexdigest()
    blob_id = git_blob_sha1(lfs_pointer(content_sha256, size)) if lfs else content_sha1
    return FileEntry(
        path=path,
        size=size,
        lfs=lfs,
        git_sha1=content_sha1,
        sha256=content_sha256,
        blob_id=blob_id,
        data=data,
        source=source,
    )


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """Parse one `bytes=` range into half-open (start, end); None = ignore it, "416" = unsatisfiable."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # multi-range or other units: serving the full body is a valid answer
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "416"
            return max(size - suffix, 0), size
        start = int(first)
        end = size - 1 if last == "" else min(int(last), size - 1)
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return "416"
    return start, end + 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hub: HubServer) -> None:
        self.hub = hub
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients going away; keep (and still print) real bugs."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.hub._note_error(traceback.format_exc())
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive sockets must not pin threads forever
    server: _HTTPServer

    # -- plumbing -------------------------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without NODELAY, Nagle + delayed ACK cost ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.hub._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log: tests read `HubServer.requests` instead."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        ctx = _Ctx(
            method=self.command,
            path=unquote(split.path),
            query=split.query,
            range=self.headers.get("Range"),
            authorized=self.headers.get("Authorization") is not None,
            started=time.monotonic(),
        )
        self.hub._begin()
        try:
            body = self._read_request_body()
            self._route(ctx, split.path, body)
        except (_AbortConnection, OSError):
            # A deliberate cut, or the client hung up (BrokenPipe, ConnectionReset, timeout): just drop it.
            self.close_connection = True
        except Exception:
            self.hub._note_error(traceback.format_exc())
            if ctx.headers_sent:
                self.close_connection = True
            else:
                with contextlib.suppress(OSError):
                    self._send_error(ctx, 500, None, "internal fake-hub error")
        finally:
            self.hub._record(ctx)

    def _read_request_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True  # cannot stay in sync on a body we do not parse
            return b""
        return self.rfile.read(int(length))

    # -- routing --------------------------------------------------------------------------------------------

    def _route(self, ctx: _Ctx, raw_path: str, body: bytes) -> None:
        segments = raw_path.split("/")[1:]
        if len(segments) >= 3 and segments[0] == "api" and segments[1] == "models":
            self._route_api(ctx, segments[2:], body)
            return
        for idx in (2, 1):
            if len(segments) > idx + 2 and segments[idx] == "resolve" and "" not in segments[:idx]:
                repo_id = "/".join(unquote(s) for s in segments[:idx])
                if idx == 1 or self.hub._has_repo(repo_id) or not self.hub._has_repo(unquote(segments[0])):
                    self._serve_resolve(ctx, repo_id, unquote(segments[idx + 1]), segments[idx + 2 :])
                    return
        self._send_error(ctx, 404, None, "Not Found")

    def _split_repo_id(self, rest: list[str]) -> tuple[str, list[str]]:
        """Split `org/name/...` (or legacy `name/...`) into repo id and remaining segments."""
        first = unquote(rest[0])
        if len(rest) >= 2:
            two = f"{first}/{unquote(rest[1])}"
            if self.hub._has_repo(two) or not self.hub._has_repo(first):
                return two, rest[2:]
        return first, rest[1:]

    def _route_api(self, ctx: _Ctx, rest: list[str], body: bytes) -> None:
        repo_id, tail = self._split_repo_id(rest)
        ctx.repo_id = repo_id
        if self._api_status_fault(ctx):
            return
        get = self.command in ("GET", "HEAD")
        if get and not tail:
            self._serve_info(ctx, repo_id, "main", explicit=False)
        elif get and len(tail) == 2 and tail[0] == "revision":
            self._serve_info(ctx, repo_id, unquote(tail[1]), explicit=True)
        elif get and len(tail) >= 2 and tail[0] == "tree":
            sub = "/".join(unquote(s) for s in tail[2:] if s)
            self._serve_tree(ctx, repo_id, unquote(tail[1]), sub)
        elif self.command == "POST" and len(tail) == 2 and tail[0] == "paths-info":
            self._serve_paths_info(ctx, repo_id, unquote(tail[1]), body)
        else:
            self._send_error(ctx, 404, None, "Not Found")

    def _api_status_fault(self, ctx: _Ctx) -> bool:
        fault = self.hub._take_fault(
            api=True, path=ctx.path, repo_id=ctx.repo_id, method=self.command, kinds=frozenset({"status"})
        )
        if fault is None:
            return False
        ctx.fault = fault.kind
        self._send_fault_status(ctx, fault)
        return True

    # -- lookups shared by API and resolve ------------------------------------------------------------------

    def _lookup(self, ctx: _Ctx, repo_id: str, revision: str, *, api: bool) -> _Commit | None:
        """Find the commit or answer with the error the Hub would give; None means an error was sent."""
        ctx.repo_id, ctx.revision = repo_id, revision
        repo, access = self.hub._get_repo(repo_id)
        if repo is None:
            self._send_error(ctx, 404, "RepoNotFound", "Repository not found")
            return None
        if access is not None and self.headers.get("Authorization") != f"Bearer {access.token}":
            has_auth = self.headers.get("Authorization") is not None
            if access.gated:
                message = f"Access to model {repo_id} is restricted. You must be authenticated to access it."
                status = 401 if api and not has_auth else 403
                self._send_error(ctx, status, "GatedRepo", message)
            else:
                self._send_error(ctx, 401, "RepoNotFound", "Repository not found")
            return None
        sha = repo.refs.get(revision, revision)
        commit = repo.commits.get(sha)
        if commit is None:
            self._send_error(ctx, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # -- API ------------------------------------------------------------------------------------------------

    def _serve_info(self, ctx: _Ctx, repo_id: str, revision: str, *, explicit: bool) -> None:
        commit = self._lookup(ctx, repo_id, revision, api=True)
        if commit is None:
            return
        if not explicit:
            ctx.revision = None
        params = parse_qs(ctx.query)
        blobs = params.get("blobs", ["false"])[-1].lower() == "true"
        siblings: list[dict[str, Any]] = []
        for entry in commit.files.values():
            sibling: dict[str, Any] = {"rfilename": entry.path}
            if blobs:
                sibling["size"] = entry.size
                sibling["blobId"] = entry.blob_id
                if entry.lfs:
                    sibling["lfs"] = {
                        "sha256": entry.sha256,
                        "size": entry.size,
                        "pointerSize": entry.pointer_size,
                    }
            siblings.append(sibling)
        access = self.hub._get_repo(repo_id)[1]
        payload = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.partition("/")[0] if "/" in repo_id else None,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": commit.date,
            "private": access is not None and not access.gated,
            "gated": "manual" if access is not None and access.gated else False,
            "disabled": False,
            "tags": [],
            "siblings": siblings,
        }
        self._send_json(ctx, payload)

    def _tree_entry(self, commit: _Commit, path: str, *, expand: bool) -> dict[str, Any]:
        entry = commit.files.get(path)
        if entry is None:
            oid = hashlib.sha1(f"tree {commit.sha} {path}".encode()).hexdigest()
            item: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
        else:
            item = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": path}
            if entry.lfs:
                item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        if expand:
            item["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
        return item

    def _serve_tree(self, ctx: _Ctx, repo_id: str, revision: str, sub: str) -> None:
        commit = self._lookup(ctx, repo_id, revision, api=True)
        if commit is None:
            return
        if sub and sub not in commit.dirs:
            message = f"{sub} does not exist on {revision}" if sub not in commit.files else f"{sub} is a file"
            self._send_error(ctx, 404, "EntryNotFound", message)
            return
        params = parse_qs(ctx.query)
        recursive = params.get("recursive", ["false"])[-1].lower() == "true"
        expand = params.get("expand", ["false"])[-1].lower() == "true"
        prefix = f"{sub}/" if sub else ""
        paths = [p for p in itertools.chain(commit.dirs, commit.files) if p.startswith(prefix)]
        if not recursive:
            paths = [p for p in paths if "/" not in p[len(prefix) :]]
        # The Hub lists directories before files at each level; keep that and a stable order.
        paths.sort(key=lambda p: (p.split("/")[:-1], p not in commit.dirs, p))
        self._send_json(ctx, [self._tree_entry(commit, p, expand=expand) for p in paths])

    def _serve_paths_info(self, ctx: _Ctx, repo_id: str, revision: str, body: bytes) -> None:
        commit = self._lookup(ctx, repo_id, revision, api=True)
        if commit is None:
            return
        form = parse_qs(body.decode("utf-8", "replace"))
        expand = form.get("expand", ["false"])[-1].lower() == "true"
        wanted = [p.strip("/") for p in form.get("paths", [])]
        found = [p for p in dict.fromkeys(wanted) if p in commit.files or p in commit.dirs]
        self._send_json(ctx, [self._tree_entry(commit, p, expand=expand) for p in found])

    # -- resolve --------------------------------------------------------------------------------------------

    def _serve_resolve(self, ctx: _Ctx, repo_id: str, revision: str, path_segments: list[str]) -> None:
        ctx.is_resolve = True
        ctx.file = "/".join(unquote(s) for s in path_segments)
        ctx.repo_id, ctx.revision = repo_id, revision
        if self.command not in ("GET", "HEAD"):
            self._send_error(ctx, 405, None, "Method Not Allowed")
            return
        status_fault = self.hub._take_fault(
            api=False, path=ctx.file, repo_id=repo_id, method=self.command, kinds=frozenset({"status"})
        )
        if status_fault is not None:
            ctx.fault = status_fault.kind
            self._send_fault_status(ctx, status_fault)
            return
        commit = self._lookup(ctx, repo_id, revision, api=False)
        if commit is None:
            return
        entry = commit.files.get(ctx.file)
        if entry is None:
            self._send_error(
                ctx,
                404,
                "EntryNotFound",
                f"{ctx.file} does not exist on {revision}",
                {"X-Repo-Commit": commit.sha},
            )
            return
        # An ignore_range fault only makes sense (and is only spent) on a request that carries a Range.
        kinds = _BODY_FAULTS if ctx.range is not None else _BODY_FAULTS - {"ignore_range"}
        fault = self.hub._take_fault(
            api=False, path=ctx.file, repo_id=repo_id, method=self.command, kinds=kinds
        )
        if fault is not None:
            ctx.fault = fault.kind

        headers = {
            "X-Repo-Commit": commit.sha,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)

        start, end, status = 0, entry.size, 200
        range_header = ctx.range
        if (
            range_header is not None
            and self.command == "GET"
            and not (fault and fault.kind == "ignore_range")
        ):
            parsed = _parse_range(range_header, entry.size)
            if parsed == "416":
                headers["Content-Range"] = f"bytes */{entry.size}"
                self._start(ctx, 416, headers, 0)
                return
            if isinstance(parsed, tuple):
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
        self._start(ctx, status, headers, end - start)
        if self.command == "HEAD":
            return
        self._send_body(ctx, entry, start, end, fault, throttled=True)

    # -- writing --------------------------------------------------------------------------------------------

    def _start(self, ctx: _Ctx, status: int, headers: Mapping[str, str], length: int) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        ctx.status = status
        ctx.headers_sent = True

    def _send_json(self, ctx: _Ctx, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self._send_small(ctx, status, {"Content-Type": "application/json; charset=utf-8"}, data)

    def _send_small(self, ctx: _Ctx, status: int, headers: Mapping[str, str], data: bytes) -> None:
        """Send a small in-memory response; API body faults (cut, stall, ...) still apply to it."""
        fault = None
        if not ctx.is_resolve and self.command != "HEAD":
            fault = self.hub._take_fault(
                api=True, path=ctx.path, repo_id=ctx.repo_id, method=self.command, kinds=_BODY_FAULTS
            )
            if fault is not None:
                ctx.fault = fault.kind
        self._start(ctx, status, headers, len(data))
        if self.command != "HEAD" and data:
            self._send_body(ctx, data, 0, len(data), fault, throttled=False)

    def _send_error(
        self, ctx: _Ctx, status: int, code: str | None, message: str, extra: Mapping[str, str] | None = None
    ) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": message}
        if code is not None:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        data = json.dumps({"error": message}).encode()
        self._start(ctx, status, headers, len(data))
        if self.command != "HEAD":
            self._write(ctx, memoryview(data))

    def _send_fault_status(self, ctx: _Ctx, fault: Fault) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", **fault.headers}
        data = json.dumps({"error": f"injected {fault.status}"}).encode()
        self._start(ctx, fault.status, headers, len(data))
        if self.command != "HEAD":
            self._write(ctx, memoryview(data))

    def _write(self, ctx: _Ctx, piece: memoryview) -> None:
        """Send everything, counting bytes as they leave so a disconnect records the true amount."""
        sock = self.connection
        while piece:
            sent = sock.send(piece)
            ctx.bytes_sent += sent
            piece = piece[sent:]

    def _pieces(self, source: FileEntry | bytes, start: int, end: int, size: int) -> Iterator[memoryview]:
        if isinstance(source, bytes) or source.data is not None:
            view = memoryview(source if isinstance(source, bytes) else source.data)
            for offset in range(start, end, size):
                yield view[offset : min(offset + size, end)]
            return
        assert source.source is not None
        buffer = memoryview(bytearray(size))
        with source.source.open("rb", buffering=0) as f:
            f.seek(start)
            remaining = end - start
            while remaining > 0:
                got = f.readinto(buffer[: min(size, remaining)])
                if not got:
                    raise OSError(f"{source.source} shrank while being served")
                remaining -= got
                yield buffer[:got]

    def _send_body(
        self,
        ctx: _Ctx,
        source: FileEntry | bytes,
        start: int,
        end: int,
        fault: Fault | None,
        *,
        throttled: bool,
    ) -> None:
        kind = fault.kind if fault is not None else None
        bps = self.hub.throttle_bps if throttled else None
        piece_size = _PIECE if not bps else max(1024, min(_THROTTLED_PIECE, bps // 10))
        limit = (
            fault.after_bytes if fault is not None and kind in ("cut", "short", "reset", "stall") else None
        )
        stalled = False
        offset = 0  # position within this response body
        for piece in self._pieces(source, start, end, piece_size):
            if limit is not None and not stalled and offset + len(piece) >= limit:
                head, tail = piece[: limit - offset], piece[limit - offset :]
                self._paced_write(ctx, head, bps)
                offset += len(head)
                if kind == "stall":
                    assert fault is not None
                    stalled = True
                    self._stall(fault.seconds)
                    piece = tail
                else:
                    self._abort(reset=kind == "reset")
            if kind == "corrupt":
                piece = self._corrupt(piece, offset, end - start)
            self._paced_write(ctx, piece, bps)
            offset += len(piece)
        if limit is not None and not stalled and kind != "stall":
            self._abort(reset=kind == "reset")  # asked to cut past the end: still drop the connection

    def _stall(self, seconds: float) -> None:
        """Go quiet without closing; give up early if the client hangs up (its timeout fired) or on stop()."""
        deadline = time.monotonic() + seconds
        self.hub._park(True)
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self.hub._stop_event.wait(min(0.05, left)):
                    self._abort(reset=False)
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable:
                    try:
                        peek = self.connection.recv(1, socket.MSG_PEEK)
                    except OSError:
                        peek = b""
                    if not peek:
                        self._abort(reset=False)
        finally:
            self.hub._park(False)

    def _paced_write(self, ctx: _Ctx, piece: memoryview, bps: int | None) -> None:
        if not piece:
            return
        if bps:
            self.hub._pace(len(piece), bps)
        self._write(ctx, piece)

    @staticmethod
    def _corrupt(piece: memoryview, offset: int, total: int) -> memoryview:
        """Flip a sparse set of bytes so length and headers stay right but every hash check fails."""
        damaged = bytearray(piece)
        first = (-offset) % _CORRUPT_STRIDE
        for i in range(first, len(damaged), _CORRUPT_STRIDE):
            damaged[i] ^= 0xFF
        if offset + len(damaged) == total and damaged and (total - 1) % _CORRUPT_STRIDE:
            damaged[-1] ^= 0xFF
        return memoryview(damaged)

    def _abort(self, *, reset: bool) -> None:
        """Drop the connection mid-body: FIN for `cut` (client sees a short body), RST for `reset`."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        raise _AbortConnection


class HubServer:
    """A fake Hub on 127.0.0.1: add repos, start it, point `HF_ENDPOINT` at `url`, inspect `requests`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._state_lock = threading.Lock()
        self._repos: dict[str, _Repo] = {}
        self._access: dict[str, _Access] = {}
        self._faults: list[Fault] = []
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Condition()
        self._inflight = 0  # requests parsed but not yet recorded
        self._parked = 0  # of which deliberately stalled
        self.settle_timeout = 2.0
        self._conns: set[socket.socket] = set()
        self._conns_cond = threading.Condition()
        self._commit_counter = itertools.count(1)
        self._pace_lock = threading.Lock()
        self._pace_next = 0.0
        self.throttle_bps: int | None = None
        self.errors: list[str] = []

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Endpoint to put in `HF_ENDPOINT` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HubServer:
        """Serve in a background thread; returns self so `HubServer().start()` chains."""
        if self._thread is not None:
            raise RuntimeError("HubServer already started")
        if self._stop_event.is_set():
            raise RuntimeError("HubServer cannot be restarted after stop()")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hubserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and drop open connections so nothing lingers."""
        if self._stop_event.is_set():
            return
        self._stop_event.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        with self._conns_cond:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._conns_cond:
            self._conns_cond.wait_for(lambda: not self._conns, timeout=2)
        self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- content --------------------------------------------------------------------------------------------

    def add_repo(
        self, repo_id: str, files: Mapping[str, FileSource], branch: str = "main", *, hostile: bool = False
    ) -> str:
        """Commit exactly `files` on `branch` (creating repo/branch as needed) and return the new commit sha.

        Earlier commits stay resolvable by sha, which is how tests pin revisions and then move `main`.
        A `Path` value is hashed now and streamed from disk on each request, so huge files stay on disk.
        `hostile=True` accepts paths such as `../x` that a malicious server would list.
        """
        if not repo_id or repo_id.startswith("/") or repo_id.endswith("/") or repo_id.count("/") > 1:
            raise ValueError(f"invalid repo id {repo_id!r}")
        entries: dict[str, FileEntry] = {}
        for path, value in files.items():
            if not hostile:
                _validate_repo_path(path)
            entries[path] = _hash_source(path, value)
        dirs = frozenset("/".join(p.split("/")[:i]) for p in entries for i in range(1, p.count("/") + 1))
        clash = dirs & entries.keys()
        if clash:
            raise ValueError(f"paths used both as file and directory: {sorted(clash)}")
        now = time.time()
        with self._state_lock:
            repo = self._repos.setdefault(repo_id, _Repo(repo_id))
            parent = repo.refs.get(branch)
            seed = json.dumps(
                [
                    repo_id,
                    branch,
                    parent,
                    next(self._commit_counter),
                    sorted((p, e.blob_id) for p, e in entries.items()),
                ]
            )
            sha = hashlib.sha1(seed.encode()).hexdigest()
            title = f"Commit {len(repo.commits) + 1} on {branch}"
            repo.commits[sha] = _Commit(sha, dict(entries), dirs, _utc_stamp(now), title)
            repo.refs[branch] = sha
        return sha

    def set_branch(self, repo_id: str, name: str, commit: str) -> None:
        """Point a branch or tag at an existing commit (given by sha or by another ref name)."""
        with self._state_lock:
            repo = self._repos[repo_id]
            sha = repo.refs.get(commit, commit)
            if sha not in repo.commits:
                raise KeyError(f"{repo_id} has no commit {commit!r}")
            repo.refs[name] = sha

    def require_token(self, repo_id: str, token: str | None, gated: bool = True) -> None:
        """Demand `Authorization: Bearer <token>`: gated repos answer GatedRepo, others look private (401).

        Pass `token=None` to make the repo public again. May be called before the repo is added.
        """
        with self._state_lock:
            if token is None:
                self._access.pop(repo_id, None)
            else:
                self._access[repo_id] = _Access(token, gated)

    def resolve(self, repo_id: str, revision: str = "main") -> str:
        """Commit sha a revision currently points to, as the server would answer it."""
        with self._state_lock:
            repo = self._repos[repo_id]
            sha = repo.refs.get(revision, revision)
            if sha not in repo.commits:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            return sha

    def file_info(self, repo_id: str, path: str, revision: str = "main") -> FileEntry:
        """Sizes and hashes of one served file, so tests can state expectations without re-hashing."""
        sha = self.resolve(repo_id, revision)
        with self._state_lock:
            return self._repos[repo_id].commits[sha].files[path]

    def files(self, repo_id: str, revision: str = "main") -> dict[str, FileEntry]:
        """Every file of a revision, keyed by repo path."""
        sha = self.resolve(repo_id, revision)
        with self._state_lock:
            return dict(self._repos[repo_id].commits[sha].files)

    def _has_repo(self, repo_id: str) -> bool:
        with self._state_lock:
            return repo_id in self._repos

    def _get_repo(self, repo_id: str) -> tuple[_Repo | None, _Access | None]:
        with self._state_lock:
            return self._repos.get(repo_id), self._access.get(repo_id)

    # -- faults ---------------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        """Arm a fault; the returned object's `applied` counter tells how often it fired."""
        with self._state_lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._state_lock:
            self._faults.clear()

    def _take_fault(
        self, *, api: bool, path: str, repo_id: str | None, method: str, kinds: frozenset[str]
    ) -> Fault | None:
        with self._state_lock:
            for fault in self._faults:
                if (
                    fault.kind in kinds
                    and not fault.spent
                    and fault.matches(api=api, path=path, repo_id=repo_id, method=method)
                ):
                    fault.applied += 1
                    return fault
        return None

    # -- bandwidth ------------------------------------------------------------------------------------------

    def _pace(self, nbytes: int, bps: int) -> None:
        """Global pacing: each throttled write books the next time slot, so the limit spans all clients."""
        with self._pace_lock:
            now = time.monotonic()
            slot = max(now, self._pace_next)
            self._pace_next = slot + nbytes / bps
        if slot > now:
            self._stop_event.wait(slot - now)

    # -- log ------------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log, oldest first.

        Waits (up to `settle_timeout`) for requests still being answered, stalled ones excepted: a client can
        hold the last byte before the handler thread has logged it, and tests must not race that.
        """
        with self._log_lock:
            self._log_lock.wait_for(lambda: self._inflight == self._parked, timeout=self.settle_timeout)
            return list(self._log)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is in flight (stalled ones included); False on timeout."""
        with self._log_lock:
            return self._log_lock.wait_for(lambda: self._inflight == 0, timeout=timeout)

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def gets(self, file: str | None = None) -> list[RequestRecord]:
        """Resolve GETs (optionally for one repo path): the requests that actually move file bytes."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and r.file is not None and (file is None or r.file == file)
        ]

    def bytes_sent(self, file: str | None = None) -> int:
        """Body bytes written for resolve GETs, i.e. what the client really downloaded."""
        return sum(r.bytes_sent for r in self.gets(file))

    def _record(self, ctx: _Ctx) -> None:
        record = RequestRecord(
            method=ctx.method,
            path=ctx.path,
            query=ctx.query,
            repo_id=ctx.repo_id,
            revision=ctx.revision,
            file=ctx.file,
            range=ctx.range,
            status=ctx.status,
            bytes_sent=ctx.bytes_sent,
            authorized=ctx.authorized,
            fault=ctx.fault,
            started=ctx.started,
            elapsed=time.monotonic() - ctx.started,
        )
        with self._log_lock:
            self._log.append(record)
            self._inflight -= 1
            self._log_lock.notify_all()

    def _begin(self) -> None:
        with self._log_lock:
            self._inflight += 1

    def _park(self, parked: bool) -> None:
        with self._log_lock:
            self._parked += 1 if parked else -1
            self._log_lock.notify_all()

    def _note_error(self, text: str) -> None:
        with self._log_lock:
            self.errors.append(text)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_cond:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
                self._conns_cond.notify_all()


def client_env(srv: HubServer, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a real client process that can see only `srv`: no ambient token, proxy
    or wanmodels setting, a private `HF_HOME`, telemetry, update checks and Xet off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        and not k.startswith(("HF_", "HUGGINGFACE_", "WANMODELS_"))
    }
    env.update(
        HF_ENDPOINT=srv.url,
        HF_HOME=str(home / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(extra)
    return env
