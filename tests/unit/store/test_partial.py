"""Parts and their journals: the bytes a multi-connection download keeps between runs (the range
scheduler that fills them: tests/unit/transfer/test_scheduler.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tests.support.waiting import wait_until
from wanmodels._fs import preallocate
from wanmodels.digests import Digest
from wanmodels.store import partial
from wanmodels.store.partial import PartFile, gaps, list_parts, merge, part_info, part_key, read_part

DIGEST = Digest("sha256", "ab" * 32)
MIB = 1 << 20


@pytest.mark.parametrize(
    ("extents", "merged"),
    [
        ([], []),
        ([(5, 9), (0, 5)], [(0, 9)]),
        ([(0, 3), (2, 8), (10, 12)], [(0, 8), (10, 12)]),
        ([(4, 4), (1, 2)], [(1, 2)]),
    ],
)
def test_merge_joins_touching_and_overlapping_ranges(extents: list, merged: list) -> None:
    assert merge(extents) == merged


def test_gaps_are_the_complement() -> None:
    assert gaps([(0, 3), (5, 8)], 10) == [(3, 5), (8, 10)]
    assert gaps([], 4) == [(0, 4)]
    assert gaps([(0, 4)], 4) == []


def test_a_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    part = PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    part.write(0, b"a" * 10)
    part.write(50, b"b" * 20)
    part.close()
    with part.journal_path.open("ab") as f:
        f.write(b"70 8")  # a kill in the middle of a journal line
    info = read_part(part.path, part.journal_path)
    assert info is not None and info.done == ((0, 10), (50, 70))
    reopened = PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    assert reopened.missing() == [(10, 50), (70, 100)]
    assert reopened.resumed_bytes == 30
    assert reopened.read(50, 4) == b"bbbb"
    reopened.close()


def test_a_prefix_waiter_wakes_when_its_threshold_is_passed_or_the_part_resets(tmp_path: Path) -> None:
    part = PartFile(tmp_path, "m/w.bin", 300, DIGEST).open()
    results: list[tuple[int, int]] = []

    def wait(beyond: int) -> threading.Thread:
        thread = threading.Thread(target=lambda: results.append(part.wait_prefix(beyond, timeout=60)))
        thread.start()
        wait_until(lambda: part._awaited == [beyond], "the waiter to wait")
        return thread

    assert part.wait_prefix(-1, timeout=60) == (0, 0)  # already past: no wait
    waiter = wait(100)
    part.write(0, b"a" * 50)  # below the threshold: it keeps waiting
    part.write(50, b"b" * 40)
    part.write(200, b"c" * 100)  # past it, but not contiguous
    part.write(90, b"d" * 20)  # the prefix jumps to 110: past 100
    waiter.join(60)
    assert not waiter.is_alive() and results == [(110, 0)]
    waiter = wait(299)
    part.reset()  # a reset wakes it at once, with the new generation
    waiter.join(60)
    assert not waiter.is_alive() and results[-1] == (0, 1)
    waiter = wait(299)
    part.poke()  # so does a poke (a transfer stopped)
    waiter.join(60)
    assert not waiter.is_alive() and results[-1] == (0, 1)
    part.close()


def test_a_waiter_for_a_short_prefix_is_woken_while_another_waits_for_a_longer_one(tmp_path: Path) -> None:
    part = PartFile(tmp_path, "m/x.bin", 4 * MIB, DIGEST).open()
    got: dict[str, int] = {}

    def wait(name: str, beyond: int) -> None:
        got[name] = part.wait_prefix(beyond, timeout=60)[0]

    short = threading.Thread(target=wait, args=("short", 0), daemon=True)
    short.start()
    wait_until(lambda: part._awaited == [0], "the first waiter to wait")
    long = threading.Thread(target=wait, args=("long", 3 * MIB), daemon=True)
    long.start()
    wait_until(lambda: part._awaited == [0, 3 * MIB], "the second waiter to wait")
    part.write(0, b"x" * (64 << 10))  # past the first waiter's threshold, not the second's
    try:
        wait_until(lambda: "short" in got, "the waiter for a prefix past 0 to return", timeout=30)
        assert got["short"] == 64 << 10 and "long" not in got
    finally:
        part.poke()
        short.join()
        long.join()
        part.close()


def test_a_part_from_an_older_wanmodels_is_a_prefix(tmp_path: Path) -> None:
    (tmp_path / f"{part_key('m/x.bin', DIGEST)}.part").write_bytes(b"z" * 40)
    info = part_info(tmp_path, "m/x.bin", DIGEST, 100)
    assert info is not None and info.done == ((0, 40),)
    assert part_info(tmp_path, "m/x.bin", DIGEST, 30) is None  # longer than the file: not a prefix
    part = PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    assert part.missing() == [(40, 100)]
    part.close()


def test_a_part_for_other_bytes_is_not_resumed(tmp_path: Path) -> None:
    part = PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    part.write(0, b"a" * 10)
    part.close()
    other = Digest("sha256", "cd" * 32)
    assert part_info(tmp_path, "m/x.bin", other, 100) is None
    assert [p.local_path for p in list_parts(tmp_path)] == ["m/x.bin"]


def test_reset_forgets_every_byte(tmp_path: Path) -> None:
    part = PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    part.write(0, b"a" * 60)
    generation = part.generation
    part.reset()
    assert part.missing() == [(0, 100)] and part.generation == generation + 1
    part.close()
    assert PartFile(tmp_path, "m/x.bin", 100, DIGEST).open().missing() == [(0, 100)]


def test_a_journal_without_its_part_promises_nothing(tmp_path: Path) -> None:
    part = PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    part.write(0, b"a" * 100)
    part.close()
    part.path.unlink()  # placed or deleted by hand: the journal alone is not bytes
    assert part_info(tmp_path, "m/x.bin", DIGEST, 100) is None
    assert list(list_parts(tmp_path)) == []


def _can_preallocate(folder: Path) -> bool:
    probe = folder / "probe"
    with probe.open("wb") as f:
        reserved = preallocate(f.fileno(), 1 << 16)
    probe.unlink()
    return reserved


def test_a_new_part_has_its_blocks_reserved_and_reads_as_holding_nothing(tmp_path: Path) -> None:
    if not _can_preallocate(tmp_path):
        pytest.skip("this filesystem has no fallocate(2): parts stay sparse here")
    part = PartFile(tmp_path, "m/x.bin", 4 * MIB, DIGEST).open()
    assert part.path.stat().st_blocks * 512 >= 4 * MIB  # reserved, not written
    info = part_info(tmp_path, "m/x.bin", DIGEST, 4 * MIB)
    assert info is not None and info.done == () and info.reserved == 4 * MIB
    part.write(MIB, b"a" * 10)
    part.close()
    info = part_info(tmp_path, "m/x.bin", DIGEST, 4 * MIB)
    assert info is not None and info.done == ((MIB, MIB + 10),) and info.reserved == 4 * MIB


def test_a_kill_while_blocks_are_reserved_leaves_a_part_that_holds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part of full length without its journal reads as a finished file (placed without a byte
    fetched, then failing its digest), so the journal must exist before the blocks are reserved."""

    class Killed(BaseException):
        pass

    def reserve_then_die(fd: int, size: int) -> bool:
        os.ftruncate(fd, size)  # what fallocate leaves: the full length
        raise Killed

    monkeypatch.setattr(partial, "preallocate", reserve_then_die)
    with pytest.raises(Killed):
        PartFile(tmp_path, "m/x.bin", 100, DIGEST).open()
    info = part_info(tmp_path, "m/x.bin", DIGEST, 100)
    assert info is not None and info.done == ()
