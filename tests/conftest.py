"""Fixtures: a clean environment, a Hub-protocol server on 127.0.0.1, and a CLI runner.

CLI tests run `python -m wanmodels ARGS` through `tests.clirun`: in this process where that gives
the same result as a child (most calls, at a tenth of the cost), in a subprocess where only a
fresh interpreter does (variables huggingface_hub reads at import, `-v`); `spawn` starts a child
for kills, signals and races. huggingface_hub is imported here first, under a scrubbed
environment, so the settings it reads once are never the developer's (no token, no offline mode).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.clirun import CliRun, run_cli
from tests.fixtures import add_repos, seed_repos
from tests.hubserver import HubServer
from tests.s3server import S3Server
from wanmodels.store.partial import PartFile

__all__ = [
    "Cli",
    "CliRun",
    "cli_env",
    "count_writes",
    "read_stderr_until",
    "spawn",
    "wait_until",
    "write_manifest",
]

_PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


def _is_developer_setting(name: str) -> bool:
    # COLUMNS/LINES size the output (pytest-xdist sets COLUMNS=80 in its workers): a test sets them.
    return (
        name.startswith(("HF_", "WANMODELS_", "HUGGINGFACE_", "AWS_"))
        or name in _PROXY_VARS
        or name in ("NO_COLOR", "COLUMNS", "LINES")
    )


def _import_hub_client_clean() -> None:
    """Import huggingface_hub with none of the shell's HF_* settings and a home holding no token."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if _is_developer_setting(n)]:
        del os.environ[name]
    os.environ["HF_HOME"] = os.path.join(tempfile.gettempdir(), f"wanmodels-tests-{os.getpid()}", "hf")
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    try:
        import huggingface_hub.constants
        import huggingface_hub.utils.logging  # noqa: F401  (adds its stderr handler now)
    finally:
        os.environ.clear()
        os.environ.update(saved)


if "huggingface_hub" in sys.modules:
    raise RuntimeError("huggingface_hub was imported before tests/conftest.py could scrub its settings")
_import_hub_client_clean()

# A shell that starts a job in the background (`bash .ci/run &`, a CI runner's script) starts it
# with SIGINT ignored; Python then installs no KeyboardInterrupt handler, and every process spawned
# from here would inherit the ignore. The Ctrl-C tests need what an interactive run has: restored
# here, the children get the default disposition (a Python handler resets to it across exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HF_*/WANMODELS_*/AWS_* from the developer's shell, no proxies, no terminal size, a private
    HF_HOME, and no AWS config, credentials file or instance-metadata lookup (botocore would try
    169.254.169.254)."""
    for name in list(os.environ):
        if _is_developer_setting(name):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def hub() -> Iterator[HubServer]:
    """A fresh server holding the four seed repos (small files)."""
    with HubServer() as server:
        add_repos(server, seed_repos())
        yield server


@pytest.fixture(scope="session")
def s3server() -> Iterator[S3Server]:
    """moto's S3 server behind the fault proxy: one per test session (per xdist worker)."""
    pytest.importorskip("moto", reason="the S3 tests need moto[server] (the test extra)")
    with S3Server() as server:
        yield server


@pytest.fixture
def s3(s3server: S3Server) -> Iterator[S3Server]:
    """The session's S3 server, with no fault armed and an empty log for this test."""
    s3server.clear_faults()
    s3server.clear_log()
    yield s3server
    s3server.clear_faults()


Cli = Callable[..., CliRun]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def cli_env(hub: HubServer, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["HF_ENDPOINT"] = hub.url
    env["WANMODELS_RETRY_WAIT"] = "0.02"
    env.update(extra)
    return env


@pytest.fixture
def cli(hub: HubServer, workdir: Path) -> Cli:
    """Run `python -m wanmodels ARGS` in `workdir` against the test server (`process=True`: in a child)."""

    def run(
        *args: str, cwd: Path | None = None, timeout: float = 60, process: bool = False, **env: str
    ) -> CliRun:
        return run_cli(
            args,
            cwd=cwd or workdir,
            env=cli_env(hub, **env),
            changed_env=env,
            timeout=timeout,
            process=process,
        )

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


def count_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every write into a part, from now on."""
    sizes: list[int] = []
    write = PartFile.write

    def counted(self: PartFile, offset: int, data: bytes | memoryview) -> None:
        sizes.append(len(data))
        write(self, offset, data)

    monkeypatch.setattr(PartFile, "write", counted)
    return sizes


def flip_last_byte(path: Path) -> None:
    """Damage a file in place without changing its size (only its hash can tell)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


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
