"""The fake Hub's network shape: the CDN origin behind 302s (signed, expiring URLs, faults of its own),
per-connection and link pacing, and the round trip every response pays.

The real client runs in a subprocess (it reads `HF_ENDPOINT` at import); wire details are checked in-process
with `http.client`. Bounds on time are lower bounds only: a busy machine can only make things slower.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.hubserver import Fault, HubServer, run_client
from tests.support.repos import safetensors_bytes

REPO = "acme/weights"
LFS_FILE = "model.safetensors"
CONFIG = "config.json"
DATA = safetensors_bytes(data_size=600_000, seed=21)
FILES = {LFS_FILE: DATA, CONFIG: b'{"model": true}\n', "nested/extra.bin": b"\x00\x01" * 5000}
MIB = 1 << 20


@pytest.fixture
def cdn_hub() -> Iterator[HubServer]:
    with HubServer(cdn=True) as srv:
        srv.add_repo(REPO, FILES)
        yield srv
    assert srv.errors == []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def request(
    url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a fresh connection to `url` (`http://host:port`): status, headers, body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.headers, answer.read()
    finally:
        conn.close()


def cdn_location(srv: HubServer, file: str = LFS_FILE, method: str = "HEAD", repo: str = REPO) -> str:
    status, headers, _ = request(srv.url, f"/{repo}/resolve/main/{file}", method)
    assert status == 302
    return headers["Location"]


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"


# -- the CDN origin ------------------------------------------------------------------------------------------


def test_lfs_resolve_redirects_to_cdn_and_token_stays_on_the_hub(cdn_hub: HubServer, tmp_path: Path) -> None:
    cdn_hub.require_token(REPO, "hf_secret", gated=False)
    result = run_client(
        cdn_hub,
        tmp_path,
        f"""
        import hashlib, io, json
        from huggingface_hub import hf_hub_download, hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers
        lfs = open(hf_hub_download({REPO!r}, {LFS_FILE!r}), "rb").read()
        config = open(hf_hub_download({REPO!r}, {CONFIG!r}), "rb").read()
        buf = io.BytesIO()  # the path wanmodels takes: GET the resolve URL, follow the 302, resume with Range
        http_get(hf_hub_url({REPO!r}, {LFS_FILE!r}), buf, resume_size=1000, headers=build_hf_headers())
        print(json.dumps({{"lfs": hashlib.sha256(lfs).hexdigest(), "config": config.decode(),
                          "tail": hashlib.sha256(buf.getvalue()).hexdigest()}}))
        """,
        HF_TOKEN="hf_secret",
    )
    assert result == {"lfs": sha256(DATA), "config": FILES[CONFIG].decode(), "tail": sha256(DATA[1000:])}

    hub_side = [r for r in cdn_hub.requests if r.origin == "hub"]
    cdn_side = [r for r in cdn_hub.requests if r.origin == "cdn"]
    assert hub_side
    assert all(r.authorized for r in hub_side)  # the token goes to the Hub ...
    assert cdn_side
    assert not any(r.authorized for r in cdn_side)  # ... and never to the CDN
    assert {(r.method, r.file) for r in cdn_side} == {("GET", LFS_FILE)}  # config.json never left the Hub
    assert {(r.method, r.status) for r in cdn_hub.redirects(LFS_FILE)} == {("HEAD", 302), ("GET", 302)}

    # Per-file accounting follows the bytes to whichever origin served them.
    downloads = cdn_hub.gets(LFS_FILE)
    assert [(r.origin, r.status, r.range) for r in downloads] == [
        ("cdn", 200, None),
        ("cdn", 206, "bytes=1000-"),
    ]
    assert {r.revision for r in downloads} == {cdn_hub.resolve(REPO)}
    assert cdn_hub.bytes_sent(LFS_FILE) == 2 * len(DATA) - 1000
    assert [(r.origin, r.status) for r in cdn_hub.gets(CONFIG)] == [("hub", 200)]


def test_redirect_headers_cdn_ranges_and_refusals(cdn_hub: HubServer) -> None:
    assert cdn_hub.cdn_url is not None
    assert urlsplit(cdn_hub.cdn_url).hostname == "localhost" != urlsplit(cdn_hub.url).hostname
    status, headers, _ = request(cdn_hub.url, f"/{REPO}/resolve/main/{LFS_FILE}", "HEAD")
    assert status == 302
    assert headers["X-Repo-Commit"] == cdn_hub.resolve(REPO)
    assert headers["X-Linked-Etag"] == headers["ETag"] == f'"{sha256(DATA)}"'
    assert headers["X-Linked-Size"] == str(len(DATA))
    location = headers["Location"]
    assert location.startswith(f"{cdn_hub.cdn_url}/{sha256(DATA)}?")
    assert location != cdn_location(cdn_hub)  # every resolve signs a fresh URL

    status, headers, body = request(cdn_hub.cdn_url, path_of(location), headers={"Range": "bytes=10-19"})
    assert (status, headers["Content-Range"], body) == (206, f"bytes 10-19/{len(DATA)}", DATA[10:20])
    assert "X-Repo-Commit" not in headers  # the CDN speaks no Hub headers
    status, headers, body = request(cdn_hub.cdn_url, path_of(location), "HEAD", {"Authorization": "Bearer x"})
    assert (status, headers["Content-Length"], headers["Accept-Ranges"]) == (200, str(len(DATA)), "bytes")

    forged = path_of(location).replace("sig=", "sig=0")
    other = f"/{'0' * 64}?{urlsplit(location).query}"
    for path in (forged, other, "/"):
        assert request(cdn_hub.cdn_url, path)[0] == 403
    assert request(cdn_hub.url, f"/{REPO}/resolve/main/{CONFIG}")[2] == FILES[CONFIG]  # no redirect

    cdn_side = [r for r in cdn_hub.requests if r.origin == "cdn"]
    assert [(r.method, r.status, r.file) for r in cdn_side] == [
        ("GET", 206, LFS_FILE),
        ("HEAD", 200, LFS_FILE),
        ("GET", 403, None),
        ("GET", 403, None),
        ("GET", 403, None),
    ]
    assert [r.authorized for r in cdn_side[:2]] == [False, True]  # recorded as sent; the CDN ignores it


def test_a_cdn_origin_elsewhere_gets_the_redirects(tmp_path: Path) -> None:
    """`cdn_origin`: a static server holding each file under its sha256 serves the bytes (here a
    stdlib one, as a benchmark would use nginx); the Hub still lists and resolves."""
    import functools
    import http.server

    (tmp_path / sha256(DATA)).write_bytes(DATA)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{static.server_address[1]}"
    try:
        with HubServer(cdn=True, cdn_origin=origin) as srv:
            srv.add_repo(REPO, FILES)
            location = cdn_location(srv, method="GET")
            assert location.startswith(f"{origin}/{sha256(DATA)}?sig=")
            assert request(origin, path_of(location))[2] == DATA
            assert srv.redirects(LFS_FILE) and not srv.gets(LFS_FILE)  # no byte came from the Hub
    finally:
        static.shutdown()
        static.server_close()


def test_signed_urls_expire(cdn_hub: HubServer) -> None:
    cdn_hub.cdn_url_ttl = 0.3
    short = cdn_location(cdn_hub)
    cdn_hub.cdn_url_ttl = None
    lasting = cdn_location(cdn_hub)
    assert "expires=" not in lasting
    expires = float(parse_qs(urlsplit(short).query)["expires"][0])
    deadline = time.monotonic() + 10
    while time.time() <= expires and time.monotonic() < deadline:
        time.sleep(0.05)
    status, _, body = request(cdn_hub.cdn_url or "", path_of(short))
    assert status == 403
    assert b"expired" in body
    assert request(cdn_hub.cdn_url or "", path_of(lasting))[2] == DATA

    cdn_hub.expire_cdn_urls()  # as if hours had passed: every URL issued so far is refused
    assert request(cdn_hub.cdn_url or "", path_of(lasting))[0] == 403
    assert request(cdn_hub.cdn_url or "", path_of(cdn_location(cdn_hub)))[2] == DATA  # a fresh resolve works
    assert [r.status for r in cdn_hub.gets(LFS_FILE)] == [403, 200, 403, 200]


def test_cdn_faults(cdn_hub: HubServer, tmp_path: Path) -> None:
    cdn = cdn_hub.cdn_url or ""
    cdn_hub.add_fault(Fault(path=LFS_FILE, kind="cut", after_bytes=100_000, origin="cdn"))
    code = f"""
        import hashlib, io, json
        from huggingface_hub import hf_hub_url
        from huggingface_hub.file_download import http_get
        buf = io.BytesIO()
        http_get(hf_hub_url({REPO!r}, {LFS_FILE!r}), buf)
        print(json.dumps({{"sha256": hashlib.sha256(buf.getvalue()).hexdigest()}}))
    """
    assert run_client(cdn_hub, tmp_path, code) == {"sha256": sha256(DATA)}
    cut, retry = cdn_hub.gets(LFS_FILE)
    assert (cut.origin, cut.fault, cut.bytes_sent, retry.status, retry.fault) == (
        "cdn",
        "cut",
        100_000,
        200,
        None,
    )
    assert len(cdn_hub.redirects(LFS_FILE)) == 2  # the retry re-resolved and got a fresh URL

    cdn_hub.clear_log()
    for fault in (
        Fault(path=LFS_FILE, kind="status", status=503, origin="cdn"),
        Fault(path=LFS_FILE, kind="status", status=403, origin="cdn"),
        Fault(path="*.safetensors", kind="corrupt", origin="cdn"),
        Fault(path=LFS_FILE, kind="ignore_range", origin="cdn"),
    ):
        cdn_hub.add_fault(fault)
    assert request(cdn, path_of(cdn_location(cdn_hub)))[0] == 503
    assert request(cdn, path_of(cdn_location(cdn_hub)))[0] == 403
    corrupt = request(cdn, path_of(cdn_location(cdn_hub)))[2]
    assert len(corrupt) == len(DATA) != 0
    assert corrupt != DATA
    status, _, body = request(cdn, path_of(cdn_location(cdn_hub)), headers={"Range": "bytes=5-"})
    assert (status, body) == (200, DATA)
    assert request(cdn_hub.url, f"/{REPO}/resolve/main/{CONFIG}")[0] == 200  # Hub files untouched

    cdn_hub.add_fault(Fault(path=LFS_FILE, kind="reset", after_bytes=5000, origin="cdn"))
    with pytest.raises((ConnectionError, http.client.IncompleteRead)):
        request(cdn, path_of(cdn_location(cdn_hub)))
    cdn_hub.add_fault(Fault(path=LFS_FILE, kind="stall", after_bytes=10, seconds=30, origin="cdn"))
    parts = urlsplit(cdn)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=0.5)
    conn.request("GET", path_of(cdn_location(cdn_hub)))
    answer = conn.getresponse()
    with pytest.raises(TimeoutError):
        answer.read()
    conn.close()
    assert cdn_hub.wait_idle(10)  # the stalled handler noticed the hang-up
    assert [(r.status, r.fault) for r in cdn_hub.gets(LFS_FILE)] == [
        (503, "status"),
        (403, "status"),
        (200, "corrupt"),
        (200, "ignore_range"),
        (200, "reset"),
        (200, "stall"),
    ]
    assert all(r.origin == "cdn" for r in cdn_hub.gets(LFS_FILE))


def test_fault_origin_is_checked() -> None:
    with pytest.raises(ValueError, match="origin"):
        Fault(origin="ftp")
    with pytest.raises(ValueError, match="CDN has no API"):
        Fault(api=True, origin="cdn")
    with HubServer() as srv, pytest.raises(ValueError, match="cdn=True"):
        srv.add_fault(Fault(origin="cdn"))


# -- pacing and round trips ----------------------------------------------------------------------------------


def timed_get(url: str, path: str, results: list[float], headers: dict[str, str] | None = None) -> None:
    started = time.monotonic()
    status, _, body = request(url, path, headers=headers)
    assert status in (200, 206)
    assert body
    results.append(time.monotonic() - started)


def test_conn_rate_and_link_rate_pace_bodies() -> None:
    # Exactly 1 MiB: "w.dat" stays on the Hub, its LFS twin goes through the CDN.
    blob = bytes(range(256)) * (MIB // 256)
    with HubServer(cdn=True) as srv:
        srv.add_repo("pace/r", {"w.dat": blob, "w.safetensors": blob})
        hub_path = "/pace/r/resolve/main/w.dat"
        # 1 MiB on one connection at 4 MiB/s: at least ~0.25 s (the first piece leaves at once).
        srv.conn_rate = 4 * MIB
        took: list[float] = []
        timed_get(srv.url, hub_path, took)
        assert took[-1] >= 0.2
        # Same on the CDN.
        location = cdn_location(srv, "w.safetensors", "GET", "pace/r")
        timed_get(srv.cdn_url or "", path_of(location), took)
        assert took[-1] >= 0.2

        # The link is shared: two connections, 512 KiB each, through a 4 MiB/s link take >= ~0.25 s.
        srv.conn_rate, srv.throttle_bps = None, 4 * MIB
        assert srv.link_rate == 4 * MIB  # `throttle_bps` is the link rate
        halves = [{"Range": f"bytes={i}-{i + MIB // 2 - 1}"} for i in (0, MIB // 2)]
        threads = [threading.Thread(target=timed_get, args=(srv.url, hub_path, took, h)) for h in halves]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(took) == 4
        assert max(took[2:]) >= 0.2
        assert [r.bytes_sent for r in srv.gets()] == [MIB, MIB, MIB // 2, MIB // 2]
    assert srv.errors == []


def test_rtt_delays_every_response(cdn_hub: HubServer) -> None:
    cdn_hub.rtt = 0.2
    started = time.monotonic()
    location = cdn_location(cdn_hub)  # resolve on the Hub: one round trip
    assert request(cdn_hub.cdn_url or "", path_of(location))[2] == DATA  # the CDN: another
    assert request(cdn_hub.url, f"/api/models/{REPO}")[0] == 200  # the API: another
    assert time.monotonic() - started >= 0.6
    records = cdn_hub.requests
    assert {r.origin for r in records} == {"hub", "cdn"}
    assert all(r.elapsed >= 0.2 for r in records)


def test_clear_log_forgets_requests_still_running(cdn_hub: HubServer) -> None:
    cdn_hub.add_fault(Fault(path=CONFIG, kind="stall", after_bytes=4, seconds=30))
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(cdn_hub.url).port, timeout=10)
    conn.request("GET", f"/{REPO}/resolve/main/{CONFIG}")
    assert conn.getresponse().read(4) == FILES[CONFIG][:4]
    cdn_hub.clear_log()  # the stalled request started before: it must not show up when it ends
    conn.close()
    assert cdn_hub.wait_idle(10)
    assert cdn_hub.requests == []
    assert request(cdn_hub.url, f"/{REPO}/resolve/main/{CONFIG}")[2] == FILES[CONFIG]
    assert [r.file for r in cdn_hub.requests] == [CONFIG]
