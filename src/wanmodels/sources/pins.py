"""Pin entries to commits and file lists: from the lockfile when it still matches, else the Hub.

Repos are listed concurrently: each listing is a round trip or two, and a stack of four repos
should not pay for them one after another.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from wanmodels._text import count
from wanmodels._threads import map_threads
from wanmodels.config import Settings
from wanmodels.errors import (
    HubError,
    LocalIOError,
    LockError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    RevisionNotFoundError,
    SelectionError,
    WanmodelsError,
    without_entry,
)
from wanmodels.inputs.lockfile import LockedModel, Lockfile, read_lock, write_lock
from wanmodels.inputs.manifest import Manifest, ModelSpec
from wanmodels.inputs.presets import PLACEHOLDER_REPOS
from wanmodels.inputs.selection import Selection, check_targets, select
from wanmodels.repos import RemoteRepo
from wanmodels.results import SkippedEntry
from wanmodels.sources.base import ByteSource

MAX_LISTINGS: Final = 8  # metadata requests in flight at once
PLANNING_NOTICE: Final = 2.0  # seconds of listing before the run says what it is waiting for


def resolve_selections(
    manifest: Manifest,
    specs: tuple[ModelSpec, ...],
    settings: Settings,
    *,
    frozen: bool = False,
    refresh: bool = False,
    source: ByteSource | None = None,
    notify: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[tuple[Selection, ...], Lockfile | None]:
    """Pin every entry: from the lockfile when it still matches, else from `source` (the Hub).

    Returns the selections and the lockfile that was read (None when there is none).
    When it builds the Hub client itself, `notify` hears about its waits before retries
    and `cancel` cuts them short.

    Raises:
        LockError: `frozen` and the lock is missing or no longer matches the manifest.
        SelectionError, HubError: see `selection.select` and `ByteSource.list_repo`; also two
            entries placing different files at one path (`selection.check_targets`), and a
            selected file the Hub lists with no digest of its bytes (a Xet hash, no sha256).
            When several entries cannot be listed, one error names each of them.
        IntegrityError: the Hub lists another sha256 than the manifest declares.
        Interrupted: `cancel` was set, or Ctrl-C, while repos were being listed.
    """
    resolved = resolve(
        manifest, specs, settings, frozen=frozen, refresh=refresh, source=source, notify=notify, cancel=cancel
    )
    return resolved.selections, resolved.lock


@dataclass(frozen=True, slots=True)
class Resolved:
    """What `resolve` pinned, the lockfile it read, and the entries it skipped as missing."""

    selections: tuple[Selection, ...]
    lock: Lockfile | None
    skipped: tuple[SkippedEntry, ...] = ()


def resolve(
    manifest: Manifest,
    specs: tuple[ModelSpec, ...],
    settings: Settings,
    *,
    frozen: bool = False,
    refresh: bool = False,
    skip_missing: bool = False,
    skip_command: str | None = None,
    source: ByteSource | None = None,
    notify: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> Resolved:
    """`resolve_selections`, and what to do with entries whose repo, revision or files the Hub
    does not have: with `skip_missing`, leave them out and return them as `skipped`; without
    it, fail, and when `skip_command` is given, name it in the hint as the way to fetch the rest.

    Raises:
        As `resolve_selections`.
    """
    lock = read_pins(manifest)
    if frozen:
        check_frozen(manifest, specs, lock)
    pinned = {}
    wanted: dict[tuple[str, str], str] = {}  # (repo, revision) -> first entry naming it
    for spec in specs:
        locked = lock.get(spec.name) if lock is not None and not refresh else None
        if locked is not None and locked.matches(spec):
            pinned[spec.name] = locked_selection(manifest, locked, spec)
        else:
            wanted.setdefault((spec.repo, spec.revision), spec.name)
    cancel = cancel or threading.Event()
    listed = _list_repos(wanted, settings, source, notify, cancel) if wanted else {}
    selections: list[Selection] = []
    failures: list[tuple[ModelSpec, WanmodelsError]] = []
    for spec in specs:
        if spec.name in pinned:
            selections.append(pinned[spec.name])
            continue
        repo = listed[(spec.repo, spec.revision)]
        try:
            if isinstance(repo, HubError):
                raise repo
            selections.append(_checked(select(spec, repo.commit, repo.files), repo))
        except (HubError, SelectionError) as err:
            failures.append((spec, err))
    missing = [(spec, err) for spec, err in failures if isinstance(err, _MISSING)]
    if skip_missing and len(missing) == len(failures):
        skipped = tuple(SkippedEntry(spec.name, spec.repo, str(err)) for spec, err in missing)
        return Resolved(check_targets(tuple(selections)), lock, skipped)
    if failures:
        extra = skip_command if missing and len(specs) > 1 else None
        raise _failed(failures, extra)
    return Resolved(check_targets(tuple(selections)), lock)


def check_frozen(manifest: Manifest, specs: tuple[ModelSpec, ...], lock: Lockfile | None) -> None:
    """`--frozen`: the lockfile exists and pins exactly these entries as the manifest has them.

    Raises:
        LockError: it does not.
    """
    problems = ["there is no lockfile"] if lock is None else lock.drift(manifest, specs)
    if not problems:
        return
    msg = f"{manifest.lock_path}: --frozen, but {'; '.join(problems)}"
    if manifest.preset is not None:
        # A preset's lockfile lives in its models folder, not in a checkout: nothing to commit.
        hint = f"Run `{manifest.command('lock')}` to write it in the models folder, then run again."
    else:
        hint = f"Run `{manifest.command('lock')}` and commit the lockfile."
    raise LockError(msg, hint=hint)


# The Hub lacks what an entry names: what `skip_missing` leaves out (a network failure is not this).
_MISSING: Final = (RepoNotFoundError, RevisionNotFoundError, RemoteFileNotFoundError, SelectionError)


def _listing_notice(wanted: dict[tuple[str, str], str], settings: Settings) -> str:
    where = settings.endpoint or "the Hub"
    return f"listing {count(len(wanted), 'repo')} on {where} (revisions and file lists)…"


def _failed(failures: list[tuple[ModelSpec, WanmodelsError]], skip_command: str | None) -> WanmodelsError:
    """One error for every entry that could not be resolved, each named once."""
    first = failures[0][1]
    hints = list(dict.fromkeys(err.hint for _, err in failures if err.hint))
    if skip_command is not None:
        hints.append(
            f"To fetch the other entries and list what is missing, run `{skip_command}` (exit 1 while "
            "anything is missing)."
        )
    hint = " ".join(h if h.endswith((".", "!", "?")) else h + "." for h in hints) or None
    if len(failures) == 1:
        first.hint = hint
        return first
    # Entries of one repo share its listing, and so its failure: one message names them all.
    groups: dict[int, tuple[WanmodelsError, list[str]]] = {}
    for spec, err in failures:
        groups.setdefault(id(err), (err, []))[1].append(spec.name)
    if len(groups) == 1:
        ((_, names),) = groups.values()
        msg = f"entries {_names(names)} could not be resolved: {without_entry(first.message, names[0])}"
    else:
        parts = [
            err.message
            if len(names) == 1
            else f"entries {_names(names)}: {without_entry(err.message, names[0])}"
            for err, names in groups.values()
        ]
        msg = f"{len(failures)} entries could not be resolved: " + "; ".join(parts)
    if any(type(err) is not type(first) for _, err in failures):
        return HubError(msg, hint=hint)  # mixed: a Hub error among them, and its exit code (3) wins
    if isinstance(first, HubError):
        return type(first)(msg, status=first.status, hint=hint)
    return type(first)(msg, hint=hint)


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"


def read_pins(manifest: Manifest) -> Lockfile | None:
    """The manifest's lockfile; None when there is none.

    Raises:
        LockError: it is unreadable; the hint rewrites it for this manifest and root.
    """
    try:
        return read_lock(manifest.lock_path)
    except LockError as err:
        if err.hint is None:  # unreadable rather than invalid: deleting it is not the fix
            raise
        raise LockError(err.message, hint=_relock(manifest)) from None


def locked_selection(manifest: Manifest, locked: LockedModel, spec: ModelSpec) -> Selection:
    """A locked entry's files as a selection (see `LockedModel.to_selection`).

    Raises:
        SelectionError: the lockfile breaks a rule; the hint rewrites it for this manifest.
    """
    try:
        return locked.to_selection(spec)
    except SelectionError as err:
        if err.hint is not None:  # a rule of the manifest, with its own fix
            raise
        raise SelectionError(err.message, hint=_relock(manifest)) from None


def _relock(manifest: Manifest) -> str:
    return f"Delete {manifest.lock_path} and run `{manifest.command('lock')}` to write a new one."


def _checked(selection: Selection, repo: RemoteRepo) -> Selection:
    """Refuse a selected file whose bytes nothing could check (its sha256 is neither listed nor declared)."""
    spec = selection.spec
    for chosen in selection.files:
        remote = chosen.remote
        if remote.path in repo.unhashed and remote.digest.algorithm != "sha256":
            msg = (
                f"entry '{spec.name}' ({spec.where}): '{remote.path}' in '{repo.repo_id}' at "
                f"{repo.commit[:12]} is listed with a Xet hash but no LFS sha256, so its bytes could "
                "not be verified; nothing was fetched"
            )
            hint = (
                "Map it under the entry's 'files:' with its sha256 (from the file's page on the Hub), "
                "or exclude it."
            )
            raise HubError(msg, repo_id=repo.repo_id, revision=repo.commit, hint=hint)
    return selection


def _list_repos(
    wanted: dict[tuple[str, str], str],
    settings: Settings,
    source: ByteSource | None,
    notify: Callable[[str], None] | None,
    cancel: threading.Event,
) -> dict[tuple[str, str], RemoteRepo | HubError]:
    """List every (repo, revision) once, several at a time; a listing that fails is returned as
    its error, so the others finish and every entry a failure (an outage, say) hits is named.

    The listings run on `map_threads`' daemon threads, so Ctrl-C is felt at once and a listing
    waiting out a rate limit never holds the process (`cancel` wakes it).
    """
    if source is None:
        from wanmodels.sources.hub import Hub  # imported here: a locked run never loads huggingface_hub

        hub = Hub(settings, notify=notify, cancel=cancel)
        try:
            return _list_with(hub, wanted, settings, notify, cancel)
        finally:
            hub.close()
    return _list_with(source, wanted, settings, notify, cancel)


def _list_with(
    lister: ByteSource,
    wanted: dict[tuple[str, str], str],
    settings: Settings,
    notify: Callable[[str], None] | None,
    cancel: threading.Event,
) -> dict[tuple[str, str], RemoteRepo | HubError]:

    def listing(key: tuple[str, str]) -> RemoteRepo | HubError:
        try:
            return lister.list_repo(key[0], key[1], entry=wanted[key])
        except RepoNotFoundError as err:
            if key[0] not in PLACEHOLDER_REPOS:
                return err
            return RepoNotFoundError(  # what the user meant: the product knows, the source does not
                err.message,
                hint=PLACEHOLDER_REPOS[key[0]],
                repo_id=err.repo_id,
                revision=err.revision,
                status=err.status,
            )
        except HubError as err:
            return err

    keys = list(wanted)
    # A round trip or two per repo: on a slow link, say what the wait is for (timed from here,
    # past the client's import, so a fast listing never prints it).
    waiting = None
    if notify is not None:
        waiting = threading.Timer(PLANNING_NOTICE, notify, (_listing_notice(wanted, settings),))
        waiting.daemon = True
        waiting.start()
    try:
        if len(keys) == 1:
            return {keys[0]: listing(keys[0])}
        # No grace on Ctrl-C: a listing is only metadata, and it may be waiting out a rate limit.
        listed = map_threads(listing, keys, MAX_LISTINGS, name="wanmodels-list", cancel=cancel, grace=0.0)
    finally:
        if waiting is not None:
            waiting.cancel()
    return dict(zip(keys, listed, strict=True))


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
