"""wanmodels: provision the Wan 2.1 image-to-video model stack from a pinned, verifiable manifest.

The library API is imported lazily so `import wanmodels` (and the CLI's `--help`) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "ByteSource",
    "ConflictError",
    "Digest",
    "DiskFullError",
    "DownloadResult",
    "HubError",
    "IntegrityError",
    "Interrupted",
    "LocalIOError",
    "LockError",
    "LockResult",
    "Lockfile",
    "Manifest",
    "ManifestError",
    "ModelSpec",
    "OfflineError",
    "Plan",
    "PruneResult",
    "RemoteFile",
    "RemoteFileNotFoundError",
    "RemoteRepo",
    "RepairResult",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "SelectionError",
    "Settings",
    "Stream",
    "TransientHubError",
    "UsageError",
    "VerifyReport",
    "WanmodelsError",
    "__version__",
    "download",
    "load_manifest",
    "lock",
    "open_manifest",
    "plan",
    "prune",
    "publish",
    "read_lock",
    "repair",
    "resolve_settings",
    "verify",
]

_LAZY = {
    "ByteSource": "wanmodels.sources.base",
    "Digest": "wanmodels.digests",
    "RemoteFile": "wanmodels.repos",
    "RemoteRepo": "wanmodels.repos",
    "Stream": "wanmodels.sources.base",
    "DownloadResult": "wanmodels.results",
    "LockResult": "wanmodels.results",
    "PruneResult": "wanmodels.results",
    "RepairResult": "wanmodels.results",
    "VerifyReport": "wanmodels.results",
    "download": "wanmodels.ops.download",
    "plan": "wanmodels.ops.download",
    "prune": "wanmodels.ops.prune",
    "publish": "wanmodels.ops.publish",
    "lock": "wanmodels.ops.lock",
    "Lockfile": "wanmodels.inputs.lockfile",
    "read_lock": "wanmodels.inputs.lockfile",
    "Manifest": "wanmodels.inputs.manifest",
    "ModelSpec": "wanmodels.inputs.manifest",
    "load_manifest": "wanmodels.inputs.manifest",
    "open_manifest": "wanmodels.inputs.presets",
    "Plan": "wanmodels.planning.plan",
    "Settings": "wanmodels.config",
    "resolve_settings": "wanmodels.config",
    "repair": "wanmodels.ops.verify",
    "verify": "wanmodels.ops.verify",
}
_ERRORS = {
    "AccessDeniedError",
    "ConflictError",
    "DiskFullError",
    "HubError",
    "IntegrityError",
    "Interrupted",
    "LocalIOError",
    "LockError",
    "ManifestError",
    "OfflineError",
    "RemoteFileNotFoundError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "SelectionError",
    "TransientHubError",
    "UsageError",
    "WanmodelsError",
}

if TYPE_CHECKING:
    from wanmodels.config import Settings, resolve_settings
    from wanmodels.digests import Digest
    from wanmodels.errors import (
        AccessDeniedError,
        ConflictError,
        DiskFullError,
        HubError,
        IntegrityError,
        Interrupted,
        LocalIOError,
        LockError,
        ManifestError,
        OfflineError,
        RemoteFileNotFoundError,
        RepoNotFoundError,
        RevisionNotFoundError,
        SelectionError,
        TransientHubError,
        UsageError,
        WanmodelsError,
    )
    from wanmodels.inputs.lockfile import Lockfile, read_lock
    from wanmodels.inputs.manifest import Manifest, ModelSpec, load_manifest
    from wanmodels.inputs.presets import open_manifest
    from wanmodels.ops.download import download, plan
    from wanmodels.ops.lock import lock
    from wanmodels.ops.prune import prune
    from wanmodels.ops.publish import publish
    from wanmodels.ops.verify import repair, verify
    from wanmodels.planning.plan import Plan
    from wanmodels.repos import RemoteFile, RemoteRepo
    from wanmodels.results import DownloadResult, LockResult, PruneResult, RepairResult, VerifyReport
    from wanmodels.sources.base import ByteSource, Stream


def __getattr__(name: str) -> Any:
    import importlib

    module = "wanmodels.errors" if name in _ERRORS else _LAZY.get(name)
    if module is None:
        msg = f"module 'wanmodels' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
