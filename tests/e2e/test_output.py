"""Where output goes and how it looks in a pipe, a log and a narrow terminal (issue 21, items 13-15):
results of `list` and `status` on stdout, a closed pipe ends quietly, progress lines in logs at a
steady interval, bars without colour under NO_COLOR, and tables and bars that fit 80 columns.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Cli, cli_env
from tests.support.comfy_workflows import wan22_i2v, write
from tests.support.hubserver import HubServer
from tests.support.repos import COMFY22_REPO_ID, COMFY_REPO_ID, add_repos, comfy22_repo, comfy_repo


def _closed_pipe() -> int:
    """The write end of a pipe whose reader has already gone (`| head` after its lines)."""
    read, write = os.pipe()
    os.close(read)
    return write


# -- item 15: results on stdout; a closed pipe ends quietly --------------------------------------------


def test_list_and_status_print_their_results_on_stdout(cli: Cli) -> None:
    listed = cli("list")
    assert listed.returncode == 0
    assert "wan2.1-comfyui" in listed.stdout and listed.stderr == ""
    assert cli("download", "-q").returncode == 0
    status = cli("status")
    assert status.returncode == 0
    assert "sd-vae [stabilityai/sd-vae-ft-mse@" in status.stdout and status.stderr == ""


def test_with_json_stdout_holds_only_the_document(cli: Cli) -> None:
    for command in ("list", "status"):
        run = cli(command, "--json")
        assert run.json()["command"] == command  # one document, nothing around it
        assert "sd-vae" in run.stderr  # the human text moved aside


def test_a_closed_pipe_ends_quietly_with_the_commands_own_exit_code(hub: HubServer, workdir: Path) -> None:
    env = cli_env(hub)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        pipe = _closed_pipe()
        try:
            return subprocess.run(
                [sys.executable, "-m", "wanmodels", *args],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=pipe,
                stderr=pipe,
                timeout=120,
                check=False,
            )
        finally:
            os.close(pipe)

    for args in (("list",), ("download", "--dry-run"), ("download",), ("status",), ("--help",)):
        assert run(*args).returncode == 0, args
    # The work went on although nobody read about it, and a failure keeps its code.
    assert (workdir / "models" / "sd-vae" / "config.json").is_file()
    (workdir / "models" / "sd-vae" / "config.json").unlink()
    assert run("verify").returncode == 1


# -- item 13: progress in logs, bars without colour, planning that says what it waits for ---------------

PROGRESS_RE = re.compile(
    r"^progress: \d+(\.\d)? (B|KiB|MiB) of 214\.7 KiB \(\d+%\), "
    r"(\d+(\.\d)? (B|KiB|MiB)/s, about \d+(m\d\ds|s) left|no bytes in the last \S+)"
    r"(, \d+ files? in flight)?$"
)


def test_a_log_gets_a_progress_line_at_a_steady_interval(cli: Cli, hub: HubServer) -> None:
    hub.link_rate = 48 * 1024  # 214.7 KiB take seconds, long enough for several lines
    run = cli("download", "--progress-interval", "0.25", NO_COLOR="1")
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    progress = [i for i, line in enumerate(lines) if line.startswith("progress: ")]
    assert progress, run.stderr
    for i in progress:
        assert PROGRESS_RE.match(lines[i]), lines[i]
    # Between the plan and the summary, never after the run ended.
    assert lines[0].startswith("fetching ")
    summary = next(i for i, line in enumerate(lines) if line.startswith("ok: "))
    assert progress[-1] < summary


def test_the_progress_interval_comes_from_the_environment_too(cli: Cli, hub: HubServer) -> None:
    hub.link_rate = 48 * 1024
    run = cli("download", WANMODELS_PROGRESS_INTERVAL="0.25")
    assert run.returncode == 0, run.stderr
    assert any(PROGRESS_RE.match(line) for line in run.stderr.splitlines()), run.stderr
    bad = cli("download", WANMODELS_PROGRESS_INTERVAL="soon")
    assert bad.returncode == 2 and "WANMODELS_PROGRESS_INTERVAL" in bad.stderr


def test_progress_line_wording() -> None:
    from wanmodels.cli.render import progress_line

    line = progress_line(3 << 30, 61 << 30, 12 << 20, 3, 30)
    assert line == "progress: 3.0 GiB of 61.0 GiB (4%), 12.0 MiB/s, about 1h22m left, 3 files in flight"
    assert progress_line(0, 1 << 20, 0.0, 1, 30).endswith("no bytes in the last 30s, 1 file in flight")


def _frame_lines(raw: str) -> list[str]:
    """The lines a terminal shows for rich's output, control sequences removed."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    return [line for line in text.replace("\r", "\n").split("\n") if line.strip()]


