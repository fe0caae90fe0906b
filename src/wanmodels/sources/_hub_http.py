"""Hosts and links in the Hub's answers: which host answered, where the next page is, log lines.

Stdlib only, on plain URL strings (and duck-typed responses), so `wanmodels.sources.hub` stays the one
module that imports huggingface_hub and httpx2.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from wanmodels.errors import HubError

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Where a mirror's upstream lives: next-page links pointing there are meant for the mirror.
PUBLIC_HUBS: Final = ("https://huggingface.co", "https://hf.co")


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def host_of(url: object) -> str:
    """`host[:port]` of a URL, as messages name it (never any user info or path)."""
    netloc = urlsplit(str(url)).netloc.rpartition("@")[2]
    return netloc or str(url)


def foreign_host(url: object, endpoint: str) -> str | None:
    """The host of `url` when it is not the endpoint's (a CDN the Hub redirected to), else None."""
    return None if origin(str(url)) == origin(endpoint) else host_of(url)


def failed_host(err: Exception, endpoint: str) -> str:
    """The host a transport error happened on (the endpoint when the error names no request)."""
    try:
        return host_of(err.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return host_of(endpoint)


def private_address(host: str) -> str | None:
    """An address of `host` that is not on the public internet, described, or None when all are public.

    Every address the name resolves to is checked (private, loopback, link-local, unique-local,
    shared and reserved ranges all count as private; an IPv4 address mapped into IPv6 counts as
    itself). A name that does not resolve gives None: connecting to it fails on its own.
    """
    try:
        found = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in found:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            kind = "loopback" if address.is_loopback else "link-local" if address.is_link_local else "private"
            return f"{address} ({kind})"
    return None


def blocked_hint(host: str) -> str:
    """What to do when a download host, not the Hub, refuses or cannot be reached."""
    return (
        f"If a firewall or proxy blocks {host}, allow it: the Hub serves large files from such "
        "hosts, not from its own address."
    )


def unreachable_hint(endpoint: str | None) -> str:
    """What to check when the Hub itself cannot be reached: the network, and the mirror that
    HF_ENDPOINT names when it is set (`endpoint` is its value, None when unset)."""
    if endpoint is None:
        return "Check this machine's network connection (and any proxy), then run the same command again."
    return (
        f"Check the network, and that HF_ENDPOINT ({endpoint}) names a Hub or mirror that is up, "
        "then run the same command again."
    )


def untrusted_certificate(err: BaseException) -> str | None:
    """OpenSSL's reason when `err` (or what caused it) is a failed certificate check, else None.

    Such a failure is not worth retrying: the same certificate comes back every time.
    """
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or cause.reason or "certificate verify failed"
        # Context too, even when suppressed: httpcore re-raises its ConnectError `from None`.
        cause = cause.__cause__ or cause.__context__
    return None


def certificate_hint(host: str) -> str:
    """What to do when `host`'s certificate is not trusted (a proxy re-signing HTTPS, an old CA store)."""
    return (
        f"If a proxy or antivirus re-signs HTTPS traffic to {host}, point SSL_CERT_FILE at a CA bundle "
        "(PEM) that holds its certificate as well as the public ones; also check the system clock."
    )


def next_page(
    links: Mapping[str, Mapping[str, str]], current: str, endpoint: str, repo_id: str
) -> str | None:
    """The next page of a paginated listing (`Link: <...>; rel="next"`), on the endpoint.

    A mirror may pass its upstream's link through unchanged: one that points at the public
    Hub is moved onto the endpoint (the cursor in its query is what matters). A link to any
    other host is refused rather than followed with the user's token.

    Raises:
        HubError: the link points at a host that is neither the endpoint nor the public Hub.
    """
    link = links.get("next", {}).get("url")
    if not link:
        return None
    url = urljoin(current, link)
    if origin(url) == origin(endpoint):
        return url
    for hub in PUBLIC_HUBS:
        if origin(url) == origin(hub):
            parts = urlsplit(url)
            return endpoint.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    msg = (
        f"the file listing of '{repo_id}' continues on {host_of(url)}, which is not {host_of(endpoint)}; "
        "not following it (the token goes to the endpoint only)"
    )
    raise HubError(msg, repo_id=repo_id, hint="Check HF_ENDPOINT and the mirror's configuration.")


def server_wait(headers: Mapping[str, str], limit: Any, now: float) -> tuple[float | None, str | None]:
    """How long the server asks us to wait, and why, or (None, None).

    `limit` is huggingface_hub's reading of the `RateLimit` headers of a 429 (None if absent):
    when it says nothing is left, the wait is its reset; else `Retry-After`, if given.
    """
    if limit is not None and limit.remaining == 0:
        reset = limit.reset_in_seconds  # whole seconds, rounded down: one more is safe
        return reset + 1.0, f"its '{limit.resource_type}' rate limit is used up; it resets in {reset} s"
    seconds = retry_after_seconds(headers.get("Retry-After"), now)
    return (seconds, f"it asks to retry after {seconds:g} s") if seconds is not None else (None, None)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """`Retry-After` as seconds from `now`: delay-seconds or an HTTP date; None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)
