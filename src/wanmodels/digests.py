"""Digests: what a file's bytes must hash to, and streaming hashers that check it.

The Hub names LFS files by sha256 and small files by their git blob sha1, which is
sha1(b"blob <size>\\0" + content); both are computed while bytes stream, never by
reading a whole file into memory.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Literal

from wanmodels.errors import IntegrityError, Interrupted

Algorithm = Literal["sha256", "gitsha1"]
ALGORITHMS: Final = ("sha256", "gitsha1")
_HEX: Final = {"sha256": re.compile("[0-9a-fA-F]{64}"), "gitsha1": re.compile("[0-9a-fA-F]{40}")}
READ_SIZE: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Digest:
    """A hash value with its algorithm; prints as `sha256:<hex>` and compares case-insensitively."""

    algorithm: Algorithm
    hexdigest: str

    def __post_init__(self) -> None:
        # Checked here, not only in `parse`: a digest from the Hub names a file in the HF cache.
        if self.algorithm not in ALGORITHMS:
            msg = f"unknown digest algorithm {self.algorithm!r}"
            raise ValueError(msg)
        if not _HEX[self.algorithm].fullmatch(self.hexdigest):
            msg = f"not a {self.algorithm} digest: {self.hexdigest!r}"
            raise ValueError(msg)
        object.__setattr__(self, "hexdigest", self.hexdigest.lower())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `sha256:<hex>` or `gitsha1:<hex>`."""
        algorithm, sep, hexdigest = text.partition(":")
        if not sep or algorithm not in ALGORITHMS or not _HEX[algorithm].fullmatch(hexdigest):
            msg = f"not a digest: {text!r} (expected 'sha256:<64 hex>' or 'gitsha1:<40 hex>')"
            raise ValueError(msg)
        return cls(algorithm, hexdigest)  # type: ignore[arg-type]

    @property
    def short(self) -> str:
        return f"{self.algorithm}:{self.hexdigest[:12]}…"


class Hasher:
    """Incremental hasher for one file of known size, in the algorithm of its expected digest."""

    def __init__(self, algorithm: Algorithm, size: int) -> None:
        self.algorithm = algorithm
        self.size = size
        self.reset()

    def reset(self) -> None:
        """Start over from byte 0."""
        if self.algorithm == "sha256":
            self._h = hashlib.sha256()
        else:
            # git hashes a header before the content, so the size must be known up front.
            self._h = hashlib.sha1(f"blob {self.size}\0".encode(), usedforsecurity=False)

    def update(self, data: bytes | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> Digest:
        return Digest(self.algorithm, self._h.hexdigest())


def hash_stream(
    stream: BinaryIO,
    hasher: Hasher,
    limit: int | None = None,
    *,
    dst: BinaryIO | None = None,
    cancel: threading.Event | None = None,
) -> int:
    """Feed `stream` into `hasher` in bounded reads (and into `dst`, when given: a copy hashed as it
    is written); stop after `limit` bytes. Returns bytes read. The one hashing loop.

    Raises:
        Interrupted: `cancel` was set (checked before every read).
    """
    total = 0
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    while limit is None or total < limit:
        if cancel is not None and cancel.is_set():
            msg = "interrupted while hashing; nothing was placed"
            raise Interrupted(msg)
        want = READ_SIZE if limit is None else min(READ_SIZE, limit - total)
        n = stream.readinto(view[:want])  # type: ignore[attr-defined]
        if not n:
            break
        hasher.update(view[:n])
        if dst is not None:
            dst.write(view[:n])
        total += n
    return total


def hash_exact(
    stream: BinaryIO,
    algorithm: Algorithm,
    size: int,
    *,
    dst: BinaryIO | None = None,
    cancel: threading.Event | None = None,
) -> Digest:
    """The digest of `stream`, which must hold exactly `size` bytes (copied to `dst` as it goes).

    Raises:
        IntegrityError: `stream` holds fewer or more bytes.
        Interrupted: `cancel` was set.
    """
    hasher = Hasher(algorithm, size)
    total = hash_stream(stream, hasher, size + 1, dst=dst, cancel=cancel)
    if total != size:
        got = f"{total:,} bytes" if total < size else f"more than {size:,} bytes"
        msg = f"expected {size:,} bytes, found {got}"
        raise IntegrityError(msg, path="", expected=f"{size:,} bytes", actual=got)
    return hasher.digest()


def hash_file(path: Path, algorithm: Algorithm, size: int | None = None) -> Digest:
    """Hash a file from disk in bounded memory.

    Args:
        path: the file.
        algorithm: `sha256` or `gitsha1`.
        size: the file's size; read from disk when not given (needed by `gitsha1`).
    """
    if size is None:
        size = path.stat().st_size
    hasher = Hasher(algorithm, size)
    with path.open("rb", buffering=0) as f:
        hash_stream(f, hasher)
    return hasher.digest()
