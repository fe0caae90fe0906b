"""The fake Hub's hostile knobs: cyclic and endless pagination, slow-drip bodies, one byte per
response, redirects to any address, API answers replaced or edited, and requests sent as to a proxy.

Checked on the wire with `http.client`; bounds on time are lower bounds only (a busy machine can only
make things slower).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.support.hubserver import Fault, HubServer

REPO = "acme/hostile"
FILES = {"a.json": b'{"a": 1}\n', "b.json": b'{"b": 2}\n', "c.bin": bytes(range(256)) * 40}


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as srv:
        srv.add_repo(REPO, FILES)
        yield srv
    assert srv.errors == []


def get(srv: HubServer, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(srv.url).port, timeout=30)
    conn.request("GET", path, headers=headers or {})
    return conn.getresponse()


TREE = f"/api/models/{REPO}/tree/main?recursive=true"


def tree(srv: HubServer, path: str = TREE) -> tuple[list[dict[str, object]], str | None]:
    """One page of the listing, and the path (with query) its next link names."""
    answer = get(srv, path)
    assert answer.status == 200
    link = answer.headers.get("Link")
    following = None
    if link is not None:
        assert link.endswith('>; rel="next"')
        url = urlsplit(link[1 : link.index(">")])
        following = f"{url.path}?{url.query}"
    return json.loads(answer.read()), following


def test_a_cyclic_listing_leads_back_to_its_first_page_forever(hub: HubServer) -> None:
    hub.tree_page_size = 2
    hub.tree_pages = "cycle"
    first, link = tree(hub)
    for _ in range(3):
        page, again = tree(hub, link)
        assert page == first
        assert again == link  # the same next link every time: a loop, never an end
    hub.tree_page_size = None  # the whole listing as one page, leading to itself
    whole, link = tree(hub)
    assert len(whole) == len(FILES)
    assert tree(hub, link) == (whole, link)


def test_an_endless_listing_follows_its_last_entry_with_empty_pages(hub: HubServer) -> None:
    hub.tree_page_size = 2
    hub.tree_pages = "endless"
    seen = []
    page, link = tree(hub)
    for _ in range(5):
        seen += page
        page, following = tree(hub, link)
        assert following is not None and following != link
        link = following
    assert sorted(str(e["path"]) for e in seen) == sorted(FILES)
    assert page == []


def test_a_trickle_sends_its_first_bytes_at_once_and_the_rest_at_its_rate(hub: HubServer) -> None:
    hub.add_fault(Fault(path="c.bin", kind="trickle", after_bytes=240, rate=20_000))
    started = time.monotonic()
    answer = get(hub, f"/{REPO}/resolve/main/c.bin")
    assert answer.read(240) == FILES["c.bin"][:240]
    assert answer.read() == FILES["c.bin"][240:]
    # 10,000 B more at 20 KB/s, in writes of 2,000 B, the first at once: 0.4 s at least.
    assert time.monotonic() - started >= 0.4 * 0.9
    assert hub.wait_idle(10)  # a trickle is parked (not waited for by the log), like a stall
    (record,) = hub.requests
    assert (record.fault, record.bytes_sent) == ("trickle", len(FILES["c.bin"]))


def test_a_trickle_slows_api_answers_too(hub: HubServer) -> None:
    hub.add_fault(Fault(path=f"/api/models/{REPO}", api=True, kind="trickle", rate=500))
    started = time.monotonic()
    answer = get(hub, f"/api/models/{REPO}")
    body = answer.read()
    assert json.loads(body)["id"] == REPO
    assert time.monotonic() - started >= (len(body) - 50) / 500 * 0.9  # the first 50 B leave at once
    with pytest.raises(ValueError, match="rate"):
        Fault(kind="trickle", rate=0)


def test_one_byte_per_response_then_a_close(hub: HubServer) -> None:
    hub.add_fault(Fault(path="c.bin", kind="cut", after_bytes=1, times=None))
    for start in (0, 1, 2):
        answer = get(hub, f"/{REPO}/resolve/main/c.bin", {"Range": f"bytes={start}-"})
        assert answer.status == 206
        with pytest.raises(http.client.IncompleteRead) as cut:
            answer.read()
        assert cut.value.partial == FILES["c.bin"][start : start + 1]


@pytest.mark.parametrize("where", ["http://169.254.169.254/latest/meta-data/", "http://[fd00::1]/x"])
def test_a_redirect_goes_wherever_it_is_told(hub: HubServer, where: str) -> None:
    hub.add_fault(Fault(path="c.bin", kind="redirect", location=where))
    answer = get(hub, f"/{REPO}/resolve/main/c.bin")
    assert (answer.status, answer.headers["Location"]) == (302, where)
    with pytest.raises(ValueError, match="location"):
        Fault(kind="redirect")


def test_an_api_answer_can_be_replaced_or_edited(hub: HubServer) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    hub.add_fault(Fault(path=f"/api/models/{REPO}/tree/*", api=True, kind="body", body=deep))
    answer = get(hub, f"/api/models/{REPO}/tree/main?recursive=true")
    assert (answer.status, answer.read()) == (200, deep)

    def negative(items: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**item, "size": -5} for item in items]

    hub.add_fault(Fault(path=f"/api/models/{REPO}/tree/*", api=True, kind="edit", edit=negative))
    page, _ = tree(hub)
    assert {item["size"] for item in page} == {-5}
    assert {item["size"] for item in tree(hub)[0]} != {-5}  # spent: times=1
    with pytest.raises(ValueError, match="api=True"):
        Fault(kind="body", body=b"x")


def test_a_request_sent_as_to_a_proxy_is_served_and_names_its_host(hub: HubServer) -> None:
    answer = get(hub, f"http://hub.example/{REPO}/resolve/main/a.json")
    assert (answer.status, answer.read()) == (200, FILES["a.json"])
    get(hub, f"/{REPO}/resolve/main/b.json").read()
    hosts = [r.host for r in hub.requests]
    assert hosts == ["hub.example", f"127.0.0.1:{urlsplit(hub.url).port}"]
