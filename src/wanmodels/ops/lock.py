"""`wanmodels lock`: re-resolve every entry and write (or, with `check`, compare against) the lockfile."""

from __future__ import annotations

from wanmodels.config import Settings
from wanmodels.errors import on_behalf
from wanmodels.inputs.lockfile import Lockfile
from wanmodels.inputs.manifest import Manifest
from wanmodels.progress import ProgressSink
from wanmodels.results import LockResult
from wanmodels.sources.base import ByteSource
from wanmodels.sources.pins import resolve_selections, save_lock


def lock(
    manifest: Manifest,
    *,
    settings: Settings | None = None,
    source: ByteSource | None = None,
    check: bool = False,
    sink: ProgressSink | None = None,
) -> LockResult:
    """Resolve every entry on the Hub and write the lockfile (or only compare, with `check`).

    `sink` hears about waits before retries (a rate limit can mean minutes).

    Raises:
        LockError: the existing lockfile is unreadable.
        SelectionError, HubError: an entry cannot be resolved.
        LocalIOError: the lockfile cannot be written.
        Interrupted: Ctrl-C while repos were being listed.
    """
    settings = settings or Settings()
    notify = sink.message if sink is not None else None
    selections, old = resolve_selections(
        manifest, manifest.models, settings, refresh=True, source=source, notify=notify
    )
    fresh = Lockfile.from_selections(selections)
    changes = tuple(_changes(old, fresh, manifest))
    written = None
    if not check and (old is None or old.to_json() != fresh.to_json()):
        written = save_lock(manifest, fresh)
    return LockResult(fresh, changes, written, checked=check)


def _changes(old: Lockfile | None, fresh: Lockfile, manifest: Manifest) -> list[str]:
    if old is None:
        return [f"no lockfile at {manifest.lock_path}"]
    changes = old.drift(manifest)
    for model in fresh.models:
        before = old.get(model.name)
        if before is None or before.selection != model.selection:
            continue
        if before.commit != model.commit:
            moved = f"moved from {before.commit[:12]} to {model.commit[:12]}"
            changes.append(f"{on_behalf(model.name)}'{model.revision}' {moved}")
        elif before.files != model.files:
            changes.append(f"{on_behalf(model.name)}the locked files differ from the Hub's listing")
    return changes
