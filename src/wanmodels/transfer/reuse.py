"""Never download what this machine already has: place the bytes `wanmodels.sources.local` found.

Files found elsewhere are placed before the network pool starts, this run's twins (the same
bytes selected twice) after it; placing goes through `wanmodels.store.place` like a download (the
bytes arrive beside the target, cloned, hard-linked read-only or copied, then one rename),
and a damaged candidate is fetched instead, with a line saying why.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from wanmodels._text import count
from wanmodels._threads import map_threads
from wanmodels.errors import (
    EXIT_FAILED,
    ConflictError,
    IntegrityError,
    Interrupted,
    LocalIOError,
    WanmodelsError,
)
from wanmodels.layout import partial_folder
from wanmodels.planning.plan import Action, Plan, PlannedFile, Source
from wanmodels.progress import ProgressSink
from wanmodels.results import FileOutcome, Link
from wanmodels.sources.local import Finder
from wanmodels.store.partial import PartFile, part_info
from wanmodels.store.place import Placement, Placer
from wanmodels.store.state import StateCache

Fetch = Callable[[Plan], dict[str, FileOutcome]]


@dataclass
class Reuser:
    """Places the reused files of one download around its network transfers."""

    finder: Finder
    placer: Placer
    sink: ProgressSink
    cancel: threading.Event

    @property
    def cache(self) -> StateCache:
        return self.placer.cache

    def provide(self, plan: Plan, fetch: Fetch) -> dict[str, FileOutcome]:
        """Place every file found on this machine, fetch the rest with `fetch` (not called when
        nothing needs the network), then place this run's twins from the files they copy.

        A damaged or unreadable candidate is never placed: its file joins the network fetch,
        with a message saying why.

        Raises:
            Interrupted, and whatever `fetch` raises.
        """
        outcomes: dict[str, FileOutcome] = {}
        found = [f for f in plan.reused() if f.twin_of is None]
        results: list[FileOutcome | None] = []
        if found:
            # Placing is hashing: one file per core (hashlib releases the GIL).
            workers = min(self.finder.settings.workers, os.cpu_count() or 1, len(found))
            try:
                results = map_threads(self._place, found, workers, name="wanmodels-reuse", cancel=self.cancel)
            except (Interrupted, KeyboardInterrupt):
                self.cache.save()  # what was placed before the interrupt stays recorded
                raise
        fallback = {item.local_path for item, outcome in zip(found, results, strict=True) if outcome is None}
        for outcome in results:
            if outcome is not None:
                outcomes[outcome.local_path] = outcome
        if self.cancel.is_set():
            self.cache.save()
            msg = "interrupted; partial downloads are kept. Run the same command again to resume."
            raise Interrupted(msg)
        plan = self._to_network(plan, fallback)
        if plan.fetch_order():  # also a part that holds every byte: it still has to be hashed and placed
            outcomes.update(fetch(plan))
        for twin in (f for f in plan.reused() if f.twin_of is not None):
            outcomes[twin.local_path] = self._place_twin(twin, outcomes.get(twin.twin_of or ""))
        reused = [o for o in outcomes.values() if o.ok and o.source.is_reuse]
        if reused:
            self._summary(reused)
        return outcomes

    def _place(self, item: PlannedFile) -> FileOutcome | None:
        """Place one file found elsewhere; None when it must come from the network instead."""
        started = time.monotonic()
        where = "the Hugging Face cache" if item.origin is Source.HF_CACHE else "this machine"
        try:
            placed = self._copy_in(item)
        except IntegrityError as err:
            self.sink.message(
                f"'{item.local_path}': the copy in {where} ({item.reuse_from}) is damaged "
                f"(expected {item.digest.short}, got {err.actual}); "
                "fetching it from the network instead"
            )
            return None
        except ConflictError as err:
            return FileOutcome.of(item, ok=False, error=str(err), exit_code=err.exit_code, hint=err.hint)
        except LocalIOError as err:
            self.sink.message(f"'{item.local_path}': cannot reuse it from {where} ({err}); fetching it")
            return None
        except Interrupted:
            return None
        return self._done(item, placed, started)

    def _place_twin(self, twin: PlannedFile, first: FileOutcome | None) -> FileOutcome:
        started = time.monotonic()
        if first is None or not first.ok:
            return FileOutcome.of(
                twin,
                ok=False,
                error=f"'{twin.local_path}' was not placed: '{twin.twin_of}' (the same bytes) failed",
                exit_code=first.exit_code if first is not None else EXIT_FAILED,
            )
        try:
            placed = self._copy_in(twin)
        except WanmodelsError as err:
            return FileOutcome.of(twin, ok=False, error=str(err), exit_code=err.exit_code)
        return self._done(twin, placed, started)

    def _copy_in(self, item: PlannedFile) -> Placement:
        """Bring `item.reuse_from`'s bytes into place, checked against the digest (see Placer)."""
        source = item.reuse_from
        assert source is not None
        return self.placer.place_reused(
            item, source, vouched=lambda st: self.finder.vouched(st, item.digest, source), cancel=self.cancel
        )

    def _done(self, item: PlannedFile, placed: Placement, started: float) -> FileOutcome:
        self.finder.remember(placed.stat, item.digest)
        try:  # placed: a part left over is said, never this file's failure
            PartFile(partial_folder(self.finder.root), item.local_path, item.size, item.digest).delete()
        except LocalIOError as err:
            self.sink.message(f"{err}; delete it by hand, nothing needs it")
        outcome = FileOutcome.of(
            item,
            ok=True,
            seconds=time.monotonic() - started,
            source=item.planned_source,
            link=placed.link,
            moved_aside=placed.moved_aside,
        )
        self.sink.file_finished(item, outcome)
        return outcome

    def _summary(self, outcomes: list[FileOutcome]) -> None:
        ways = {
            Link.CLONE: "cloned (copy on write)",
            Link.HARDLINK: "hard-linked read-only (shared with the other copy)",
            Link.COPY: "copied",
        }
        parts = [f"{n} {text}" for link, text in ways.items() if (n := sum(o.link is link for o in outcomes))]
        noun = count(len(outcomes), "file")
        self.sink.message(f"reused {noun} already on this machine: {', '.join(parts)}")

    def _to_network(self, plan: Plan, paths: set[str]) -> Plan:
        """The plan with `paths` fetched from the network after all (resuming any partial download)."""
        if not paths:
            return plan

        def back(f: PlannedFile) -> PlannedFile:
            if f.local_path not in paths:
                return f
            info = part_info(partial_folder(plan.root), f.local_path, f.digest, f.size)
            present = info.done_bytes if info is not None else 0
            reserved = info.reserved if info is not None and present else 0
            action = Action.RESUME if present else f.action
            return replace(
                f, origin=Source.NETWORK, reuse_from=None, action=action, present=present, reserved=reserved
            )

        return replace(
            plan, models=tuple(replace(m, files=tuple(back(f) for f in m.files)) for m in plan.models)
        )


def copy_bytes(plan: Plan) -> int:
    """Bytes of reused files that will likely be copied (their source is on another filesystem)."""
    try:
        device = _device(plan.root)
    except OSError:
        return 0
    total = 0
    for item in plan.reused():
        with contextlib.suppress(OSError):
            if (
                item.twin_of is None
                and item.reuse_from is not None
                and item.reuse_from.stat().st_dev != device
            ):
                total += item.size
    return total


def _device(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path.stat().st_dev
