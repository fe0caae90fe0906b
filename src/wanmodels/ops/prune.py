"""Delete what wanmodels placed for a manifest that the manifest no longer selects; nothing else.

A ComfyUI models folder is shared: the user's own models, other tools' downloads and
other manifests' files sit beside ours. So a file is only ever deleted when all of this
holds: wanmodels wrote it (the records say so), this manifest placed or claimed it, no
other manifest that still exists claims it, no entry of this manifest selects it now (not
even through another name for the same file: a symlinked folder, a case-insensitive disk),
and it is unchanged since: the same inode (the inode generation tells a new file that was
given a freed inode number), the same size, and the same mtime or (after a touch) the same
bytes. Anything else is left alone, even an equal copy put back.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wanmodels._fs import inode_generation, safe_join
from wanmodels.config import Settings
from wanmodels.digests import hash_file
from wanmodels.errors import LocalIOError
from wanmodels.inputs.manifest import Manifest, owner_exists
from wanmodels.inputs.selection import Selection
from wanmodels.results import PruneResult
from wanmodels.sources.base import ByteSource
from wanmodels.sources.pins import resolve_selections
from wanmodels.store.rootlock import root_lock
from wanmodels.store.state import Stamp, StateCache


@dataclass(frozen=True, slots=True)
class StaleFile:
    """A file placed for this manifest that it no longer selects."""

    path: str
    others: tuple[str, ...]  # other manifests, still there, that claim it too: only our claim goes
    unchanged: bool  # still exactly what wanmodels placed: `--prune` may delete it

    @property
    def shared(self) -> bool:
        return bool(self.others)


def stale_files(
    manifest: Manifest,
    selections: tuple[Selection, ...],
    cache: StateCache,
    names: tuple[str, ...] = (),
    *,
    release: bool = False,
) -> list[StaleFile]:
    """Files placed for `manifest` that none of `selections` (all its entries) selects; with
    `release`, every file placed for it. With `names`, only files inside those entries' folders.
    """
    selected = set() if release else {f.local_path for sel in selections for f in sel.files}
    folders = [PurePosixPath(s.folder) for s in manifest.select(names)] if names else None
    out = []
    for path, stamp in sorted(cache.placed_by(manifest.identity).items()):
        if path in selected:
            continue
        if folders is not None and not any(PurePosixPath(path).is_relative_to(f) for f in folders):
            continue
        others = tuple(o for o in stamp.owners if o != manifest.identity and owner_exists(manifest.root, o))
        out.append(StaleFile(path, others, _unchanged(manifest.root, path, stamp)))
    return out


def prune(
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    dry_run: bool = False,
    release: bool = False,
) -> PruneResult:
    """Delete the stale files of `manifest` (see the module docstring for the rules).

    Every entry is resolved (from the lockfile when it matches), because a file one entry
    dropped may still be selected by another that shares its folder. With `names`, only
    stale files inside those entries' folders are considered. With `release`, every file
    placed for the manifest counts as stale: the manifest gives up its claim on the root
    (`wanmodels prune`), so switching presets frees what only the old one placed.

    Raises:
        ManifestError, LockError, SelectionError, HubError: the entries cannot be resolved.
        LocalIOError: a file or the state records cannot be written.
    """
    settings = settings or Settings()
    with root_lock(manifest.root, settings, enabled=not dry_run):
        cache = StateCache(manifest.root)
        return prune_with(
            cache, manifest, names, settings=settings, source=source, dry_run=dry_run, release=release
        )


def prune_with(
    cache: StateCache,
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    dry_run: bool = False,
    release: bool = False,
) -> PruneResult:
    """`prune` for a caller that already holds the root lock and the state records (a download,
    a verify): its unsaved changes would otherwise be lost. A dry run saves nothing."""
    if release:
        selections: tuple[Selection, ...] = ()
    else:
        selections, _ = resolve_selections(manifest, manifest.models, settings or Settings(), source=source)
    stale = stale_files(manifest, selections, cache, names, release=release)
    kept = _entries(manifest.root, {f.local_path for sel in selections for f in sel.files})
    removed = []
    released = []
    changed = []
    for item in stale:
        if item.shared:
            if not dry_run:
                cache.disown(item.path, manifest.identity)
            released.append(item.path)
            continue
        if _remove(manifest, cache, item.path, kept, dry_run=dry_run):
            removed.append(item.path)
        elif item.unchanged is False and _exists(manifest.root, item.path):
            changed.append(item.path)
            if release and not dry_run:
                cache.disown(item.path, manifest.identity)
    if not dry_run:
        cache.save()
    return PruneResult(tuple(removed), dry_run=dry_run, released=tuple(released), changed=tuple(changed))


def _exists(root: Path, path: str) -> bool:
    try:
        return safe_join(root, path).exists()
    except ValueError:
        return False


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


def _unchanged(root: Path, path: str, stamp: Stamp) -> bool:
    """Whether the file at `path` is still exactly what wanmodels placed there."""
    try:
        target = safe_join(root, path)
        st = target.lstat()
    except (OSError, ValueError):
        return False
    return _still_ours(target, st, stamp)


def _still_ours(target: Path, st: os.stat_result, stamp: Stamp) -> bool:
    """The very file wanmodels placed (the same inode, not a new file given its number), its
    bytes unchanged: its stat says so, or, after a mere touch, its hash does. Another file is
    left alone, even with equal bytes."""
    if not stat.S_ISREG(st.st_mode) or st.st_size != stamp.size:
        return False
    if not stamp.same_inode(st, inode_generation(target)) or stamp.digest is None:
        return False
    if st.st_mtime_ns == stamp.mtime_ns:
        return True
    try:
        return hash_file(target, stamp.digest.algorithm, stamp.size) == stamp.digest
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
