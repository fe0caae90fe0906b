"""Human output on stderr: progress sinks, summaries and error lines. The only user of rich.

Bars and colour appear only on a terminal and never with `NO_COLOR`. Sizes are in binary
units (KiB, MiB, GiB) everywhere, bars and rates included. With `quiet`, only what went
wrong is printed, each line naming the file.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from wanmodels._text import count, human_bytes
from wanmodels.errors import WanmodelsError
from wanmodels.lockfile import Lockfile
from wanmodels.manifest import Manifest
from wanmodels.planner import ModelPlan, Plan, PlannedFile
from wanmodels.presets import PresetInfo
from wanmodels.progress import NullProgress
from wanmodels.results import (
    DownloadResult,
    EntryState,
    FileOutcome,
    LockResult,
    PruneResult,
    RepairResult,
    StatusReport,
    VerifyReport,
)

DEBUG_HINT = "(set WANMODELS_DEBUG=1 for a traceback)"
TABLE_ROWS = 200


def _shorten(text: str, width: int) -> str:
    """Keep the end of a long path (the file name), marking the cut."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def make_console(stream: TextIO, *, no_color: bool = False) -> Console:
    # Logs have no width; 80 columns would truncate repo ids in tables.
    width = None if stream.isatty() else 160
    return Console(file=stream, no_color=no_color or None, highlight=False, soft_wrap=True, width=width)


def _say(console: Console, text: str) -> None:
    """Print a progress line; one that cannot be written (stderr gone, a full disk under a log
    file) is lost, never the file the transfer was telling about: the result still stands."""
    with contextlib.suppress(OSError):
        console.print(text, markup=False)


class LineProgress(NullProgress):
    """Progress for logs and CI: the plan, one line per finished entry, retries and warnings."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        with self._lock:
            _say(self.console, text)

    def plan_ready(self, plan: Plan) -> None:
        n = len(plan.fetch_order())
        reused = f", {human_bytes(plan.to_reuse)} reused from this machine" if plan.to_reuse else ""
        if n:
            self.message(
                f"fetching {count(n, 'file')}, {human_bytes(plan.to_fetch)} "
                f"({human_bytes(plan.present)} already present{reused}) into {plan.root}"
            )
        elif plan.to_reuse:
            self.message(
                f"placing {count(len(plan.reused()), 'file')}, {human_bytes(plan.to_reuse)}, from files "
                f"already on this machine into {plan.root} (each hashed first; a damaged one is fetched)"
            )

    def model_finished(self, model: ModelPlan, outcomes: tuple[FileOutcome, ...]) -> None:
        failed = sum(not o.ok for o in outcomes)
        fetched = sum(o.bytes_fetched for o in outcomes)
        reused = sum(o.size for o in outcomes if o.source.is_reuse)
        where = f"[{model.spec.repo}@{model.commit[:12]}]"
        if failed:
            self.message(f"{model.spec.name}: FAILED, {failed} of {count(len(outcomes), 'file')} {where}")
        else:
            also = f", reused {human_bytes(reused)}" if reused else ""
            self.message(
                f"{model.spec.name}: ok, {count(len(outcomes), 'file')}, {human_bytes(model.size)}, "
                f"fetched {human_bytes(fetched)}{also} {where}"
            )


class _BinaryDownload(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = human_bytes(task.total) if task.total is not None else "?"
        return Text(f"{human_bytes(task.completed)}/{total}", style="progress.download")


class _BinarySpeed(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{human_bytes(speed)}/s", style="progress.data.speed")


class RichProgress(LineProgress):
    """Progress on a terminal: an overall byte bar plus one bar per file in flight."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            _BinaryDownload(),
            _BinarySpeed(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._overall: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}

    def message(self, text: str) -> None:
        _say(self.progress.console, text)

    def plan_ready(self, plan: Plan) -> None:
        super().plan_ready(plan)
        self.progress.start()
        self._overall = self.progress.add_task(
            "total", total=plan.to_fetch + plan.present, completed=plan.present
        )

    def file_started(self, item: PlannedFile) -> None:
        with self._lock:
            self._tasks[item.local_path] = self.progress.add_task(
                _shorten(item.local_path, 48), total=item.size, completed=item.present
            )

    def advance(self, item: PlannedFile, nbytes: int) -> None:
        task = self._tasks.get(item.local_path)
        if task is not None:
            self.progress.advance(task, nbytes)
        if self._overall is not None:
            self.progress.advance(self._overall, nbytes)

    def file_finished(self, item: PlannedFile, outcome: FileOutcome) -> None:
        with self._lock:
            task = self._tasks.pop(item.local_path, None)
        if task is not None:
            self.progress.remove_task(task)

    def close(self) -> None:
        self.progress.stop()