def _long_plan(count: int) -> tuple[Any, tuple[Any, ...]]:
    from wanmodels.digests import Digest
    from wanmodels.inputs.manifest import ModelSpec
    from wanmodels.planning.plan import Action, ModelPlan, Plan, PlannedFile

    names = [*LONG_NAMES, *(f"text_encoders/shard-{i:05d}-of-{count:05d}.safetensors" for i in range(count))]
    items = tuple(
        PlannedFile("e", "o/r", "c" * 40, n, n, 10 << 20, Digest("sha256", "0" * 64), Action.DOWNLOAD, 0)
        for n in names
    )
    spec = ModelSpec(name="e", repo="o/r", folder="e")
    return Plan(Path("/tmp/root"), (ModelPlan(spec, "c" * 40, items),)), items


def _draw(width: int, height: int, *, no_color: bool, files: int = 8) -> tuple[str, list[str]]:
    from rich.console import Console

    from wanmodels.cli.render import RichProgress
    from wanmodels.cli.run import progress_sink

    plan, items = _long_plan(files)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, height=height, no_color=no_color)
    sink = progress_sink(console, None)
    assert isinstance(sink, RichProgress)  # a terminal gets bars, with or without colour
    sink.plan_ready(plan)
    for item in items:
        sink.file_started(item)
        sink.advance(item, 3 << 20)
    out.seek(0)
    out.truncate()
    sink.progress.refresh()
    raw = out.getvalue()
    sink.close()
    return raw, _frame_lines(raw)


def test_no_color_keeps_the_bars_and_drops_only_the_colour() -> None:
    raw, lines = _draw(100, 40, no_color=True)
    assert not re.search(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])(;[0-9]+)*m", raw), "colour under NO_COLOR"
    bars = [line for line in lines if "━" in line and "─" in line]  # done and still to come, told apart
    assert len(bars) >= 9, lines
    coloured, _ = _draw(100, 40, no_color=False)
    assert re.search(r"\x1b\[[0-9;]*3[0-9]", coloured)


# -- item 14: 80 columns ----------------------------------------------------------------------------------

LONG_NAMES = (
    "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
    "diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
    "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
    "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
)


def test_progress_fits_80_by_24_with_every_name_whole() -> None:
    _, lines = _draw(80, 24, no_color=False, files=12)
    frame = lines[-23:]  # the last frame drawn
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert len(frame) <= 24
    for name in LONG_NAMES:
        assert name in frame, frame
    assert any(line.startswith("… and ") and "more files in flight" in line for line in frame), frame


def test_progress_on_a_wide_terminal_keeps_one_line_per_file() -> None:
    _, lines = _draw(140, 40, no_color=False)
    for name in LONG_NAMES:
        (line,) = [ln for ln in lines[-13:] if name in ln]
        assert "MiB/10.0 MiB" in line and len(line) <= 140, line


@pytest.fixture
def comfy_hub(hub: HubServer) -> HubServer:
    add_repos(hub, comfy_repo())
    add_repos(hub, comfy22_repo())
    return hub


def test_the_dry_run_and_list_fit_80_columns_and_tell_rows_apart(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    wf = write(workdir / "wan22.json", wan22_i2v())
    paths = {
        f["path"]
        for m in cli("download", "-m", str(wf), "--dry-run", "--json").json()["models"]
        for f in m["files"]
    }
    for columns in ("80", "100"):
        run = cli("download", "-m", str(wf), "--dry-run", COLUMNS=columns)
        assert run.returncode == 0, run.stderr
        lines = run.stderr.splitlines()
        assert all(len(line) <= int(columns) for line in lines), max(lines, key=len)
        for path in paths:  # each file once, whole, on a line of its own or in its row
            assert sum(path in line for line in lines) == 1, (path, run.stderr)
        listed = cli("list", "-m", str(wf), COLUMNS=columns)
        assert all(len(line) <= int(columns) for line in listed.stdout.splitlines()), listed.stdout
        assert COMFY_REPO_ID in listed.stdout and COMFY22_REPO_ID in listed.stdout, listed.stdout
    wide = cli("download", "-m", str(wf), "--dry-run", COLUMNS="200")
    assert "│" in wide.stderr  # room enough: the table


def test_a_slow_plan_says_what_it_is_waiting_for(cli: Cli, hub: HubServer) -> None:
    from tests.support.hubserver import Fault

    hub.add_fault(Fault(kind="hang", api=True, seconds=2.5, times=None))  # every listing request waits
    run = cli("download", "--dry-run")
    assert run.returncode == 0, run.stderr
    first = run.stderr.splitlines()[0]
    assert first == f"listing 4 repos on {hub.url} (revisions and file lists)…", run.stderr
    hub.clear_faults()
    assert cli("download", "-q").returncode == 0  # pins the stack: later plans need no listing
    again = cli("download", "--dry-run")
    assert "listing" not in again.stderr
