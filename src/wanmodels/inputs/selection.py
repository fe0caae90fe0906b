"""Which repo files an entry selects, and where each goes under the root.

An entry's `files`, `include` and `exclude` applied to a repo listing (or the lockfile),
checked the way the user would want before any byte moves: every named file exists, a
sharded model comes whole, no two entries put different bytes on one path, and no path
leaves the root. Pure functions over data, like the planner that uses their result.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from wanmodels._fs import check_relative
from wanmodels._text import shorten
from wanmodels.digests import Digest
from wanmodels.errors import HubError, IntegrityError, SelectionError, on_behalf
from wanmodels.inputs.manifest import ModelSpec
from wanmodels.repos import RemoteFile


@dataclass(frozen=True, slots=True)
class SelectedFile:
    """A repo file an entry wants, and where it goes relative to the root."""

    remote: RemoteFile
    local_path: str


@dataclass(frozen=True, slots=True)
class Selection:
    """An entry pinned to a commit with the files it selects."""

    spec: ModelSpec
    commit: str
    files: tuple[SelectedFile, ...]


def matches(path: str, patterns: Iterable[str]) -> bool:
    """fnmatch-style match as huggingface_hub uses (`*` crosses `/`; `dir/` means `dir/*`)."""
    return any(fnmatch.fnmatchcase(path, p + "*" if p.endswith("/") else p) for p in patterns)


def select(spec: ModelSpec, commit: str, files: tuple[RemoteFile, ...]) -> Selection:
    """Apply an entry's `files`, `include` and `exclude` to a repo listing.

    A `files:` path with a declared sha256 must be listed with that digest; a small file the
    Hub lists only by git blob sha1 is then downloaded and verified against the declared one.

    Raises:
        SelectionError: a `files:` path is not in the repo, an `include` pattern or the whole
            selection matches nothing, an `expect` path is not provided, or a sharded
            checkpoint's index is selected without all of the shards listed beside it.
        IntegrityError: the Hub lists another sha256 than the manifest declares.
        HubError: the server listed a path that would escape the folder.
    """
    by_path = {f.path: f for f in files}
    chosen: dict[str, SelectedFile] = {}
    for repo_path, target in spec.files:
        remote = by_path.get(repo_path)
        if remote is None:
            raise _missing(spec, repo_path, by_path, "files")
        declared = spec.declared_sha256(repo_path)
        if declared is not None and remote.digest.algorithm != "sha256":
            remote = replace(remote, digest=Digest("sha256", declared))
        elif declared is not None and remote.digest.hexdigest != declared:
            msg = (
                f"entry '{spec.name}' ({spec.where}): '{repo_path}' in '{spec.repo}' at {commit[:12]}: "
                f"the manifest declares sha256:{declared} but the Hub lists {remote.digest}; "
                "nothing was fetched"
            )
            hint = (
                "If the repo changed on purpose, update the sha256; else pin 'revision' to a trusted commit."
            )
            raise IntegrityError(
                msg, path=repo_path, expected=f"sha256:{declared}", actual=str(remote.digest), hint=hint
            )
        chosen[repo_path] = SelectedFile(remote, f"{spec.folder}/{target}")
    for pattern in spec.include:
        if not any(matches(p, (pattern,)) for p in by_path):
            raise _missing(spec, pattern, by_path, "include")
    if spec.include or spec.selects_everything:
        mapped = {s.local_path for s in chosen.values()}
        for remote in files:
            if remote.path in chosen or matches(remote.path, spec.exclude):
                continue
            if spec.include and not matches(remote.path, spec.include):
                continue
            local = f"{spec.folder}/{remote.path}"
            if local in mapped:
                msg = (
                    f"entry '{spec.name}' ({spec.where}): '{remote.path}' and a 'files:' entry "
                    f"both land at '{local}'"
                )
                raise SelectionError(msg, hint="Exclude one of them or map the file elsewhere.")
            chosen[remote.path] = SelectedFile(remote, local)
    if not chosen:
        msg = f"entry '{spec.name}' ({spec.where}): the selection matches no file of '{spec.repo}'"
        hint = f"Repo files: {_sample(by_path)}."
        raise SelectionError(msg, hint=hint)
    for item in chosen.values():
        reason = check_relative(item.remote.path)
        if reason is not None:
            shown = shorten(repr(item.remote.path))
            msg = f"{on_behalf(spec.name)}the server listed an unsafe path {shown} ({reason})"
            raise HubError(msg, repo_id=spec.repo, revision=commit, hint="Refusing to write it.")
    _check_shards(spec, chosen, files)
    ordered = tuple(sorted(chosen.values(), key=lambda s: s.local_path))
    return checked(Selection(spec=spec, commit=commit, files=ordered))


def checked(selection: Selection) -> Selection:
    """Enforce what must hold for any selection, fresh or from a lockfile: every file inside
    the entry's folder, no two files on one path, and every `expect` path provided.

    Raises:
        SelectionError: one of those does not hold.
    """
    spec = selection.spec
    prefix = f"{spec.folder}/"
    seen: set[str] = set()
    for item in selection.files:
        if not item.local_path.startswith(prefix) or item.local_path in seen:
            msg = (
                f"{on_behalf(spec.name)}'{item.local_path}' is outside its folder '{spec.folder}' "
                "or listed twice"
            )
            # Only a lockfile can break this; its reader names the command that rewrites it.
            raise SelectionError(msg)
        seen.add(item.local_path)
    for expected in spec.expect:
        if prefix + expected not in seen:
            msg = (
                f"entry '{spec.name}' ({spec.where}): 'expect' names {expected!r}, "
                "which the selection does not provide"
            )
            hint = "Add it to 'include' or 'files', or fix the name."
            raise SelectionError(msg, hint=hint)
    return selection


def check_targets(selections: tuple[Selection, ...]) -> tuple[Selection, ...]:
    """Hold entries that share folders to one file per path, across the whole run.

    Two entries may place the same file: when both list the same digest, each keeps it in
    its selection (so each is complete, and locked, on its own) and the plan fetches it
    once. Different bytes for one path, or a file where another entry needs a folder, are
    an error naming both sources. Returns `selections` unchanged.

    Raises:
        SelectionError: two entries disagree about a path.
    """
    owners: dict[str, tuple[Selection, SelectedFile]] = {}
    for sel in selections:
        for item in sel.files:
            first = owners.setdefault(item.local_path, (sel, item))
            if (first[1].remote.digest, first[1].remote.size) != (item.remote.digest, item.remote.size):
                msg = f"two different files for one path: {_source(*first)} and {_source(sel, item)}"
                hint = "Keep one of the two entries, or map one file to another path with 'files:'."
                raise SelectionError(msg, hint=hint)
    for path, (sel, item) in owners.items():
        parent = path.rpartition("/")[0]
        while parent:
            if parent in owners:
                msg = f"{_source(*owners[parent])} is a file, but {_source(sel, item)} puts a file inside it"
                raise SelectionError(msg, hint="Map one of them to another path with 'files:'.")
            parent = parent.rpartition("/")[0]
    return selections


def _source(sel: Selection, item: SelectedFile) -> str:
    spec = sel.spec
    return (
        f"'{item.local_path}' of entry '{spec.name}' ({spec.where}: '{item.remote.path}' in "
        f"'{spec.repo}' at {sel.commit[:12]}, {item.remote.digest.short})"
    )


_SHARD_RE = re.compile(r"^(?P<stem>.+)-\d+-of-\d+(?P<ext>\.[^./]+)$")


def _check_shards(spec: ModelSpec, chosen: dict[str, SelectedFile], files: tuple[RemoteFile, ...]) -> None:
    """A selected `X.ext.index.json` needs every listed `X-NNNNN-of-MMMMM.ext` beside it."""
    for index in [p for p in chosen if p.endswith(".index.json")]:
        folder, _, base = index[: -len(".index.json")].rpartition("/")
        shards = []
        for remote in files:
            where, _, name = remote.path.rpartition("/")
            match = _SHARD_RE.match(name)
            if where == folder and match and match["stem"] + match["ext"] == base:
                shards.append(remote.path)
        missing = sorted(p for p in shards if p not in chosen)
        if missing:
            more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
            taken = len(shards) - len(missing)
            msg = (
                f"entry '{spec.name}' ({spec.where}): '{index}' is selected with {taken} of its "
                f"{len(shards)} shards; missing {', '.join(missing[:5])}{more}"
            )
            raise SelectionError(msg, hint="Select every shard (or none of them and not the index).")


def _missing(spec: ModelSpec, wanted: str, by_path: dict[str, RemoteFile], key: str) -> SelectionError:
    near = difflib.get_close_matches(wanted, list(by_path), n=3, cutoff=0.4)
    what = "'files:' path" if key == "files" else f"'{key}' pattern"
    msg = f"entry '{spec.name}' ({spec.where}): {what} {wanted!r} matches nothing in '{spec.repo}'"
    hint = f"Nearest repo files: {', '.join(near)}." if near else f"Repo files: {_sample(by_path)}."
    return SelectionError(msg, hint=hint)


def _sample(by_path: dict[str, RemoteFile], limit: int = 8) -> str:
    names = sorted(by_path)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"
