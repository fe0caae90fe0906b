"""Where output goes and how it looks in a pipe, a log and a narrow terminal (issue 21, items 13-15):
results of `list` and `status` on stdout, a closed pipe ends quietly, progress lines in logs at a
steady interval, bars without colour under NO_COLOR, and tables and bars that fit 80 columns.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import Cli, cli_env
from tests.hubserver import HubServer


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
