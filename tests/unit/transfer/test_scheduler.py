"""The range scheduler: how long each request is, when a helper connection takes over the rest of a
range, and what a finished, failed or interrupted range hands back."""

from __future__ import annotations

import itertools
import math
import statistics
import time

from wanmodels.digests import Digest
from wanmodels.planning.plan import Action, PlannedFile
from wanmodels.transfer.adaptive import Phase, Window
from wanmodels.transfer.scheduler import (
    END_SEGMENT,
    MAX_SPAN,
    MIN_SEGMENT,
    CpuShare,
    FileJob,
    Released,
    Scheduler,
    min_segment,
    request_span,
    smallest_takeover,
    stagger,
)

DIGEST = Digest("sha256", "ab" * 32)
MIB = 1 << 20


def planned(name: str, size: int) -> PlannedFile:
    return PlannedFile("e", "o/r", "c" * 40, name, f"e/{name}", size, DIGEST, Action.DOWNLOAD, 0)


def test_segments_grow_with_the_file() -> None:
    assert min_segment(10 * MIB) == MIN_SEGMENT
    assert min_segment(30 << 30) == (30 << 30) // 256  # a 30 GB file: ~256 ranges at most
    # Requests are long while much is left, and shrink to about a half-share at the end.
    assert request_span(30 << 30, left=60 << 30, connections=16) == 256 << 20
    assert request_span(30 << 30, left=1 << 30, connections=16) == 32 << 20
    assert request_span(10 * MIB, left=64 * MIB, connections=8) == 4 * MIB
    # A takeover claims at least the file's minimum segment, except in the plan's last stretch,
    # where the last connections must finish together: down to END_SEGMENT, never below.
    assert smallest_takeover(30 << 30, left=60 << 30, connections=16) == min_segment(30 << 30)
    assert smallest_takeover(30 << 30, left=64 << 20, connections=16) == 2 << 20
    assert smallest_takeover(30 << 30, left=1 << 20, connections=16) == END_SEGMENT
    assert request_span(30 << 30, left=1 << 20, connections=16) == END_SEGMENT


def test_requests_stop_on_boundaries_and_leave_no_tail_too_small_to_take_over() -> None:
    size = 10 * MIB + 12345
    scheduler = Scheduler(
        [planned("f", size)], lambda job: [(0, job.item.size)], connections=4, cpu=CpuShare(None)
    )
    rng = scheduler.next()
    assert rng is not None
    rng.pos = 777  # bytes already in: the stop is still on a 64 KiB boundary
    stop = scheduler.request(rng)
    assert stop % (64 << 10) == 0 and rng.pos < stop < size
    span = request_span(size, size, 4)
    rng.pos = size - span - (100 << 10)  # a span would leave ~100 KiB: too little to take over
    assert scheduler.request(rng) == size


def test_a_refetch_after_a_digest_mismatch_asks_in_spans_like_the_first_round() -> None:
    # Its bytes count as left again: otherwise the plan looks finished and every request of the
    # second round falls to END_SEGMENT (a 30 GB file in ~120,000 requests).
    size = 64 * MIB
    scheduler = Scheduler(
        [planned("f", size)], lambda job: [(0, job.item.size)], connections=4, cpu=CpuShare(None)
    )
    rng = scheduler.next()
    assert rng is not None
    first = scheduler.request(rng)
    assert first == 8 * MIB  # 64 MiB left over 4 connections: half-shares
    scheduler.advance(rng, size)
    assert scheduler.release(rng) is Released.FINISH
    scheduler.restart(rng.job)  # the digest did not match: every byte again
    again = scheduler.next()
    assert again is not None and (again.pos, again.end) == (0, size)
    assert scheduler.request(again) == first


def test_a_resumed_file_whose_server_ignores_ranges_counts_all_its_bytes_as_left_again() -> None:
    # The server sends the whole file from byte 0: the bytes resumed beyond the stream's position
    # come again too, so the other files' spans must not shrink as if the plan were ending.
    resumed = PlannedFile("e", "o/r", "c" * 40, "a", "e/a", 64 * MIB, DIGEST, Action.RESUME, 56 * MIB)
    missing = {"a": [(8 * MIB, 16 * MIB)], "b": [(0, 64 * MIB)]}
    scheduler = Scheduler(
        [resumed, planned("b", 64 * MIB)],
        lambda job: list(missing[job.item.repo_path]),
        connections=4,
        cpu=CpuShare(None),
    )
    a, b = scheduler.next(), scheduler.next()
    assert a is not None and b is not None and a.job.item.repo_path == "a"
    scheduler.request(a)
    scheduler.single_stream(a.job, a)
    scheduler.advance(a, 64 * MIB)
    scheduler.advance(b, 56 * MIB)  # 8 MiB of the plan are left, all of them b's
    fresh = Scheduler(
        [planned("b", 8 * MIB)], lambda job: [(0, job.item.size)], connections=4, cpu=CpuShare(None)
    )
    alone = fresh.next()
    assert alone is not None
    assert scheduler.request(b) - b.pos == fresh.request(alone)


