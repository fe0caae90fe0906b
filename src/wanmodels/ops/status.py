"""A cheap look at the root: per entry, complete, missing files or partial.

Status never touches the network and never hashes. With a lockfile it compares sizes on
disk with the pinned file list. Without one the file list is unknown, so it reports what
the root's own records say: files wanmodels verified there, and partial downloads.
`verify` is the command that proves the bytes.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from wanmodels.inputs.manifest import Manifest, ModelSpec
from wanmodels.layout import partial_folder
from wanmodels.planning.plan import Check
from wanmodels.results import EntryState, ModelStatus, StatusReport
from wanmodels.sources.pins import read_pins
from wanmodels.store.partial import list_parts
from wanmodels.store.state import Hashing, StateCache


def status(manifest: Manifest, names: tuple[str, ...] = ()) -> StatusReport:
    """Report each chosen entry's state on disk.

    Raises:
        ManifestError: an unknown entry name.
        LockError: the lockfile is unreadable.
    """
    lock = read_pins(manifest)
    cache = StateCache(manifest.root)
    result = []
    for spec in manifest.select(names):
        locked = lock.get(spec.name) if lock is not None else None
        if locked is None or not locked.matches(spec):
            result.append(_unlocked(manifest, spec, cache))
            continue
        missing = 0
        present = 0
        partial = 0
        for f in locked.files:
            state = cache.inspect(f.local, f.size, f.digest, hashing=Hashing.NEVER)
            if state.check in (Check.OK, Check.UNHASHED):
                present += f.size
            else:
                missing += 1
                partial += state.part_bytes
        state_ = EntryState.COMPLETE
        if missing:
            state_ = EntryState.PARTIAL if partial else EntryState.MISSING
        result.append(
            ModelStatus(
                spec.name,
                spec.repo,
                spec.folder,
                state_,
                locked.commit,
                len(locked.files),
                missing,
                present,
                sum(f.size for f in locked.files),
                partial,
            )
        )
    return StatusReport(tuple(result))


def _unlocked(manifest: Manifest, spec: ModelSpec, cache: StateCache) -> ModelStatus:
    """What the root's records hold for an entry whose file list is not pinned."""
    targets = {f"{spec.folder}/{target}" for _, target in spec.files}
    folder = PurePosixPath(spec.folder)

    def belongs(path: str) -> bool:
        if targets:
            return path in targets
        return PurePosixPath(path).is_relative_to(folder)

    verified = {p: s for p, s in cache.stamps().items() if belongs(p) and s.digest is not None}
    present = 0
    for path, stamp in verified.items():
        assert stamp.digest is not None
        state = cache.inspect(path, stamp.size, stamp.digest, hashing=Hashing.NEVER)
        if state.check in (Check.OK, Check.UNHASHED):
            present += stamp.size
    partial = sum(p.done_bytes for p in list_parts(partial_folder(manifest.root)) if belongs(p.local_path))
    return ModelStatus(
        spec.name,
        spec.repo,
        spec.folder,
        EntryState.NOT_LOCKED,
        files=len(verified),
        bytes_present=present,
        partial_bytes=partial,
    )
