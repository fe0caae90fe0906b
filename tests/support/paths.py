"""Where the repository's own files are, for tests that read the source tree, the docs or the presets.

One place, so moving a test module between folders never changes what it reads.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DOCS", "MANIFESTS", "PACKAGE", "README", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "src" / "wanmodels"
DOCS = REPO_ROOT / "docs"
README = REPO_ROOT / "README.md"
MANIFESTS = REPO_ROOT / "manifests"
