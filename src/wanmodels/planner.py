"""What needs doing: select each entry's files, map them into the root, decide per file.

Pure functions over data: a repo listing (or the lockfile), what the disk holds and where
else this machine holds the same bytes go in, a `Plan` comes out. Nothing here touches the
network, so `--dry-run` is free and every rule is testable without a server.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from wanmodels._fs import check_relative
from wanmodels.errors import HubError, IntegrityError, SelectionError
from wanmodels.integrity import Digest
from wanmodels.manifest import ModelSpec
from wanmodels.remote import RemoteFile


class Action(str, Enum):
    """What happens to one file."""

    KEEP = "keep"  # on disk and verified
    DOWNLOAD = "download"  # missing: fetch from byte 0
    RESUME = "resume"  # a partial download exists: continue from its length
    REPLACE = "replace"  # on disk but wrong: fetch, then swap in atomically


class Origin(str, Enum):
    """Where the bytes of a file that needs them will come from."""

    NETWORK = "network"
    HF_CACHE = "hf-cache"  # huggingface_hub's cache, found by digest
    LOCAL = "local"  # another file on this machine: this root, a --reuse-from folder, a twin in this run


@dataclass(frozen=True, slots=True)
class Found:
    """A file elsewhere on this machine that should hold a planned file's bytes (unproven until hashed)."""

    origin: Origin
    path: Path


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


