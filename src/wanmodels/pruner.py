"""Delete what wanmodels placed for a manifest that the manifest no longer selects; nothing else.

A ComfyUI models folder is shared: the user's own models, other tools' downloads and
other manifests' files sit beside ours. So a file is only ever deleted when all of this
holds: wanmodels wrote it (the state cache says so), this manifest placed or claimed it,
no other manifest claims it, no entry of this manifest selects it now (not even through
another name for the same file: a symlinked folder, a case-insensitive disk), and it is
unchanged since: the same inode and size, and the same mtime or (after a touch) the same
bytes. Anything else is left alone, even an equal copy put back (another inode).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wanmodels._fs import safe_join
from wanmodels.config import Settings
from wanmodels.errors import LocalIOError
from wanmodels.integrity import Digest, hash_file
from wanmodels.manifest import Manifest
from wanmodels.remote import ByteSource
from wanmodels.resolve import resolve_selections
from wanmodels.results import PruneResult
from wanmodels.rootlock import root_lock
from wanmodels.selection import Selection
from wanmodels.state import Stamp, StateCache


@dataclass(frozen=True, slots=True)
class StaleFile:
    """A file placed for this manifest that it no longer selects."""

    path: str
    shared: bool  # another manifest claims it too: only our claim goes


def stale_files(
    manifest: Manifest, selections: tuple[Selection, ...], cache: StateCache, names: tuple[str, ...] = ()
) -> list[StaleFile]:
    """Files placed for `manifest` that none of `selections` (all its entries) selects.

    With `names`, only files inside those entries' folders count.
    """
    selected = {f.local_path for sel in selections for f in sel.files}
    folders = [PurePosixPath(s.folder) for s in manifest.select(names)] if names else None
    out = []
    for path, stamp in sorted(cache.placed_by(manifest.identity).items()):
        if path in selected:
            continue
        if folders is not None and not any(PurePosixPath(path).is_relative_to(f) for f in folders):
            continue
        out.append(StaleFile(path, shared=len(stamp.owners) > 1))
    return out


def prune(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete the stale files of `manifest` (see the module docstring for the rules).

    Every entry is resolved (from the lockfile when it matches), because a file one entry
    dropped may still be selected by another that shares its folder. With `names`, only
    stale files inside those entries' folders are considered.

    Raises:
        ManifestError, LockError, SelectionError, HubError: the entries cannot be resolved.
        LocalIOError: a file or the state cache cannot be written.
    """
    settings = settings or Settings()
    with root_lock(manifest.root, settings, enabled=not dry_run):
        cache = StateCache(manifest.root)
        return prune_with(cache, manifest, names, settings=settings, source=source, dry_run=dry_run)


def prune_with(
    cache: StateCache,
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """`prune` for a caller that already holds the root lock and the state cache (a download, a
    verify): its unsaved changes to the cache would otherwise be lost. A dry run saves nothing."""
    selections, _ = resolve_selections(manifest, manifest.models, settings or Settings(), source=source)
    stale = stale_files(manifest, selections, cache, names)
    kept = _entries(manifest.root, {f.local_path for sel in selections for f in sel.files})
    removed = []
    for item in stale:
        if item.shared:
            if not dry_run:
                cache.disown(item.path, manifest.identity)
            continue
        if _remove(manifest, cache, item.path, kept, dry_run=dry_run):
            removed.append(item.path)
    if not dry_run:
        cache.save()
    return PruneResult(tuple(removed), dry_run=dry_run)


def _entry(root: Path, path: str) -> tuple[int, int, str] | None:
    """A directory entry's identity: its folder (device, inode; symlinks followed) and its name
    case-folded. Two paths with the same identity are one file under two names (a symlinked
    folder, a case-insensitive disk); a hard link elsewhere (this run's twin) is another entry."""
    try:
        target = safe_join(root, path)
        folder = target.parent.stat()
    except (OSError, ValueError):
        return None
    return (folder.st_dev, folder.st_ino, target.name.casefold())


def _entries(root: Path, paths: set[str]) -> set[tuple[int, int, str]]:
    """The identities of the selected files: names prune must never delete."""
    return {e for e in (_entry(root, p) for p in paths) if e is not None}


def _still_ours(target: Path, st: os.stat_result, stamp: Stamp) -> bool:
    """The very file wanmodels placed (same inode and size), its bytes unchanged: its mtime says
    so, or, after a mere touch, its hash does. Another inode is another file, even with equal bytes."""
    if (st.st_ino, st.st_size) != (stamp.inode, stamp.size) or not stat.S_ISREG(st.st_mode):
        return False
    if st.st_mtime_ns == stamp.mtime_ns:
        return True
    digest = Digest.parse(stamp.digest)
    try:
        return hash_file(target, digest.algorithm, stamp.size) == digest
    except OSError:
        return False


def _remove(
    manifest: Manifest, cache: StateCache, path: str, kept: set[tuple[int, int, str]], *, dry_run: bool
) -> bool:
    """Delete one placed file if it is still exactly what wanmodels wrote and nothing selects it."""
    try:
        target = safe_join(manifest.root, path)
        st = target.lstat()
    except FileNotFoundError:
        if not dry_run:
            cache.forget(path)
        return False
    except (OSError, ValueError):
        return False
    if _entry(manifest.root, path) in kept:
        return False  # a selected file reached by another name (a symlinked or case-folded folder)
    stamp = cache.placed_by(manifest.identity).get(path)
    if stamp is None or not _still_ours(target, st, stamp):
        return False  # changed since: it may be someone's own file now
    if dry_run:
        return True
    try:
        target.unlink()
    except FileNotFoundError:
        pass
    except OSError as err:
        msg = f"cannot delete '{path}': {err.strerror}"
        raise LocalIOError(msg) from None
    cache.forget(path)
    return True
