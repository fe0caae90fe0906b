"""Share one budget of connections across every file of a plan.

Connections take whole files, largest first, while files remain; a connection that would
otherwise idle while bytes remain takes over everything after the request in flight of
the range with the most bytes not yet asked for. That is how one 30 GB file and three
small ones fill a link whose CDN caps each connection. Ranges never get smaller than a
minimum that grows with the file, so a huge file becomes hundreds of requests, not
thousands; only the plan's last stretch is split finer (`smallest_takeover`), so that the
connections finish together. A file whose server ignores `Range` is never split.

A range is fetched as a series of requests (spans) that shrink as the plan nears its end.
A takeover only ever claims bytes no request has asked for yet, so no byte the server has
already pushed into a socket is wasted; and short spans at the end keep the last seconds
balanced across connections. Requests stop on 64 KiB boundaries and never leave a tail too
small to take over: either would cost a round trip of its own at the very end. Because the
victim keeps only its request in flight and the helper continues from there (they
leapfrog), the ranges of a file finish in file order: its contiguous prefix, all a
streaming hash can read, trails the last byte by a few spans instead of by most of the
file (as it did when helpers took the upper half of a range).

Helping pays only when the network, not this process, sets the rate. On a CDN that caps
each connection the client idles most of the time (~0.2 of a core at 64 MiB/s here) and
a helper adds a connection's worth of throughput; on loopback or a fast LAN receiving,
writing and hashing keep a core busy (>1.0 here), a helper only adds contention, and
splitting made a 2 GiB download 1.7x slower. So helpers wait for the first CPU sample
(0.03 s after the first byte: until then a capped link runs at the few whole-file
connections' rate) and join only while the process uses under `CPU_BOUND` of a core; while
it uses more, requests are long, since no one will take them over. Once the connection count
(`wanmodels.adaptive`) has seen a step add throughput, connections, not this process, set the
rate, and helpers join whatever the CPU share. With an adapting count a request lasts about
`SPAN_SECONDS` at the rate one connection gets (each a little more or less, `stagger`, so that
connections do not all pay their next round trip at once), and a connection the count sheds
is free soon. In the plan's last stretch, where requests are short and their round trips a
large share of each connection's time, a capped link may hold more ranges than the count
(`Scheduler._allowed`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from wanmodels.planning.plan import PlannedFile
from wanmodels.store.partial import Extent
from wanmodels.transfer.adaptive import ConnectionCount

_log = logging.getLogger("wanmodels.connections")

MIN_SEGMENT: Final = 1 << 20
MAX_SEGMENTS: Final = 256  # per file: above MIN_SEGMENT * this, ranges grow with the file
END_SEGMENT: Final = 256 << 10  # the plan's last bytes may be split this finely
MAX_SPAN: Final = 256 << 20
_ALIGN: Final = 64 << 10
# Above this much of one core's time per second, this process (receiving, writing, hashing),
# not the link, sets the rate: another connection would add contention, not throughput.
CPU_BOUND: Final = 0.7
_SAMPLE: Final = 0.25  # seconds of wall time per CPU sample
_FIRST: Final = 0.03  # the first sample, from the first byte: helpers wait for it
# Once the rate of one connection is measured, a request lasts about this long (or this many
# round trips, if more): each costs a round trip of idle, and a shed connection stops at its end.
SPAN_SECONDS: Final = 1.0
SPAN_RTTS: Final = 50
_GOLDEN: Final = 0.6180339887498949
# The plan's last requests last about this long at the measured rate of one connection (never
# under 64 KiB, never over END_SEGMENT): the last of them is the run's tail.
END_SECONDS: Final = 0.2
# In the plan's last stretch a request may carry so little that its round trip is a large share
# of a connection's time; from this ratio of (data + round trip) to data, more connections join.
TAIL_IDLE: Final = 1.25


def min_segment(size: int) -> int:
    """The smallest range worth its own connection for a file of `size` bytes."""
    return max(MIN_SEGMENT, size // MAX_SEGMENTS)


def smallest_takeover(size: int, left: int, connections: int, floor: int = END_SEGMENT) -> int:
    """The fewest bytes an idle connection takes over, with `left` bytes of the plan to arrive.

    The file's minimum segment while much is left; in the plan's last stretch a half-share
    per connection, down to `floor` (`END_SEGMENT`, less for a slow connection). Otherwise the
    last connections would each stream a whole minimum segment (seconds, for a 30 GB file)
    while the rest of the link idles.
    """
    share = left // max(1, 2 * connections)
    return max(floor, min(min_segment(size), share))


def stagger(k: int) -> float:
    """The `k`-th request's share of the usual span, between 0.5 and 1.5 and 1.0 on average.

    Requests sized alike end alike: connections that took theirs at once (after a step of the
    count) would all pay the round trip to their next at once, and for that moment the link
    idles however many connections there are. The golden-ratio sequence spreads any run of
    consecutive requests evenly over the range, with no randomness a test cannot repeat.
    """
    return 0.5 + (k * _GOLDEN) % 1.0


def request_span(
    size: int, left: int, connections: int, longest: int = MAX_SPAN, floor: int = END_SEGMENT
) -> int:
    """How much one request asks for, with `left` bytes of the plan still to arrive.

    Large while much is left (a round trip per few seconds of transfer is noise), about a
    half-share per connection towards the end (so an idle connection can take over a
    tail), at most `longest`, never below what a takeover may claim.
    """
    share = left // max(1, 2 * connections)
    return max(smallest_takeover(size, left, connections, floor), min(longest, share))


class CpuShare:
    """This process's CPU seconds per wall second, sampled as bytes arrive.

    High (loopback, a fast LAN): the client itself (receiving, writing, hashing) is the
    bottleneck, and a helper connection would only add contention. Low (a CDN that caps each
    connection): the network sets the rate, and a helper adds a connection's worth. Until the
    first sample, taken `_FIRST` after the first byte, nothing is known and nobody helps.
    `limit=None` never counts as busy (helpers always allowed).
    """

    def __init__(self, limit: float | None = CPU_BOUND) -> None:
        self.limit = limit
        self._at: float | None = None
        self._used = 0.0
        self.share: float | None = None

    def tick(self, arrived: bool = True) -> bool:
        """Note that bytes arrived (or, with False, that a connection is idle); True when a
        new sample was taken. The clock starts at the first byte."""
        now = time.monotonic()
        if self._at is None:
            if arrived:
                self._at, self._used = now, time.process_time()
            return False
        if now - self._at < (_SAMPLE if self.share is not None else _FIRST):
            return False
        used = time.process_time()
        sample = (used - self._used) / (now - self._at)
        # Smoothed over about half a second: placing a file is a short burst of hashing and
        # fsync, which must not read as a saturated client.
        self.share = sample if self.share is None else (self.share + sample) / 2
        self._at, self._used = now, used
        return True

    @property
    def saturated(self) -> bool:
        """Measured busy: helping does not pay."""
        return self.limit is not None and self.share is not None and self.share >= self.limit

    @property
    def busy(self) -> bool:
        """Not known to have room: no helpers now."""
        return self.limit is not None and (self.share is None or self.share >= self.limit)


class Released(Enum):
    """What a worker must do after its range stopped."""

    BUSY = "busy"  # other ranges of the file are still going: nothing
    FINISH = "finish"  # the last byte is in: hash and place the file
    FAILED = "failed"  # the file failed and nothing of it is in flight any more: report it


@dataclass(eq=False)
class Range:
    """Bytes `[pos, end)` of one file, streamed by one connection; `end` may shrink under it."""

    job: FileJob
    pos: int
    end: int
    flowing: bool = False  # bytes are arriving on the current request
    failing: bool = False  # its last request failed: helpers would only fail too
    asked: int = 0  # where the current request stops: bytes before it are spoken for
    requested: float | None = None  # when its first request went out (monotonic)
    heard: bool = False  # some byte of it arrived
    shed: bool = False  # it stops at its request's end: the connection count went down


@dataclass(eq=False)
class FileJob:
    """One file in flight: its part, the ranges still unassigned and those being streamed."""

    item: PlannedFile
    pending: deque[Extent] = field(default_factory=deque)
    active: list[Range] = field(default_factory=list)
    single: bool = False  # never split: the server ignores Range, or splitting is off
    flowed: bool = False  # some range of it received bytes: its server answers ranges
    error: BaseException | None = None
    finishing: bool = False
    reported: bool = False  # a failed job's outcome has been handed out

    @property
    def idle(self) -> bool:
        return not self.pending and not self.active


class Scheduler:
    """Hands out ranges to connection workers; every method is thread-safe.

    `open_job` opens a file's part the first time the file is scheduled and returns the
    ranges still missing; it runs under the scheduler's lock, so it must be quick. If it
    raises, the file is dropped: reporting that failure is `open_job`'s business.

    `connections` is the ceiling: with `adapt`, a `ConnectionCount` decides how many of the
    workers may hold a range at a time, and the others wait at a gate of their own (so the
    events that wake idle connections do not wake them too).
    """

    def __init__(
        self,
        items: Iterable[PlannedFile],
        open_job: Callable[[FileJob], list[Extent]],
        *,
        split: bool = True,
        connections: int = 1,
        adapt: bool = True,
        cpu: CpuShare | None = None,
    ) -> None:
        mutex = threading.Lock()
        self._lock = threading.Condition(mutex)  # idle connections wait here for work
        self._gate = threading.Condition(mutex)  # connections beyond the count wait here
        items = list(items)
        self._unstarted: deque[FileJob] = deque(FileJob(item) for item in items)
        self._left = sum(item.to_fetch for item in items)
        self._jobs: list[FileJob] = []
        self._open_job = open_job
        self._split = split
        self._cpu = cpu or CpuShare()
        self._closed = False
        self._held = 0  # ranges handed out and not yet released
        self._silent = 0  # ... of which no byte has arrived yet
        self._shedding = 0  # ... of which are stopping because the count went down
        self._requests = 0  # requests sized by the rate of one connection, for `stagger`
        self.count = ConnectionCount(
            connections, adapt=adapt and split, busy=lambda: self._cpu.saturated, now=time.monotonic()
        )

    def next(self) -> Range | None:
        """The next range to stream; blocks while others may still free some work, or while the
        connection count is reached; None when done."""
        with self._lock:
            while True:
                if self._closed:
                    return None
                self._cpu.tick(arrived=False)  # a stalled link must not hide that helping pays
                if self.count.tick(time.monotonic()):
                    self._gate.notify_all()
                if self._held >= self._allowed():
                    if self._done():
                        return None
                    self._gate.wait(_SAMPLE)
                    continue
                rng = self._pending() or self._start() or self._steal()
                if rng is not None:
                    return rng
                if self._done():
                    return None
                self._lock.wait(_SAMPLE)  # also re-checks whether helping pays now

    def _done(self) -> bool:
        return not self._unstarted and not any(j.active or j.finishing for j in self._jobs)

    def _pending(self) -> Range | None:
        for job in self._jobs:
            if job.pending and job.error is None and not job.finishing:
                start, end = job.pending.popleft()
                return self._activate(job, start, end)
        return None

    def _start(self) -> Range | None:
        while self._unstarted:
            job = self._unstarted.popleft()
            job.single = job.single or not self._split
            self._jobs.append(job)
            try:
                job.pending.extend(self._open_job(job))
            except Exception as err:  # `open_job` reports it as this file's failure
                job.error = err
                self._jobs.remove(job)
                continue
            if job.pending:
                start, end = job.pending.popleft()
                return self._activate(job, start, end)
            # Every byte is on disk already: an empty range lets its worker hash and place it.
            return self._activate(job, job.item.size, job.item.size)
        return None

    def _steal(self) -> Range | None:
        if not self._split or (self._cpu.busy and not self.count.scaled):
            return None
        best: tuple[int, Range, int] | None = None
        for job in self._jobs:
            if job.single or job.error is not None:
                continue
            if not job.flowed:
                continue  # no byte has come yet: the server may be failing, helpers would too
            for rng in job.active:
                # Only a range with a request in flight, and not failing, gets a helper.
                if rng.failing or rng.asked <= rng.pos:
                    continue
                # Everything after the request in flight: the victim stops there, so ranges
                # finish in file order and the prefix hash keeps up with the last byte.
                cut = max(rng.asked, rng.pos)
                cut += -cut % _ALIGN
                taken = rng.end - cut
                least = smallest_takeover(job.item.size, self._left, self.count.allowed, self._floor())
                if taken >= least and (best is None or taken > best[0]):
                    best = (taken, rng, cut)
        if best is None:
            return None
        _, victim, cut = best
        old_end, victim.end = victim.end, cut
        return self._activate(victim.job, cut, old_end)

    def _activate(self, job: FileJob, start: int, end: int) -> Range:
        rng = Range(job, start, end)
        job.active.append(rng)
        self._held += 1
        self._silent += 1
        self.count.held(time.monotonic(), self._held, self._silent)
        return rng

    def _longest(self) -> int:
        """The longest request worth making: about `SPAN_SECONDS` at the rate one connection
        gets now; before that is known, a half-share of the plan over the ceiling (with a fixed
        count, `MAX_SPAN`: the count will not grow under a request)."""
        if not self.count.adapting:
            return MAX_SPAN
        rate = self.count.share
        if rate is None:
            return max(END_SEGMENT, self._left // (2 * self.count.ceiling))
        self._requests += 1
        seconds = max(SPAN_SECONDS, SPAN_RTTS * self.count.rtt) * stagger(self._requests)
        return min(MAX_SPAN, int(rate * seconds))

    def _allowed(self) -> int:
        """How many ranges may be held now: the count's, and more in the plan's last stretch when a
        cap per connection sets the rate (`scaled`). Requests there shrink to half-shares, each
        costs its connection a round trip of idle, and the count that filled the link with long
        requests leaves it part empty: enough more join to make up that idle, at most twice the
        count. An uncapped link is never `scaled`, so its tail stays on the few connections that
        fill it. None are added while the count is still growing (on a slow link far away a
        small plan looks like a last stretch from its start, and the count must still find its
        level), nor while a 429 or 503 is recent. The count is told when the stretch begins and
        ends (a window there would read the work running out as a drop of the rate), and the
        connections waiting at the gate are woken when it begins."""
        count, now = self.count, time.monotonic()
        allowed, rate = count.allowed, count.per_connection
        more = allowed
        if count.scaled and count.settled and rate is not None and not count.cooling(now):
            busy = max(self._floor(), self._left // (2 * allowed)) / rate  # seconds of data per request
            idle = (busy + count.rtt) / busy
            if idle >= TAIL_IDLE:
                more = min(count.ceiling, 2 * allowed, math.ceil(allowed * idle))
        if count.ending(now, more > allowed) and more > allowed:
            _log.debug("last stretch: up to %d ranges at once (the count is %d)", more, allowed)
            self._gate.notify_all()
        return more

    def _floor(self) -> int:
        """The smallest request or takeover at the plan's end: `END_SECONDS` of one connection."""
        rate = self.count.per_connection
        if rate is None:
            return END_SEGMENT
        return max(_ALIGN, min(END_SEGMENT, int(rate * END_SECONDS) // _ALIGN * _ALIGN))

    # -- what workers report -------------------------------------------------------------------

    def request(self, rng: Range) -> int:
        """Where the next request for `rng` should stop; bytes before it are no longer up for takeover."""
        with self._lock:
            if rng.requested is None:
                rng.requested = time.monotonic()
            if self._shed(rng):
                return rng.pos
            connections, floor = self.count.allowed, self._floor()
            if rng.job.single:
                stop = rng.end
            else:
                if self._cpu.saturated and not self.count.scaled:
                    # No helper is coming: few, long requests; but no longer than a connection
                    # carries in `SPAN_SECONDS` (when adapting, the count may still grow, and a
                    # capped connection would stream alone for minutes).
                    span = self._longest()
                else:
                    span = request_span(rng.job.item.size, self._left, connections, self._longest(), floor)
                # Stops on a boundary, where a takeover cuts (spans exceed `_ALIGN`): no sliver
                # left between the two costs a request of its own.
                stop = min(rng.end, (rng.pos + span) // _ALIGN * _ALIGN)
                if rng.end - stop < smallest_takeover(rng.job.item.size, self._left, connections, floor):
                    stop = rng.end  # a remainder too small to take over would cost its own request
            rng.asked = stop
            self._lock.notify_all()  # what lies beyond `stop` is now up for takeover
            return stop

    def _shed(self, rng: Range) -> bool:
        """Stop `rng` here when more ranges are held than the count allows: what is left of it
        goes back to pending, for the next connection that is free."""
        if self._held - self._shedding <= self._allowed() or rng.job.single or rng.pos >= rng.end:
            return False
        rng.job.pending.appendleft((rng.pos, rng.end))
        rng.end = rng.asked = rng.pos
        rng.shed = True
        self._shedding += 1
        return True

    def advance(self, rng: Range, nbytes: int) -> int:
        """Move `rng` on by `nbytes` just written; returns how many of them were still wanted."""
        with self._lock:
            wanted = max(0, min(nbytes, rng.end - rng.pos))
            rng.pos += wanted
            self._left -= wanted
            if self._cpu.tick():
                self._lock.notify_all()  # idle connections: helping may pay now
            if self.count.arrived(time.monotonic(), wanted):
                self._gate.notify_all()
            return wanted

    def flowing(self, rng: Range, flowing: bool = True, *, status: int | None = None) -> None:
        """Bytes are arriving on `rng` (or, with False, its request failed, answered `status` if
        it was answered): idle connections may split it; a 429 or 503 lowers the count."""
        if rng.flowing == flowing and rng.failing != flowing and status is None:
            return
        with self._lock:
            rng.flowing = flowing
            rng.failing = not flowing
            now = time.monotonic()
            if flowing:
                rng.job.flowed = True
                if not rng.heard:
                    rng.heard = True
                    self._silent -= 1
                    self.count.first_byte(now - (rng.requested or now), self._silent)
                self._lock.notify_all()
            elif self.count.refused(now, status):
                self._gate.notify_all()

    def limit(self, rng: Range) -> int:
        """Where `rng` currently ends (another connection may have taken its tail).

        Read without the lock (asked for per chunk: 64 connections queued on it): `end` only
        ever moves closer, under the lock, and `advance` never lets `pos` pass it."""
        return rng.end

    def release(self, rng: Range) -> Released:
        """`rng` stopped (done, failed or cut short); unfinished bytes go back to pending.

        Returns FINISH exactly once, to the caller that must hash and place the file, and
        FAILED exactly once, to the caller that must report a failed file now idle.
        """
        with self._lock:
            job = rng.job
            if rng in job.active:
                job.active.remove(rng)
                self._held -= 1
                self._silent -= int(not rng.heard)
                self._shedding -= int(rng.shed)
                self.count.held(time.monotonic(), self._held, self._silent)
                self._gate.notify()
            if rng.pos < rng.end and job.error is None:
                job.pending.appendleft((rng.pos, rng.end))
            self._lock.notify_all()
            if not job.idle:
                return Released.BUSY
            if job.error is not None:
                if job.reported:
                    return Released.BUSY
                job.reported = True
                self._drop(job)
                return Released.FAILED
            if job.finishing:
                return Released.BUSY
            job.finishing = True
            return Released.FINISH

    def fail(self, job: FileJob, err: BaseException) -> None:
        """Give up on a file: its other ranges stop at their next chunk, its part is kept."""
        with self._lock:
            if job.error is None:
                job.error = err
            job.pending.clear()
            for rng in job.active:
                rng.end = rng.pos
            self._lock.notify_all()

    def single_stream(self, job: FileJob, rng: Range) -> None:
        """The server ignored `Range`: this file continues as one stream from byte 0 on `rng`."""
        with self._lock:
            # Every byte comes again, those resumed or received on other ranges too: `left` now
            # counts the whole file instead of what it still counted of it.
            counted = sum(end - start for start, end in job.pending)
            counted += sum(max(0, other.end - other.pos) for other in job.active)
            self._left += job.item.size - counted
            job.single = True
            job.pending.clear()
            for other in job.active:
                if other is not rng:
                    other.end = other.pos
            rng.pos = 0
            rng.end = rng.asked = job.item.size
            self._lock.notify_all()

    def restart(self, job: FileJob) -> None:
        """Fetch the whole file again (its bytes failed the digest check once)."""
        with self._lock:
            self._left += job.item.size  # every byte comes again: spans size themselves on that
            job.finishing = False
            job.pending.clear()
            job.pending.append((0, job.item.size))
            self._lock.notify_all()

    def finished(self, job: FileJob) -> None:
        """The file is placed or has failed for good."""
        with self._lock:
            self._drop(job)

    def _drop(self, job: FileJob) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        self._lock.notify_all()
        self._gate.notify_all()

    def close(self) -> None:
        """Stop handing out work (Ctrl-C)."""

        with self._lock:
            self._closed = True
            self._lock.notify_all()
            self._gate.notify_all()
