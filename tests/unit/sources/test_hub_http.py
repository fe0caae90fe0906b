"""Reading the Hub's answers: how long it asks to wait (rate limits, Retry-After), where the next page
of a listing is, which host a link goes to, and whether a failed connection was a refused certificate."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from email.utils import formatdate

import pytest

from wanmodels.errors import HubError
from wanmodels.sources._hub_http import (
    foreign_host,
    next_page,
    retry_after_seconds,
    server_wait,
    untrusted_certificate,
)


@dataclass
class Limit:
    """Stands in for huggingface_hub's `RateLimitInfo`."""

    resource_type: str
    remaining: int
    reset_in_seconds: int


def test_server_wait_prefers_a_used_up_rate_limit_then_retry_after() -> None:
    assert server_wait({}, Limit("api", 0, 55), 0.0) == (
        56.0,
        "its 'api' rate limit is used up; it resets in 55 s",
    )
    # A limit with requests left is not why the request failed: fall back to Retry-After.
    assert server_wait({"Retry-After": "7"}, Limit("api", 12, 55), 0.0) == (7.0, "it asks to retry after 7 s")
    assert server_wait({}, None, 0.0) == (None, None)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = time.time()
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1.5)
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now) == 0.0
    for bad in (None, "", "soon", "-3"):
        assert retry_after_seconds(bad, now) is None


@pytest.mark.parametrize(
    ("endpoint", "link", "expected"),
    [
        # The endpoint's own link is followed as is.
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/api/models/a/b/tree/c?cursor=x", None),
        # A mirror leaking its upstream: moved onto the mirror, path prefix included.
        (
            "https://mirror.example/hf",
            "https://huggingface.co/api/models/a/b/tree/c?cursor=x",
            "https://mirror.example/hf/api/models/a/b/tree/c?cursor=x",
        ),
        (
            "https://mirror.example",
            "https://hf.co/api/models/a/b/tree/c?cursor=x",
            "https://mirror.example/api/models/a/b/tree/c?cursor=x",
        ),
        # A relative link stays on the page's host.
        (
            "http://127.0.0.1:8000",
            "/api/models/a/b/tree/c?cursor=x",
            "http://127.0.0.1:8000/api/models/a/b/tree/c?cursor=x",
        ),
    ],
)
def test_next_page_stays_on_the_endpoint(endpoint: str, link: str, expected: str | None) -> None:
    current = f"{endpoint}/api/models/a/b/tree/c?recursive=true"
    assert next_page({"next": {"url": link}}, current, endpoint, "a/b") == (expected or link)
    assert next_page({}, current, endpoint, "a/b") is None


def test_next_page_to_a_stranger_is_refused() -> None:
    with pytest.raises(HubError, match=r"continues on evil\.example:8443, which is not mirror\.example"):
        next_page(
            {"next": {"url": "https://evil.example:8443/api/models/a/b/tree/c?cursor=x"}},
            "https://mirror.example/api/models/a/b/tree/c",
            "https://mirror.example",
            "a/b",
        )


def test_foreign_host_compares_origins() -> None:
    assert foreign_host("https://huggingface.co:443/x", "https://huggingface.co") is None
    assert foreign_host("https://cdn-lfs.hf.co/x?sig=1", "https://huggingface.co") == "cdn-lfs.hf.co"
    assert foreign_host("http://localhost:9/x", "http://127.0.0.1:9") == "localhost:9"


def test_a_failed_certificate_check_is_found_anywhere_in_the_chain_of_causes() -> None:
    check = ssl.SSLCertVerificationError(1, "certificate verify failed")
    check.verify_message = "self-signed certificate"
    transport = ConnectionError("connect failed")
    transport.__cause__ = check
    outer = RuntimeError("wrapped")
    outer.__context__ = transport
    assert untrusted_certificate(outer) == "self-signed certificate"
    hidden = ConnectionError("connect failed")  # as httpcore re-raises it: `from None`
    hidden.__context__, hidden.__suppress_context__ = check, True
    assert untrusted_certificate(hidden) == "self-signed certificate"
    other = ConnectionError("refused")
    other.__context__ = ssl.SSLError(1, "EOF occurred in violation of protocol")
    assert untrusted_certificate(other) is None  # a dropped handshake may go well next time
    looped = ConnectionError("a")
    looped.__context__ = ConnectionError("b")
    looped.__context__.__context__ = looped
    assert untrusted_certificate(looped) is None
