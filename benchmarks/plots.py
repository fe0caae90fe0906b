"""One picture per link case: connections open and throughput over one run, from the server's log.

Drawn with matplotlib from `benchmarks/.tools` (`tools.find_matplotlib`), never a project dependency.
A request's bytes are taken as spread evenly over its life after the round trip (what the log can
say); connections open are the requests being answered at each moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.support.hubserver import RequestRecord

from benchmarks.harness import MIB


def open_over_time(gets: Sequence[RequestRecord], t0: float) -> tuple[list[float], list[int]]:
    """Step points (time since `t0`, requests being answered from then on)."""
    events = sorted([(r.started - t0, 1) for r in gets] + [(r.sending_until - t0, -1) for r in gets])
    times, counts, now = [0.0], [0], 0
    for at, step in events:
        now += step
        times.append(at)
        counts.append(now)
    return times, counts


def rate_over_time(
    gets: Sequence[RequestRecord], t0: float, end: float, rtt: float, slot: float = 0.05
) -> tuple[list[float], list[float]]:
    """Slot midpoints and MiB/s delivered in each slot."""
    n = max(1, int(end / slot) + 1)
    sent = [0.0] * n
    for r in gets:
        a, b = r.started - t0 + min(rtt, r.elapsed / 2), r.sending_until - t0
        rate = r.bytes_sent / max(b - a, 1e-9)
        for i in range(max(0, int(a / slot)), min(n, int(b / slot) + 1)):
            lo, hi = max(a, i * slot), min(b, (i + 1) * slot)
            if hi > lo:
                sent[i] += rate * (hi - lo)
    return [(i + 0.5) * slot for i in range(n)], [s / slot / MIB for s in sent]


def draw(
    path: Path,
    title: str,
    gets: Sequence[RequestRecord],
    t0: float,
    seconds: float,
    link: float,
    rtt: float,
    marks: Sequence[tuple[float, str]] = (),
) -> None:
    """Write a PNG: requests open (steps, left axis) and MiB/s (right axis) against seconds since spawn."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    fig, left = plt.subplots(figsize=(8, 3.2), dpi=100)
    times, counts = open_over_time(gets, t0)
    left.step(times, counts, where="post", color="tab:blue", linewidth=1.2, label="connections open")
    left.set_xlabel("seconds since start")
    left.set_ylabel("connections open", color="tab:blue")
    left.set_ylim(0, max(8, max(counts) * 1.15))
    left.set_xlim(0, seconds)
    right = left.twinx()
    mids, rates = rate_over_time(gets, t0, seconds, rtt)
    right.plot(mids, rates, color="tab:orange", linewidth=1.0, label="MiB/s (server log)")
    right.axhline(link / MIB, color="tab:orange", linestyle=":", linewidth=0.8)
    right.set_ylabel("MiB/s", color="tab:orange")
    right.set_ylim(0, link / MIB * 1.3)
    for at, text in marks:
        left.axvline(at, color="grey", linestyle="--", linewidth=0.8)
        left.annotate(
            text,
            (at, left.get_ylim()[1] * 0.92),
            fontsize=8,
            color="grey",
            xytext=(3, 0),
            textcoords="offset points",
        )
    left.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
