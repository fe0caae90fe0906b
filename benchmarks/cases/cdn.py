"""Cases 8 and 9: the ComfyUI fp16 stack over a link shaped like the real Hub's CDN.

The server redirects every LFS resolve to a CDN origin (another host), caps each connection at
link / 8 and the whole link at `LINK`, and pays a 20 ms round trip before every response. The
stack is the `wan2.1-comfyui-fp16` preset's four files in their real proportions.

Figures taken from outside the process under test: wall time and peak RSS (wait4), bytes, ranges and
times of requests (the server's log), and when a file was placed (the ctime its rename set).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.hubserver import HubServer, RequestRecord

from benchmarks.fixtures import COMFY, COMFY_FILES, COMFY_PRESET
from benchmarks.harness import MIB, Bench, Row, Run, fmt_s, fresh_dir, hf, not_run, ratio_row, wm, yes_no
from benchmarks.partwatch import JournalWatch, kept_bytes, kill_when, peak_concurrency

LINK = 64 * MIB  # B/s, the client's whole downlink
CONNS = 8  # one connection carries LINK / CONNS
RTT = 0.02
WORKER_CHOICES = (4, 8, 16)
RATE_SECONDS = 3.0
KILL_ARGS = (
    "--workers",
    "16",
)  # --max-rate is set so the run lasts at least this long, at most half the link

ROWS = (
    "8. CDN link: wanmodels / link limit",
    "8. CDN link: wanmodels / aria2c",
    "8. CDN link: wanmodels / hf download",
    "8. CDN link: wanmodels / curl",
    "8. CDN link: tail latency (last byte → placed)",
    "8. CDN link: --max-rate accuracy",
    "8. CDN link: resume after SIGKILL at 50%",
    "8. CDN link: peak RSS, --workers 16",
    *(f"9. CDN link: --workers {n}" for n in WORKER_CHOICES),
)


def shaped_server() -> HubServer:
    return HubServer(cdn=True, conn_rate=LINK / CONNS, link_rate=LINK, rtt=RTT)


@dataclass
class Stack:
    """The fixture repo on the server: repo path -> size, and where the preset places each file."""

    commit: str
    sizes: dict[str, int]
    targets: dict[str, str] = field(default_factory=lambda: {p: t for p, (_, t) in COMFY_FILES.items()})

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    @property
    def largest(self) -> str:
        return max(self.sizes, key=lambda p: self.sizes[p])

    @property
    def limit(self) -> float:
        """Seconds the link needs for every byte: no tool can be faster."""
        return self.total / LINK

    def url(self, srv: HubServer, path: str) -> str:
        return f"{srv.url}/{COMFY}/resolve/{self.commit}/{path}"

    def check(self, root: Path, tool: str) -> None:
        """Every file is at its target with its size (wanmodels checks sha256 itself)."""
        for path, target in self.targets.items():
            where = root / target
            if not where.is_file() or where.stat().st_size != self.sizes[path]:
                raise RuntimeError(f"{tool} did not leave {target} ({self.sizes[path]:,} B) in {root}")


def file_gets(records: list[RequestRecord], path: str | None = None) -> list[RequestRecord]:
    """Answered GETs of file bytes (either origin; 302s excluded)."""
    return [
        r
        for r in records
        if r.method == "GET" and r.file is not None and r.status in (200, 206) and path in (None, r.file)
    ]


@dataclass
class WmRun:
    run: Run
    root: Path
    records: list[RequestRecord]


def run_wanmodels(
    b: Bench,
    label: str,
    *extra: str,
    check: bool = True,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    root: Path | None = None,
    wrap: Sequence[str] = (),
) -> WmRun:
    """`wanmodels download -m wan2.1-comfyui-fp16` into a fresh root; the server log of that run only.

    `wrap` goes before the command (e.g. a profiler that runs it).
    """
    root = root or fresh_dir(b.tmp, "cdn-wm")
    b.srv.wait_idle(10)
    b.srv.clear_log()
    argv = [*wrap, *wm("download", "--quiet", "-m", COMFY_PRESET, "--root", str(root), *extra)]
    r = b.run(label, argv, check=check, on_start=on_start)
    b.srv.wait_idle(10)
    return WmRun(r, root, b.srv.requests)


def tail_latency(stack: Stack, done: WmRun, mono_to_wall: float) -> dict[str, float]:
    """Per file: seconds from the end of its last GET (server clock) to its rename into place (ctime)."""
    out = {}
    for path, target in stack.targets.items():
        gets = file_gets(done.records, path)
        if not gets:
            continue
        last_byte = max(r.started + r.elapsed for r in gets) + mono_to_wall
        out[path] = (done.root / target).stat().st_ctime - last_byte
    return out


def case_cdn(b: Bench, stack: Stack, repeat: int, aria2c: Path | None, aria2c_why: str) -> list[Row]:
    """Every row of cases 8 and 9."""
    rows: dict[str, Row] = {}
    mono_to_wall = time.time() - time.monotonic()

    # wanmodels with default settings, against the link limit; tail latency from the same runs.
    times: list[float] = []
    tails: list[dict[str, float]] = []
    ranges: list[int] = []
    for _ in range(repeat):
        done = run_wanmodels(b, "wanmodels download (CDN link)")
        stack.check(done.root, "wanmodels")
        times.append(done.run.seconds)
        tails.append(tail_latency(stack, done, mono_to_wall))
        ranges.append(len(file_gets(done.records, stack.largest)))
        shutil.rmtree(done.root)
    ratio = min(times) / stack.limit
    rows[ROWS[0]] = Row(
        ROWS[0],
        f"{fmt_s(times)}; largest file in {min(ranges)}-{max(ranges)} range requests",
        f"link limit: {stack.limit:.3f} s ({stack.total / MIB:.1f} MiB at {LINK / MIB:.0f} MiB/s)",
        f"{ratio:.2f}× (min/limit)",
        "≤ 1.25×",
        yes_no(ratio <= 1.25),
    )
    largest = [t[stack.largest] for t in tails if stack.largest in t]
    worst = max((max(t.values()) for t in tails if t), default=float("nan"))
    rows[ROWS[4]] = Row(
        ROWS[4],
        f"largest file: median {1000 * statistics.median(largest):.0f} ms (min {1000 * min(largest):.0f}, "
        f"max {1000 * max(largest):.0f}) over {len(largest)} runs; any file: max {1000 * worst:.0f} ms",
        "server's end of the file's last GET → ctime of its rename (±4 ms clock grain)",
        "—",
        "(report)",
        "—",
    )

    # Peers.
    if aria2c is None:
        rows[ROWS[1]] = not_run(ROWS[1], aria2c_why)
    else:
        rows[ROWS[1]] = ratio_row(ROWS[1], times, run_aria2c(b, stack, aria2c, repeat), "aria2c", 1.0)
    hf_times = [run_hf(b, stack)]
    rows[ROWS[2]] = ratio_row(ROWS[2], times, hf_times, "hf download (one call, 4 files)", None)
    if shutil.which("curl") is None:
        rows[ROWS[3]] = not_run(ROWS[3], "curl not found on PATH")
    else:
        rows[ROWS[3]] = ratio_row(
            ROWS[3], times, [run_curl(b, stack)], "curl -L, one file after another", None
        )

    rows[ROWS[5]] = case_max_rate(b, stack, mono_to_wall)
    rows[ROWS[6]] = case_kill(b, stack, repeat)

    # --workers: which budget fills this link best; peak RSS at 16.
    by_workers: dict[int, list[float]] = {}
    rss_16: list[int] = []
    for n in WORKER_CHOICES:
        by_workers[n] = []
        for _ in range(repeat):
            done = run_wanmodels(b, f"wanmodels download --workers {n} (CDN link)", "--workers", str(n))
            stack.check(done.root, "wanmodels")
            by_workers[n].append(done.run.seconds)
            if n == 16:
                rss_16.append(done.run.maxrss_kib)
            shutil.rmtree(done.root)
    best = min(by_workers, key=lambda n: min(by_workers[n]))
    for n, case in zip(WORKER_CHOICES, ROWS[8:], strict=True):
        ratio = min(by_workers[n]) / stack.limit
        rows[case] = Row(
            case,
            fmt_s(by_workers[n]),
            f"link limit: {stack.limit:.3f} s",
            f"{ratio:.2f}× (min/limit)",
            "(report: pick the default)",
            "best" if n == best else "—",
        )
    if rss_16:
        mib = max(rss_16) / 1024
        rows[ROWS[7]] = Row(
            ROWS[7],
            f"{mib:.1f} MiB (max of {len(rss_16)} runs)",
            "",
            "—",
            "≤ 100 MB",
            yes_no(mib * MIB <= 100e6),
        )
    return [rows.get(case, not_run(case, "no figure")) for case in ROWS]


# -- peers --------------------------------------------------------------------------------------------------


def run_aria2c(b: Bench, stack: Stack, aria2c: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        done = aria2c_once(b, stack, aria2c)
        times.append(done.run.seconds)
        shutil.rmtree(done.root)
    return times


def aria2c_once(b: Bench, stack: Stack, aria2c: Path) -> WmRun:
    """`aria2c -x16 -s16 -k1M -j4` over an input file naming the four resolve URLs and their targets."""
    root = fresh_dir(b.tmp, "cdn-aria2c")
    listing = root / "urls.txt"
    lines = []
    for path, target in stack.targets.items():
        where = root / target
        lines += [stack.url(b.srv, path), f"  dir={where.parent}", f"  out={where.name}"]
    listing.write_text("\n".join(lines) + "\n")
    b.srv.wait_idle(10)
    b.srv.clear_log()
    argv = [str(aria2c), "-x16", "-s16", "-k1M", "-j4", "-q", "-i", str(listing)]
    r = b.run("aria2c (CDN link)", argv, root)
    b.srv.wait_idle(10)
    stack.check(root, "aria2c")
    return WmRun(r, root, b.srv.requests)


def run_hf(b: Bench, stack: Stack) -> float:
    root = fresh_dir(b.tmp, "cdn-hf")
    r = b.run("hf download (CDN link)", hf("download", COMFY, *stack.targets, "--local-dir", str(root)))
    for path in stack.targets:
        if (root / path).stat().st_size != stack.sizes[path]:
            raise RuntimeError(f"hf download did not leave {path}")
    shutil.rmtree(root)
    return r.seconds


def run_curl(b: Bench, stack: Stack) -> float:
    root = fresh_dir(b.tmp, "cdn-curl")
    total = 0.0
    for path, target in stack.targets.items():
        where = root / target
        where.parent.mkdir(parents=True, exist_ok=True)
        total += b.run(
            "curl (CDN link)", ["curl", "-sS", "-L", "-o", str(where), stack.url(b.srv, path)]
        ).seconds
    stack.check(root, "curl")
    shutil.rmtree(root)
    return total


# -- --max-rate and SIGKILL ---------------------------------------------------------------------------------


def rate_arg(rate: float) -> tuple[str, float]:
    """A `--max-rate` value (1024 multiples) at or below `rate` B/s, and the rate it stands for."""
    kib = max(1, int(rate // 1024))
    if kib % 1024 == 0:
        return f"{kib // 1024}M", kib * 1024.0
    return f"{kib}K", kib * 1024.0


def case_max_rate(b: Bench, stack: Stack, mono_to_wall: float) -> Row:
    """One run at half the link (or less, so it lasts `RATE_SECONDS`): achieved rate / limit.

    The limit acts where the client consumes bytes, so the window is the client's: from the first file
    request the server saw to the last file placed (kernel socket buffers would let the server finish
    early if the window ended at the server's last byte).
    """
    arg, limit = rate_arg(min(LINK / 2, stack.total / RATE_SECONDS))
    done = run_wanmodels(b, "wanmodels download --max-rate (CDN link)", "--max-rate", arg)
    stack.check(done.root, "wanmodels")
    placed = max((done.root / t).stat().st_ctime for t in stack.targets.values())
    shutil.rmtree(done.root)
    first = min(r.started for r in file_gets(done.records)) + mono_to_wall
    window = placed - first
    ratio = stack.total / window / limit
    whole = stack.total / done.run.seconds / limit
    return Row(
        ROWS[5],
        f"--max-rate {arg}: {stack.total / window / MIB:.2f} MiB/s from the first file request to the "
        f"last file placed ({window:.2f} s); {whole:.3f}× over the whole run ({done.run.seconds:.2f} s, "
        "start-up and plan included)",
        f"limit {limit / MIB:.2f} MiB/s; link {LINK / MIB:.0f} MiB/s",
        f"{ratio:.3f}× (achieved/limit)",
        "0.85-1.05×",
        yes_no(0.85 <= ratio <= 1.05),
    )


def case_kill(b: Bench, stack: Stack, repeat: int) -> Row:
    """SIGKILL once the largest file's journal holds half of it, run again, count the server's bytes.

    Both runs use `--workers 16`, so the file is being fetched on 8+ connections when it is killed
    (with 8 workers some of them are still on the other files or between requests).
    """
    path = stack.largest
    size = stack.sizes[path]
    name = stack.targets[path]
    # The killed run lasts at least ~3 s, so a 5 ms poll catches the file near 50% at any scale.
    link = min(LINK, size / 3)
    totals: list[float] = []
    details: list[str] = []
    for _ in range(repeat):
        root = fresh_dir(b.tmp, "cdn-kill")
        watch = JournalWatch(root / ".wanmodels" / "partial", name)
        caught: list[bool] = []

        def kill_at_half(
            proc: subprocess.Popen[bytes], out: list[bool] = caught, w: JournalWatch = watch
        ) -> None:
            out.append(kill_when(proc, lambda: w.done_bytes() >= size // 2))

        b.srv.link_rate, b.srv.conn_rate = link, link / CONNS
        try:
            first = run_wanmodels(
                b,
                "wanmodels download (CDN link, killed)",
                *KILL_ARGS,
                root=root,
                check=False,
                on_start=kill_at_half,
            )
        finally:
            b.srv.link_rate, b.srv.conn_rate = LINK, LINK / CONNS
        if first.run.rc != -signal.SIGKILL or caught != [True]:
            return not_run(
                ROWS[6], f"could not kill at ~50% (exit {first.run.rc}: {first.run.stderr[-300:]})"
            )
        kept = kept_bytes(root / ".wanmodels" / "partial", name)
        if kept >= size:
            return not_run(ROWS[6], "the killed run had written every byte already")
        sent_first = sum(r.bytes_sent for r in file_gets(first.records, path))
        connections = peak_concurrency(file_gets(first.records, path))
        second = run_wanmodels(b, "wanmodels download (CDN link, resumed)", *KILL_ARGS, root=root)
        stack.check(root, "wanmodels")
        sent_second = sum(r.bytes_sent for r in file_gets(second.records, path))
        totals.append((sent_first + sent_second) / size)
        details.append(
            f"killed with {kept / size:.0%} kept, {connections} connections on the file; sent "
            f"{sent_first:,} + {sent_second:,} B for {size:,} B; 2nd run sent / left "
            f"{sent_second / (size - kept):.4f}"
        )
        shutil.rmtree(root)
    worst = max(totals)
    return Row(
        ROWS[6],
        f"{worst:.4f} (worst of {len(totals)}; {details[totals.index(worst)]})",
        "",
        "sent over both runs / size",
        "≤ 1.01",
        yes_no(worst <= 1.01),
    )


def stack_on(srv: HubServer, files: dict[str, Path | bytes]) -> Stack:
    """Add the fixture repo to `srv`; its commit and the selected files' sizes."""
    commit = srv.add_repo(COMFY, files)
    sizes = {}
    for path in COMFY_FILES:
        value = files[path]
        sizes[path] = os.path.getsize(value) if isinstance(value, Path) else len(value)
    return Stack(commit, sizes)
