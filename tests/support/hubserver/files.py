"""File bytes: `resolve` on the Hub (direct, or a 302 to the CDN), byte ranges, and paced, faulty bodies."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote

from tests.support.hubserver import shaping
from tests.support.hubserver.faults import BODY_FAULTS, Fault, Target
from tests.support.hubserver.log import Ctx
from tests.support.hubserver.model import Commit, FileEntry

if TYPE_CHECKING:
    from tests.support.hubserver.handler import Handler

_CORRUPT_STRIDE = 4096  # flip one byte in every stride (plus the last one) so any hash check notices
_CUTTING = frozenset({"cut", "short", "reset", "stall"})


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
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


def hub_headers(commit: Commit, entry: FileEntry) -> dict[str, str]:
    """The Hub's file metadata headers, sent on a direct answer and on the 302 to the CDN alike."""
    headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{entry.etag}"'}
    if entry.lfs:
        headers["X-Linked-Etag"] = f'"{entry.sha256}"'
        headers["X-Linked-Size"] = str(entry.size)
    return headers


def serve_resolve(h: Handler, ctx: Ctx, repo_id: str, revision: str, path_segments: list[str]) -> None:
    ctx.is_resolve = True
    ctx.file = "/".join(unquote(s) for s in path_segments)
    ctx.repo_id, ctx.revision = repo_id, revision
    if h.command not in ("GET", "HEAD"):
        h.send_error_json(ctx, 405, None, "Method Not Allowed")
        return
    target = Target(False, ctx.file, repo_id, h.command, "hub")
    if h.answered_by_fault(ctx, target):
        return
    commit = h.lookup(ctx, repo_id, revision, api=False)
    if commit is None:
        return
    entry = commit.files.get(ctx.file)
    if entry is None:
        message = f"{ctx.file} does not exist on {revision}"
        h.send_error_json(ctx, 404, "EntryNotFound", message, {"X-Repo-Commit": commit.sha})
        return
    headers = hub_headers(commit, entry)
    cdn = h.hub._cdn
    if entry.lfs and cdn is not None:
        location = cdn.issue(repo_id, commit.sha, entry, h.hub.cdn_url_ttl)
        text = f"Found. Redirecting to {location}".encode()
        headers.update({"Location": location, "Content-Type": "text/plain; charset=utf-8"})
        h.send_raw(ctx, 302, headers, text)
        return
    headers.update({"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"})
    send_file(h, ctx, entry, target, headers)


def send_file(h: Handler, ctx: Ctx, entry: FileEntry, target: Target, headers: Mapping[str, str]) -> None:
    """Answer a GET/HEAD for a whole file or one range of it, with any body fault that targets it."""
    # An ignore_range fault only makes sense (and is only spent) on a request that carries a Range.
    kinds = BODY_FAULTS if ctx.range is not None else BODY_FAULTS - {"ignore_range"}
    fault = h.take_fault(ctx, target, kinds)
    out = dict(headers)
    start, end, status = 0, entry.size, 200
    if ctx.range is not None and h.command == "GET" and not (fault and fault.kind == "ignore_range"):
        parsed = parse_range(ctx.range, entry.size)
        if parsed == "416":
            out["Content-Range"] = f"bytes */{entry.size}"
            h.start(ctx, 416, out, 0)
            return
        if isinstance(parsed, tuple):
            start, end = parsed
            status = 206
            out["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    h.start(ctx, status, out, end - start)
    if h.command == "HEAD":
        return
    send_body(h, ctx, entry, start, end, fault)


def _pieces(source: FileEntry | bytes, start: int, end: int, size: int) -> Iterator[memoryview]:
    if isinstance(source, bytes) or source.data is not None:
        view = memoryview(source if isinstance(source, bytes) else source.data)  # type: ignore[arg-type]
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


def _corrupt(piece: memoryview, offset: int, total: int) -> memoryview:
    """Flip a sparse set of bytes so length and headers stay right but every hash check fails."""
    damaged = bytearray(piece)
    first = (-offset) % _CORRUPT_STRIDE
    for i in range(first, len(damaged), _CORRUPT_STRIDE):
        damaged[i] ^= 0xFF
    if offset + len(damaged) == total and damaged and (total - 1) % _CORRUPT_STRIDE:
        damaged[-1] ^= 0xFF
    return memoryview(damaged)


def send_body(
    h: Handler, ctx: Ctx, source: FileEntry | bytes, start: int, end: int, fault: Fault | None
) -> None:
    """Write `source[start:end]` paced to the connection's and the link's rates, applying a body fault."""
    kind = fault.kind if fault is not None else None
    piece_size = shaping.piece_size(h.hub.conn_rate, h.hub.link_rate)
    limit = fault.after_bytes if fault is not None and kind in _CUTTING else None
    if kind == "trickle":
        assert fault is not None
        fast = min(fault.after_bytes, end - start)
        if fast:
            send_body(h, ctx, source, start, start + fast, None)
        h.trickle(ctx, _pieces(source, start + fast, end, piece_size), fault.rate)
        return
    stalled = False
    offset = 0  # position within this response body
    for piece in _pieces(source, start, end, piece_size):
        if limit is not None and not stalled and offset + len(piece) >= limit:
            head, tail = piece[: limit - offset], piece[limit - offset :]
            h.paced_write(ctx, head)
            offset += len(head)
            if kind == "stall":
                assert fault is not None
                stalled = True
                h.stall(fault.seconds)
                piece = tail
            else:
                h.abort(reset=kind == "reset")
        if kind == "corrupt":
            piece = _corrupt(piece, offset, end - start)
        h.paced_write(ctx, piece)
        offset += len(piece)
    if limit is not None and not stalled and kind != "stall":
        h.abort(reset=kind == "reset")  # asked to cut past the end: still drop the connection
