"""A cheap look at the root: per entry, complete, missing files or partial, from the lockfile.

Status never touches the network and never hashes: it compares sizes on disk with the
lockfile (and counts partial downloads). `verify` is the command that proves the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wanmodels._fs import safe_join
from wanmodels.lockfile import read_lock
from wanmodels.manifest import Manifest
from wanmodels.state import part_path

State = Literal["complete", "missing", "partial", "not locked"]


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One entry's state on disk."""

    name: str
    repo: str
    folder: str
    state: State
    commit: str | None = None
    files: int = 0
    missing: int = 0
    bytes_present: int = 0
    bytes_expected: int = 0


@dataclass(frozen=True, slots=True)
class StatusReport:
    models: tuple[ModelStatus, ...]

    @property
    def complete(self) -> bool:
        return all(m.state == "complete" for m in self.models)


def status(manifest: Manifest, names: tuple[str, ...] = ()) -> StatusReport:
    """Report each chosen entry's state on disk from the lockfile.

    Raises:
        ManifestError: an unknown entry name.
        LockError: the lockfile is unreadable.
    """
    lock = read_lock(manifest.lock_path)
    result = []
    for spec in manifest.select(names):
        locked = lock.get(spec.name) if lock is not None else None
        if locked is None or not locked.matches(spec):
            result.append(ModelStatus(spec.name, spec.repo, spec.folder, "not locked"))
            continue
        missing = 0
        present = 0
        partial = False
        for f in locked.files:
            try:
                size = safe_join(manifest.root, f.local).stat().st_size
            except (OSError, ValueError):
                size = -1
            if size == f.size:
                present += size
                continue
            missing += 1
            part = part_path(manifest.root, f.local, f.digest)
            if part.is_file():
                partial = True
                present += min(part.stat().st_size, f.size)
        state: State = "complete" if not missing else ("partial" if partial else "missing")
        expected = sum(f.size for f in locked.files)
        result.append(
            ModelStatus(
                spec.name,
                spec.repo,
                spec.folder,
                state,
                locked.commit,
                len(locked.files),
                missing,
                present,
                expected,
            )
        )
    return StatusReport(tuple(result))
