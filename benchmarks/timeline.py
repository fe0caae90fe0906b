"""Where the time of one download over the CDN link goes, as the server saw it: phases and link use.

    python -m benchmarks.timeline [--small | --tiny] [--times X] [--aria2c] [--tls] [--slot 0.25]
                                  [--log PATH] [-- EXTRA WANMODELS ARGS]

Runs `wanmodels download -m wan2.1-comfyui-fp16` once on the shaped Hub of case 8 (see
`benchmarks.cases.cdn_stack`) and prints: start-up (spawn to first request), plan (to the first file byte
request), transfer (to the last file byte), tail (to exit); every file's requests and when it was placed;
and the link's use per time slot (`--tls`: both origins on HTTPS). Times within a request are approximate:
its bytes are taken as spread evenly over its duration (fair for wanmodels' short spans, rough for long
open-ended requests). `--log` keeps wanmodels' stderr (pass `-v` after `--` to log every range); `--py-spy
OUT` profiles it (install py-spy into the venv first: `pip install py-spy`). Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.hubserver import RequestRecord, peak_in_flight
from tests.support.hubserver.tls import Certificate, make_certificate

from benchmarks import fixtures
from benchmarks.cases import cdn_stack
from benchmarks.harness import BIN_DIR, MIB, Bench, byte_compile, clean_env, fresh_dir
from benchmarks.tools import find_aria2c


def link_use(gets: list[RequestRecord], start: float, end: float, slot: float) -> list[tuple[float, int]]:
    """Per slot from `start`: the link's use (bytes / slot capacity) and file requests in flight."""
    n = max(1, int((end - start) / slot + 0.999))
    used = [0.0] * n
    flying = [0] * n
    for r in gets:
        a, b = r.started - start, r.sending_until - start
        rate = r.bytes_sent / max(b - a, 1e-9)
        for i in range(max(0, int(a / slot)), min(n, int(b / slot) + 1)):
            lo, hi = max(a, i * slot), min(b, (i + 1) * slot)
            if hi > lo:
                used[i] += rate * (hi - lo)
                flying[i] += 1
    return [(u / (cdn_stack.LINK * slot), f) for u, f in zip(used, flying, strict=True)]


def delivered(r: RequestRecord, size: int, at: float) -> tuple[int, int]:
    """The bytes `[start, end)` of the file that request `r` had delivered by time `at` (its body
    spread evenly from one round trip after it started to its end)."""
    start = 0
    if r.range and r.range.startswith("bytes="):
        first = r.range[6:].partition("-")[0]
        start = int(first) if first.isdigit() and r.status == 206 else 0
    begin, end = r.started + cdn_stack.RTT, r.sending_until
    share = 1.0 if at >= end else max(0.0, (at - begin) / max(end - begin, 1e-9))
    return start, min(size, start + int(r.bytes_sent * share))


def prefix_at(gets: list[RequestRecord], size: int, at: float) -> int:
    """Length of the contiguous run from byte 0 that had arrived by `at` (all a streaming hash can read)."""
    reach = 0
    for start, end in sorted(delivered(r, size, at) for r in gets):
        if start > reach:
            break
        reach = max(reach, end)
    return reach


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--times", type=float, default=1.0, help="multiply every file's size (e.g. 10)")
    parser.add_argument("--slot", type=float, default=0.25, help="seconds per slot of the link-use line")
    parser.add_argument("--log", type=Path, help="write wanmodels' stderr here")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="OUT",
        help="run it under `py-spy record --threads` into OUT (speedscope)",
    )
    parser.add_argument("--aria2c", action="store_true", help="time aria2c -x16 -s16 -k1M -j4 instead")
    parser.add_argument("--tls", action="store_true", help="serve both origins over HTTPS (needs openssl)")
    parser.add_argument("extra", nargs="*", help="more `wanmodels download` arguments (after --)")
    args = parser.parse_args(argv)
    divisor = fixtures.SCALES["tiny" if args.tiny else "small" if args.small else "full"] / args.times
    byte_compile()
    with tempfile.TemporaryDirectory(prefix="wanmodels-timeline-") as tmp_name:
        tmp = Path(tmp_name)
        cert = make_certificate(tmp / "tls") if args.tls else None
        with cdn_stack.shaped_server(cert) as srv:
            stack = cdn_stack.stack_on(srv, fixtures.build_comfy(tmp / "fixtures", divisor))
            b = Bench(srv, tmp, cdn_stack.trust(clean_env(srv, tmp), cert))
            report(args, b, stack, cert)
    return 0


