"""The bytes on disk, as tests poke at them: damage a file, count writes into parts, read journals."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanmodels.store.partial import PartFile, list_parts

__all__ = ["count_writes", "flip_last_byte", "partial_bytes"]


def count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every write into a part, from now on."""
    sizes: list[int] = []
    write = PartFile.write

    def counted(self: PartFile, offset: int, data: bytes | memoryview) -> None:
        sizes.append(len(data))
        write(self, offset, data)

    monkeypatch.setattr(PartFile, "write", counted)
    return sizes


def flip_last_byte(path: Path) -> None:
    """Damage a file in place without changing its size (only its hash can tell)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def partial_bytes(root: Path) -> int:
    """Bytes the journals of unfinished downloads under `root` say have arrived."""
    return sum(p.done_bytes for p in list_parts(root / ".wanmodels" / "partial"))
