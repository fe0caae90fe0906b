"""The metadata path against the real Hub's failure modes: stalled and failing API answers, rate
limits, paginated listings leaked by a mirror, disabled repos, Xet-only entries, vanished commits.

The real CLI (`tests.support.clirun`) against the loopback Hub. Time bounds are generous upper bounds on
what would otherwise take the whole stall (30 s) or rate-limit window (minutes), and lower bounds
on waits the server asked for.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli, spawn, write_manifest
from tests.support.hubserver import Fault, HubServer
from tests.support.repos import safetensors_bytes

REPO = "test/meta"
OTHER = "test/meta-two"
FILES = {
    "config.json": b'{"meta": 1}\n',
    "model.safetensors": safetensors_bytes({"w": ("F32", [2048])}, seed=41),
    "notes/a.txt": b"a\n",
    "notes/b.txt": b"b\n",
    "notes/c.txt": b"c\n",
}
TREE = f"/api/models/{REPO}/tree/*"
REVISION = f"/api/models/{REPO}/revision/*"


@pytest.fixture
def meta(hub: HubServer, workdir: Path) -> Path:
    """A one-entry manifest over a small repo (and a second repo for two-entry runs)."""
    hub.add_repo(REPO, FILES)
    hub.add_repo(OTHER, {"config.json": b"{}"})
    return write_manifest(workdir / "meta.yaml", f"version: 1\nmodels:\n  - name: meta\n    repo: {REPO}\n")


def two_entries(workdir: Path) -> Path:
    return write_manifest(
        workdir / "two.yaml",
        f"version: 1\nmodels:\n  - name: meta\n    repo: {REPO}\n  - name: two\n    repo: {OTHER}\n",
    )


def api_requests(hub: HubServer, part: str) -> list[int]:
    """Statuses of the API requests whose path contains `part` (0 = abandoned before an answer)."""
    return [r.status for r in hub.requests if r.path.startswith("/api/") and part in r.path]


# -- timeouts and retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "kind"), [(TREE, "stall"), (REVISION, "hang")])
def test_a_stalled_metadata_answer_is_abandoned_after_the_timeout_and_retried(
    cli: Cli, hub: HubServer, meta: Path, route: str, kind: str
) -> None:
    hub.add_fault(Fault(path=route, api=True, kind=kind, seconds=120))
    started = time.monotonic()
    run = cli("lock", "-m", str(meta), HF_HUB_DOWNLOAD_TIMEOUT="1")
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 60  # not the 120 s of the stall, even on a busy machine
    part = "/tree/" if route == TREE else "/revision/"
    assert hub.wait_idle(10)  # the log skips a stalled request until the server has seen the client leave
    assert len(api_requests(hub, part)) == 2  # the stalled one, then the retry
    assert "timed out" in run.stderr and "retrying" in run.stderr
    assert "127.0.0.1" in run.stderr  # the host that failed is named
    assert (meta.parent / "meta.lock").is_file()


def test_server_errors_on_the_api_are_retried(cli: Cli, hub: HubServer, meta: Path) -> None:
    hub.add_fault(Fault(path=REVISION, api=True, kind="status", status=503, times=2))
    hub.add_fault(Fault(path=TREE, api=True, kind="status", status=500, times=1))
    hub.add_fault(Fault(path=TREE, api=True, kind="cut", after_bytes=10, times=1))
    run = cli("download", "-m", str(meta))
    assert run.returncode == 0, run.stderr
    assert api_requests(hub, "/revision/") == [503, 503, 200]
    assert api_requests(hub, "/tree/") == [500, 200, 200]  # a 500, a cut body, then whole
    assert "HTTP 503" in run.stderr and "retrying" in run.stderr


def test_an_api_failing_past_the_budget_exits_3(cli: Cli, hub: HubServer, meta: Path) -> None:
    hub.add_fault(Fault(path=REVISION, api=True, kind="status", status=502, times=None))
    run = cli("lock", "-m", str(meta))
    assert run.returncode == 3
    assert "entry 'meta'" in run.stderr and "HTTP 502" in run.stderr
    assert "gave up after 5 retries" in run.stderr
    assert len(api_requests(hub, "/revision/")) == 6
    assert "Traceback" not in run.stderr


# -- rate limits -------------------------------------------------------------------------------------------


def test_a_rate_limited_listing_waits_for_the_reset(cli: Cli, hub: HubServer, meta: Path) -> None:
    hub.add_fault(Fault(path=TREE, api=True, kind="status", status=429, ratelimit_reset=1))
    run = cli("download", "-m", str(meta))
    assert run.returncode == 0, run.stderr
    limited, answered = [r for r in hub.requests if "/tree/" in r.path]
    assert (limited.status, answered.status) == (429, 200)
    assert answered.started - limited.started >= 1.9  # the reset (1 s) plus its rounding margin
    assert "'api' rate limit is used up; it resets in 1 s" in run.stderr
    assert "retrying in 2.0s" in run.stderr


def test_a_long_rate_limit_wait_is_capped(cli: Cli, hub: HubServer, meta: Path) -> None:
    hub.add_fault(Fault(path=REVISION, api=True, kind="status", status=429, ratelimit_reset=3600))
    started = time.monotonic()
    run = cli("lock", "-m", str(meta), WANMODELS_RATE_LIMIT_WAIT="0.5")
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < 30  # not the hour the Hub named
    assert "resets in 3600 s" in run.stderr
    assert "retrying in 0.5s, shortened by WANMODELS_RATE_LIMIT_WAIT" in run.stderr


def test_a_bad_rate_limit_cap_is_a_usage_error(cli: Cli, meta: Path) -> None:
    run = cli("lock", "-m", str(meta), WANMODELS_RATE_LIMIT_WAIT="soon")
    assert run.returncode == 2
    assert "WANMODELS_RATE_LIMIT_WAIT" in run.stderr


@pytest.mark.parametrize("entries", [1, 2])
def test_ctrl_c_while_waiting_for_a_rate_limit_is_instant(
    hub: HubServer, meta: Path, workdir: Path, entries: int
) -> None:
    manifest = meta if entries == 1 else two_entries(workdir)
    hub.add_fault(
        Fault(path="/api/models/*", api=True, kind="status", status=429, ratelimit_reset=120, times=None)
    )
    proc = spawn(hub, workdir, "lock", "-m", str(manifest))
    try:
        deadline = time.monotonic() + 30
        while len([r for r in hub.requests if r.status == 429]) < entries:
            assert time.monotonic() < deadline, "the rate limit was never met"
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 10  # not the two minutes of the wait
    assert "Traceback" not in err


# -- listings, repos, entries ------------------------------------------------------------------------------


def test_a_mirror_leaking_the_public_hub_in_next_links_stays_on_the_mirror(
    cli: Cli, hub: HubServer, meta: Path, workdir: Path
) -> None:
    hub.tree_page_size = 2
    hub.tree_next_base = "https://huggingface.co"
    run = cli("download", "-m", str(meta))
    assert run.returncode == 0, run.stderr
    pages = [r for r in hub.requests if "/tree/" in r.path]
    assert len(pages) == 3  # 5 files and 1 folder, 2 a page: every page came from the mirror
    assert all(r.status == 200 for r in pages)
    for name, data in FILES.items():
        assert (workdir / "models" / "meta" / name).read_bytes() == data


def test_a_next_link_to_another_host_is_not_followed(cli: Cli, hub: HubServer, meta: Path) -> None:
    hub.tree_page_size = 2
    hub.tree_next_base = "http://localhost:9"
    run = cli("lock", "-m", str(meta), HF_TOKEN="hf_not_for_other_hosts_123")
    assert run.returncode == 3
    assert "continues on localhost:9" in run.stderr and "not following it" in run.stderr
    assert "hf_not_for_other_hosts_123" not in run.stderr


def test_a_disabled_repo_says_so(cli: Cli, hub: HubServer, meta: Path) -> None:
    assert cli("lock", "-m", str(meta)).returncode == 0
    hub.disable_repo(REPO)
    for args in (("lock",), ("download",)):  # the listing, then the file requests of a locked run
        run = cli(*args, "-m", str(meta))
        assert run.returncode == 3, run.stderr
        assert f"'{REPO}' is disabled" in run.stderr and "HTTP 403" in run.stderr
        assert "HF_TOKEN" not in run.stderr  # no token opens it: do not suggest one
        assert "Traceback" not in run.stderr


def test_a_locked_commit_the_hub_no_longer_has_asks_for_a_new_lock(
    cli: Cli, hub: HubServer, meta: Path, workdir: Path
) -> None:
    assert cli("lock", "-m", str(meta), "--root", str(workdir / "elsewhere")).returncode == 0
    lockfile = meta.parent / "meta.lock"
    commit = hub.resolve(REPO)
    lockfile.write_text(lockfile.read_text().replace(commit, "0123456789" * 4))  # history rewritten
    run = cli("download", "-m", str(meta), "--root", str(workdir / "elsewhere"))
    assert run.returncode == 3, run.stderr
    assert "commit 012345678901 is no longer on" in run.stderr
    assert f"wanmodels lock -m {meta} --root {workdir / 'elsewhere'}" in run.stderr
    run = cli("lock", "-m", str(meta), "--root", str(workdir / "elsewhere"))
    assert run.returncode == 0, run.stderr
    assert cli("download", "-m", str(meta), "--root", str(workdir / "elsewhere")).returncode == 0


def test_a_xet_only_entry_is_refused_at_plan_time(cli: Cli, hub: HubServer, workdir: Path) -> None:
    data = safetensors_bytes({"w": ("F32", [1024])}, seed=42)
    hub.add_repo("test/xet", {"a.safetensors": data, "config.json": b"{}"}, xet_only={"a.safetensors"})
    everything = write_manifest(workdir / "x.yaml", "version: 1\nmodels:\n  - name: x\n    repo: test/xet\n")
    run = cli("download", "-m", str(everything))
    assert run.returncode == 3
    assert "'a.safetensors'" in run.stderr and "Xet hash but no LFS sha256" in run.stderr
    assert "files:" in run.stderr  # how to make it checkable
    assert hub.gets() == []  # nothing was fetched

    excluded = write_manifest(
        workdir / "y.yaml",
        "version: 1\nmodels:\n  - name: y\n    repo: test/xet\n    exclude: ['*.safetensors']\n",
    )
    assert cli("download", "-m", str(excluded)).returncode == 0
    sha = hub.file_info("test/xet", "a.safetensors").sha256
    declared = write_manifest(
        workdir / "z.yaml",
        "version: 1\nmodels:\n  - name: z\n    repo: test/xet\n    files:\n"
        f"      a.safetensors: {{path: a.safetensors, sha256: {sha}}}\n",
    )
    run = cli("download", "-m", str(declared))
    assert run.returncode == 0, run.stderr
    assert (workdir / "models" / "z" / "a.safetensors").read_bytes() == data


def test_verbose_shows_huggingface_hubs_request_lines_and_ours(cli: Cli, hub: HubServer, meta: Path) -> None:
    hub.add_fault(Fault(path=TREE, api=True, kind="status", status=503))
    run = cli("download", "-m", str(meta), "-v")
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    for part in ("/revision/main", "/tree/", "/resolve/"):
        assert any("authenticated" in line and part in line for line in lines), part  # huggingface_hub's
        assert any(line.startswith("wanmodels.sources.hub: GET") and part in line for line in lines), (
            part
        )  # ours
    tree = [line for line in lines if line.startswith("wanmodels.sources.hub: GET") and "/tree/" in line]
    assert [line.rsplit(" ", 1)[-1] for line in tree] == ["503", "200"]  # the retry shows too
