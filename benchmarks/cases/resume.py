"""Case 2: SIGKILL a download of the 1 GiB shard at ~50%, run it again, count what the server sent.

wanmodels fetches one file on several connections, so its part is sparse: the kill point and the bytes
kept come from the part's journal, not its size. The figure the issue asks for is the server's bytes for
that file over both runs / its size (1.0 = nothing fetched twice); "sent / left" (second run only, over
what the journal said was missing) is shown too. hf writes a plain prefix, polled by its size.
"""

from __future__ import annotations

import functools
import shutil
import signal
import subprocess
from collections.abc import Callable

from tests.support.hubserver import peak_in_flight

from benchmarks.fixtures import LARGEST, WAN
from benchmarks.harness import Bench, Row, fresh_dir, hf, not_run, wm, yes_no
from benchmarks.partwatch import JournalWatch, kept_bytes, kill_when, largest_file_size

ROWS = (
    "2. resume after SIGKILL: wanmodels",
    "2. resume after SIGKILL: hf (peer figure)",
)


def case_resume(b: Bench, repeat: int, size: int) -> list[Row]:
    # Throttle the link so the largest file takes ~4 s: enough for a 5 ms poll to catch it near 50%.
    bps = max(size // 4, 256 * 1024)
    return [_one_tool(b, "wanmodels", repeat, size, bps), _one_tool(b, "hf", repeat, size, bps)]


def _one_tool(b: Bench, tool: str, repeat: int, size: int, bps: int) -> Row:
    case = ROWS[0] if tool == "wanmodels" else ROWS[1]
    totals: list[float] = []
    details: list[str] = []
    for _ in range(repeat):
        cwd = fresh_dir(b.tmp, f"resume-{tool}")
        partial = cwd / "models" / ".wanmodels" / "partial"
        if tool == "wanmodels":
            manifest = cwd / "one.yaml"
            manifest.write_text(
                "version: 1\nroot: ./models\nmodels:\n"
                f"  - name: wan\n    repo: {WAN}\n    revision: main\n    include: [{LARGEST}]\n"
            )
            argv = wm("download", "--quiet", "-m", str(manifest))
            watch = JournalWatch(partial, LARGEST)
            progress: Callable[[], int] = watch.done_bytes
        else:
            argv = hf("download", WAN, LARGEST, "--local-dir", str(cwd / "d"))
            pattern = str(cwd / "d" / ".cache" / "huggingface" / "download" / "**" / "*.incomplete")
            progress = functools.partial(largest_file_size, pattern)
        caught: list[bool] = []

        def kill_at_half(
            proc: subprocess.Popen[bytes], got: Callable[[], int] = progress, out: list[bool] = caught
        ) -> None:
            out.append(kill_when(proc, lambda: got() >= size // 2))

        b.srv.wait_idle(5)
        b.srv.clear_log()
        b.srv.throttle_bps = bps
        try:
            first = b.run(f"{tool} resume (1st run, killed)", argv, cwd, check=False, on_start=kill_at_half)
        finally:
            b.srv.throttle_bps = None
        if first.rc != -signal.SIGKILL or caught != [True]:
            why = f"could not kill at ~50% (exit {first.rc}: {first.stderr[-300:]})"
            if tool == "hf" and first.rc == 0:
                why += "; hf writes its .incomplete file in 10 MiB chunks, too coarse at this scale"
            return not_run(case, why)
        b.srv.wait_idle(10)
        sent_first = b.srv.bytes_sent(LARGEST)
        connections = peak_in_flight(b.srv.gets(LARGEST))
        kept = kept_bytes(partial, LARGEST) if tool == "wanmodels" else largest_file_size(pattern)
        left = size - kept
        if left <= 0:
            why = "the killed run had written every byte already"
            if tool == "hf":
                why += "; hf writes its .incomplete file in 10 MiB chunks, too coarse at this scale"
            return not_run(case, why)
        b.srv.clear_log()
        b.run(f"{tool} resume (2nd run)", argv, cwd)
        sent_second = b.srv.bytes_sent(LARGEST)
        totals.append((sent_first + sent_second) / size)
        details.append(
            f"killed with {kept / size:.0%} kept on {connections} connection(s); sent {sent_first:,} + "
            f"{sent_second:,} B for {size:,} B; 2nd run sent / left {sent_second / left:.4f}"
        )
        shutil.rmtree(cwd)
    worst = max(totals)
    cell = f"{worst:.4f} (worst of {len(totals)}; {details[totals.index(worst)]})"
    if tool == "wanmodels":
        return Row(case, cell, "", "sent over both runs / size", "≤ 1.01", yes_no(worst <= 1.01))
    return Row(case, "", f"hf download: {cell}", "sent over both runs / size", "(report)", "—")
