"""Fixtures: a clean environment, a Hub-protocol server on 127.0.0.1, an S3 server, and a CLI runner.

Fixtures only: the helpers tests import live in `tests/support/` (never import this file). CLI
tests run `python -m wanmodels ARGS` through `tests.support.clirun`: in this process where that
gives the same result as a child (most calls, at a tenth of the cost), in a subprocess where only
a fresh interpreter does (variables huggingface_hub reads at import, `-v`);
`tests.support.cli.spawn` starts a child for kills, signals and races. huggingface_hub is imported
here first, under a scrubbed environment, so the settings it reads once are never the developer's
(no token, no offline mode): nothing may import it before this file (a plugin, a helper imported above).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Cli, cli_env
from tests.support.clirun import CliRun, run_cli
from tests.support.hubserver import HubServer
from tests.support.repos import add_repos, seed_repos
from tests.support.s3server import S3Server

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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.needs_root(*commands)` (tests/support/disks.py): skipped, with its reason, where
    the test could not mount its filesystem, before any fixture starts a server for it."""
    marker = item.get_closest_marker("needs_root")
    if marker is None:
        return
    if os.geteuid() != 0:
        pytest.skip("needs root: the test mounts a filesystem of its own (tmpfs or a loop device)")
    missing = [command for command in marker.args if shutil.which(command) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to make the filesystem it mounts (not installed)")


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


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


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


