"""Pin entries to commits and file lists: from the lockfile when it still matches, else the Hub.

Also `lock`, behind `wanmodels lock`: re-resolve every entry and write (or, with
`check`, compare against) the lockfile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wanmodels.config import Settings
from wanmodels.errors import LocalIOError, LockError
from wanmodels.lockfile import Lockfile, read_lock, write_lock
from wanmodels.manifest import Manifest, ModelSpec
from wanmodels.planner import Selection, check_targets, select
from wanmodels.remote import RemoteRepo


def resolve_selections(
    manifest: Manifest,
    specs: tuple[ModelSpec, ...],
    settings: Settings,
    *,
    frozen: bool = False,
    refresh: bool = False,
) -> tuple[tuple[Selection, ...], Lockfile | None]:
    """Pin every entry: from the lockfile when it still matches, else from the Hub.

    Returns the selections and the lockfile that was read (None when there is none).

    Raises:
        LockError: `frozen` and the lock is missing or no longer matches the manifest.
        SelectionError, HubError: see `plan.select` and `hub.Hub.resolve`; also two entries
            placing different files at one path (`plan.check_targets`).
        IntegrityError: the Hub lists another sha256 than the manifest declares.
    """
    lock = read_lock(manifest.lock_path)
    if frozen:
        problems = ["there is no lockfile"] if lock is None else lock.drift(manifest, specs)
        if problems:
            msg = f"{manifest.lock_path}: --frozen, but {'; '.join(problems)}"
            raise LockError(msg, hint="Run `wanmodels lock` and commit the lockfile.")
    selections: list[Selection] = []
    hub = None
    listed: dict[tuple[str, str], RemoteRepo] = {}  # entries sharing a repo list it once
    for spec in specs:
        locked = lock.get(spec.name) if lock is not None and not refresh else None
        if locked is not None and locked.matches(spec):
            selections.append(locked.to_selection(spec))
            continue
        if hub is None:
            from wanmodels.hub import Hub  # imported here: a locked run never loads huggingface_hub

            hub = Hub(settings)
        key = (spec.repo, spec.revision)
        if key not in listed:
            listed[key] = hub.resolve(spec.repo, spec.revision, entry=spec.name)
        repo = listed[key]
        selections.append(select(spec, repo.commit, repo.files))
    return check_targets(selections), lock


@dataclass(frozen=True, slots=True)
class LockResult:
    """What `lock` found: the fresh lock, how it differs from the old one, where it went."""

    lockfile: Lockfile
    changes: tuple[str, ...]
    written: Path | None

    @property
    def up_to_date(self) -> bool:
        return not self.changes


def lock(manifest: Manifest, *, settings: Settings | None = None, check: bool = False) -> LockResult:
    """Resolve every entry on the Hub and write the lockfile (or only compare, with `check`).

    Raises:
        LockError: the existing lockfile is unreadable.
        SelectionError, HubError: an entry cannot be resolved.
        LocalIOError: the lockfile cannot be written.
    """
    settings = settings or Settings()
    selections, old = resolve_selections(manifest, manifest.models, settings, refresh=True)
    fresh = Lockfile.from_selections(selections)
    changes = tuple(_changes(old, fresh, manifest))
    written = None
    if not check and (old is None or old.to_json() != fresh.to_json()):
        written = save_lock(manifest, fresh)
    return LockResult(fresh, changes, written)


def save_lock(manifest: Manifest, lockfile: Lockfile) -> Path:
    """Write the manifest's lockfile; returns its path.

    Raises:
        LocalIOError: it cannot be written.
    """
    try:
        write_lock(manifest.lock_path, lockfile)
    except OSError as err:
        msg = f"cannot write the lockfile '{manifest.lock_path}': {err.strerror}"
        raise LocalIOError(msg) from None
    return manifest.lock_path


def _changes(old: Lockfile | None, fresh: Lockfile, manifest: Manifest) -> list[str]:
    if old is None:
        return [f"there is no lockfile at {manifest.lock_path}"]
    changes = old.drift(manifest)
    for model in fresh.models:
        before = old.get(model.name)
        if before is None or before.selection != model.selection:
            continue
        if before.commit != model.commit:
            moved = f"moved from {before.commit[:12]} to {model.commit[:12]}"
            changes.append(f"entry '{model.name}': '{model.revision}' {moved}")
        elif before.files != model.files:
            changes.append(f"entry '{model.name}': the locked files differ from the Hub's listing")
    return changes
