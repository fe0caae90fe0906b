"""Cases 11-16: how many connections wanmodels opens on links of five shapes, how well they fill them,
and what a GiB costs in CPU on a static server fast enough not to be the limit.

Cases 11-15 run the ComfyUI stack of case 8 (240 MiB at full scale, 20 ms round trip, 302 to a CDN
origin, a 64 MiB/s link) with each connection capped at 1/8, 1/32 or 1/64 of the link, uncapped,
and at 1/16 dropping to 1/32 halfway through. Each: wanmodels with no flags against the link limit
and `aria2c -x16`; peak concurrent file requests from the server's log (its start and end times),
peak RSS, CPU core-seconds per GiB (user + system from wait4; start-up included), and one picture
(connections open and throughput over the median run).

Case 16 serves the same stack at 10x the bytes from nginx (`benchmarks.static`; the test Hub lists,
resolves and redirects to it), unshaped on loopback: core-seconds per GiB of wanmodels (sha256 and
fsync included), aria2c -x16 (no hash), curl one file after another, and sha256sum of the files.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.hubserver import HubServer, peak_in_flight

from benchmarks import fixtures, plots
from benchmarks.cases.cdn_stack import (
    LINK,
    RTT,
    Stack,
    WmRun,
    aria2c_once,
    file_gets,
    run_wanmodels,
    stack_on,
)
from benchmarks.harness import MIB, Bench, Row, alive, clean_env, fresh_dir, not_run, yes_no
from benchmarks.static import Nginx, by_sha256

GIB = 1 << 30
CPU_SCALE = 10  # case 16 moves this many times the stack's bytes: start-up weighs little


@dataclass(frozen=True)
class Shape:
    number: int
    name: str
    share: float | None  # each connection's cap as a share of the link; None = uncapped
    then: float | None = None  # the share from halfway through the run
    limit: float | None = None  # target: time / link limit
    vs_aria2c: float | None = None  # target: time / aria2c -x16's
    most: int = 64  # target: peak connections
    fixed: int | None = None  # also run this fixed count (the default before adapting), in turns

    @property
    def label(self) -> str:
        return f"{self.number}. {self.name}"


SHAPES = (
    Shape(11, "1/8 of the link per connection", 1 / 8, limit=1.10, fixed=16),
    Shape(12, "1/32 of the link per connection", 1 / 32, limit=1.2, vs_aria2c=0.75),
    Shape(13, "1/64 of the link per connection", 1 / 64, limit=1.3),
    Shape(14, "uncapped link", None, limit=1.2, most=6),
    Shape(15, "1/16 per connection, 1/32 from halfway", 1 / 16, then=1 / 32),
)
CPU_ROWS = (
    "16. CPU per GiB, nginx on loopback: wanmodels / aria2c -x16",
    "16. CPU per GiB, nginx on loopback: curl, sha256sum (peer figures)",
)
ROWS = (*(s.label for s in SHAPES), *CPU_ROWS)
RSS_TARGET = 100e6


def core_s_per_gib(cpu: float, nbytes: int) -> float:
    return cpu / (nbytes / GIB)


def degrade_at(srv: HubServer, seconds: float, rate: float) -> Callable[[subprocess.Popen[bytes]], None]:
    """An `on_start` that sets the server's per-connection cap to `rate` `seconds` after spawn."""

    def watch(proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and alive(proc.pid):
            time.sleep(0.005)
        srv.conn_rate = rate

    return watch


def case_links(
    b: Bench, stack: Stack, repeat: int, aria2c: Path | None, why: str, pictures: Path | None
) -> list[Row]:
    """Cases 11-15 on `b.srv` (the shaped Hub of case 8, its per-connection cap changed per case)."""
    rows = []
    base = b.srv.conn_rate
    try:
        for shape in SHAPES:
            try:
                rows.append(one_shape(b, stack, shape, repeat, aria2c, why, pictures))
            except Exception as exc:  # one case failing leaves the others
                rows.append(not_run(shape.label, f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        b.srv.conn_rate = base
    return rows


def one_shape(
    b: Bench, stack: Stack, shape: Shape, repeat: int, aria2c: Path | None, why: str, pictures: Path | None
) -> Row:
    rate = None if shape.share is None else LINK * shape.share
    halfway = 0.3 + stack.limit / 2  # start-up, then half the link time
    runs: list[WmRun] = []
    fixed: list[float] = []
    # The fixed count takes turns with the adaptive runs, first every other turn: the machine
    # drifts by a percent or so within a run. Only on a steady cap (`degrade_at` is not rerun).
    assert shape.fixed is None or shape.then is None, shape
    for turn in range(repeat):
        if shape.fixed is not None and turn % 2:
            fixed.append(fixed_run(b, stack, shape, rate))
        b.srv.conn_rate = rate
        on_start = degrade_at(b.srv, halfway, LINK * shape.then) if shape.then else None
        done = run_wanmodels(b, f"wanmodels download (link case {shape.number})", on_start=on_start)
        stack.check(done.root, "wanmodels")
        shutil.rmtree(done.root)
        runs.append(done)
        if shape.fixed is not None and not turn % 2:
            fixed.append(fixed_run(b, stack, shape, rate))
    peers: list[WmRun] = []
    if aria2c is not None:
        for _ in range(repeat):
            b.srv.conn_rate = rate
            on_start = degrade_at(b.srv, halfway, LINK * shape.then) if shape.then else None
            theirs = aria2c_once(b, stack, aria2c, on_start=on_start)
            shutil.rmtree(theirs.root)
            peers.append(theirs)
    b.srv.conn_rate = rate
    times = [r.run.seconds for r in runs]
    peaks = [peak_in_flight(file_gets(r.records)) for r in runs]
    rss = max(r.run.maxrss_kib for r in runs) * 1024
    cpu = min(core_s_per_gib(r.run.cpu, stack.total) for r in runs)
    ratio = min(times) / stack.limit
    mine = (
        f"min {min(times):.3f} s, median {statistics.median(times):.3f} s; peak {max(peaks)} connections "
        f"(runs: {', '.join(map(str, peaks))}); peak RSS {rss / MIB:.1f} MiB; {cpu:.2f} core-s/GiB"
    )
    ok = max(peaks) <= shape.most and rss <= RSS_TARGET
    targets = [f"≤ {shape.most} connections", "RSS ≤ 100 MB"]
    ratios = [f"{ratio:.3f}× limit ({stack.limit:.3f} s)"]
    if fixed:
        mine += (
            f"; a fixed {shape.fixed} (`--no-adapt`) in turns: min {min(fixed):.3f} s "
            f"({min(fixed) / stack.limit:.3f}× limit)"
        )
        ratios.append(f"{min(times) / min(fixed):.3f}× the fixed {shape.fixed}")
    if shape.limit is not None:
        targets.insert(0, f"≤ {shape.limit}× limit")
        ok = ok and ratio <= shape.limit
    if shape.then is not None:
        early, late = split_peaks(runs, halfway)
        mine += f"; most connections before/after the cap halved: {early}/{late}"
        targets.append("more after the drop")
        ok = ok and late > early
    if peers:
        peer_times = [p.run.seconds for p in peers]
        peer_peaks = [peak_in_flight(file_gets(p.records)) for p in peers]
        peer_cpu = min(core_s_per_gib(p.run.cpu, stack.total) for p in peers)
        vs = min(times) / min(peer_times)
        ratios.append(f"{vs:.3f}× aria2c")
        peer = (
            f"aria2c -x16: min {min(peer_times):.3f} s; peak {max(peer_peaks)} connections; "
            f"{peer_cpu:.2f} core-s/GiB"
        )
        if shape.vs_aria2c is not None:
            targets.append(f"≤ {shape.vs_aria2c}× aria2c")
            ok = ok and vs <= shape.vs_aria2c
    else:
        peer = f"aria2c: {why}"
        if shape.vs_aria2c is not None:
            targets.append(f"≤ {shape.vs_aria2c}× aria2c (no aria2c)")
            ok = False
    if pictures is not None:
        picture(pictures, shape, runs, stack, halfway)
    return Row(shape.label, mine, peer, "; ".join(ratios), ", ".join(targets), yes_no(ok))


def fixed_run(b: Bench, stack: Stack, shape: Shape, rate: float | None) -> float:
    """Seconds of one `--workers N --no-adapt` download on the case's link (N = `shape.fixed`)."""
    b.srv.conn_rate = rate
    label = f"wanmodels download (link case {shape.number}, fixed count)"
    done = run_wanmodels(b, label, "--workers", str(shape.fixed), "--no-adapt")
    stack.check(done.root, "wanmodels")
    shutil.rmtree(done.root)
    return done.run.seconds


def split_peaks(runs: list[WmRun], halfway: float) -> tuple[int, int]:
    """The most file requests at once in the second before the cap halved (settled: the ramp's
    overshoot is over) and from half a second after it, over the runs."""
    early = late = 0
    for r in runs:
        gets = file_gets(r.records)
        cut = r.run.started + halfway
        early = max(early, peak_in_flight([g for g in gets if cut - 1.0 <= g.started < cut]))
        late = max(late, peak_in_flight([g for g in gets if g.started >= cut + 0.5]))
    return early, late


def picture(folder: Path, shape: Shape, runs: list[WmRun], stack: Stack, halfway: float) -> None:
    """The median run's picture, `folder/link-<case>.png`."""
    ordered = sorted(runs, key=lambda r: r.run.seconds)
    done = ordered[len(ordered) // 2]
    marks = [(halfway, "cap halves")] if shape.then else []
    title = (
        f"case {shape.number}: {shape.name}; wanmodels {done.run.seconds:.2f} s, "
        f"link limit {stack.limit:.2f} s"
    )
    gets = file_gets(done.records)
    plots.draw(
        folder / f"link-{shape.number}.png", title, gets, done.run.started, done.run.seconds, LINK, RTT, marks
    )


# -- case 16: CPU per GiB against a fast static server -------------------------------------------------------


def case_cpu(
    tmp: Path, divisor: float, repeat: int, aria2c: Path | None, why: str, nginx: str | None, nginx_why: str
) -> tuple[list[Row], dict[str, str], str]:
    """Case 16: rows, the commands run, a line for the report's header."""
    if nginx is None:
        return [not_run(c, nginx_why) for c in CPU_ROWS], {}, "case 16: not run"
    files = fixtures.build_comfy(tmp / "fixtures-cpu", divisor / CPU_SCALE)
    by_sha256(files, tmp / "static")
    with Nginx(nginx, tmp / "static", tmp / "nginx") as web, HubServer(cdn=True, cdn_origin=web.url) as srv:
        stack = stack_on(srv, files)
        b = Bench(srv, tmp, clean_env(srv, tmp))
        mine, peer = [], []
        # Turn about, so the machine's drift over the case falls on both tools alike (`Bench.run`
        # syncs before each run).
        for _ in range(repeat):
            done = run_wanmodels(b, "wanmodels download (case 16, nginx)")
            stack.check(done.root, "wanmodels")
            shutil.rmtree(done.root)
            mine.append(done.run)
            if aria2c is not None:
                done = aria2c_once(b, stack, aria2c)
                shutil.rmtree(done.root)
                peer.append(done.run)
        curls = [curl_cpu(b, stack) for _ in range(repeat)]
        hashed = [
            b.run("sha256sum (case 16)", ["sha256sum", *map(str, files_of(files, stack))]).cpu
            for _ in range(repeat)
        ]
        commands = dict(b.commands)
    total = stack.total
    ours = min(core_s_per_gib(r.cpu, total) for r in mine)
    fastest = min(r.seconds for r in mine)
    rss = max(r.maxrss_kib for r in mine) / 1024
    text = (
        f"{ours:.2f} core-s/GiB (min of {len(mine)}; {fastest:.3f} s, {total / fastest / MIB:.0f} MiB/s; "
        f"peak RSS {rss:.1f} MiB)"
    )
    if peer:
        theirs = min(core_s_per_gib(r.cpu, total) for r in peer)
        ratio = ours / theirs
        first = Row(
            CPU_ROWS[0],
            text,
            f"aria2c -x16: {theirs:.2f} core-s/GiB ({min(r.seconds for r in peer):.3f} s); hashes nothing",
            f"{ratio:.2f}× (min/min)",
            "≤ 1.2×",
            yes_no(ratio <= 1.2),
        )
    else:
        first = not_run(CPU_ROWS[0], f"aria2c: {why}")
    second = Row(
        CPU_ROWS[1],
        text,
        f"curl -L one file after another: {min(core_s_per_gib(c, total) for c in curls):.2f} core-s/GiB; "
        f"sha256sum of the files (page cache): {min(core_s_per_gib(h, total) for h in hashed):.2f} "
        "core-s/GiB",
        "—",
        "(report)",
        "—",
    )
    shutil.rmtree(tmp / "fixtures-cpu")
    shutil.rmtree(tmp / "static")
    line = f"case 16 (nginx on loopback): {total / MIB:,.1f} MiB in 4 files, unshaped"
    return [first, second], commands, line


def files_of(files: dict[str, Path | bytes], stack: Stack) -> list[Path]:
    return [p for name, p in files.items() if name in stack.sizes and isinstance(p, Path)]


def curl_cpu(b: Bench, stack: Stack) -> float:
    root = fresh_dir(b.tmp, "cpu-curl")
    cpu = 0.0
    for path, target in stack.targets.items():
        where = root / target
        where.parent.mkdir(parents=True, exist_ok=True)
        cpu += b.run("curl (case 16)", ["curl", "-sS", "-L", "-o", str(where), stack.url(b.srv, path)]).cpu
    stack.check(root, "curl")
    shutil.rmtree(root)
    return cpu
