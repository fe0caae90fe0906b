"""The Hub's JSON API: repo info, tree listings (optionally paginated) and paths-info."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from tests.support.hubserver.faults import Target
from tests.support.hubserver.log import Ctx
from tests.support.hubserver.model import Commit

if TYPE_CHECKING:
    from tests.support.hubserver.handler import Handler


def route(h: Handler, ctx: Ctx, rest: list[str], body: bytes) -> None:
    """Serve `/api/models/{repo_id}/...` (`rest` = the raw segments after `models`)."""
    repo_id, tail = _split_repo_id(h, rest)
    ctx.repo_id = repo_id
    if h.answered_by_fault(ctx, Target(True, ctx.path, repo_id, h.command, "hub")):
        return
    get = h.command in ("GET", "HEAD")
    if get and not tail:
        _serve_info(h, ctx, repo_id, "main", explicit=False)
    elif get and len(tail) == 2 and tail[0] == "revision":
        _serve_info(h, ctx, repo_id, unquote(tail[1]), explicit=True)
    elif get and len(tail) >= 2 and tail[0] == "tree":
        sub = "/".join(unquote(s) for s in tail[2:] if s)
        _serve_tree(h, ctx, repo_id, unquote(tail[1]), sub)
    elif h.command == "POST" and len(tail) == 2 and tail[0] == "paths-info":
        _serve_paths_info(h, ctx, repo_id, unquote(tail[1]), body)
    else:
        h.send_error_json(ctx, 404, None, "Not Found")


def _split_repo_id(h: Handler, rest: list[str]) -> tuple[str, list[str]]:
    """Split `org/name/...` (or legacy `name/...`) into repo id and remaining segments."""
    store = h.hub._store
    first = unquote(rest[0])
    if len(rest) >= 2:
        two = f"{first}/{unquote(rest[1])}"
        if store.has_repo(two) or not store.has_repo(first):
            return two, rest[2:]
    return first, rest[1:]


def _flag(params: dict[str, list[str]], name: str) -> bool:
    return params.get(name, ["false"])[-1].lower() == "true"


def _serve_info(h: Handler, ctx: Ctx, repo_id: str, revision: str, *, explicit: bool) -> None:
    commit = h.lookup(ctx, repo_id, revision, api=True)
    if commit is None:
        return
    if not explicit:
        ctx.revision = None
    blobs = _flag(parse_qs(ctx.query), "blobs")
    siblings: list[dict[str, Any]] = []
    for entry in commit.files.values():
        sibling: dict[str, Any] = {"rfilename": entry.path}
        if blobs:
            sibling["size"] = entry.size
            sibling["blobId"] = entry.blob_id
            if entry.lfs and entry.path not in commit.xet_only:
                sibling["lfs"] = {
                    "sha256": entry.sha256,
                    "size": entry.size,
                    "pointerSize": entry.pointer_size,
                }
        siblings.append(sibling)
    view = h.hub._store.view(repo_id)
    access = view.access
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
        "disabled": view.disabled,
        "tags": [],
        "siblings": siblings,
    }
    h.send_json(ctx, payload)


def tree_entry(commit: Commit, path: str, *, expand: bool) -> dict[str, Any]:
    """One item of a tree or paths-info answer, shaped like the Hub's."""
    entry = commit.files.get(path)
    if entry is None:
        oid = hashlib.sha1(f"tree {commit.sha} {path}".encode()).hexdigest()
        item: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    else:
        item = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": path}
        if path in commit.xet_only:
            item["xetHash"] = entry.xet_hash  # stored on Xet and listed without the `lfs` block
        elif entry.lfs:
            item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
    if expand:
        item["lastCommit"] = {"id": commit.sha, "title": commit.title, "date": commit.date}
    return item


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return offset if kind == "offset" and offset >= 0 else None


def _serve_tree(h: Handler, ctx: Ctx, repo_id: str, revision: str, sub: str) -> None:
    commit = h.lookup(ctx, repo_id, revision, api=True)
    if commit is None:
        return
    if sub and sub not in commit.dirs:
        message = f"{sub} does not exist on {revision}" if sub not in commit.files else f"{sub} is a file"
        h.send_error_json(ctx, 404, "EntryNotFound", message)
        return
    params = parse_qs(ctx.query)
    recursive, expand = _flag(params, "recursive"), _flag(params, "expand")
    prefix = f"{sub}/" if sub else ""
    paths = [p for p in itertools.chain(commit.dirs, commit.files) if p.startswith(prefix)]
    if not recursive:
        paths = [p for p in paths if "/" not in p[len(prefix) :]]
    # The Hub lists directories before files at each level; keep that and a stable order.
    paths.sort(key=lambda p: (p.split("/")[:-1], p not in commit.dirs, p))

    hostile = h.hub.tree_pages
    if hostile not in (None, "cycle", "endless"):
        raise ValueError(f"tree_pages must be 'cycle', 'endless' or None, not {hostile!r}")
    page_size = h.hub.tree_page_size or (max(len(paths), 1) if hostile else None)
    headers: dict[str, str] = {}
    if page_size:
        offset = 0
        if "cursor" in params:
            decoded = _decode_cursor(params["cursor"][-1])
            if decoded is None:
                h.send_error_json(ctx, 400, None, "Invalid cursor")
                return
            offset = decoded
        if offset + page_size < len(paths) or hostile:
            following = 0 if hostile == "cycle" else offset + page_size
            base = (h.hub.tree_next_base or h.hub.url).rstrip("/")
            where = quote(revision, safe="") + ("/" + quote(sub, safe="/") if sub else "")
            query = urlencode(
                {
                    "recursive": str(recursive).lower(),
                    "expand": str(expand).lower(),
                    "cursor": _encode_cursor(following),
                }
            )
            headers["Link"] = f'<{base}/api/models/{repo_id}/tree/{where}?{query}>; rel="next"'
        paths = paths[offset : offset + page_size]
    h.send_json(ctx, [tree_entry(commit, p, expand=expand) for p in paths], headers=headers)


def _serve_paths_info(h: Handler, ctx: Ctx, repo_id: str, revision: str, body: bytes) -> None:
    commit = h.lookup(ctx, repo_id, revision, api=True)
    if commit is None:
        return
    form = parse_qs(body.decode("utf-8", "replace"))
    expand = _flag(form, "expand")
    wanted = [p.strip("/") for p in form.get("paths", [])]
    found = [p for p in dict.fromkeys(wanted) if p in commit.files or p in commit.dirs]
    h.send_json(ctx, [tree_entry(commit, p, expand=expand) for p in found])
