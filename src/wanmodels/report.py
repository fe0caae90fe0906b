"""All output: progress sinks, human summaries on stderr, and the `--json` documents.

Human text and progress go to stderr; stdout carries only the one JSON document of
`--json`, so `wanmodels download --json | jq` always parses. Bars and colour appear only
on a terminal and never with `NO_COLOR`.
"""

from __future__ import annotations

import threading
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from wanmodels.downloader import DownloadResult, FileOutcome
from wanmodels.errors import WanmodelsError
from wanmodels.lockfile import Lockfile
from wanmodels.manifest import Manifest
from wanmodels.planner import ModelPlan, Plan, PlannedFile
from wanmodels.progress import NullProgress
from wanmodels.resolve import LockResult
from wanmodels.status import StatusReport
from wanmodels.verifier import VerifyReport

DEBUG_HINT = "(set WANMODELS_DEBUG=1 for a traceback)"
TABLE_ROWS = 200


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _shorten(text: str, width: int) -> str:
    """Keep the end of a long path (the file name), marking the cut."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def make_console(stream: TextIO, *, no_color: bool = False) -> Console:
    # Logs have no width; 80 columns would truncate repo ids in tables.
    width = None if stream.isatty() else 160
    return Console(file=stream, no_color=no_color or None, highlight=False, soft_wrap=True, width=width)


class LineProgress(NullProgress):
    """Progress for logs and CI: one line per finished entry, plus retries and warnings."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()

    def message(self, text: str) -> None:
        with self._lock:
            self.console.print(text, markup=False)

    def plan_ready(self, plan: Plan) -> None:
        n = len(plan.fetch_order())
        if n:
            self.message(f"fetching {n} file(s), {human_bytes(plan.to_fetch)}")

    def model_finished(self, model: ModelPlan, outcomes: tuple[FileOutcome, ...]) -> None:
        failed = sum(not o.ok for o in outcomes)
        fetched = sum(o.bytes_fetched for o in outcomes)
        state = "ok" if not failed else f"FAILED ({failed} file(s))"
        self.message(
            f"{model.spec.name}: {state}, {len(outcomes)} file(s), {human_bytes(model.size)}, "
            f"fetched {human_bytes(fetched)} [{model.spec.repo}@{model.commit[:12]}]"
        )