def format_error(err: WanmodelsError) -> str:
    """One line: what failed, then the fix."""
    text = err.message.rstrip()
    if err.hint:
        text = f"{text if text.endswith(('.', '!', '?')) else text + '.'} {err.hint}"
    return f"error: {text}".replace("\n", " ")


def render_download(result: DownloadResult, console: Console, *, quiet: bool = False) -> None:
    """A short human summary of a download or a dry run; with `quiet`, only the failures."""
    plan = result.plan
    for failure in result.failed:
        console.print(f"failed: {failure.error}", markup=False)
    if quiet:
        return
    if result.dry_run:
        _render_plan(plan, console)
        reuse = f"{human_bytes(plan.to_reuse)} reused from this machine, " if plan.to_reuse else ""
        console.print(
            f"{count(len(plan.unique_files), 'file')}: {human_bytes(plan.to_fetch)} to fetch, "
            f"{reuse}{human_bytes(plan.present)} already present",
            markup=False,
        )
    else:
        failed = sum(not m.ok for m in result.models)
        state = "ok" if not failed else f"{failed} of {count(len(result.models), 'model')} failed"
        reused = f", reused {human_bytes(result.bytes_reused)}" if result.bytes_reused else ""
        console.print(
            f"{state}: {count(len(plan.unique_files), 'file')} in {count(len(result.models), 'model')}, "
            f"fetched {human_bytes(result.bytes_fetched)}{reused} in {result.seconds:.1f}s",
            markup=False,
        )
        if result.lock_written is not None:
            console.print(f"wrote {result.lock_written}", markup=False)
    render_pruned(result.pruned, console)


