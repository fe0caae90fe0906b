"""huggingface_hub's own cache, filled by huggingface_hub itself, for the tests of reusing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.hubserver import HubServer, client_env

__all__ = ["blob", "fill_hf_cache"]


def fill_hf_cache(hub: HubServer, home: Path, *repo_ids: str) -> Path:
    """Download whole repos with huggingface_hub itself into `home/hf` (an HF_HOME); return it."""
    code = "import sys\nfrom huggingface_hub import snapshot_download as get\nfor r in sys.argv[1:]: get(r)"
    subprocess.run(
        [sys.executable, "-c", code, *repo_ids],
        env=client_env(hub, home),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return home / "hf"


def blob(hf_home: Path, hub: HubServer, repo_id: str, path: str) -> Path:
    """Where the cache under `hf_home` keeps the bytes of `repo_id`'s `path`."""
    return (
        hf_home
        / "hub"
        / f"models--{repo_id.replace('/', '--')}"
        / "blobs"
        / hub.file_info(repo_id, path).etag
    )
