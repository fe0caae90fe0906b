"""The CDN host behind the Hub's redirects, failing: refused signed links, a host that drops every
connection, and one transfer's connection error next to another transfer in flight.

The real CLI (`tests.support.clirun`; the `Hub` client in a subprocess) against the fake Hub with
`cdn=True`, whose CDN listens on `localhost:<port>` while the Hub is `127.0.0.1:<port>`, so
messages can be checked for naming the right host.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.cli import cli_env, write_manifest
from tests.support.clirun import CliRun, run_cli
from tests.support.hubserver import Fault, HubServer, client_env
from tests.support.repos import safetensors_bytes

REPO = "acme/cdn-faults"
BIG = "big.safetensors"
DATA = safetensors_bytes({"w": ("F32", [(2 << 20) // 4])}, seed=51)
FILES = {BIG: DATA, "config.json": b"{}"}
TOKEN = "hf_cdn_failure_token_never_shown_456"


@pytest.fixture
def cdn_hub() -> Iterator[HubServer]:
    with HubServer(cdn=True) as srv:
        srv.add_repo(REPO, FILES)
        yield srv
    assert srv.errors == []


def cdn_host(srv: HubServer) -> str:
    return urlsplit(srv.cdn_url or "").netloc


def run(srv: HubServer, workdir: Path, *args: str, **env: str) -> CliRun:
    manifest = write_manifest(workdir / "c.yaml", f"version: 1\nmodels:\n  - name: c\n    repo: {REPO}\n")
    argv = [*args, "-m", str(manifest)]
    return run_cli(argv, cwd=workdir, env=cli_env(srv, **env), changed_env=env, timeout=120)


def test_a_cdn_refusing_a_fresh_link_once_is_resolved_again(cdn_hub: HubServer, workdir: Path) -> None:
    cdn_hub.add_fault(Fault(path=BIG, kind="status", status=403, origin="cdn"))
    result = run(cdn_hub, workdir, "download", "--workers", "1", HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    assert (workdir / "models" / "c" / BIG).read_bytes() == DATA
    assert [r.status for r in cdn_hub.gets(BIG, origin="cdn")] == [403, 200]
    assert len(cdn_hub.redirects(BIG)) == 2  # the refusal sent us back to the Hub for a new link
    assert "HF_TOKEN" not in result.stderr


def test_a_cdn_refusing_every_link_is_named_and_no_token_is_blamed(cdn_hub: HubServer, workdir: Path) -> None:
    cdn_hub.add_fault(Fault(path=BIG, kind="status", status=403, origin="cdn", times=None))
    result = run(cdn_hub, workdir, "download", "--workers", "1", HF_TOKEN=TOKEN)
    assert result.returncode == 3, result.stderr
    assert f"the download host {cdn_host(cdn_hub)} refused" in result.stderr
    assert "HTTP 403" in result.stderr and "HF_TOKEN is not the cause" in result.stderr
    assert f"If a firewall or proxy blocks {cdn_host(cdn_hub)}" in result.stderr
    assert "hf auth login" not in result.stderr
    assert [r.status for r in cdn_hub.gets(BIG, origin="cdn")] == [403, 403]  # resolved again once, not more
    assert (workdir / "models" / "c" / "config.json").is_file()  # the Hub's own file still landed
    assert TOKEN not in result.stderr


def test_a_cdn_dropping_connections_is_named_not_the_hub(cdn_hub: HubServer, workdir: Path) -> None:
    cdn_hub.add_fault(Fault(path=BIG, kind="reset", after_bytes=0, origin="cdn", times=None))
    result = run(cdn_hub, workdir, "download", "--workers", "1")
    assert result.returncode == 3, result.stderr
    failure = f"connection to {cdn_host(cdn_hub)} (a download host the Hub redirected to) failed"
    assert failure in result.stderr
    assert "gave up after 5 retries" in result.stderr
    assert f"If a firewall or proxy blocks {cdn_host(cdn_hub)}" in result.stderr
    assert urlsplit(cdn_hub.url).netloc not in result.stderr  # the Hub did nothing wrong


def test_verbose_shows_the_cdn_hop_in_both_logs(cdn_hub: HubServer, workdir: Path) -> None:
    result = run(cdn_hub, workdir, "download", "-v", "--workers", "1")
    assert result.returncode == 0, result.stderr
    host = cdn_host(cdn_hub)
    lines = result.stderr.splitlines()
    assert any(host in line and "authenticated: False" in line for line in lines)  # huggingface_hub's line
    assert any(
        line.startswith("wanmodels.sources.hub: GET") and "/resolve/" in line and "-> 302" in line
        for line in lines
    )
    assert any(
        line.startswith("wanmodels.sources.hub: GET") and host in line and "-> 200" in line for line in lines
    )
    assert "sig=" not in result.stderr


def test_a_connection_error_leaves_other_transfers_streaming(tmp_path: Path) -> None:
    """One transfer's refused connection must not close the client another one is reading from."""
    data = safetensors_bytes({"w": ("F32", [(1 << 20) // 4])}, seed=52)
    with HubServer(conn_rate=1 << 20) as srv:  # ~1 s of body: the refusal lands mid-stream
        commit = srv.add_repo(REPO, {BIG: data})
        code = f"""
            import hashlib, json, socket
            from wanmodels.config import Settings
            from wanmodels.errors import TransientHubError
            from wanmodels.sources.hub import Hub
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()[1]
            probe.close()  # nothing listens there now: connecting is refused
            good = Hub(Settings(endpoint={srv.url!r}))
            bad = Hub(Settings(endpoint=f"http://127.0.0.1:{{dead}}"))
            error = None
            with good.open_range({REPO!r}, {commit!r}, {BIG!r}) as stream:
                chunks = iter(stream.chunks)
                body = next(chunks)
                try:
                    with bad.open_range({REPO!r}, {commit!r}, {BIG!r}):
                        pass
                except TransientHubError as err:
                    error = err.message
                body += b"".join(chunks)
            print(json.dumps({{"sha256": hashlib.sha256(body).hexdigest(), "error": error}}))
        """
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=client_env(srv, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["sha256"] == hashlib.sha256(data).hexdigest()  # the first stream finished intact
    assert "connection to 127.0.0.1:" in result["error"] and "ConnectError" in result["error"]
    assert srv.errors == []
