"""Downloads through a Hub that redirects file bytes to a CDN on another origin, as the real one does.

The real CLI (`tests.support.clirun`), against the fake Hub with `cdn=True`: the token must reach the Hub
and never the CDN, a file's later ranges go straight to its CDN link, refused or failing CDN
requests are survived, and the rate limit holds; over HTTPS too, where a certificate this machine
does not trust fails at once with what to do. Time bounds are lower bounds only.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from pathlib import Path

import httpcore2
import pytest

from tests.support.cli import cli_env, write_manifest
from tests.support.clirun import CliRun, run_cli
from tests.support.files import count_writes
from tests.support.hubserver import Fault, HubServer
from tests.support.hubserver.tls import Certificate, make_certificate, openssl_missing
from tests.support.repos import safetensors_bytes
from wanmodels.config import Settings
from wanmodels.sources.hub import SOCKET_READ, Hub

REPO = "acme/cdn"
BIG = "big.safetensors"
DATA = safetensors_bytes({"w": ("F32", [(6 << 20) // 4])}, seed=31)
FILES = {
    BIG: DATA,
    "config.json": b"{}",
    "small.safetensors": safetensors_bytes({"w": ("F32", [4096])}, seed=32),
}
TOKEN = "hf_cdn_test_token_not_for_the_cdn_789"


@pytest.fixture
def cdn_hub() -> Iterator[HubServer]:
    # Paced per connection, as a CDN caps each one: several connections are worth opening.
    with HubServer(cdn=True, conn_rate=4 << 20, rtt=0.005) as srv:
        srv.add_repo(REPO, FILES)
        yield srv
    assert srv.errors == []


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    why = openssl_missing()
    if why is not None:
        pytest.skip(why)
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_hub(certificate: Certificate, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """`cdn_hub` with both origins on HTTPS; clients trust nothing but the system's CAs by default."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with HubServer(cdn=True, conn_rate=4 << 20, rtt=0.005, tls=certificate.server_context()) as srv:
        srv.add_repo(REPO, FILES)
        yield srv
    assert srv.errors == []


def run(srv: HubServer, workdir: Path, *args: str, **env: str) -> CliRun:
    manifest = write_manifest(workdir / "cdn.yaml", f"version: 1\nmodels:\n  - name: cdn\n    repo: {REPO}\n")
    argv = [*args, "-m", str(manifest)]
    return run_cli(argv, cwd=workdir, env=cli_env(srv, **env), changed_env=env, timeout=120)


def placed(workdir: Path) -> bytes:
    return (workdir / "models" / "cdn" / BIG).read_bytes()