class Check(str, Enum):
    """What one look at a target found."""

    OK = "ok"  # right size and digest (hashed now, or vouched for by the state cache)
    SIZED = "sized"  # right size, not hashed (a look that only compares sizes)
    MISSING = "missing"
    NOT_FILE = "not a file"
    SIZE = "size"
    HASH = "hash"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class LocalState:
    """What the disk holds for one selected file."""

    check: Check = Check.MISSING
    size: int | None = None  # the target's size on disk, when it is a file
    actual: Digest | None = None  # the digest it hashed to, when it was hashed
    part_bytes: int = 0  # bytes a partial download already holds, 0 when none

    @property
    def complete(self) -> bool:
        return self.check is Check.OK

    @property
    def exists(self) -> bool:
        return self.check is not Check.MISSING


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file of the plan and what to do with it."""

    entry: str
    repo_id: str
    commit: str
    repo_path: str
    local_path: str
    size: int
    digest: Digest
    action: Action
    present: int  # bytes already usable: the whole file for KEEP, the part's length for RESUME
    origin: Origin = Origin.NETWORK  # where the bytes come from, when it needs any
    reuse_from: Path | None = None  # the file to link or copy, for HF_CACHE and LOCAL
    twin_of: str | None = None  # the local path of this run's file with the same bytes, placed first

    @property
    def needs_bytes(self) -> bool:
        return self.action is not Action.KEEP

    @property
    def to_fetch(self) -> int:
        """Bytes this file will take from the network (0 when it is kept or reused)."""
        return self.size - self.present if self.needs_bytes and self.origin is Origin.NETWORK else 0

    @property
    def to_reuse(self) -> int:
        """Bytes this file will take from a file already on this machine."""
        return self.size if self.needs_bytes and self.origin is not Origin.NETWORK else 0


@dataclass(frozen=True, slots=True)
class ModelPlan:
    """One entry's share of the plan."""

    spec: ModelSpec
    commit: str
    files: tuple[PlannedFile, ...]

    @property
    def to_fetch(self) -> int:
        return sum(f.to_fetch for f in self.files)

    @property
    def present(self) -> int:
        return sum(f.present for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class Plan:
    """Every selected file of every chosen entry, in manifest order.

    Entries that share a folder may select the same file; it is planned once per entry
    but fetched, and counted, once.
    """

    root: Path
    models: tuple[ModelPlan, ...]

    @property
    def files(self) -> tuple[PlannedFile, ...]:
        return tuple(f for m in self.models for f in m.files)

    @property
    def unique_files(self) -> tuple[PlannedFile, ...]:
        """Each local path once (the first entry that selects it)."""
        seen: dict[str, PlannedFile] = {}
        for f in self.files:
            seen.setdefault(f.local_path, f)
        return tuple(seen.values())

    @property
    def size(self) -> int:
        return sum(f.size for f in self.unique_files)

    @property
    def to_fetch(self) -> int:
        return sum(f.to_fetch for f in self.unique_files)

    @property
    def present(self) -> int:
        return sum(f.present for f in self.unique_files)

    @property
    def to_reuse(self) -> int:
        return sum(f.to_reuse for f in self.unique_files)

    def fetch_order(self) -> tuple[PlannedFile, ...]:
        """Files that need the network, largest first, so big transfers start while small ones fill in."""
        todo = [f for f in self.unique_files if f.needs_bytes and f.origin is Origin.NETWORK]
        return tuple(sorted(todo, key=lambda f: (-f.to_fetch, f.local_path)))

    def reused(self) -> tuple[PlannedFile, ...]:
        """Files placed from this machine: those from elsewhere first, then this run's twins."""
        # Not `f.to_reuse`: that is 0 for an empty file, which still has to be placed.
        todo = [f for f in self.unique_files if f.needs_bytes and f.origin is not Origin.NETWORK]
        return tuple(sorted(todo, key=lambda f: (f.twin_of is not None, f.local_path)))


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
                f"entry '{spec.name}' (line {spec.line}): '{repo_path}' in '{spec.repo}' at {commit[:12]}: "
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
                    f"entry '{spec.name}' (line {spec.line}): '{remote.path}' and a 'files:' entry "
                    f"both land at '{local}'"
                )
                raise SelectionError(msg, hint="Exclude one of them or map the file elsewhere.")
            chosen[remote.path] = SelectedFile(remote, local)
    if not chosen:
        msg = f"entry '{spec.name}' (line {spec.line}): the selection matches no file of '{spec.repo}'"
        hint = f"Repo files: {_sample(by_path)}."
        raise SelectionError(msg, hint=hint)
    for item in chosen.values():
        reason = check_relative(item.remote.path)
        if reason is not None:
            msg = f"entry '{spec.name}': the server listed an unsafe path {item.remote.path!r} ({reason})"
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
                f"entry '{spec.name}': '{item.local_path}' is outside its folder '{spec.folder}' "
                "or listed twice"
            )
            # Only a lockfile can break this; its reader names the command that rewrites it.
            raise SelectionError(msg)
        seen.add(item.local_path)
    for expected in spec.expect:
        if prefix + expected not in seen:
            msg = (
                f"entry '{spec.name}' (line {spec.line}): 'expect' names {expected!r}, "
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


def decide(local: LocalState, size: int) -> tuple[Action, int]:
    """The action for one file given what the disk holds, and the bytes already usable."""
    if local.complete:
        return Action.KEEP, size
    if 0 < local.part_bytes <= size:
        return Action.RESUME, local.part_bytes
    return (Action.REPLACE if local.exists else Action.DOWNLOAD), 0


def make_plan(
    root: Path, selections: Iterable[Selection], probe: Callable[[SelectedFile], LocalState]
) -> Plan:
    """Build the plan: `probe` reports what the disk holds for each selected file."""
    models = []
    for sel in selections:
        planned = []
        for item in sel.files:
            action, present = decide(probe(item), item.remote.size)
            planned.append(
                PlannedFile(
                    entry=sel.spec.name,
                    repo_id=sel.spec.repo,
                    commit=sel.commit,
                    repo_path=item.remote.path,
                    local_path=item.local_path,
                    size=item.remote.size,
                    digest=item.remote.digest,
                    action=action,
                    present=present,
                )
            )
        models.append(ModelPlan(spec=sel.spec, commit=sel.commit, files=tuple(planned)))
    return Plan(root=root, models=tuple(models))


def with_origins(plan: Plan, find: Callable[[PlannedFile], Found | None]) -> Plan:
    """Say where each file that needs bytes gets them, so no byte is fetched twice.

    Files with one digest form a group. If one of them is already in place, the others are
    copied from it. Otherwise one of them (the one with most bytes of a partial download) is
    looked for with `find`, and fetched from the network when it is not found; the others are
    its twins, placed from it afterwards. A reused file needs no partial download, so it is
    planned as a plain `download` (or `replace`) with nothing present.
    """
    groups: dict[tuple[Digest, int], list[PlannedFile]] = {}
    for f in plan.unique_files:
        groups.setdefault((f.digest, f.size), []).append(f)
    origins: dict[str, tuple[Origin, Path | None, str | None]] = {}
    for group in groups.values():
        need = [f for f in group if f.needs_bytes]
        if not need:
            continue
        kept = next((f for f in group if not f.needs_bytes), None)
        if kept is not None:
            for f in need:
                origins[f.local_path] = (Origin.LOCAL, plan.root / kept.local_path, None)
            continue
        leader = max(need, key=lambda f: f.present)  # max() keeps the first of equals: manifest order
        found = find(leader)
        if found is not None:
            origins[leader.local_path] = (found.origin, found.path, None)
        for f in need:
            if f is not leader:
                origins[f.local_path] = (Origin.LOCAL, plan.root / leader.local_path, leader.local_path)

    def decide_origin(f: PlannedFile) -> PlannedFile:
        if f.local_path not in origins:
            return f
        origin, path, twin_of = origins[f.local_path]
        action = Action.DOWNLOAD if f.action is Action.RESUME else f.action
        return replace(f, action=action, present=0, origin=origin, reuse_from=path, twin_of=twin_of)

    models = tuple(replace(m, files=tuple(decide_origin(f) for f in m.files)) for m in plan.models)
    return replace(plan, models=models)


def _source(sel: Selection, item: SelectedFile) -> str:
    spec = sel.spec
    return (
        f"'{item.local_path}' of entry '{spec.name}' (line {spec.line}: '{item.remote.path}' in "
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
                f"entry '{spec.name}' (line {spec.line}): '{index}' is selected with {taken} of its "
                f"{len(shards)} shards; missing {', '.join(missing[:5])}{more}"
            )
            raise SelectionError(msg, hint="Select every shard (or none of them and not the index).")


def _missing(spec: ModelSpec, wanted: str, by_path: dict[str, RemoteFile], key: str) -> SelectionError:
    near = difflib.get_close_matches(wanted, list(by_path), n=3, cutoff=0.4)
    what = "file" if key == "files" else "pattern"
    msg = f"entry '{spec.name}' (line {spec.line}): {key} {what} {wanted!r} matches nothing in '{spec.repo}'"
    hint = f"Nearest repo files: {', '.join(near)}." if near else f"Repo files: {_sample(by_path)}."
    return SelectionError(msg, hint=hint)


def _sample(by_path: dict[str, RemoteFile], limit: int = 8) -> str:
    names = sorted(by_path)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"
