"""Fixtures: a clean environment, a Hub-protocol server on 127.0.0.1, and a CLI runner.

CLI tests run `python -m wanmodels` in a subprocess because huggingface_hub reads its
environment (`HF_ENDPOINT`, `HF_HUB_OFFLINE`, ...) at import time, and because that is how
users meet the exit codes.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import add_repos, seed_repos
from tests.hubserver import HubServer

_PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HF_*/WANMODELS_* from the developer's shell, no proxies, a private HF_HOME."""
    for name in list(os.environ):
        if (
            name.startswith(("HF_", "WANMODELS_", "HUGGINGFACE_"))
            or name in _PROXY_VARS
            or name == "NO_COLOR"
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")


@pytest.fixture
def hub() -> Iterator[HubServer]:
    """A fresh server holding the four seed repos (small files)."""
    with HubServer() as server:
        add_repos(server, seed_repos())
        yield server


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., CliRun]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def cli_env(hub: HubServer, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["HF_ENDPOINT"] = hub.url
    env["WANMODELS_RETRY_WAIT"] = "0.2"
    env.update(extra)
    return env


@pytest.fixture
def cli(hub: HubServer, workdir: Path) -> Cli:
    """Run `python -m wanmodels ARGS` in `workdir` against the test server."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 60, **env: str) -> CliRun:
        proc = subprocess.run(
            [sys.executable, "-m", "wanmodels", *args],
            cwd=cwd or workdir,
            env=cli_env(hub, **env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return CliRun(proc.returncode, proc.stdout, proc.stderr)

    return run


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


def wait_until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Poll `check` until it holds: tests wait for a state, never a fixed time, so load only slows them."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.01)


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
