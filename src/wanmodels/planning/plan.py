"""What needs doing: for each selected file, compare the root with the remote and decide.

Pure functions over data: a repo listing (or the lockfile), what the disk holds and where
else this machine holds the same bytes go in, a `Plan` comes out. Nothing here touches the
network, so `--dry-run` is free and every rule is testable without a server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from wanmodels.digests import Digest
from wanmodels.inputs.manifest import ModelSpec
from wanmodels.inputs.selection import SelectedFile, Selection


class Action(str, Enum):
    """What happens to one file."""

    KEEP = "keep"  # on disk and verified
    DOWNLOAD = "download"  # missing: fetch from byte 0
    RESUME = "resume"  # a partial download exists: continue from its length
    REPLACE = "replace"  # on disk but wrong: fetch, then swap in atomically
    CONFLICT = "conflict"  # a file wanmodels did not place holds other bytes: left alone, fails


class Source(str, Enum):
    """Where a file's bytes come (or came) from: what the plan expects, and what a run reports."""

    NETWORK = "network"
    HF_CACHE = "hf-cache"  # huggingface_hub's cache, found by digest
    LOCAL = "local"  # another file on this machine: this root, a --reuse-from folder, a twin in this run
    NONE = "none"  # nothing moves: the file is already in place

    @property
    def is_reuse(self) -> bool:
        return self in (Source.HF_CACHE, Source.LOCAL)


@dataclass(frozen=True, slots=True)
class Found:
    """A file elsewhere on this machine that should hold a planned file's bytes (unproven until hashed)."""

    origin: Source
    path: Path


class Check(str, Enum):
    """What one look at a target found."""

    OK = "ok"  # right size and digest (hashed now, or vouched for by the records)
    UNHASHED = "unhashed"  # right size, not hashed (a look that only compares sizes)
    MISSING = "missing"
    NOT_FILE = "not a file"
    WRONG_SIZE = "wrong size"
    WRONG_HASH = "wrong hash"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class LocalState:
    """What the disk holds for one selected file."""

    check: Check = Check.MISSING
    size: int | None = None  # the target's size on disk, when it is a file
    actual: Digest | None = None  # the digest it hashed to, when it was hashed
    part_bytes: int = 0  # bytes a partial download already holds, 0 when none
    part_reserved: int = 0  # disk that partial download occupies (reserved up front: up to the size)
    ours: bool = False  # the file there is the very one wanmodels placed (it may be repaired)

    @property
    def complete(self) -> bool:
        return self.check is Check.OK

    @property
    def exists(self) -> bool:
        return self.check is not Check.MISSING

    @property
    def foreign(self) -> bool:
        """Something wanmodels did not place holds the target, with other bytes: the user's."""
        return self.exists and not self.complete and not self.ours


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
    reserved: int = 0  # disk its partial download already occupies, for RESUME
    origin: Source = Source.NETWORK  # where the bytes come from, when it needs any
    reuse_from: Path | None = None  # the file to link or copy, for HF_CACHE and LOCAL
    twin_of: str | None = None  # the local path of this run's file with the same bytes, placed first
    foreign: LocalState | None = None  # what holds the target when it is not wanmodels' file

    @property
    def needs_bytes(self) -> bool:
        return self.action not in (Action.KEEP, Action.CONFLICT)

    @property
    def planned_source(self) -> Source:
        """Where the plan expects this file's bytes to come from (`none` when it needs none)."""
        return self.origin if self.needs_bytes else Source.NONE

    @property
    def moves_aside(self) -> bool:
        """Placing it moves a file of the user's aside (`--replace`)."""
        return self.foreign is not None and self.needs_bytes

    @property
    def to_fetch(self) -> int:
        """Bytes this file will take from the network (0 when it is kept or reused)."""
        return self.size - self.present if self.needs_bytes and self.origin is Source.NETWORK else 0

    @property
    def to_allocate(self) -> int:
        """Disk this file still takes from the network's bytes: a part's reserved blocks are taken."""
        return max(0, self.to_fetch - max(0, self.reserved - self.present))

    @property
    def to_reuse(self) -> int:
        """Bytes this file will take from a file already on this machine."""
        return self.size if self.needs_bytes and self.origin is not Source.NETWORK else 0


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
    def to_allocate(self) -> int:
        """Free disk the network's bytes need (less than `to_fetch` when parts reserved theirs)."""
        return sum(f.to_allocate for f in self.unique_files)

    @property
    def present(self) -> int:
        return sum(f.present for f in self.unique_files)

    @property
    def to_reuse(self) -> int:
        return sum(f.to_reuse for f in self.unique_files)

    def fetch_order(self) -> tuple[PlannedFile, ...]:
        """Files that need the network, largest first, so big transfers start while small ones fill in."""
        todo = [f for f in self.unique_files if f.needs_bytes and f.origin is Source.NETWORK]
        return tuple(sorted(todo, key=lambda f: (-f.to_fetch, f.local_path)))

    def reused(self) -> tuple[PlannedFile, ...]:
        """Files placed from this machine: those from elsewhere first, then this run's twins."""
        # Not `f.to_reuse`: that is 0 for an empty file, which still has to be placed.
        todo = [f for f in self.unique_files if f.needs_bytes and f.origin is not Source.NETWORK]
        return tuple(sorted(todo, key=lambda f: (f.twin_of is not None, f.local_path)))


