"""Running the CLI for a test: the `cli` fixture's type, its environment, and children to kill or signal."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.clirun import CliRun
from tests.support.hubserver import HubServer

__all__ = ["Cli", "cli_env", "read_stderr_until", "spawn", "write_manifest"]

Cli = Callable[..., CliRun]


def cli_env(hub: HubServer, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["HF_ENDPOINT"] = hub.url
    env["WANMODELS_RETRY_WAIT"] = "0.02"
    env.update(extra)
    return env


def spawn(hub: HubServer, cwd: Path, *args: str, quiet: bool = False) -> subprocess.Popen[str]:
    """Start `python -m wanmodels ARGS` in the background (for kills, signals and races)."""
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "wanmodels", *args],
        cwd=cwd,
        env=cli_env(hub),
        stdout=out,
        stderr=out,
        text=True,
    )


def write_manifest(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def read_stderr_until(proc: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    """Read a `spawn`ed process's stderr until `text` shows up; returns what was read.

    Reads the pipe's descriptor directly, so a later `communicate()` still gets the rest.
    """
    assert proc.stderr is not None
    fd = proc.stderr.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {text!r} on stderr: {seen!r}")
        if select.select([fd], [], [], min(left, 0.5))[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise AssertionError(f"the process exited without printing {text!r}: {seen!r}")
            seen += chunk
    return seen.decode()
