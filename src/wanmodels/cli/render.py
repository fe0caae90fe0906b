"""Human output: progress sinks, summaries, listings and error lines. The only user of rich.

Bars appear only on a terminal, colour never with `NO_COLOR` (the bars stay, drawn without
it); in a log a plain progress line comes at a steady interval instead. Everything fits the
terminal's width: long paths are cut in their middle, file names kept whole where they fit.
Sizes are in binary units (KiB, MiB, GiB) everywhere, bars and rates included. With `quiet`, only what went
wrong is printed, each line naming the file.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TextIO

from rich.console import Console as Console  # re-exported: the CLI types its consoles with it
from rich.console import Group
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from wanmodels._text import count, duration, human_bytes, middle, short_path
from wanmodels.errors import WanmodelsError
from wanmodels.inputs.lockfile import Lockfile
from wanmodels.inputs.manifest import Manifest
from wanmodels.inputs.options import Option
from wanmodels.inputs.presets import PresetInfo
from wanmodels.planning.plan import ModelPlan, Plan, PlannedFile
from wanmodels.progress import NullProgress
from wanmodels.results import (
    DownloadResult,
    EntryState,
    FileOutcome,
    LockResult,
    Problem,
    PruneResult,
    RepairResult,
    StatusReport,
    VerifyReport,
)

if TYPE_CHECKING:
    from wanmodels.ops.publish import PublishResult

DEBUG_HINT = "(set WANMODELS_DEBUG=1 for a traceback)"
TABLE_ROWS = 200


WIDE: Final = 120  # from this many columns a file's bar shares one line with its name
STATS: Final = (21, 12, 8)  # widths: '1023.9 MiB/1023.9 MiB', '1023.9 MiB/s', '10:00:00' left
FIXED: Final = sum(STATS) + len(STATS) + 1  # with the gaps around them and before the bar


def make_console(stream: TextIO, *, no_color: bool = False) -> Console:
    # Logs have no width (80 columns would truncate repo ids in tables); COLUMNS still sets one.
    width = None if stream.isatty() or os.environ.get("COLUMNS", "").isdigit() else 160
    return Console(file=stream, no_color=no_color or None, highlight=False, soft_wrap=True, width=width)


def _say(console: Console, text: str) -> None:
    """Print a progress line; one that cannot be written (stderr gone, a full disk under a log
    file) is lost, never the file the transfer was telling about: the result still stands."""
    with contextlib.suppress(OSError):
        console.print(text, markup=False)


class LineProgress(NullProgress):
    """Progress for logs and CI: the plan, a line with bytes, rate and time left every
    `every` seconds while bytes are due (so a job is never silent for long), one line per
    finished entry, retries and warnings."""

    def __init__(self, console: Console, *, every: float | None = None) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._every = every
        self._total = 0
        self._done = 0  # bytes of this run in place so far (a file started over takes its bytes back)
        self._received = 0  # bytes that arrived, for the rate
        self._in_flight = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

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
        if self._every is not None and plan.to_fetch and self._ticker is None:
            self._total = plan.to_fetch
            self._ticker = threading.Thread(target=self._tick, name="wanmodels-progress", daemon=True)
            self._ticker.start()

    def file_started(self, item: PlannedFile) -> None:
        with self._lock:
            self._in_flight += 1

    def advance(self, item: PlannedFile, nbytes: int) -> None:
        with self._lock:
            self._done += nbytes
            self._received += max(nbytes, 0)

    def file_finished(self, item: PlannedFile, outcome: FileOutcome) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)

    def _tick(self) -> None:
        assert self._every is not None
        then, before = time.monotonic(), 0
        while not self._stop.wait(self._every):
            now = time.monotonic()
            with self._lock:
                done, received, flying = self._done, self._received, self._in_flight
            rate = (received - before) / max(now - then, 1e-9)
            then, before = now, received
            self.message(progress_line(done, self._total, rate, flying, self._every))

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


def progress_line(done: int, total: int, rate: float, in_flight: int, every: float) -> str:
    """'progress: 1.2 GiB of 61.0 GiB (2%), 12.3 MiB/s, about 1h22m left, 3 files in flight'."""
    share = f"{100 * done // total}%" if total else "100%"
    if rate > 0:
        speed = f"{human_bytes(rate)}/s, about {duration(max(total - done, 0) / rate)} left"
    else:
        speed = f"no bytes in the last {duration(every)}"
    flying = f", {count(in_flight, 'file')} in flight" if in_flight > 0 else ""
    return f"progress: {human_bytes(done)} of {human_bytes(total)} ({share}), {speed}{flying}"


class _BinaryDownload(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = human_bytes(task.total) if task.total is not None else "?"
        return Text(f"{human_bytes(task.completed)}/{total}", style="progress.download")


class _BinarySpeed(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("?" if speed is None else f"{human_bytes(speed)}/s", style="progress.data.speed")


class _PlainBar(ProgressColumn):
    """A bar readable without colour (NO_COLOR): heavy for what arrived, light for the rest."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def render(self, task: Task) -> Text:
        share = task.completed / task.total if task.total else 0.0
        filled = min(self.width, max(0, round(self.width * share)))
        return Text("━" * filled + "─" * (self.width - filled))