def _render_plan(plan: Plan, console: Console) -> None:
    if len(plan.files) > TABLE_ROWS:
        # A rich table of thousands of rows costs seconds to lay out: summarise per entry.
        for m in plan.models:
            reused = sum(f.to_reuse for f in m.files)
            console.print(
                f"{m.spec.name}: {count(len(m.files), 'file')}, {human_bytes(m.to_fetch)} to fetch, "
                + (f"{human_bytes(reused)} reused, " if reused else "")
                + f"{human_bytes(m.present)} present (--json lists every file)",
                markup=False,
            )
        return
    table = Table(title=f"plan for {plan.root}", show_edge=False)
    for col in ("entry", "file", "size", "action", "from"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for f in plan.files:
        origin = f.origin.value if f.needs_bytes else ""
        table.add_row(f.entry, f.local_path, human_bytes(f.size), f.action.value, origin)
    console.print(table)
    for f in plan.reused():
        console.print(f"  {f.local_path} <- {f.reuse_from}", markup=False)


def render_pruned(pruned: PruneResult | None, console: Console) -> None:
    if pruned is None:
        return
    verb = "would remove" if pruned.dry_run else "removed"
    for path in pruned.removed:
        console.print(f"{verb} {path}", markup=False)
    if not pruned.removed:
        console.print("nothing to prune: no file wanmodels placed is unselected", markup=False)


def render_verify(report: VerifyReport, console: Console, *, quiet: bool = False) -> None:
    for m in report.models:
        if not quiet:
            state = "ok" if m.ok else "FAILED"
            console.print(
                f"{m.name}: {state} ({count(m.checked, 'file')}) [{m.repo}@{m.commit[:12]}]", markup=False
            )
        for f in m.findings:
            if quiet and not f.is_error:
                continue
            detail = "" if f.detail == "not on disk" else f": {f.detail}"
            console.print(f"  {f.problem.value}: {f.path}{detail}", markup=False)
    if not quiet:
        for f in report.stale:
            console.print(f"  warning: {f.path}: {f.detail}", markup=False)
    failed = sum(not m.ok for m in report.models)
    if report.ok:
        if not quiet:
            console.print(
                f"verified: {count(len(report.models), 'model')}, hashed {human_bytes(report.hashed_bytes)}",
                markup=False,
            )
    else:
        console.print(
            f"verification failed: {failed} of {count(len(report.models), 'model')}, "
            f"{count(len([f for f in report.findings if f.is_error]), 'problem')}",
            markup=False,
        )
    render_pruned(report.pruned, console)


def render_repair(result: RepairResult, console: Console, *, quiet: bool = False) -> None:
    """The re-fetch, then the verification after it (the files that failed before were named
    by the progress sink as the repair began, in the order things happened)."""
    if result.download is not None:
        render_download(result.download, console, quiet=quiet)
    render_verify(result.after, console, quiet=quiet)


def render_lock(result: LockResult, manifest: Manifest, console: Console) -> None:
    """What differs from the lockfile on disk, then what was done about it."""
    for change in result.changes:
        console.print(change, markup=False)
    if result.checked:
        verdict = "lockfile is up to date"
        if not result.up_to_date:
            verdict = f"lockfile is out of date: `{manifest.command('lock')}` updates it"
        console.print(verdict, markup=False)
    elif result.written is not None:
        console.print(f"wrote {result.written}", markup=False)
    else:
        console.print(f"lockfile unchanged: {manifest.lock_path}", markup=False)


def render_status(report: StatusReport, manifest: Manifest, console: Console) -> None:
    for m in report.models:
        if m.state is EntryState.NOT_LOCKED:
            seen = f"{count(m.files, 'verified file')}, {human_bytes(m.bytes_present)} on disk"
            if m.partial_bytes:
                seen += f", {human_bytes(m.partial_bytes)} in partial downloads"
            detail = (
                f"not locked ({seen}; run `{manifest.command('download', '--dry-run')}` to see what "
                f"is missing, or `{manifest.command('lock')}`)"
            )
        elif m.state is EntryState.COMPLETE:
            detail = f"complete, {count(m.files, 'file')}, {human_bytes(m.bytes_expected)}"
        else:
            detail = (
                f"{m.state.value}, {m.missing} of {count(m.files, 'file')} not in place, "
                f"{human_bytes(m.bytes_present)} of {human_bytes(m.bytes_expected)} in place"
            )
            if m.partial_bytes:
                detail += f", {human_bytes(m.partial_bytes)} in partial downloads"
        commit = f"@{m.commit[:12]}" if m.commit else ""
        console.print(f"{m.name} [{m.repo}{commit}] -> {m.folder}: {detail}", markup=False)
    if not report.complete:
        console.print(f"to finish: `{manifest.command('download')}`", markup=False)


def render_list(
    presets: tuple[PresetInfo, ...], manifest: Manifest, lock: Lockfile | None, console: Console
) -> None:
    from wanmodels.documents import locked_sizes

    console.print("presets:", markup=False)
    for p in presets:
        console.print(f"  {p.name:<28} {p.description}", markup=False)
    label = manifest.source + (f": {manifest.description}" if manifest.description else "")
    console.print(f"manifest: {label} (root {manifest.root})", markup=False)
    sizes = locked_sizes(lock)
    table = Table(show_edge=False)
    for col in ("entry", "repo", "revision", "folder", "size"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for spec in manifest.models:
        size = sizes.get(spec.name)
        table.add_row(
            spec.name, spec.repo, spec.revision, spec.folder, human_bytes(size) if size else "not locked"
        )
    console.print(table)
