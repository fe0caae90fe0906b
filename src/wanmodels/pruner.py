"""Delete what wanmodels placed for a manifest that the manifest no longer selects; nothing else.

A ComfyUI models folder is shared: the user's own models, other tools' downloads and
other manifests' files sit beside ours. So a file is only ever deleted when all of this
holds: wanmodels wrote it (the state cache says so), this manifest placed or claimed it,
no other manifest claims it, no entry of this manifest selects it now, and it is unchanged
since (same size, mtime and inode). Anything else is left alone.
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
from wanmodels.planner import Selection
from wanmodels.remote import ByteSource
from wanmodels.resolve import resolve_selections
from wanmodels.results import PruneResult
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
    return prune_with(
        StateCache(manifest.root), manifest, names, settings=settings, source=source, dry_run=dry_run
    )


def prune_with(
    cache: StateCache,
    manifest: Manifest,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """`prune` with the state cache a caller already holds (its changes would otherwise be lost)."""
    selections, _ = resolve_selections(manifest, manifest.models, settings or Settings(), source=source)
    removed = []
    for stale in stale_files(manifest, selections, cache, names):
        if stale.shared:
            if not dry_run:
                cache.disown(stale.path, manifest.identity)
            continue
        if _remove(manifest, cache, stale.path, dry_run=dry_run):
            removed.append(stale.path)
    cache.save()
    return PruneResult(tuple(removed), dry_run=dry_run)


def _still_ours(target: Path, st: os.stat_result, stamp: Stamp) -> bool:
    """Unchanged since wanmodels placed it, or at least the very same bytes (a touch, a copy back)."""
    if stamp.still_matches(st):
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_size != stamp.size:
        return False
    digest = Digest.parse(stamp.digest)
    try:
        return hash_file(target, digest.algorithm, stamp.size) == digest
    except OSError:
        return False


def _remove(manifest: Manifest, cache: StateCache, path: str, *, dry_run: bool) -> bool:
    """Delete one placed file if it is still exactly what wanmodels wrote."""
    try:
        target = safe_join(manifest.root, path)
        st = target.lstat()
    except FileNotFoundError:
        cache.forget(path)
        return False
    except (OSError, ValueError):
        return False
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
