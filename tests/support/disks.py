"""Filesystems a test mounts for itself: a small tmpfs (a full disk, another filesystem), a reflinking XFS,
an ext2 without fallocate (a disk that fills under a part).

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
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

__all__ = ["fill", "image_disk", "reflink_disk", "small_disk", "sparse_disk"]


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
def image_disk(path: Path, mkfs: Sequence[str], size: int) -> Iterator[Path]:
    """A filesystem made by `mkfs` in a sparse image file of `size` bytes, loop-mounted at `path`."""
    image = path.with_name(path.name + ".img")
    path.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as f:
        f.truncate(size)  # sparse: nearly no real space
    made = subprocess.run([*mkfs, str(image)], capture_output=True)
    mounted = made
    if made.returncode == 0:
        mounted = subprocess.run(["mount", "-o", "loop", str(image), str(path)], capture_output=True)
    if mounted.returncode != 0:
        image.unlink()
        why = mounted.stderr.decode().strip()
        pytest.skip(f"root, yet cannot make or loop-mount a {mkfs[0]} image here: {why}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        image.unlink()


def reflink_disk(path: Path) -> contextlib.AbstractContextManager[Path]:
    """An XFS filesystem (which can reflink) at `path`, of its minimum size.

    Its tests are marked `needs_root("mkfs.xfs")` (Debian's xfsprogs; .ci/run installs it).
    """
    return image_disk(path, ["mkfs.xfs", "-q"], 320 << 20)


def sparse_disk(path: Path, size: int) -> contextlib.AbstractContextManager[Path]:
    """An ext2 filesystem at `path`: no extents, so no fallocate(2), and a part written there stays
    sparse (its blocks come as bytes arrive): the disk can fill under a download mid-file. No
    blocks are reserved for root (`-m 0`), so the free space `fill` sees is all there is.

    Its tests are marked `needs_root("mkfs.ext2")` (Debian's e2fsprogs).
    """
    return image_disk(path, ["mkfs.ext2", "-q", "-F", "-m", "0"], size)


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
