"""Cases 8 and 9: the ComfyUI fp16 stack over a link shaped like the real Hub's CDN.

The shaped server, the stack and running one download on it are in `cdn_stack`; the stack is the
`wan2.1-comfyui-fp16` preset's four files in their real proportions.

Figures taken from outside the process under test: wall time and peak RSS (its /proc VmHWM), bytes, ranges and
times of requests (the server's log), and when a file was placed (the ctime its rename set).
"""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.hubserver import peak_in_flight
from tests.support.hubserver.tls import Certificate

from benchmarks.cases.cdn_stack import CONNS, LINK, Stack, WmRun, aria2c_once, file_gets, run_wanmodels
from benchmarks.fixtures import COMFY
from benchmarks.harness import MIB, Bench, Row, fmt_s, fresh_dir, hf, not_run, ratio_row, yes_no
from benchmarks.partwatch import JournalWatch, kept_bytes, kill_when

WORKER_CHOICES = (4, 8, 16)
RATE_SECONDS = 3.0  # --max-rate is set so the run lasts at least this long, at most half the link
KILL_ARGS = ("--workers", "16")

ROWS = (
    "8. CDN link: wanmodels / link limit",
    "8. CDN link: wanmodels / aria2c",
    "8. CDN link: wanmodels / hf download",
    "8. CDN link: wanmodels / curl",
    "8. CDN link: tail latency (last byte → placed)",
    "8. CDN link: --max-rate accuracy",
    "8. CDN link: resume after SIGKILL at 50%",
    "8. CDN link: peak RSS, --workers 16",
    *(f"9. CDN link: --workers {n} --no-adapt" for n in WORKER_CHOICES),
)
SCALE_UP = 10  # the scaled rows: the same link and stack, ten times the bytes
SCALED_ROWS = (
    f"8. CDN link, {SCALE_UP}× the bytes: wanmodels / link limit",
    f"8. CDN link, {SCALE_UP}× the bytes: wanmodels / aria2c",
)
TLS_ROWS = (
    "8. CDN link over HTTPS: wanmodels / link limit",
    "8. CDN link over HTTPS: wanmodels / aria2c",
)


def tail_latency(stack: Stack, done: WmRun, mono_to_wall: float) -> dict[str, float]:
    """Per file: seconds from the end of its last GET (server clock) to its rename into place (ctime)."""
    out = {}
    for path, target in stack.targets.items():
        gets = file_gets(done.records, path)
        if not gets:
            continue
        last_byte = max(r.sending_until for r in gets) + mono_to_wall
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

    # Peers, --max-rate and the kill: each may fail on its own without taking the others along.
    def peers() -> None:
        if aria2c is None:
            rows[ROWS[1]] = not_run(ROWS[1], aria2c_why)
        else:
            rows[ROWS[1]] = ratio_row(ROWS[1], times, run_aria2c(b, stack, aria2c, repeat), "aria2c", 1.0)

    def hf_row() -> None:
        rows[ROWS[2]] = ratio_row(ROWS[2], times, [run_hf(b, stack)], "hf download (one call, 4 files)", None)

    def curl_row() -> None:
        if shutil.which("curl") is None:
            rows[ROWS[3]] = not_run(ROWS[3], "curl not found on PATH")
        else:
            peer = [run_curl(b, stack)]
            rows[ROWS[3]] = ratio_row(ROWS[3], times, peer, "curl -L, one file after another", None)

    def rate_row() -> None:
        rows[ROWS[5]] = case_max_rate(b, stack, mono_to_wall)

    def kill_row() -> None:
        rows[ROWS[6]] = case_kill(b, stack, repeat)

    steps = (
        (ROWS[1], peers),
        (ROWS[2], hf_row),
        (ROWS[3], curl_row),
        (ROWS[5], rate_row),
        (ROWS[6], kill_row),
    )
    for case, step in steps:
        _attempt(rows, case, step)

    # --workers: which budget fills this link best; peak RSS at 16.
    by_workers: dict[int, list[float]] = {}
    rss_16: list[int] = []
    for n in WORKER_CHOICES:
        by_workers[n] = []
        for _ in range(repeat):
            label = f"wanmodels download --workers {n} --no-adapt (CDN link)"
            done = run_wanmodels(b, label, "--workers", str(n), "--no-adapt")
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


def case_scaled(b: Bench, stack: Stack, repeat: int, aria2c: Path | None, aria2c_why: str) -> list[Row]:
    """wanmodels and aria2c on `SCALE_UP` times the bytes: what start-up costs once per run (a
    Python process, the listing) weighs less, as it does on the real stack (41 GiB, not 240 MiB)."""
    return _against_limit_and_aria2c(b, stack, repeat, aria2c, aria2c_why, SCALED_ROWS, f"{SCALE_UP}×")


def case_tls(
    b: Bench, stack: Stack, repeat: int, aria2c: Path | None, aria2c_why: str, cert: Certificate
) -> list[Row]:
    """wanmodels and aria2c with both origins on HTTPS (`b.srv` serves `cert`), as on the real Hub:
    each connection pays a handshake and every byte is decrypted, which adds to the CPU share that
    decides whether helper connections join."""
    return _against_limit_and_aria2c(b, stack, repeat, aria2c, aria2c_why, TLS_ROWS, "HTTPS", cert)


def _against_limit_and_aria2c(
    b: Bench,
    stack: Stack,
    repeat: int,
    aria2c: Path | None,
    aria2c_why: str,
    cases: tuple[str, str],
    label: str,
    cert: Certificate | None = None,
) -> list[Row]:
    times: list[float] = []
    for _ in range(repeat):
        done = run_wanmodels(b, f"wanmodels download (CDN link, {label})")
        stack.check(done.root, "wanmodels")
        times.append(done.run.seconds)
        shutil.rmtree(done.root)
    ratio = min(times) / stack.limit
    rows = [
        Row(
            cases[0],
            fmt_s(times),
            f"link limit: {stack.limit:.3f} s ({stack.total / MIB:.1f} MiB at {LINK / MIB:.0f} MiB/s)",
            f"{ratio:.3f}× (min/limit)",
            "≤ 1.25×",
            yes_no(ratio <= 1.25),
        )
    ]
    if aria2c is None:
        rows.append(not_run(cases[1], aria2c_why))
    else:
        peer = run_aria2c(b, stack, aria2c, repeat, cert)
        rows.append(ratio_row(cases[1], times, peer, "aria2c", 1.0))
    return rows


def _attempt(rows: dict[str, Row], case: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:
        rows[case] = not_run(case, f"{type(exc).__name__}: {exc}"[:300])


# -- peers --------------------------------------------------------------------------------------------------


def run_aria2c(
    b: Bench, stack: Stack, aria2c: Path, repeat: int, cert: Certificate | None = None
) -> list[float]:
    times = []
    for _ in range(repeat):
        done = aria2c_once(b, stack, aria2c, cert)
        times.append(done.run.seconds)
        shutil.rmtree(done.root)
    return times


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
        connections = peak_in_flight(file_gets(first.records, path))
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
