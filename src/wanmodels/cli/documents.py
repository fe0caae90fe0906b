"""The `--json` documents: one per command, each carrying `schema_version`.

Scripts parse these, so their shape is a contract (docs/cli.md, tests/cli/test_wanmodels.py and
tests/e2e/test_messages.py): fields are only ever added within a schema version; renaming or
removing one bumps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from wanmodels.errors import WanmodelsError
from wanmodels.inputs.lockfile import Lockfile
from wanmodels.inputs.manifest import Manifest
from wanmodels.inputs.presets import PresetInfo
from wanmodels.planning.plan import PlannedFile
from wanmodels.results import (
    DownloadResult,
    FileOutcome,
    Finding,
    LockResult,
    PruneResult,
    RepairResult,
    Status,
    StatusReport,
    VerifyReport,
)

if TYPE_CHECKING:
    from wanmodels.ops.publish import PublishResult

SCHEMA_VERSION: Final = 1


def _doc(command: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "command": command, "status": status, **fields, "error": None}


def download_json(result: DownloadResult) -> dict[str, Any]:
    plan = result.plan
    by_path = {f.local_path: f for m in result.models for f in m.files}
    return _doc(
        "download",
        result.status.value,
        dry_run=result.dry_run,
        root=str(plan.root),
        seconds=round(result.seconds, 3),
        bytes={
            "total": plan.size,
            "present": plan.present,
            "to_fetch": plan.to_fetch,
            "to_reuse": plan.to_reuse,
            "fetched": result.bytes_fetched,
            "reused": result.bytes_reused,
        },
        lockfile_written=str(result.lock_written) if result.lock_written else None,
        pruned=_pruned(result.pruned),
        skipped=[{"name": e.name, "repo": e.repo, "error": e.error} for e in result.skipped],
        models=[
            {
                "name": mp.spec.name,
                "repo": mp.spec.repo,
                "revision": mp.spec.revision,
                "commit": mp.commit,
                "folder": mp.spec.folder,
                "status": _status(all(by_path[f.local_path].ok for f in mp.files)),
                "files": [_file(f, by_path[f.local_path]) for f in mp.files],
            }
            for mp in plan.models
        ],
    )


def _status(ok: bool) -> str:
    return str(Status.OK if ok else Status.FAILED)


def _file(item: PlannedFile, outcome: FileOutcome) -> dict[str, Any]:
    return {
        "path": item.local_path,
        "repo_path": item.repo_path,
        "size": item.size,
        "digest": str(item.digest),
        "action": item.action.value,
        "status": outcome.status.value,
        "source": outcome.source.value,
        "origin": item.planned_source.value,
        "reuse_from": str(item.reuse_from) if item.reuse_from is not None else None,
        "bytes_fetched": outcome.bytes_fetched,
        "resumed_from": outcome.resumed_from,
        "seconds": round(outcome.seconds, 3),
        "link": outcome.link.value if outcome.link is not None else None,
        "moved_aside": str(outcome.moved_aside) if outcome.moved_aside is not None else None,
        "error": outcome.error,
    }


def prune_json(result: PruneResult) -> dict[str, Any]:
    return _doc("prune", Status.OK.value, pruned=_pruned(result))


def _pruned(result: PruneResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "dry_run": result.dry_run,
        "removed": list(result.removed),
        "released": list(result.released),
        "changed": list(result.changed),
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "path": f.path,
        "problem": f.problem.value,
        "severity": "error" if f.is_error else "warning",
        "detail": f.detail,
        "expected": f.expected,
        "actual": f.actual,
    }


def verify_json(report: VerifyReport, repaired: RepairResult | None = None) -> dict[str, Any]:
    return _doc(
        "verify",
        report.status.value,
        full=report.full,
        seconds=round(report.seconds, 3),
        hashed_bytes=report.hashed_bytes,
        repaired=None if repaired is None else _repair(repaired),
        pruned=_pruned(report.pruned),
        stale=[_finding(f) for f in report.stale],
        models=[
            {
                "name": m.name,
                "repo": m.repo,
                "commit": m.commit,
                "status": _status(m.ok),
                "files_checked": m.checked,
                "findings": [_finding(f) for f in m.findings],
            }
            for m in report.models
        ],
    )


def _repair(result: RepairResult) -> dict[str, Any]:
    fetched = result.download
    return {
        "failed_before": [f.path for f in result.before.findings if f.is_error],
        "fetched": []
        if fetched is None
        else [f.local_path for m in fetched.models for f in m.files if f.bytes_fetched],
        "bytes_fetched": 0 if fetched is None else fetched.bytes_fetched,
    }


def publish_json(result: PublishResult) -> dict[str, Any]:
    return _doc("publish", "ok", **result.to_dict())


def error_json(
    command: str, err: WanmodelsError | None, *, message: str | None = None, code: int = 2
) -> dict[str, Any]:
    """The document for a command that failed as a whole (also for usage errors: `err` None)."""
    kind = type(err).__name__ if err is not None else "UsageError"
    return {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "status": "error",
        "error": {
            "type": kind,
            "message": str(err) if err is not None else message or "usage error",
            "exit_code": err.exit_code if err is not None else code,
        },
    }


def lock_json(result: LockResult, manifest: Manifest) -> dict[str, Any]:
    order = {spec.name: i for i, spec in enumerate(manifest.models)}
    models = sorted(result.lockfile.models, key=lambda m: order.get(m.name, len(order)))
    return _doc(
        "lock",
        "out_of_date" if result.exit_code else "ok",
        check=result.checked,
        changes=list(result.changes),
        written=str(result.written) if result.written else None,
        models=[
            {
                "name": m.name,
                "repo": m.repo,
                "revision": m.revision,
                "commit": m.commit,
                "files": len(m.files),
            }
            for m in models
        ],
    )


def status_json(report: StatusReport) -> dict[str, Any]:
    return _doc(
        "status",
        "ok" if report.complete else "incomplete",
        models=[
            {
                "name": m.name,
                "repo": m.repo,
                "folder": m.folder,
                "state": m.state.value,
                "commit": m.commit,
                "files": m.files,
                "missing": m.missing,
                "bytes_present": m.bytes_present,
                "bytes_expected": m.bytes_expected,
                "bytes_partial": m.partial_bytes,
            }
            for m in report.models
        ],
    )


def list_json(presets: tuple[PresetInfo, ...], manifest: Manifest, lock: Lockfile | None) -> dict[str, Any]:
    sizes = locked_sizes(lock)
    return _doc(
        "list",
        "ok",
        presets=[_preset_json(p) for p in presets],
        manifest=manifest.source,
        root=str(manifest.root),
        runtime=manifest.runtime,
        options=dict(manifest.chosen),
        models=[
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
    )


def _preset_json(p: PresetInfo) -> dict[str, Any]:
    return {
        "name": p.name,
        "description": p.description,
        "model": p.model,
        "runtime": p.runtime,
        "alias_of": p.alias_of,
        "with": dict(p.fixed),
        "options": [
            {
                "name": o.name,
                "description": o.description,
                "default": o.default,
                "values": [
                    {"name": v.name, "description": v.description, "about": v.about} for v in o.values
                ],
            }
            for o in p.options
        ],
    }


def locked_sizes(lock: Lockfile | None) -> dict[str, int]:
    return {m.name: sum(f.size for f in m.files) for m in lock.models} if lock is not None else {}
