"""Filesystems a test mounts for itself: a small tmpfs (a full disk, another filesystem), a reflinking XFS.

Mounting needs root, so every test that uses these carries `@pytest.mark.needs_root` (naming
the commands it needs besides `mount`, e.g. `needs_root("mkfs.xfs")`; tests/e2e/test_suite_layout.py
checks the mark is there): `tests/conftest.py` skips it where it cannot run, with the reason `-ra`
prints, so a laptop reports as skipped what CI runs. A root that still cannot mount (a container without
the capability) is skipped here, with mount's own words.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fill", "reflink_disk", "small_disk"]


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"root, yet cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def reflink_disk(path: Path) -> Iterator[Path]:
    """An XFS filesystem (which can reflink) in a sparse image file, loop-mounted at `path`.

    Its tests are marked `needs_root("mkfs.xfs")` (Debian's xfsprogs; .ci/run installs it).
    """
    image = path.with_name(path.name + ".img")
    path.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as f:
        f.truncate(320 << 20)  # sparse: the filesystem's minimum, nearly no real space
    made = subprocess.run(["mkfs.xfs", "-q", str(image)], capture_output=True)
    mounted = made
    if made.returncode == 0:
        mounted = subprocess.run(["mount", "-o", "loop", str(image), str(path)], capture_output=True)
    if mounted.returncode != 0:
        image.unlink()
        why = mounted.stderr.decode().strip()
        pytest.skip(f"root, yet cannot make or loop-mount an XFS image here: {why}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        image.unlink()


def fill(path: Path, leave: int) -> None:
    """Grow `path` until its disk has at most `leave` bytes free, or is full."""
    with path.open("wb", buffering=0) as f:
        while (free := shutil.disk_usage(path).free) > leave:
            try:
                f.write(bytes(min(free - leave, 8 << 20)))
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                return
