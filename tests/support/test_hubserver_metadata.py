"""Failure modes of the fake Hub's metadata path, checked against the real client: rate limits with the
Hub's headers, faults live for a window of time, stalled API answers, paginated (and leaky) tree
listings, disabled repos, and Xet-only tree entries."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub.utils import hf_raise_for_status, parse_ratelimit_headers

from tests.support.hubserver import Fault, HubServer, run_client
from tests.support.repos import WAN_I2V_REPO_ID, add_repos, seed_repos

REPO = WAN_I2V_REPO_ID


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as srv:
        add_repos(srv, {REPO: seed_repos()[REPO]})
        yield srv
    assert srv.errors == []


def api_get(srv: HubServer, path: str, timeout: float = 10) -> httpx2.Response:
    return httpx2.get(f"{srv.url}{path}", timeout=timeout)


# -- rate limits and windows ---------------------------------------------------------------------------------


def test_429_carries_the_hubs_ratelimit_headers(hub: HubServer) -> None:
    hub.add_fault(Fault(path="/api/models/*", api=True, kind="status", status=429, ratelimit_reset=3))
    limited = api_get(hub, f"/api/models/{REPO}")
    assert limited.status_code == 429
    assert limited.headers["RateLimit"] == '"api";r=0;t=3'
    assert limited.headers["RateLimit-Policy"] == '"fixed window";"api";q=500;w=300'
    info = parse_ratelimit_headers(limited.headers)
    assert info is not None
    assert (info.remaining, info.reset_in_seconds, info.limit, info.window_seconds) == (0, 3, 500, 300)
    with pytest.raises(Exception, match="rate limit") as raised:
        hf_raise_for_status(limited)
    assert "Retry after 3 seconds" in str(raised.value)
    assert api_get(hub, f"/api/models/{REPO}").status_code == 200  # times=1 by default


def test_fault_window(hub: HubServer) -> None:
    lasting = hub.add_fault(Fault(path="/api/models/*", api=True, kind="status", status=503, for_seconds=60))
    assert lasting.times is None  # a window fails every matching request in it
    assert [api_get(hub, f"/api/models/{REPO}").status_code for _ in range(3)] == [503, 503, 503]
    assert lasting.applied == 3
    hub.clear_faults()

    brief = hub.add_fault(Fault(path="/api/models/*", api=True, kind="status", status=503, for_seconds=0.3))
    deadline = time.monotonic() + 10
    while api_get(hub, f"/api/models/{REPO}").status_code == 503:
        assert time.monotonic() < deadline, "a 0.3 s fault window never closed"
        time.sleep(0.05)
    applied = brief.applied
    assert not brief.live()
    assert api_get(hub, f"/api/models/{REPO}").status_code == 200
    assert brief.applied == applied

    capped = Fault(kind="status", for_seconds=60, times=2)
    assert capped.times == 2
    assert not capped.live()  # a windowed fault is dormant until armed
    capped.armed_at = 100.0
    assert capped.live(now=159.9)
    assert not capped.live(now=160.0)


# -- stalls --------------------------------------------------------------------------------------------------


def test_stalled_api_answers_trip_the_clients_timeout(hub: HubServer, tmp_path: Path) -> None:
    hub.add_fault(Fault(path=f"/api/models/{REPO}", api=True, kind="stall", seconds=120))
    started = time.monotonic()
    result = run_client(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import HfApi
        try:
            HfApi().model_info({REPO!r}, timeout=0.5)
            print(json.dumps({{"error": None}}))
        except Exception as e:
            print(json.dumps({{"error": type(e).__name__}}))
        """,
    )
    assert result == {"error": "ReadTimeout"}
    # `hang` sends nothing at all, not even a status line; then (if the client is still there) answers.
    hub.add_fault(Fault(path=f"/api/models/{REPO}/tree/*", api=True, kind="hang", seconds=120))
    with pytest.raises(httpx2.ReadTimeout):
        api_get(hub, f"/api/models/{REPO}/tree/main", timeout=0.5)
    assert time.monotonic() - started < 60  # nowhere near the 120 s stalls, even on a busy machine
    assert hub.wait_idle(30)  # both stalled handlers noticed their client leave
    stalled, hung = hub.requests
    assert (stalled.status, stalled.fault, stalled.bytes_sent) == (200, "stall", 0)  # headers only
    assert (hung.status, hung.fault, hung.bytes_sent) == (0, "hang", 0)

    hub.add_fault(Fault(path=f"/api/models/{REPO}/tree/*", api=True, kind="hang", seconds=0.2))
    assert api_get(hub, f"/api/models/{REPO}/tree/main").status_code == 200  # a patient client is answered


# -- tree pagination -----------------------------------------------------------------------------------------