def report(args: argparse.Namespace, b: Bench, stack: cdn_stack.Stack, cert: Certificate | None) -> None:
    """One run on the shaped Hub, and what the server saw of it."""
    mono_to_wall = time.time() - time.monotonic()
    wrap: list[str] = []
    if args.py_spy:
        spy = shutil.which("py-spy") or str(BIN_DIR / "py-spy")
        wrap = [
            spy,
            "record",
            "--threads",
            "--rate",
            "250",
            "--format",
            "speedscope",
            "-o",
            str(args.py_spy),
        ]
        wrap += ["--"]
    if args.aria2c:
        aria2c, why = find_aria2c(install=True)
        if aria2c is None:
            raise SystemExit(why)
        done = cdn_stack.aria2c_once(b, stack, aria2c, cert)
    else:
        done = cdn_stack.run_wanmodels(
            b, "wanmodels download", *args.extra, root=fresh_dir(b.tmp, "root"), wrap=wrap
        )
        stack.check(done.root, "wanmodels")
    if args.log:
        args.log.write_text(done.run.stderr)
    t0 = done.run.started
    ended = t0 + done.run.seconds
    records = done.records
    gets = cdn_stack.file_gets(records)
    first_req = min(r.started for r in records)
    first_get = min(r.started for r in gets)
    last_byte = max(r.sending_until for r in gets)
    extra = " ".join(args.extra)
    tool = "aria2c -x16 -s16 -k1M -j4" if args.aria2c else f"wanmodels download {extra}"
    print(f"{tool}: {done.run.seconds:.3f} s, {stack.total / MIB:.1f} MiB")
    print(f"served at {b.srv.url}; link limit {stack.limit:.3f} s")
    print(f"peak RSS {done.run.maxrss_kib / 1024:.1f} MiB")
    print(f"  start-up  {first_req - t0:7.3f} s  spawn -> first request")
    print(f"  plan      {first_get - first_req:7.3f} s  -> first file request")
    print(
        f"  transfer  {last_byte - first_get:7.3f} s  -> last file byte "
        f"({stack.total / (last_byte - first_get) / MIB:.1f} MiB/s; link {cdn_stack.LINK / MIB:.0f})"
    )
    print(f"  tail      {ended - last_byte:7.3f} s  -> exit")
    kinds: dict[str, int] = {}
    for r in records:
        kind = f"{r.origin} {r.method} {r.status}" + (" (file)" if r.file else "")
        kinds[kind] = kinds.get(kind, 0) + 1
    print("requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
    sent = sum(r.bytes_sent for r in gets)
    print(f"file bytes sent: {sent / MIB:.1f} MiB for {stack.total / MIB:.1f} MiB of files")
    for path, target in stack.targets.items():
        mine = cdn_stack.file_gets(records, path)
        placed = os.stat(done.root / target).st_ctime - mono_to_wall
        print(
            f"  {Path(path).name}: {stack.sizes[path] / MIB:.1f} MiB, {len(mine)} GETs, peak "
            f"{peak_in_flight(mine)} at once, bytes {min(r.started for r in mine) - t0:.3f}-"
            f"{max(r.sending_until for r in mine) - t0:.3f} s, placed at {placed - t0:.3f} s"
        )
    big = stack.largest
    mine = cdn_stack.file_gets(records, big)
    size = stack.sizes[big]
    end_big = max(r.sending_until for r in mine)
    print(f"contiguous prefix of {Path(big).name} (what a streaming hash can have read; approx.), MiB:")
    for before in (1.0, 0.5, 0.25, 0.1, 0.05, 0.02):
        reach = prefix_at(mine, size, end_big - before)
        print(f"  {before:4.2f} s before its last byte: {reach / MIB:6.1f} of {size / MIB:.1f}")
    slots = link_use(gets, t0, ended, args.slot)
    print(f"link use per {args.slot:g} s from spawn (%, approx.), file requests in flight:")
    print("  " + " ".join(f"{100 * u:3.0f}" for u, _ in slots))
    print("  " + " ".join(f"{f:3d}" for _, f in slots))
    lost = sum(max(0.0, 1 - u) for u, _ in slots) * args.slot
    over = done.run.seconds - stack.limit
    print(f"link idle time over the run: {lost:.3f} s ({over:.3f} s over the limit)")


if __name__ == "__main__":
    sys.exit(main())
