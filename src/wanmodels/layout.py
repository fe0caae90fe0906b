"""Where wanmodels keeps its own files in a root: the one description of `<root>/.wanmodels/`.

```
<root>/.wanmodels/
├── lock                  one writer per root (filelock; see `wanmodels.store.rootlock`)
├── state.json            per local path: size, mtime_ns, inode (+ generation), the digest those
│                         bytes hashed to, and whether wanmodels placed that inode, for which manifests
├── placed.jsonl          placements since state.json was last written, one fsynced line each
├── locks/<preset>.lock   the pins of bundled presets provisioned into this root
├── replaced/<time>/...   files of the user's moved aside by --replace (never deleted)
└── partial/              unfinished downloads (see `wanmodels.store.partial`)
```
No manifest or workflow may place a file under it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

WORK_DIR: Final = ".wanmodels"


def work_dir(root: Path) -> Path:
    return root / WORK_DIR


def lock_file(root: Path) -> Path:
    return work_dir(root) / "lock"


def state_file(root: Path) -> Path:
    return work_dir(root) / "state.json"


def journal_file(root: Path) -> Path:
    return work_dir(root) / "placed.jsonl"


def partial_folder(root: Path) -> Path:
    return work_dir(root) / "partial"


def replaced_folder(root: Path) -> Path:
    return work_dir(root) / "replaced"


def locks_folder(root: Path) -> Path:
    return work_dir(root) / "locks"


def preset_lock_path(root: Path, preset: str) -> Path:
    """Where a preset's lockfile lives: inside the root, so any directory finds it from `--root`."""
    return locks_folder(root) / f"{preset}.lock"


def reserved(path: str) -> str | None:
    """Why a target path may not be used (it lies in the work folder), or None."""
    if path.split("/")[0] == WORK_DIR:
        return f"uses '{WORK_DIR}', which wanmodels keeps for its own files"
    return None
