"""The benchmark's markdown report: what machine and source were measured, the table, the commands run."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from benchmarks.harness import REPO_ROOT, Row


def git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other jobs on the machine skew every timing)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def machine_lines(start_head: str, loads: Sequence[str], tools: Sequence[str]) -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    if start_head and head != start_head:
        head = f"{start_head} at start, {head} at the end (src changed during the run)"
    dirty = len(git("status", "--porcelain", "--", "src").splitlines())
    lines = [
        f"- source: git {head}" + (f" + {dirty} uncommitted change(s) under src/" if dirty else ""),
        f"- cores: {os.cpu_count()}; CPU: {cpu}; load average (1, 5, 15 min): " + "; ".join(loads),
        f"- Python {platform.python_version()} ({platform.system()} {platform.release()})",
        f"- huggingface_hub {version('huggingface_hub')}; wanmodels {version('wanmodels')}",
    ]
    if tools:
        lines.append("- peers: " + "; ".join(tools))
    return lines


NOTES = """\
Environment of every subprocess: HF_ENDPOINT=<loopback HubServer>, HF_HOME=$TMP/hf,
HF_HUB_DISABLE_TELEMETRY=1, HF_HUB_DISABLE_UPDATE_CHECK=1, HF_HUB_DISABLE_XET=1,
HF_HUB_DISABLE_PROGRESS_BARS=1, NO_PROXY=127.0.0.1,localhost, NO_COLOR=1, proxy variables removed.
Case 2 throttles the server to (largest file size / 4) B/s during the killed run only.
Cases 8 and 9 use a second server shaped like a CDN link (see docs/benchmarks.md).
curl runs once per selected file (one example shown); each label shows its first invocation."""


def render(
    rows: list[Row],
    commands: dict[str, str],
    *,
    scale: str,
    repeat: int,
    totals: Sequence[str],
    started: dt.datetime,
    machine: Sequence[str],
) -> str:
    lines = [
        f"# wanmodels benchmarks ({scale} scale)",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; repeat: {repeat}",
        *(f"- {t}" for t in totals),
        *machine,
        "",
        "| case | wanmodels | peer | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.case} | {r.wanmodels} | {r.peer} | {r.ratio} | {r.target} | {r.met} |" for r in rows]
    lines += [
        "",
        NOTES,
        "",
        "Commands ($TMP = the run's temp dir; each case in fresh dirs under it):",
        "",
        "```",
    ]
    lines += [f"{label}: {cmd}" for label, cmd in commands.items()]
    lines += ["```", ""]
    return "\n".join(lines)