def test_whole_files_first_then_a_helper_takes_what_follows_the_request_in_flight() -> None:
    items = [planned("big", 64 * MIB), planned("small", 4 * MIB)]
    scheduler = Scheduler(items, lambda job: [(0, job.item.size)], connections=4, cpu=CpuShare(None))
    big = scheduler.next()
    small = scheduler.next()
    assert big is not None and small is not None
    assert (big.job.item.repo_path, big.pos, big.end) == ("big", 0, 64 * MIB)
    assert (small.job.item.repo_path, small.pos) == ("small", 0)
    assert scheduler.request(big) == 68 * MIB // 8  # 68 MiB left, 4 connections: half-shares
    assert scheduler._steal() is None  # no byte of it came yet: no helpers for a server that may be failing
    scheduler.flowing(big)
    scheduler.flowing(small)
    scheduler.advance(big, 2 * MIB)
    helper = scheduler.next()
    assert helper is not None and helper.job is big.job
    # The victim keeps only its request in flight, so ranges finish in file order (the prefix hash
    # keeps up); the helper takes the rest and leaves the same offer to the next idle connection.
    assert big.end == helper.pos == 68 * MIB // 8 and helper.end == 64 * MIB
    assert scheduler._steal() is None  # the helper has not asked for anything yet
    stop = scheduler.request(helper)
    again = scheduler._steal()
    assert again is not None and again.pos == stop and helper.end == stop and again.end == 64 * MIB


def test_a_failing_range_gets_no_helper() -> None:
    items = [planned("f", 64 * MIB)]
    scheduler = Scheduler(items, lambda job: [(0, job.item.size)], connections=2, cpu=CpuShare(None))
    rng = scheduler.next()
    assert rng is not None
    scheduler.request(rng)
    scheduler.flowing(rng)
    scheduler.flowing(rng, False)  # its request failed: a retry is coming
    assert scheduler._steal() is None
    scheduler.flowing(rng)
    assert scheduler._steal() is not None


def test_a_takeover_never_claims_bytes_already_asked_for() -> None:
    items = [planned("f", 8 * MIB)]
    scheduler = Scheduler(items, lambda job: [(0, job.item.size)], connections=2, cpu=CpuShare(None))
    rng = scheduler.next()
    assert rng is not None
    rng.asked = 7 * MIB  # a request in flight up to 7 MiB
    scheduler.flowing(rng)
    helper = scheduler.next()
    assert helper is not None and helper.pos == 7 * MIB and rng.end == 7 * MIB


def test_no_helper_while_the_client_itself_is_the_bottleneck() -> None:
    cpu = CpuShare(0.7)
    scheduler = Scheduler([planned("f", 1 << 30)], lambda job: [(0, job.item.size)], connections=8, cpu=cpu)
    rng = scheduler.next()
    assert rng is not None
    assert scheduler.request(rng) == (1 << 30) // 16  # nothing measured yet: spans a helper can join
    scheduler.flowing(rng)
    assert scheduler._steal() is None  # ... but no helper before the first CPU sample
    cpu.share = 0.3  # the link, not this process, sets the rate (a CDN capping each connection)
    assert scheduler._steal() is not None
    # With a fixed count (no helper will come under a long request): one request to the end.
    scheduler = Scheduler(
        [planned("f", 1 << 30)], lambda job: [(0, job.item.size)], connections=8, adapt=False, cpu=cpu
    )
    rng = scheduler.next()
    assert rng is not None
    cpu.share = 1.2  # loopback: receiving, writing and hashing take a core; another connection adds nothing
    assert scheduler.request(rng) == MAX_SPAN  # few long requests
    scheduler.flowing(rng)
    assert scheduler._steal() is None


def test_the_file_is_finished_once_and_failures_are_reported_once() -> None:
    # Two ranges held at once: two connections (the count gates how many may be held).
    items = [planned("a", 10), planned("b", 10)]
    scheduler = Scheduler(items, lambda job: [(0, job.item.size)], connections=2)
    a = scheduler.next()
    b = scheduler.next()
    assert a is not None and b is not None
    scheduler.advance(a, 10)
    assert scheduler.release(a) is Released.FINISH
    scheduler.fail(b.job, RuntimeError("boom"))
    assert scheduler.release(b) is Released.FAILED
    assert scheduler.release(b) is Released.BUSY
    scheduler.finished(a.job)
    assert scheduler.next() is None