def test_the_token_reaches_the_hub_and_never_the_cdn(cdn_hub: HubServer, workdir: Path) -> None:
    cdn_hub.require_token(REPO, TOKEN, gated=False)
    result = run(cdn_hub, workdir, "download", "--workers", "8", HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    assert placed(workdir) == DATA
    hub_side = [r for r in cdn_hub.requests if r.origin == "hub"]
    cdn_side = [r for r in cdn_hub.requests if r.origin == "cdn"]
    assert hub_side and all(r.authorized for r in hub_side)
    assert cdn_side and not any(r.authorized for r in cdn_side)
    big = cdn_hub.gets(BIG, origin="cdn")
    assert len(big) > 1  # several connections shared the big file
    # One redirect per file: later ranges went straight to the file's CDN link.
    assert len(cdn_hub.redirects(BIG)) == 1
    assert cdn_hub.bytes_sent(BIG) == len(DATA)  # and no byte came twice
    assert TOKEN not in result.stderr + result.stdout


def test_cdn_errors_and_cuts_mid_range_are_survived(cdn_hub: HubServer, workdir: Path) -> None:
    cdn_hub.add_fault(Fault(path=BIG, kind="status", status=503, times=2, origin="cdn"))
    cdn_hub.add_fault(Fault(path=BIG, kind="cut", after_bytes=300_000, times=2, origin="cdn"))
    result = run(cdn_hub, workdir, "download")
    assert result.returncode == 0, result.stderr
    assert placed(workdir) == DATA
    statuses = [r.status for r in cdn_hub.gets(BIG, origin="cdn")]
    assert statuses.count(503) == 2
    assert "HTTP 503" in result.stderr and "retrying" in result.stderr


def test_an_expired_cdn_link_is_resolved_again(cdn_hub: HubServer, workdir: Path) -> None:
    cdn_hub.cdn_url_ttl = 0.3  # links expire long before the paced file is done
    result = run(cdn_hub, workdir, "download", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert placed(workdir) == DATA
    assert any(r.status == 403 for r in cdn_hub.gets(BIG, origin="cdn"))  # a link went stale...
    assert len(cdn_hub.redirects(BIG)) > 1  # ...and the Hub signed a fresh one


def test_a_rate_limit_holds_for_all_connections_together(cdn_hub: HubServer, workdir: Path) -> None:
    started = time.monotonic()
    result = run(cdn_hub, workdir, "download", "--workers", "8", "--max-rate", "2M")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    total = sum(len(data) for data in FILES.values())
    assert elapsed >= 0.9 * total / (2 << 20)  # a lower bound: never faster than the limit allows


def test_bad_rates_are_a_usage_error(cdn_hub: HubServer, workdir: Path) -> None:
    result = run(cdn_hub, workdir, "download", "--max-rate", "fast")
    assert result.returncode == 2
    assert "--max-rate" in result.stderr and "500K" in result.stderr
    env_result = run(cdn_hub, workdir, "download", WANMODELS_MAX_RATE="-3")
    assert env_result.returncode == 2 and "WANMODELS_MAX_RATE" in env_result.stderr
    assert cdn_hub.gets() == []


def test_verbose_logs_each_range_request_without_signatures(cdn_hub: HubServer, workdir: Path) -> None:
    result = run(cdn_hub, workdir, "download", "-v", "--workers", "4", HF_TOKEN=TOKEN)
    assert result.returncode == 0, result.stderr
    ranged = [line for line in result.stderr.splitlines() if "bytes=" in line]
    assert len(ranged) >= 2, result.stderr
    assert any("localhost" in line for line in ranged)  # the CDN hop is in the log too
    assert "sig=" not in result.stderr and TOKEN not in result.stderr


def test_over_https_the_token_still_reaches_only_the_hub(
    tls_hub: HubServer, certificate: Certificate, workdir: Path
) -> None:
    assert tls_hub.url.startswith("https://")
    tls_hub.require_token(REPO, TOKEN, gated=False)
    trusted = str(certificate.bundle)
    result = run(tls_hub, workdir, "download", "--workers", "8", HF_TOKEN=TOKEN, SSL_CERT_FILE=trusted)
    assert result.returncode == 0, result.stderr
    assert placed(workdir) == DATA
    assert all(r.authorized for r in tls_hub.requests if r.origin == "hub")
    cdn_side = [r for r in tls_hub.requests if r.origin == "cdn"]
    assert cdn_side and not any(r.authorized for r in cdn_side)
    assert len(tls_hub.gets(BIG, origin="cdn")) > 1  # the big file was still split
    assert tls_hub.bytes_sent(BIG) == len(DATA)


def test_over_https_records_that_arrived_together_are_written_together(
    tls_hub: HubServer, certificate: Certificate, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls_hub.conn_rate, tls_hub.rtt = None, 0.0  # as fast as loopback goes: records pile up in the socket
    writes = count_writes(monkeypatch)
    result = run(tls_hub, workdir, "download", "--workers", "1", SSL_CERT_FILE=str(certificate.bundle))
    assert result.returncode == 0, result.stderr
    assert placed(workdir) == DATA
    assert sum(writes) == sum(len(data) for data in FILES.values())
    assert max(writes) > 16 << 10  # a TLS record holds at most 16 KiB: that write held several


def test_an_untrusted_certificate_fails_at_once_naming_the_host_and_ssl_cert_file(
    tls_hub: HubServer, workdir: Path
) -> None:
    result = run(tls_hub, workdir, "download")
    assert result.returncode == 3, result.stderr
    host = tls_hub.url.split("://", 1)[1]
    (line,) = result.stderr.strip().splitlines()  # one line: no retries, no traceback
    assert host in line and "certificate" in line and "SSL_CERT_FILE" in line
    assert "retrying" not in result.stderr and "Traceback" not in result.stderr
    assert tls_hub.requests == []  # the handshake failed: no request was ever read


def test_a_hub_raises_httpcores_read_size_a_knob_that_still_exists() -> None:
    # httpcore exposes its read size only as this class attribute: an upgrade that drops or stops
    # reading it must fail here rather than quietly make every fast download an eighth slower.
    assert "self.READ_NUM_BYTES" in inspect.getsource(httpcore2.HTTP11Connection._receive_event)
    Hub(Settings())
    assert vars(httpcore2.HTTP11Connection)["READ_NUM_BYTES"] == SOCKET_READ


def test_the_hubs_process_wide_tweaks_are_undone_by_the_last_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wanmodels.sources import hub

    monkeypatch.setattr(httpcore2.HTTP11Connection, "READ_NUM_BYTES", 64 << 10)
    monkeypatch.setattr(hub, "_TWEAKS", hub._Tweaks())  # no Hub of another test open
    first, second = Hub(Settings()), Hub(Settings())
    assert httpcore2.HTTP11Connection.READ_NUM_BYTES == SOCKET_READ
    first.close()
    assert httpcore2.HTTP11Connection.READ_NUM_BYTES == SOCKET_READ  # the other is still open
    second.close()
    assert httpcore2.HTTP11Connection.READ_NUM_BYTES == 64 << 10  # what httpcore had, put back
