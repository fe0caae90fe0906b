"""wanmodels: provision the Wan 2.1 image-to-video model stack from a pinned, verifiable manifest.

The library API is imported lazily so `import wanmodels` (and the CLI's `--help`) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
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
    "RemoteFileNotFoundError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "SelectionError",
    "Settings",
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
    "read_lock",
    "resolve_settings",
    "verify",
]

_LAZY = {
    "DownloadResult": "wanmodels.downloader",
    "download": "wanmodels.downloader",
    "plan": "wanmodels.downloader",
    "LockResult": "wanmodels.resolve",
    "lock": "wanmodels.resolve",
    "Lockfile": "wanmodels.lockfile",
    "read_lock": "wanmodels.lockfile",
    "Manifest": "wanmodels.manifest",
    "ModelSpec": "wanmodels.manifest",
    "load_manifest": "wanmodels.manifest",
    "open_manifest": "wanmodels.manifest",
    "Plan": "wanmodels.planner",
    "Settings": "wanmodels.config",
    "resolve_settings": "wanmodels.config",
    "VerifyReport": "wanmodels.verifier",
    "verify": "wanmodels.verifier",
}
_ERRORS = {
    "AccessDeniedError",
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
    from wanmodels.downloader import DownloadResult, download, plan
    from wanmodels.errors import (
        AccessDeniedError,
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
    from wanmodels.lockfile import Lockfile, read_lock
    from wanmodels.manifest import Manifest, ModelSpec, load_manifest, open_manifest
    from wanmodels.planner import Plan
    from wanmodels.resolve import LockResult, lock
    from wanmodels.verifier import VerifyReport, verify


def __getattr__(name: str) -> Any:
    import importlib

    module = "wanmodels.errors" if name in _ERRORS else _LAZY.get(name)
    if module is None:
        msg = f"module 'wanmodels' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(module), name)