def test_unfinished_bytes_go_back_to_pending() -> None:
    scheduler = Scheduler([planned("a", 100)], lambda job: [(0, 100)])
    rng = scheduler.next()
    assert rng is not None
    scheduler.advance(rng, 30)
    assert scheduler.release(rng) is Released.BUSY
    again = scheduler.next()
    assert again is not None and (again.pos, again.end) == (30, 100)
    assert isinstance(again.job, FileJob)


def test_requests_sized_by_the_rate_of_one_connection_do_not_all_end_together() -> None:
    shares = [stagger(k) for k in range(1, 201)]
    assert all(0.5 <= s < 1.5 for s in shares)
    assert abs(statistics.mean(shares) - 1.0) < 0.01  # as long as `SPAN_SECONDS` on average
    # Any run of consecutive requests (those taken at once after a step of the count) spreads
    # over the whole range, none two alike: their round trips fall at different moments.
    for first in range(0, 190, 7):
        run = sorted(shares[first : first + 10])
        assert run[0] < 0.65 and run[-1] > 1.35
        assert min(b - a for a, b in itertools.pairwise(run)) > 0.02
    scheduler = capped_link_scheduler(size=1 << 30)
    rng = scheduler.next()
    assert rng is not None
    spans = []
    for _ in range(10):
        stop = scheduler.request(rng)
        spans.append(stop - rng.pos)
        rng.pos = stop
    assert len(set(spans)) == 10
    assert min(spans) >= 4 * MIB and max(spans) <= 12 * MIB  # 0.5-1.5 s of 8 MiB/s


def capped_link_scheduler(
    size: int, ceiling: int = 64, allowed: int = 10, scaled: bool = True, rtt: float = 0.02
) -> Scheduler:
    """A scheduler whose count settled at `allowed` on a link capping each connection at 8 MiB/s,
    `rtt` away (the state a run reaches after its steps, set here directly)."""
    scheduler = Scheduler(
        [planned("f", size)], lambda job: [(0, job.item.size)], connections=ceiling, cpu=CpuShare(None)
    )
    count = scheduler.count
    count.allowed, count.scaled, count.phase = allowed, scaled, Phase.HOLD
    count._best = 8 * MIB
    count._measured = Window(allowed * 8 * MIB, allowed)
    count._rtts.append(rtt)
    return scheduler


def at_once(scheduler: Scheduler) -> int:
    """How many ranges the scheduler lets be held now (asked under its lock, as its workers do)."""
    with scheduler._lock:
        return scheduler._allowed()


def slow_windows(scheduler: Scheduler) -> int:
    """Feed the count 4 s of a tenth of the rate its ranges had, 10 ranges held; its count after."""
    at_once(scheduler)  # where the plan stands: the count is told whether it is ending
    count, now = scheduler.count, time.monotonic()
    count._reference = Window(80 * MIB, 10)
    count.held(now, 10, 0)
    for i in range(1, 41):
        count.arrived(now + i / 10, 8 * MIB // 10)
    return count.allowed


def test_in_the_last_stretch_of_a_capped_link_more_ranges_may_be_held_than_the_count() -> None:
    # Much left: requests are long, a round trip is noise, the count is what may be held.
    assert at_once(capped_link_scheduler(size=1 << 30)) == 10
    # 4 MiB left over 10 connections: 256 KiB requests, 31 ms of data and a 20 ms round trip each.
    ending = capped_link_scheduler(size=4 * MIB)
    assert at_once(ending) == math.ceil(10 * (0.03125 + 0.02) / 0.03125) == 17
    # The count itself is unchanged, and judges no window meanwhile: there the rate falls as the
    # work runs out, which in the middle of the plan would read as the cap dropping.
    assert ending.count.allowed == 10
    assert slow_windows(ending) == 10
    assert slow_windows(capped_link_scheduler(size=1 << 30)) > 10
    # Never above twice the count (100 ms away, the round trip is three times the data), nor the ceiling.
    assert at_once(capped_link_scheduler(size=MIB, allowed=4, rtt=0.1)) == 8
    assert at_once(capped_link_scheduler(size=4 * MIB, ceiling=12)) == 12
    # A link one connection fills never saw a step add throughput: its tail stays on the count.
    assert at_once(capped_link_scheduler(size=4 * MIB, allowed=4, scaled=False)) == 4
    # Nor while the count is still growing: it must find its level first.
    growing = capped_link_scheduler(size=4 * MIB)
    growing.count.phase = Phase.GROW
    assert at_once(growing) == 10
    # A 429 halves the count, and the tail adds nothing back while the server's cooldown lasts.
    refused = capped_link_scheduler(size=4 * MIB, allowed=16)
    assert at_once(refused) == 27
    assert refused.count.refused(time.monotonic(), 429)
    refused.count._best = 8 * MIB  # measured again a window later, as the run would
    assert refused.count.allowed == 8 and at_once(refused) == 8
