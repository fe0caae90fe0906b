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
    "ByteSource": "wanmodels.remote",
    "Digest": "wanmodels.integrity",
    "RemoteFile": "wanmodels.repos",
    "RemoteRepo": "wanmodels.repos",
    "Stream": "wanmodels.remote",
    "DownloadResult": "wanmodels.results",
    "LockResult": "wanmodels.results",
    "PruneResult": "wanmodels.results",
    "RepairResult": "wanmodels.results",
    "VerifyReport": "wanmodels.results",
    "download": "wanmodels.downloader",
    "plan": "wanmodels.downloader",
    "prune": "wanmodels.pruner",
    "publish": "wanmodels.publisher",
    "lock": "wanmodels.locker",
    "Lockfile": "wanmodels.lockfile",
    "read_lock": "wanmodels.lockfile",
    "Manifest": "wanmodels.manifest",
    "ModelSpec": "wanmodels.manifest",
    "load_manifest": "wanmodels.manifest",
    "open_manifest": "wanmodels.presets",
    "Plan": "wanmodels.planner",
    "Settings": "wanmodels.config",
    "resolve_settings": "wanmodels.config",
    "repair": "wanmodels.verifier",
    "verify": "wanmodels.verifier",
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
    from wanmodels.downloader import download, plan
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
    from wanmodels.integrity import Digest
    from wanmodels.locker import lock
    from wanmodels.lockfile import Lockfile, read_lock
    from wanmodels.manifest import Manifest, ModelSpec, load_manifest
    from wanmodels.planner import Plan
    from wanmodels.presets import open_manifest
    from wanmodels.pruner import prune
    from wanmodels.publisher import publish
    from wanmodels.remote import ByteSource, Stream
    from wanmodels.repos import RemoteFile, RemoteRepo
    from wanmodels.results import DownloadResult, LockResult, PruneResult, RepairResult, VerifyReport
    from wanmodels.verifier import repair, verify


def __getattr__(name: str) -> Any:
    import importlib

    module = "wanmodels.errors" if name in _ERRORS else _LAZY.get(name)
    if module is None:
        msg = f"module 'wanmodels' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