def decide(local: LocalState, size: int, *, replace_foreign: bool = False) -> tuple[Action, int]:
    """The action for one file given what the disk holds, and the bytes already usable.

    A file wanmodels did not place is never replaced unless `replace_foreign` (it is then
    moved aside when the new one is placed); one it placed and that is now wrong is repaired.
    """
    if local.complete:
        return Action.KEEP, size
    if local.foreign and not replace_foreign:
        return Action.CONFLICT, 0
    if 0 < local.part_bytes <= size:
        return Action.RESUME, local.part_bytes
    return (Action.REPLACE if local.exists else Action.DOWNLOAD), 0


def make_plan(
    root: Path,
    selections: Iterable[Selection],
    probe: Callable[[SelectedFile], LocalState],
    *,
    replace_foreign: bool = False,
) -> Plan:
    """Build the plan: `probe` reports what the disk holds for each selected file."""
    models = []
    for sel in selections:
        planned = []
        for item in sel.files:
            local = probe(item)
            action, present = decide(local, item.remote.size, replace_foreign=replace_foreign)
            reserved = local.part_reserved if action is Action.RESUME else 0
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
                    reserved=reserved,
                    foreign=local if local.foreign else None,
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
    origins: dict[str, tuple[Source, Path | None, str | None]] = {}
    for group in groups.values():
        need = [f for f in group if f.needs_bytes]
        if not need:
            continue
        kept = next((f for f in group if f.action is Action.KEEP), None)
        if kept is not None:
            for f in need:
                origins[f.local_path] = (Source.LOCAL, plan.root / kept.local_path, None)
            continue
        leader = max(need, key=lambda f: f.present)  # max() keeps the first of equals: manifest order
        found = find(leader)
        if found is not None:
            origins[leader.local_path] = (found.origin, found.path, None)
        for f in need:
            if f is not leader:
                origins[f.local_path] = (Source.LOCAL, plan.root / leader.local_path, leader.local_path)

    def decide_origin(f: PlannedFile) -> PlannedFile:
        if f.local_path not in origins:
            return f
        origin, path, twin_of = origins[f.local_path]
        action = Action.DOWNLOAD if f.action is Action.RESUME else f.action
        return replace(
            f, action=action, present=0, reserved=0, origin=origin, reuse_from=path, twin_of=twin_of
        )

    models = tuple(replace(m, files=tuple(decide_origin(f) for f in m.files)) for m in plan.models)
    return replace(plan, models=models)
