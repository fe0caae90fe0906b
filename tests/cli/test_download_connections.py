"""How many connections a download opens, counted from the test Hub's log (its request start and end
times), never from the client's own view: more where the CDN caps each connection, a handful where
one connection fills the link, never more than --workers, fewer after 429/503, one plain stream
with --workers 1, and an exact resume after SIGKILL with the count adapting.

Bounds are loose and no duration is asserted: on a loaded machine the count may settle elsewhere,
but not on the wrong side of these.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import cli_env, spawn, write_manifest
from tests.support.clirun import CliRun, run_cli
from tests.support.hubserver import Fault, HubServer, peak_in_flight
from tests.support.repos import safetensors_bytes
from tests.support.waiting import wait_until
from wanmodels.store.partial import list_parts

REPO = "acme/links"
BIG = "big.safetensors"
DATA = safetensors_bytes({"w": ("F32", [(24 << 20) // 4])}, seed=41)
LINK = 16 << 20  # B/s: the whole link


def shaped(conn_rate: float | None) -> Iterator[HubServer]:
    with HubServer(cdn=True, conn_rate=conn_rate, link_rate=LINK, rtt=0.01) as srv:
        srv.add_repo(REPO, {BIG: DATA, "config.json": b"{}"})
        yield srv
    assert srv.errors == []


@pytest.fixture
def capped() -> Iterator[HubServer]:
    """A CDN that gives each connection 1/16 of the link."""
    yield from shaped(LINK / 16)


@pytest.fixture
def uncapped() -> Iterator[HubServer]:
    """One connection fills the link."""
    yield from shaped(None)


def manifest(workdir: Path) -> Path:
    return write_manifest(workdir / "links.yaml", f"version: 1\nmodels:\n  - name: links\n    repo: {REPO}\n")


def download(srv: HubServer, workdir: Path, *args: str) -> CliRun:
    argv = ["download", "-v", *args, "-m", str(manifest(workdir))]
    result = run_cli(argv, cwd=workdir, env=cli_env(srv), changed_env={}, timeout=180)
    assert result.returncode == 0, result.stderr
    assert (workdir / "models" / "links" / BIG).read_bytes() == DATA
    return result


def counts(stderr: str) -> list[str]:
    """The connection counts the -v log says were allowed, in order ("4 -> 6 (why)")."""
    steps = (line.rsplit("connections: ", 1)[1] for line in stderr.splitlines() if "connections: " in line)
    return [step for step in steps if re.match(r"\d+ -> \d+ ", step)]


def allowed(stderr: str) -> list[int]:
    """The counts themselves, in order (the 6 of "4 -> 6 (why)")."""
    return [int(step.split(" -> ")[1].split()[0]) for step in counts(stderr)]


def test_on_a_link_that_caps_each_connection_more_connections_are_opened(
    capped: HubServer, workdir: Path
) -> None:
    result = download(capped, workdir)
    assert counts(result.stderr)[0].startswith("4 -> 6"), result.stderr
    # More than the start and its first step: it kept growing (the count itself, not the wider
    # last stretch, which may open up to twice the count).
    assert max(allowed(result.stderr)) > 6, result.stderr
    assert peak_in_flight(capped.gets(BIG)) > 6, result.stderr
    assert capped.bytes_sent(BIG) == len(DATA)
    assert len(capped.redirects(BIG)) == 1  # one resolve for the file, every range to its CDN link


def test_where_one_connection_fills_the_link_only_a_handful_are_opened(
    uncapped: HubServer, workdir: Path
) -> None:
    download(uncapped, workdir)
    assert peak_in_flight(uncapped.gets()) <= 6


def test_workers_is_the_ceiling(capped: HubServer, workdir: Path) -> None:
    result = download(capped, workdir, "--workers", "5")
    assert peak_in_flight(capped.gets()) <= 5
    assert all(n <= 5 for n in allowed(result.stderr))


def test_a_fixed_count_opens_exactly_workers_connections(capped: HubServer, workdir: Path) -> None:
    result = download(capped, workdir, "--workers", "3", "--no-adapt")
    assert counts(result.stderr) == []
    # One whole file and two helpers through the run.
    assert peak_in_flight(capped.gets(BIG)) == 3


def test_one_worker_is_one_plain_stream(capped: HubServer, workdir: Path) -> None:
    download(capped, workdir, "--workers", "1")
    gets = capped.gets(BIG)
    assert len(gets) == 1 and gets[0].range is None and gets[0].status == 200
    assert peak_in_flight(capped.gets()) == 1


def test_503s_halve_the_count(capped: HubServer, workdir: Path) -> None:
    capped.add_fault(Fault(path=BIG, kind="status", status=503, times=3, origin="cdn"))
    result = download(capped, workdir)
    assert any(c.endswith("(HTTP 503)") for c in counts(result.stderr)), result.stderr
    halved = next(c for c in counts(result.stderr) if c.endswith("(HTTP 503)"))
    before, after = (int(n.split()[0]) for n in halved.split(" -> "))
    assert after == max(1, before // 2)


def test_429s_halve_the_count(capped: HubServer, workdir: Path) -> None:
    capped.add_fault(Fault(path=BIG, kind="status", status=429, times=2, origin="cdn"))
    result = download(capped, workdir)
    assert any(c.endswith("(HTTP 429)") for c in counts(result.stderr)), result.stderr


def test_a_download_killed_while_the_count_adapts_resumes_exactly(capped: HubServer, workdir: Path) -> None:
    models = workdir / "models"
    proc = spawn(capped, workdir, "download", "-m", str(manifest(workdir)), quiet=True)

    def done() -> int:
        return sum(p.done_bytes for p in list_parts(models / ".wanmodels" / "partial"))

    wait_until(lambda: done() >= len(DATA) // 2, "half the file in its part", timeout=120)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    kept = done()
    assert kept < len(DATA)
    assert capped.wait_idle(30)
    first = capped.bytes_sent(BIG)
    connections = peak_in_flight(capped.gets(BIG))
    capped.clear_log()
    download(capped, workdir)
    second = capped.bytes_sent(BIG)
    assert second <= len(DATA) - kept + (1 << 20), "the re-run fetched what the part already held"
    # Only what was in flight at the kill came twice: a few KiB per connection, not a range.
    resent = first + second - len(DATA)
    assert 0 <= resent <= connections * (64 << 10), (first, second, connections)
    assert connections > 1
