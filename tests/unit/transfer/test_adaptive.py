"""The connection count on simulated links: a clock and a rate per count stand in for the network.

Each simulated link carries `min(count * per_connection, link)` bytes per second; the controller is
told the time, the bytes and the ranges held, exactly as the scheduler tells it. What is asserted
are the counts it settles on, never a duration, so these run in milliseconds and are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable

from wanmodels.transfer.adaptive import COOLDOWN, START, ConnectionCount, Phase

MIB = 1 << 20
LINK = 64 * MIB
STEP = 0.002  # simulated seconds per tick


class Link:
    """A simulated link driving one controller; `rate(count)` gives the bytes per second."""

    def __init__(self, count: ConnectionCount, rate: Callable[[int], float], rtt: float = 0.02) -> None:
        self.count = count
        self.rate = rate
        self.rtt = rtt
        self.now = 0.0
        self.seen: list[int] = []  # every count allowed, in order
        self._held = 0

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            allowed = self.count.allowed
            if allowed != self._held:
                grew = allowed > self._held
                self._held = allowed
                self.count.held(self.now, allowed, 0)
                if grew:  # the new ranges' first bytes, a round trip after their requests
                    self.count.first_byte(self.rtt, 0)
                self.seen.append(allowed)
            self.count.arrived(self.now, int(self.rate(allowed) * STEP))
            self.now += STEP


def capped(per_connection: float, link: float = LINK) -> Callable[[int], float]:
    return lambda n: min(n * per_connection, link)


def test_on_a_link_that_caps_each_connection_the_count_grows_until_the_link_is_full() -> None:
    for needed in (8, 32):
        link = Link(ConnectionCount(64), capped(LINK / needed))
        link.run(3.0)
        assert link.seen[0] == START and max(link.seen) > needed
        # Settled where the link is full, with a margin, far from the ceiling's 64 for 8.
        assert needed <= link.count.allowed <= needed * 1.5, (needed, link.seen)
        assert link.count.phase is Phase.HOLD


def test_where_one_connection_fills_the_link_at_most_six_are_ever_allowed() -> None:
    link = Link(ConnectionCount(64), capped(LINK))
    link.run(20.0)  # several probes
    assert max(link.seen) <= 6, link.seen
    assert link.count.allowed <= START


def test_the_count_never_exceeds_the_ceiling() -> None:
    link = Link(ConnectionCount(10), capped(LINK / 64))
    link.run(5.0)
    assert max(link.seen) == 10 and link.count.allowed == 10


def test_when_the_cap_per_connection_halves_mid_run_the_count_grows_again() -> None:
    cap = [LINK / 16]
    link = Link(ConnectionCount(64), lambda n: min(n * cap[0], LINK))
    link.run(3.0)
    before = link.count.allowed
    assert 16 <= before < 32
    cap[0] /= 2  # the CDN now gives each connection half as much
    link.run(3.0)
    assert link.count.allowed >= 32 > before, link.seen


def test_throughput_that_falls_as_connections_rise_undoes_the_step() -> None:
    # A server that slows everyone down once more than 6 connections hit it.
    link = Link(ConnectionCount(64), lambda n: min(n, 6) * 8 * MIB * (1.0 if n <= 6 else 0.5))
    link.run(5.0)
    assert link.count.allowed <= 6, link.seen


def test_a_429_or_503_halves_the_count_and_blocks_growth_for_a_while() -> None:
    link = Link(ConnectionCount(64), capped(LINK / 32))
    link.run(3.0)
    grown = link.count.allowed
    assert grown >= 32
    assert link.count.refused(link.now, 503)
    assert link.count.allowed == grown // 2
    assert not link.count.refused(link.now + 0.001, 503)  # the same burst of refusals counts once
    assert link.count.allowed == grown // 2
    link.run(COOLDOWN * 0.9)
    assert max(link.seen[-1:]) == grown // 2  # no growth while cooling down
    assert link.count.refused(link.now, 429)
    assert link.count.allowed == grown // 4
    link.run(COOLDOWN * 3)  # the link still caps each connection: the count grows back afterwards
    assert link.count.allowed > grown // 4
    assert not link.count.refused(link.now, 500)  # other statuses are retried, not a reason to shed


def test_no_growth_while_this_process_is_cpu_bound() -> None:
    link = Link(ConnectionCount(64, busy=lambda: True), capped(LINK / 32))
    link.run(5.0)
    assert link.seen == [START]


def test_a_fixed_count_is_the_ceiling_whatever_the_link_does() -> None:
    link = Link(ConnectionCount(12, adapt=False), capped(LINK))
    link.run(2.0)
    assert link.seen == [12]
    assert not link.count.refused(link.now, 503) and link.count.allowed == 12
    assert ConnectionCount(1).allowed == 1  # one connection: nothing to adapt