class RichProgress(LineProgress):
    """Progress on a terminal: an overall byte bar plus one bar per file in flight."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._overall: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}

    def message(self, text: str) -> None:
        self.progress.console.print(text, markup=False)

    def plan_ready(self, plan: Plan) -> None:
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
    return f"error: {err}".replace("\n", " ")


def render_download(result: DownloadResult, console: Console) -> None:
    """A short human summary of a download or a dry run."""
    plan = result.plan
    if result.dry_run and len(plan.files) > TABLE_ROWS:
        # A rich table of thousands of rows costs seconds to lay out: summarise per entry.
        for m in plan.models:
            console.print(
                f"{m.spec.name}: {len(m.files)} file(s), {human_bytes(m.to_fetch)} to fetch, "
                f"{human_bytes(m.present)} present (--json lists every file)",
                markup=False,
            )
    elif result.dry_run:
        table = Table(title=f"plan for {plan.root}", show_edge=False)
        for col in ("entry", "file", "size", "action"):
            table.add_column(col, justify="right" if col == "size" else "left")
        for f in plan.files:
            table.add_row(f.entry, f.local_path, human_bytes(f.size), f.action.value)
        console.print(table)
    if result.dry_run:
        console.print(
            f"{len(plan.files)} file(s): {human_bytes(plan.to_fetch)} to fetch, "
            f"{human_bytes(plan.present)} already present",
            markup=False,
        )
        return
    for failure in result.failed:
        console.print(f"failed: {failure.error}", markup=False)
    console.print(
        f"{result.status}: {len(plan.files)} file(s) in {len(result.models)} model(s), "
        f"fetched {human_bytes(result.bytes_fetched)} in {result.seconds:.1f}s",
        markup=False,
    )
    if result.lock_written is not None:
        console.print(f"wrote {result.lock_written}", markup=False)


def render_verify(report: VerifyReport, console: Console) -> None:
    for m in report.models:
        state = "ok" if m.ok else "FAILED"
        console.print(f"{m.name}: {state} ({m.checked} file(s)) [{m.repo}@{m.commit[:12]}]", markup=False)
        for f in m.findings:
            level = "warning" if not f.is_error else f.problem.value
            console.print(f"  {level}: {f.path}: {f.detail}", markup=False)
    word = "verified" if report.ok else "verification failed"
    console.print(
        f"{word}: {len(report.models)} model(s), hashed {human_bytes(report.hashed_bytes)}", markup=False
    )


def download_json(result: DownloadResult) -> dict[str, Any]:
    plan = result.plan
    by_path = {f.local_path: f for m in result.models for f in m.files}
    return {
        "command": "download",
        "status": result.status,
        "dry_run": result.dry_run,
        "root": str(plan.root),
        "seconds": round(result.seconds, 3),
        "bytes": {
            "total": sum(f.size for f in plan.files),
            "present": plan.present,
            "to_fetch": plan.to_fetch,
            "fetched": result.bytes_fetched,
        },
        "lockfile_written": str(result.lock_written) if result.lock_written else None,
        "models": [
            {
                "name": mp.spec.name,
                "repo": mp.spec.repo,
                "revision": mp.spec.revision,
                "commit": mp.commit,
                "folder": mp.spec.folder,
                "status": "ok" if all(by_path[f.local_path].ok for f in mp.files) else "failed",
                "files": [_file_json(f, by_path[f.local_path]) for f in mp.files],
            }
            for mp in plan.models
        ],
        "error": None,
    }


def _file_json(item: PlannedFile, outcome: FileOutcome) -> dict[str, Any]:
    return {
        "path": item.local_path,
        "repo_path": item.repo_path,
        "size": item.size,
        "digest": str(item.digest),
        "action": item.action.value,
        "status": "ok" if outcome.ok else "failed",
        "bytes_fetched": outcome.bytes_fetched,
        "resumed_from": outcome.resumed_from,
        "seconds": round(outcome.seconds, 3),
        "error": outcome.error,
    }


def verify_json(report: VerifyReport, *, pruned: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "command": "verify",
        "status": "ok" if report.ok else "failed",
        "pruned": list(pruned),
        "full": report.full,
        "seconds": round(report.seconds, 3),
        "hashed_bytes": report.hashed_bytes,
        "models": [
            {
                "name": m.name,
                "repo": m.repo,
                "commit": m.commit,
                "status": "ok" if m.ok else "failed",
                "files_checked": m.checked,
                "findings": [
                    {
                        "path": f.path,
                        "problem": f.problem.value,
                        "severity": "error" if f.is_error else "warning",
                        "detail": f.detail,
                        "expected": f.expected,
                        "actual": f.actual,
                    }
                    for f in m.findings
                ],
            }
            for m in report.models
        ],
        "error": None,
    }


def error_json(command: str, err: WanmodelsError) -> dict[str, Any]:
    return {
        "command": command,
        "status": "error",
        "error": {"type": type(err).__name__, "message": str(err), "exit_code": err.exit_code},
    }


def render_lock(result: LockResult, console: Console, *, check: bool) -> None:
    for change in result.changes:
        console.print(f"{'out of date' if check else 'updated'}: {change}", markup=False)
    if check:
        console.print(
            "lockfile is up to date" if result.up_to_date else "lockfile is out of date", markup=False
        )
    elif result.written is not None:
        console.print(f"wrote {result.written}", markup=False)
    else:
        console.print("lockfile unchanged", markup=False)


def lock_json(result: LockResult, *, check: bool) -> dict[str, Any]:
    return {
        "command": "lock",
        "status": "ok" if result.up_to_date or not check else "out_of_date",
        "check": check,
        "changes": list(result.changes),
        "written": str(result.written) if result.written else None,
        "models": [
            {
                "name": m.name,
                "repo": m.repo,
                "revision": m.revision,
                "commit": m.commit,
                "files": len(m.files),
            }
            for m in result.lockfile.models
        ],
        "error": None,
    }


def render_status(report: StatusReport, console: Console) -> None:
    for m in report.models:
        if m.state == "not locked":
            detail = "not locked (run `wanmodels download` or `wanmodels lock`)"
        elif m.state == "complete":
            detail = f"complete, {m.files} file(s), {human_bytes(m.bytes_expected)}"
        else:
            detail = (
                f"{m.state}: {m.missing} of {m.files} file(s) missing, "
                f"{human_bytes(m.bytes_present)} of {human_bytes(m.bytes_expected)} on disk"
            )
        commit = f" @{m.commit[:12]}" if m.commit else ""
        console.print(f"{m.name} [{m.repo}{commit}] -> {m.folder}: {detail}", markup=False)


def status_json(report: StatusReport) -> dict[str, Any]:
    return {
        "command": "status",
        "status": "ok" if report.complete else "incomplete",
        "models": [
            {
                "name": m.name,
                "repo": m.repo,
                "folder": m.folder,
                "state": m.state,
                "commit": m.commit,
                "files": m.files,
                "missing": m.missing,
                "bytes_present": m.bytes_present,
                "bytes_expected": m.bytes_expected,
            }
            for m in report.models
        ],
        "error": None,
    }


def _sizes(lock: Lockfile | None) -> dict[str, int]:
    return {m.name: sum(f.size for f in m.files) for m in lock.models} if lock is not None else {}


def render_list(
    presets: tuple[str, ...], manifest: Manifest, lock: Lockfile | None, console: Console
) -> None:
    console.print(f"presets: {', '.join(presets)}", markup=False)
    console.print(f"manifest: {manifest.source} (root {manifest.root})", markup=False)
    sizes = _sizes(lock)
    table = Table(show_edge=False)
    for col in ("entry", "repo", "revision", "folder", "size"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for spec in manifest.models:
        size = sizes.get(spec.name)
        table.add_row(
            spec.name, spec.repo, spec.revision, spec.folder, human_bytes(size) if size else "not locked"
        )
    console.print(table)


def list_json(presets: tuple[str, ...], manifest: Manifest, lock: Lockfile | None) -> dict[str, Any]:
    sizes = _sizes(lock)
    return {
        "command": "list",
        "presets": list(presets),
        "manifest": manifest.source,
        "root": str(manifest.root),
        "models": [
            {
                "name": s.name,
                "repo": s.repo,
                "revision": s.revision,
                "folder": s.folder,
                "description": s.description,
                "size": sizes.get(s.name),
            }
            for s in manifest.models
        ],
        "error": None,
    }