def test_tree_pagination_follows_link_next(hub: HubServer, tmp_path: Path) -> None:
    code = f"""
        import json
        from huggingface_hub import HfApi
        api = HfApi()
        print(json.dumps({{
            "flat": [f.path for f in api.list_repo_tree({REPO!r}, recursive=True)],
            "sub": [f.path for f in api.list_repo_tree({REPO!r}, path_in_repo="google", recursive=True)],
            "expand": [f.path for f in api.list_repo_tree({REPO!r}, recursive=True, expand=True)],
        }}))
    """
    whole = run_client(hub, tmp_path, code)
    assert len(whole["flat"]) > 7
    hub.clear_log()
    hub.tree_page_size = 3
    assert run_client(hub, tmp_path, code) == whole
    pages = [r for r in hub.requests if "/tree/" in r.path]
    assert len(pages) > 3 * 2  # each listing took several pages
    assert all(r.status == 200 for r in pages)
    assert sum("cursor=" in r.query for r in pages) == len(pages) - 3


def test_tree_next_link_can_leak_another_base(hub: HubServer) -> None:
    hub.tree_page_size = 2
    first = api_get(hub, f"/api/models/{REPO}/tree/main?recursive=true")
    assert len(first.json()) == 2
    own = first.links["next"]["url"]
    assert own.startswith(f"{hub.url}/api/models/{REPO}/tree/main?")
    assert re.search(r'<[^>]+>; rel="next"', first.headers["Link"])

    hub.tree_next_base = "https://huggingface.co"
    leaked = api_get(hub, f"/api/models/{REPO}/tree/main?recursive=true").links["next"]["url"]
    assert leaked == own.replace(hub.url, "https://huggingface.co")
    second = api_get(hub, leaked.replace("https://huggingface.co", ""))  # the cursor itself is sound
    assert len(second.json()) == 2
    assert second.json() != first.json()
    bad = api_get(hub, f"/api/models/{REPO}/tree/main?cursor=%%%")
    assert bad.status_code == 400


# -- disabled repos and Xet-only entries ---------------------------------------------------------------------


def test_disabled_repo_raises_disabled_repo_error(hub: HubServer, tmp_path: Path) -> None:
    hub.disable_repo(REPO)
    code = f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import DisabledRepoError
        def name(fn):
            try:
                fn()
            except Exception as e:
                return [type(e).__name__, isinstance(e, DisabledRepoError), type(e.__cause__).__name__]
            return "ok"
        print(json.dumps({{
            "info": name(lambda: HfApi().model_info({REPO!r})),
            "tree": name(lambda: list(HfApi().list_repo_tree({REPO!r}))),
            "file": name(lambda: hf_hub_download({REPO!r}, "config.json")),
        }}))
    """
    result = run_client(hub, tmp_path, code)
    assert result["info"] == result["tree"] == ["DisabledRepoError", True, "HTTPStatusError"]
    # hf_hub_download turns any HTTP error of its HEAD into "not in the local cache" (the cause is kept).
    assert result["file"] == ["LocalEntryNotFoundError", False, "DisabledRepoError"]
    denied = hub.requests
    assert denied
    assert {r.status for r in denied} == {403}
    answer = api_get(hub, f"/api/models/{REPO}")
    assert answer.headers["X-Error-Code"] == "DisabledRepo"
    assert answer.headers["X-Error-Message"] == "Access to this resource is disabled."

    hub.disable_repo(REPO, disabled=False)
    assert api_get(hub, f"/api/models/{REPO}").json()["disabled"] is False


def test_xet_only_entry_has_no_lfs_block(tmp_path: Path) -> None:
    files = {"a.safetensors": b"\x01" * 100, "b.safetensors": b"\x02" * 100, "config.json": b"{}"}
    with HubServer() as srv:
        srv.add_repo("xet/r", files, xet_only={"a.safetensors"})
        with pytest.raises(ValueError, match="xet_only"):
            srv.add_repo("xet/r", files, xet_only={"missing.bin"})
        result = run_client(
            srv,
            tmp_path,
            """
            import json
            from huggingface_hub import HfApi
            api = HfApi()
            entries = list(api.list_repo_tree("xet/r")) + list(api.get_paths_info("xet/r", ["a.safetensors"]))
            print(json.dumps([[f.path, f.xet_hash, f.lfs is not None] for f in entries]))
            """,
        )
        xet = srv.file_info("xet/r", "a.safetensors").xet_hash
        assert sorted(map(tuple, result)) == [
            ("a.safetensors", xet, False),
            ("a.safetensors", xet, False),
            ("b.safetensors", None, True),
            ("config.json", None, False),
        ]
        assert re.fullmatch(r"[0-9a-f]{64}", xet)
    assert srv.errors == []