class _Bars(Progress):
    """rich's Progress, laid out for the terminal it is on: below `WIDE` columns each file
    takes two lines (its path, whole where it fits, then its bar), so nothing wraps; and only
    as many files as the terminal's height allows are drawn, with a count of the others."""

    def __init__(self, console: Console) -> None:
        self._bar: ProgressColumn = _PlainBar(10) if console.no_color else BarColumn(bar_width=10)
        self._stats = (_BinaryDownload(), _BinarySpeed(), TimeRemainingColumn())
        self._screen = console  # rich asks for the layout once before its own console is set
        super().__init__(console=console, transient=True)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Any:
        width, height = self._screen.width, self._screen.height
        every = list(tasks)
        wide = width >= WIDE
        if wide:  # the bar gives way to the paths, down to 10 columns
            longest = max((len(t.description) for t in every), default=0)
            bar = max(10, min(40, width - FIXED - 2 - longest))
        else:
            bar = max(8, min(30, width - FIXED - 2))
        if isinstance(self._bar, _PlainBar):
            self._bar.width = bar
        elif isinstance(self._bar, BarColumn):
            self._bar.bar_width = bar
        name = width - FIXED - bar - 2  # the path's column on a wide terminal
        lines_each = 1 if wide else 2
        room = max(1, (height - 2) // lines_each - 1)  # files below the total, and a count line
        shown, hidden = every[: room + 1], len(every) - room - 1
        parts: list[Any] = []
        for task in shown:
            row = Table.grid(padding=(0, 1))
            if wide:
                row.add_column(width=name, no_wrap=True)
                first = Text(short_path(task.description, name))
            else:
                parts.append(Text(short_path(task.description, width - 1), no_wrap=True))
                row.add_column(width=1)
                first = Text("")
            row.add_column(width=bar)
            for size in STATS:
                row.add_column(width=size, justify="right", no_wrap=True)
            row.add_row(first, self._bar(task), *(column(task) for column in self._stats))
            parts.append(row)
        if hidden > 0:
            parts.append(Text(f"… and {count(hidden, 'more file')} in flight"))
        return Group(*parts)


class RichProgress(LineProgress):
    """Progress on a terminal: an overall byte bar plus one bar per file in flight."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress = _Bars(console)
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
                item.local_path, total=item.size, completed=item.present
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
    return f"error: {err}".replace("\n", " ")


def render_download(result: DownloadResult, console: Console, *, quiet: bool = False) -> None:
    """A short human summary of a download or a dry run; with `quiet`, only the failures."""
    plan = result.plan
    groups = _grouped_failures(result.failed)
    hints = {f.hint for f in result.failed}
    # Many files failing with one fix (an outage): each file's line, then that fix once.
    shared = next(iter(hints)) if len(groups) > 1 and len(hints) == 1 else None
    for error, paths in groups:
        # A repo-level cause (gated, say) fails every file alike: one line, naming the files.
        files = "" if len(paths) == 1 else f" ({count(len(paths), 'file')}: {_some(paths)})"
        if shared and error.endswith(shared):
            error = error[: -len(shared)].rstrip()
        console.print(f"failed: {error}{files}", markup=False)
    if shared:
        console.print(f"for every failed file: {shared}", markup=False)
    for entry in result.skipped:
        console.print(f"missing: {entry.error}", markup=False)
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
        total = count(len(result.models) + len(result.skipped), "model")
        state = "ok" if not failed else f"{failed} of {total} failed"
        if result.skipped:
            state = f"{len(result.skipped)} of {total} missing on the Hub" + (
                f", {failed} failed" if failed else ""
            )
        reused = f", reused {human_bytes(result.bytes_reused)}" if result.bytes_reused else ""
        console.print(
            f"{state}: {count(len(plan.unique_files), 'file')} in {count(len(result.models), 'model')}, "
            f"fetched {human_bytes(result.bytes_fetched)}{reused} in {result.seconds:.1f}s",
            markup=False,
        )
        if result.lock_written is not None:
            console.print(f"wrote {result.lock_written}", markup=False)
    for f in result.unique_files:
        if f.moved_aside is not None:
            console.print(f"moved your '{f.local_path}' aside to '{f.moved_aside}'", markup=False)
    render_pruned(result.pruned, console)


def _grouped_failures(failed: tuple[FileOutcome, ...]) -> list[tuple[str, list[str]]]:
    """Failures with the same message, once each, in the order they first appear."""
    groups: dict[str, list[str]] = {}
    for outcome in failed:
        groups.setdefault(outcome.error or "failed", []).append(outcome.local_path)
    return list(groups.items())


def _some(paths: list[str], limit: int = 5) -> str:
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


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
    rows = [
        (f.entry, f.local_path, human_bytes(f.size), f.action.value, f.origin.value if f.needs_bytes else "")
        for f in plan.files
    ]
    title = f"plan for {plan.root}"
    if not _print_table(console, title, ("entry", "file", "size", "action", "from"), rows, right=(2,)):
        # Too narrow for one row per file: the path on its own line, whole, then what happens to it.
        console.print(title, markup=False, soft_wrap=False, overflow="fold")
        for entry, path, size, action, origin in rows:
            console.print(short_path(path, console.width), markup=False)
            facts = f"    {size:>10}  {action:<8} {origin:<8} entry "
            console.print(facts + middle(entry, max(8, console.width - len(facts))), markup=False)
    for f in plan.reused():
        console.print(f"  {f.local_path} <- {f.reuse_from}", markup=False)


def _print_table(
    console: Console,
    title: str | None,
    columns: tuple[str, ...],
    rows: Sequence[tuple[str, ...]],
    right: tuple[int, ...],
) -> bool:
    """Print rows as a table if it fits the console's width untruncated; False when it would not."""
    table = Table(title=title, show_edge=False)
    for i, col in enumerate(columns):
        table.add_column(col, justify="right" if i in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    unbounded = console.options.update_width(1 << 20)  # what the rows need, not what the screen has
    if Measurement.get(console, unbounded, table).maximum > console.width:
        return False
    console.print(table)
    return True


def render_pruned(pruned: PruneResult | None, console: Console) -> None:
    if pruned is None:
        return
    verb = "would remove" if pruned.dry_run else "removed"
    for path in pruned.removed:
        console.print(f"{verb} {path}", markup=False)
    kept = "would keep" if pruned.dry_run else "kept"
    for path in pruned.released:
        console.print(
            f"{kept} {path}: another manifest also uses it (only this one's claim goes)", markup=False
        )
    for path in pruned.changed:
        console.print(
            f"{kept} {path}: changed since wanmodels placed it (delete it yourself if unneeded)", markup=False
        )
    if not (pruned.removed or pruned.released or pruned.changed):
        console.print("nothing to prune: no file wanmodels placed is unselected", markup=False)


def render_verify(
    report: VerifyReport, console: Console, *, quiet: bool = False, repair: str | None = None
) -> None:
    """Each entry and its findings, then the verdict; `repair` is the command that re-fetches
    the bad files (for this manifest and root), named when a failure is one it can fix."""
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
            label = "note" if f.problem is Problem.OTHER else "warning"
            console.print(f"  {label}: {f.path}: {f.detail}", markup=False)
    failed = sum(not m.ok for m in report.models)
    if report.ok:
        if not quiet:
            console.print(
                f"verified: {count(len(report.models), 'model')}, hashed {human_bytes(report.hashed_bytes)}",
                markup=False,
            )
    else:
        errors = [f for f in report.findings if f.is_error]
        fix = ""
        if repair is not None and any(f.problem is not Problem.UNREADABLE for f in errors):
            fix = f"; `{repair}` re-fetches the bad files and keeps the good ones"
        console.print(
            f"verification failed: {failed} of {count(len(report.models), 'model')}, "
            f"{count(len(errors), 'problem')}{fix}",
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
    from wanmodels.cli.documents import locked_sizes

    console.print("presets (-m NAME; pick an option's value with --with OPTION=VALUE):", markup=False)
    for model, groups in group_presets(presets):
        console.print(f"{model}", markup=False)
        for runtime, members in groups:
            console.print(_wrapped(f"  loaded by: {runtime}", console.width, indent=6), markup=False)
            for p in members:
                text = p.description
                if p.alias_of is not None:
                    text += f" [= {p.alias_of} " + " ".join(f"--with {k}={v}" for k, v in p.fixed) + "]"
                _print_named(console, p.name, text, indent=4)
                if p.alias_of is None:
                    for option in p.options:
                        console.print(
                            textwrap.fill(
                                _option_line(option),
                                console.width,
                                initial_indent=" " * 6,
                                subsequent_indent=" " * 8,
                            ),
                            markup=False,
                        )
    label = manifest.source + (f": {manifest.description}" if manifest.description else "")
    console.print(
        _wrapped(f"manifest: {label} (root {manifest.root})", console.width, indent=2), markup=False
    )
    if manifest.runtime:
        console.print(_wrapped(f"loaded by: {manifest.runtime}", console.width, indent=2), markup=False)
    if manifest.chosen:
        console.print("options: " + ", ".join(f"{k}={v}" for k, v in manifest.chosen), markup=False)
    sizes = locked_sizes(lock)
    rows = [
        (
            s.name,
            s.repo,
            s.revision,
            s.folder,
            human_bytes(sizes[s.name]) if s.name in sizes else "not locked",
        )
        for s in manifest.models
    ]
    if not _print_table(console, None, ("entry", "repo", "revision", "folder", "size"), rows, right=(4,)):
        for name, repo, revision, folder, size in rows:  # too narrow: each entry on two lines
            console.print(f"  {middle(name, console.width - 2)}", markup=False)
            where = f"    {repo}@{revision} -> {folder}/, "
            console.print(middle(where, console.width - len(size) - 1) + size, markup=False)


def _wrapped(text: str, width: int, *, indent: int) -> str:
    """`text` wrapped to `width`, its later lines indented; only a word longer than a line is cut."""
    return textwrap.fill(text, width, subsequent_indent=" " * indent, break_on_hyphens=False)


def _print_named(console: Console, name: str, text: str, *, indent: int) -> None:
    """`name  text` on one line; when that is too wide, the text wrapped below the name."""
    line = f"{' ' * indent}{name:<26} {text}"
    if len(line) <= console.width:
        console.print(line, markup=False)
        return
    console.print(f"{' ' * indent}{name}", markup=False)
    pad = " " * (indent + 2)
    console.print(textwrap.fill(text, console.width, initial_indent=pad, subsequent_indent=pad), markup=False)


def group_presets(
    presets: tuple[PresetInfo, ...],
) -> list[tuple[str, list[tuple[str, list[PresetInfo]]]]]:
    """Presets by model, then by the program that loads them (the model's own code first, then
    Diffusers, ComfyUI, ComfyUI with ComfyUI-GGUF), each alias right after the preset it names."""
    models: dict[str, dict[str, list[PresetInfo]]] = {}
    by_name = {p.name: p for p in presets}
    for p in presets:
        if p.alias_of is None:
            models.setdefault(p.model or "other", {}).setdefault(p.runtime or "(not stated)", []).append(p)
    for p in presets:
        target = by_name.get(p.alias_of or "")
        if target is not None:
            group = models[target.model or "other"][target.runtime or "(not stated)"]
            at = max(i for i, q in enumerate(group) if q.name == target.name or q.alias_of == target.name)
            group.insert(at + 1, p)
    return [(model, sorted(groups.items(), key=_runtime_rank)) for model, groups in sorted(models.items())]


def _runtime_rank(group: tuple[str, list[PresetInfo]]) -> tuple[int, str]:
    runtime, members = group
    rank = 0 if runtime.startswith("Wan") else 1 if runtime.startswith("Diffusers") else 2
    return (rank + ("GGUF" in runtime), members[0].name)


def _option_line(option: Option) -> str:
    """`--with precision=fp8 (default, 23.0 GiB) | fp16 (42.6 GiB)`: each value with its size."""
    values = []
    for value in option.values:
        notes = ["default"] if value.name == option.default else []
        if value.about:
            notes.append(value.about)
        values.append(value.name + (f" ({', '.join(notes)})" if notes else ""))
    about = f"  {option.description}" if option.description else ""
    return f"--with {option.name}={' | '.join(values)}{about}"


def render_publish(result: PublishResult, console: Console) -> None:
    """One line: what the store holds now (or would, in a dry run) and where the lockfile went."""
    new = [b for b in result.blobs if b.action.value != "present"]
    there = len(result.blobs) - len(new)
    blobs = f"{count(len(result.blobs), 'blob')} for {count(result.files, 'file')}"
    if result.dry_run:
        verb = f"would upload {count(len(new), 'blob')} ({human_bytes(result.to_send)})"
        console.print(f"{result.store}: {blobs}; {verb}, {there} already there (dry run)")
        return
    sent = f"{human_bytes(result.bytes_sent)} sent in {result.seconds:.1f}s"
    locks = ", ".join(result.locks)
    console.print(f"published {blobs} to {result.store} ({sent}, {there} already there); lockfile: {locks}")
