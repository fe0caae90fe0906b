"""A Hub or mirror that misbehaves on purpose: listings that never end, answers too large or too
deep to read, impossible sizes. Each is refused with one line and exit 3, having read little.

The real CLI (`tests.support.clirun`) against the loopback Hub and its hostile knobs.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

import wanmodels.sources.hub as hub_module
from tests.support.cli import Cli, write_manifest
from tests.support.hubserver import Fault, HubServer
from wanmodels.config import Settings, resolve_settings
from wanmodels.sources._hub_http import private_address
from wanmodels.sources.hub import Hub

REPO = "test/hostile"
FILES = {"config.json": b'{"h": 1}\n', "a.txt": b"a\n", "b.txt": b"b\n", "sub/c.txt": b"c\n"}
TREE = f"/api/models/{REPO}/tree/*"


@pytest.fixture
def manifest(hub: HubServer, workdir: Path) -> Path:
    hub.add_repo(REPO, FILES)
    return write_manifest(workdir / "h.yaml", f"version: 1\nmodels:\n  - name: h\n    repo: {REPO}\n")


def tree_requests(hub: HubServer) -> int:
    return sum("/tree/" in r.path for r in hub.requests)


def one_line_refusal(run_stderr: str) -> None:
    assert "Traceback" not in run_stderr
    assert len([line for line in run_stderr.splitlines() if line.startswith("error:")]) == 1


@pytest.mark.parametrize("page_size", [2, None])
def test_a_listing_that_leads_back_to_itself_is_refused(
    cli: Cli, hub: HubServer, manifest: Path, page_size: int | None
) -> None:
    hub.tree_page_size = page_size
    hub.tree_pages = "cycle"
    run = cli("download", "-m", str(manifest), timeout=60)
    assert run.returncode == 3, run.stderr
    assert f"file listing of '{REPO}'" in run.stderr and "not reading further" in run.stderr
    one_line_refusal(run.stderr)
    assert tree_requests(hub) <= 3  # the first page and its repeat, at most once more
    assert hub.gets() == []


def test_a_listing_of_empty_pages_without_end_is_refused(cli: Cli, hub: HubServer, manifest: Path) -> None:
    hub.tree_page_size = 2
    hub.tree_pages = "endless"
    run = cli("lock", "-m", str(manifest), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "an empty page that says more follow" in run.stderr
    one_line_refusal(run.stderr)
    assert tree_requests(hub) == 4  # 5 entries (4 files, 1 folder) in 3 pages, then one empty page


def test_an_answer_larger_than_the_cap_is_refused_unread(cli: Cli, hub: HubServer, manifest: Path) -> None:
    huge = b"[" + b" " * (40 << 20) + b"]"  # valid JSON (an empty list), 40 MiB of it
    hub.add_fault(Fault(path=TREE, api=True, kind="body", body=huge))
    run = cli("lock", "-m", str(manifest), timeout=60)
    assert run.returncode == 3, run.stderr
    assert "is larger than 32 MiB" in run.stderr
    one_line_refusal(run.stderr)


def test_deeply_nested_json_in_a_listing_is_one_line_exit_3(cli: Cli, hub: HubServer, manifest: Path) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    hub.add_fault(Fault(path=TREE, api=True, kind="body", body=deep))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3, run.stderr
    assert "nested too deeply" in run.stderr
    one_line_refusal(run.stderr)


def test_a_negative_size_in_a_listing_is_refused_at_plan_time(
    cli: Cli, hub: HubServer, manifest: Path
) -> None:
    def negative(items: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**item, "size": -5} if item["path"] == "a.txt" else item for item in items]

    hub.add_fault(Fault(path=TREE, api=True, kind="edit", edit=negative))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3, run.stderr
    assert "'a.txt' has a negative size (-5)" in run.stderr
    one_line_refusal(run.stderr)
    assert hub.gets() == []


# -- slow drip ------------------------------------------------------------------------------------------

BIG = "big.bin"
FLOOR = "(a connection must keep up 1 KiB/s)"


@pytest.fixture
def big(hub: HubServer, workdir: Path) -> tuple[Path, bytes]:
    data = bytes(range(256)) * 4096  # 1 MiB
    hub.add_repo("test/drip", {BIG: data})
    manifest = write_manifest(workdir / "d.yaml", "version: 1\nmodels:\n  - name: d\n    repo: test/drip\n")
    return manifest, data


def test_a_trickling_file_is_dropped_and_fails_after_its_budget(
    cli: Cli, hub: HubServer, big: tuple[Path, bytes]
) -> None:
    manifest, _ = big
    hub.add_fault(Fault(path=BIG, kind="trickle", rate=20, times=None))
    # --timeout 0.5: each connection is given 1.5 s of waiting to show 1 KiB/s.
    run = cli("download", "-m", str(manifest), "--timeout", "0.5", "--workers", "1", timeout=120)
    assert run.returncode == 3, run.stderr
    assert f"sent '{BIG}' at " in run.stderr and f"B/s over 1.5 s {FLOOR}" in run.stderr
    assert "gave up after 5 retries" in run.stderr
    assert hub.wait_idle(30)
    assert len(hub.gets(BIG)) == 6  # the trickles never refilled the budget
    assert "Traceback" not in run.stderr


def test_a_dropped_trickle_keeps_its_bytes_and_the_retry_asks_for_the_rest(
    cli: Cli, hub: HubServer, big: tuple[Path, bytes], workdir: Path
) -> None:
    manifest, data = big
    hub.add_fault(Fault(path=BIG, kind="trickle", after_bytes=100_000, rate=20, times=1))
    run = cli("download", "-m", str(manifest), "--timeout", "0.5", "--workers", "1", timeout=120)
    assert run.returncode == 0, run.stderr
    assert FLOOR in run.stderr and "retrying" in run.stderr
    assert (workdir / "models" / "d" / BIG).read_bytes() == data
    assert hub.wait_idle(30)
    first, second = hub.gets(BIG)
    assert first.fault == "trickle" and first.bytes_sent >= 100_000
    # The retry starts after every byte that arrived (the server may count a few more it wrote
    # into the socket before it noticed the hang-up).
    assert second.range is not None and second.range.endswith("-")
    assert 100_000 < int(second.range[len("bytes=") : -1]) <= first.bytes_sent


def test_one_byte_per_response_runs_out_of_tries(cli: Cli, hub: HubServer, big: tuple[Path, bytes]) -> None:
    manifest, _ = big
    hub.add_fault(Fault(path=BIG, kind="cut", after_bytes=1, times=None))
    run = cli("download", "-m", str(manifest), "--workers", "1", timeout=120)
    assert run.returncode == 3, run.stderr
    assert "gave up after 5 retries" in run.stderr
    assert len(hub.gets(BIG)) == 6  # a byte a response is no progress: one try plus five retries
    assert run.stderr.count("retrying") == 5


def test_a_trickling_metadata_answer_is_dropped_and_retried_within_a_bound(
    cli: Cli, hub: HubServer, manifest: Path
) -> None:
    hub.add_fault(Fault(path=f"/api/models/{REPO}/revision/*", api=True, kind="trickle", rate=20, times=None))
    run = cli("download", "-m", str(manifest), "--dry-run", "--timeout", "0.3", timeout=120)
    assert run.returncode == 3, run.stderr
    assert f"sent its answer for '{REPO}' at " in run.stderr and FLOOR in run.stderr
    assert "gave up after 5 retries" in run.stderr
    one_line_refusal(run.stderr)


def test_a_slow_but_steady_link_is_never_dropped(
    cli: Cli, hub: HubServer, big: tuple[Path, bytes], workdir: Path
) -> None:
    manifest, data = big
    # About 100 KiB/s shared by 16 connections: about 6 KiB/s each, the share of a slow home link.
    hub.link_rate = 100_000
    run = cli("download", "-m", str(manifest), "--timeout", "1", timeout=180)
    assert run.returncode == 0, run.stderr
    assert FLOOR not in run.stderr and "retrying" not in run.stderr
    assert (workdir / "models" / "d" / BIG).read_bytes() == data
    assert len(hub.gets(BIG)) > 1  # the file was split across connections, each of them slower


# -- redirects into the local network -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "private"),
    [
        ("10.1.2.3", True),
        ("169.254.169.254", True),
        ("192.168.0.1", True),
        ("172.16.5.4", True),
        ("100.64.0.1", True),
        ("127.0.0.1", True),
        ("fd00::1", True),
        ("[fe80::1]", True),
        ("::ffff:10.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
        ("::ffff:8.8.8.8", False),
    ],
)
def test_which_addresses_count_as_private(host: str, private: bool) -> None:
    assert (private_address(host) is not None) is private


def test_a_public_hubs_redirect_to_a_private_address_is_refused(
    cli: Cli, hub: HubServer, big: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest, _ = big
    # The test Hub plays a public one: its own address is taken for a public address (and only it).
    real = hub_module.private_address
    monkeypatch.setattr(hub_module, "private_address", lambda h: None if h == "127.0.0.1" else real(h))
    hub.add_fault(Fault(path=BIG, kind="redirect", location="http://192.0.2.1/latest/meta-data/", times=None))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3, run.stderr
    assert f"'{BIG}' in 'test/drip': the Hub at 127.0.0.1:" in run.stderr
    assert "redirected to 192.0.2.1, which is 192.0.2.1 (private); not following it" in run.stderr
    assert "WANMODELS_ALLOW_PRIVATE_REDIRECTS=1" in run.stderr
    assert "allow it" not in run.stderr  # no advice to open the firewall to it
    assert [r.status for r in hub.requests if r.file == BIG] == [302]  # refused at once, never retried


def test_private_redirects_can_be_allowed_and_a_private_endpoint_needs_nothing() -> None:
    assert resolve_settings().allow_private_redirects is False
    allowed = Settings(endpoint="https://huggingface.co", allow_private_redirects=True)
    Hub(allowed)._vet(httpx2.URL("http://192.0.2.1/x"))  # no refusal: the user allowed it
    Hub(Settings(endpoint="http://127.0.0.1:1"))._vet(httpx2.URL("http://10.0.0.1/x"))  # a LAN mirror


# -- requests the download does not need ---------------------------------------------------------------------


def probes(hub: HubServer) -> int:
    return sum(r.path == "/api/agent-harnesses" for r in hub.requests)


def test_the_cli_asks_the_hub_nothing_for_telemetry_unless_told_to(
    cli: Cli, hub: HubServer, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY")  # as a user's shell has it: unset
    run = cli("download", "-m", str(manifest), process=True)  # huggingface_hub reads it at import
    assert run.returncode == 0, run.stderr
    assert probes(hub) == 0
    # The user's own choice stands: with telemetry on, huggingface_hub probes the Hub as it does.
    run = cli("lock", "-m", str(manifest), HF_HUB_DISABLE_TELEMETRY="0")
    assert run.returncode == 0, run.stderr
    assert probes(hub) >= 1
