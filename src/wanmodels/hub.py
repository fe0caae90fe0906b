"""The only module that imports huggingface_hub: resolve revisions, list files, stream bytes.

Every request goes through huggingface_hub's shared HTTP client (`get_session`), so its auth
headers, proxy settings, offline switch and request log apply, and `hf_raise_for_status` maps
answers to its error types. Metadata (a revision lookup and the pages of one recursive tree
listing per repo) is bounded by the read timeout and retried here with the transfer policy
(`wanmodels.retry`); file bytes are retried by `wanmodels.fetch`. Every huggingface_hub and
httpx2 exception is turned into ours here, naming the host that failed (the Hub, or the CDN
host it redirected to), so nothing above this module ever sees their types.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpcore2
import httpx2
from huggingface_hub import constants, get_token
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.errors import RevisionNotFoundError as HfRevisionNotFoundError
from huggingface_hub.utils import (
    build_hf_headers,
    get_session,
    hf_raise_for_status,
    parse_ratelimit_headers,
)

from wanmodels._hublinks import (
    blocked_hint,
    certificate_hint,
    failed_host,
    foreign_host,
    host_of,
    next_page,
    server_wait,
    unreachable_hint,
    untrusted_certificate,
)
from wanmodels.config import Settings
from wanmodels.errors import (
    AccessDeniedError,
    HubError,
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransientHubError,
    UsageError,
)
from wanmodels.integrity import Digest
from wanmodels.remote import RemoteFile, RemoteRepo, Stream, never_waiting
from wanmodels.retry import retried

_log = logging.getLogger(__name__)
T = TypeVar("T")
COMMIT_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_STALE_LINK: Final = frozenset({401, 403, 404, 410})  # an expired or revoked signed CDN link
# Repos that circulate in old model lists but do not exist, and what to use instead.
KNOWN_PLACEHOLDERS: Final = {
    "blongsta/wan2.1-i2v": (
        "It is a placeholder from an old model list; the official Wan 2.1 I2V weights are "
        "Wan-AI/Wan2.1-I2V-14B-480P or Wan-AI/Wan2.1-I2V-14B-720P (and their -Diffusers variants), "
        "or Comfy-Org/Wan_2.1_ComfyUI_repackaged for ComfyUI."
    ),
}
TOKEN_HINT: Final = "Pass a token with access: set HF_TOKEN or run `hf auth login`, then re-run."
RELOCK_HINT: Final = "Run `wanmodels lock` to pin what the revision points to now, then download again."
# httpcore reads a socket 64 KiB at a time, and each read passes through h11 and httpx (tens of
# microseconds of Python). Where this process, not the link, sets the rate (loopback, a LAN, a
# mirror), that overhead was an eighth of a download's time; a larger read returns whatever the
# socket holds, so a capped link sees no change. httpcore has no knob for it but this attribute.
SOCKET_READ: Final = 256 << 10


def is_commit(revision: str) -> bool:
    """Whether `revision` is already a full commit hash (no metadata request needed)."""
    return bool(COMMIT_RE.match(revision))


@dataclass(frozen=True, slots=True)
class _Call:
    """What a request is for, as error messages name it."""

    repo_id: str
    revision: str
    entry: str | None = None
    path: str | None = None


class Hub:
    """The Hub as a `ByteSource`: bound to one endpoint and one set of timeouts.

    `notify` receives a line whenever a metadata request waits before a retry (the progress
    sink may not exist yet); `cancel` cuts such a wait short (Ctrl-C stays instant).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        notify: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.endpoint = (settings.endpoint or constants.ENDPOINT).rstrip("/")
        self._notify = notify or _ignore
        self._cancel = cancel or threading.Event()
        # Where each file's `resolve` URL redirected to (a CDN): later ranges go straight
        # there, saving a round trip each. Signed links expire; a refusal sends us back.
        self._links: dict[tuple[str, str, str], str] = {}
        self._links_lock = threading.Lock()
        _read_more_per_call()
        _log_responses()

    def list_repo(self, repo_id: str, revision: str, *, entry: str) -> RemoteRepo:
        """Resolve `revision` to a commit and list every file with its size and digest.

        Each request is bounded by `settings.timeout` and retried like a transfer.

        Args:
            repo_id: `owner/name`.
            revision: branch, tag or 40-hex commit (a commit costs no revision lookup).
            entry: the manifest entry, named in error messages.

        Raises:
            OfflineError: offline mode is on.
            Interrupted: the `cancel` event was set while waiting to retry.
            RepoNotFoundError, RevisionNotFoundError, AccessDeniedError, HubError.
        """
        if self.settings.offline:
            msg = f"entry '{entry}': cannot list '{repo_id}' at '{revision}' while offline"
            raise OfflineError(
                msg, repo_id=repo_id, revision=revision, hint="Unset HF_HUB_OFFLINE or --offline."
            )
        call = _Call(repo_id, revision, entry)
        commit = revision if is_commit(revision) else self._retrying(call, partial(self._commit_of, call))
        files: list[RemoteFile] = []
        unhashed: set[str] = set()
        url: str | None = (
            f"{self.endpoint}/api/models/{repo_id}/tree/{quote(commit, safe='')}?recursive=true&expand=false"
        )
        while url is not None:
            page, url = self._retrying(call, partial(self._tree_page, url, call))
            for remote, hashed in page:
                files.append(remote)
                if not hashed:
                    unhashed.add(remote.path)
        return RemoteRepo(repo_id, revision, commit, tuple(files), frozenset(unhashed))

    def file_url(self, repo_id: str, commit: str, path: str) -> str:
        """The `resolve` URL of a file at a commit on this endpoint."""
        # huggingface_hub's `hf_hub_url` builds the same; its module costs every command 0.02 s.
        return f"{self.endpoint}/{repo_id}/resolve/{quote(commit, safe='')}/{quote(path)}"

    @contextmanager
    def open_range(
        self, repo_id: str, commit: str, path: str, *, start: int = 0, end: int | None = None
    ) -> Iterator[Stream]:
        """GET bytes `[start, end)` of a file; the server may ignore the range (then `offset` is 0).

        Raises:
            TransientHubError: worth retrying (5xx, 429, 408, timeout, dropped connection).
            RemoteFileNotFoundError, AccessDeniedError, RepoNotFoundError, HubError, OfflineError.
            RevisionNotFoundError: the commit is gone (a lockfile pinned it before a force-push).
        """
        if self.settings.offline:
            msg = f"cannot download '{path}' from '{repo_id}' while offline"
            raise OfflineError(msg, repo_id=repo_id, hint="Unset HF_HUB_OFFLINE or --offline.")
        headers = build_hf_headers()
        # Compressed transfer would hide the real byte offsets that resume depends on.
        headers["Accept-Encoding"] = "identity"
        if end is not None:
            headers["Range"] = f"bytes={start}-{end - 1}"
        elif start > 0:
            headers["Range"] = f"bytes={start}-"
        with self._translated(_Call(repo_id, commit, None, path)):
            response = self._get((repo_id, commit, path), headers)
            try:
                if response.status_code >= 400:
                    response.read()  # hf_raise_for_status reads the error body
                hf_raise_for_status(response)
                length = response.headers.get("Content-Length")
                ranged = response.status_code == 206
                yield Stream(
                    offset=start if ranged else 0,
                    length=int(length) if length and length.isdigit() else None,
                    chunks=response.iter_bytes(),
                    whole=not ranged and "Range" in headers,
                    waiting=_arrived(response),
                )
            finally:
                response.close()

    # -- metadata -------------------------------------------------------------------------------

    def _retrying(self, call: _Call, request: Callable[[], T]) -> T:
        """Run one metadata request, retrying transient failures with the transfer policy."""

        def attempt() -> T:
            with self._translated(call):
                return request()

        what = f"interrupted while waiting to list '{call.repo_id}'"
        return retried(attempt, self.settings, notify=self._notify, cancel=self._cancel, interrupted=what)

    def _commit_of(self, call: _Call) -> str:
        url = f"{self.endpoint}/api/models/{call.repo_id}/revision/{quote(call.revision, safe='')}"
        info, _ = self._get_json(url, call)
        sha = info.get("sha") if isinstance(info, dict) else None
        if not isinstance(sha, str) or not is_commit(sha):
            msg = f"entry '{call.entry}': the Hub gave no commit for '{call.repo_id}' at '{call.revision}'"
            raise HubError(msg, repo_id=call.repo_id, revision=call.revision)
        return sha

    def _tree_page(self, url: str, call: _Call) -> tuple[list[tuple[RemoteFile, bool]], str | None]:
        """One page of the listing: each file, whether its digest is of its bytes, and the next URL."""
        page, response = self._get_json(url, call)
        try:
            items = [_remote_file(item) for item in page if item.get("type") == "file"]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            msg = f"entry '{call.entry}': the Hub's file listing of '{call.repo_id}' cannot be read: {err!r}"
            raise HubError(msg, repo_id=call.repo_id, revision=call.revision) from None
        return items, next_page(response.links, str(response.url), self.endpoint, call.repo_id)

    def _get_json(self, url: str, call: _Call) -> tuple[Any, httpx2.Response]:
        response = get_session().get(url, headers=build_hf_headers(), timeout=self.settings.timeout)
        hf_raise_for_status(response)
        try:
            return response.json(), response
        except ValueError:
            msg = f"entry '{call.entry}': the Hub's answer for '{call.repo_id}' is not JSON ({url})"
            raise HubError(msg, repo_id=call.repo_id, revision=call.revision) from None

    # -- bytes ----------------------------------------------------------------------------------

    def _get(self, key: tuple[str, str, str], headers: dict[str, str]) -> httpx2.Response:
        """Open a streaming GET: at the file's CDN link when one is known and still good, else the Hub.

        A signed link refused by the host it points to is dropped, and the Hub asked for a fresh
        one; a fresh link refused too is asked for once more before the refusal stands.
        """
        session = get_session()
        with self._links_lock:
            link = self._links.get(key)
        if link is not None:
            # The token is for the Hub only; a CDN link is signed and needs none.
            plain = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            response = self._send(session, link, plain)
            if response.status_code not in _STALE_LINK:
                return response
            response.close()
            with self._links_lock:
                self._links.pop(key, None)
        url = self.file_url(*key)
        for attempt in (1, 2):
            response = self._send(session, url, headers)
            moved = foreign_host(response.url, url) is not None
            if response.status_code < 400:
                if moved:
                    with self._links_lock:
                        self._links[key] = str(response.url)
                return response
            status = response.status_code
            if not (moved and status in _STALE_LINK and attempt == 1):
                return response
            response.close()
            _log.debug("%s refused a fresh link (HTTP %d): resolving again", host_of(response.url), status)
        return response

    def _send(self, session: httpx2.Client, url: str, headers: dict[str, str]) -> httpx2.Response:
        request = session.build_request("GET", url, headers=headers, timeout=self.settings.timeout)
        return session.send(request, stream=True)

    # -- errors ---------------------------------------------------------------------------------

    @contextmanager
    def _translated(self, call: _Call) -> Iterator[None]:
        """Turn huggingface_hub and transport exceptions raised inside the block into ours."""
        repo_id, revision = call.repo_id, call.revision
        what = f"entry '{call.entry}': " if call.entry else ""
        where = f"'{call.path}' in '{repo_id}'" if call.path else f"'{repo_id}'"
        ids = {"repo_id": repo_id, "revision": revision}
        try:
            yield
        # GatedRepoError subclasses RepositoryNotFoundError, so it must come first.
        except GatedRepoError as err:
            # Said of the repo, not the file: every file of the repo fails alike, and the run says it once.
            if get_token() is None:
                msg = f"{what}'{repo_id}' is gated and no token was sent (HTTP {_status(err)})"
                hint = "Accept the conditions on the repo's page, then p" + TOKEN_HINT[1:]
            else:
                msg = f"{what}'{repo_id}' is gated: the token sent has no access (HTTP {_status(err)})"
                hint = (
                    "Accept the conditions on the repo's page with the account of that token "
                    "(HF_TOKEN or `hf auth login`), then re-run."
                )
            raise AccessDeniedError(msg, status=_status(err), hint=hint, **ids) from None
        except RepositoryNotFoundError as err:
            private = "Check the repo id in the manifest; if it is private, " + TOKEN_HINT[0].lower()
            hint = KNOWN_PLACEHOLDERS.get(repo_id) or private + TOKEN_HINT[1:]
            msg = f"{what}repo '{repo_id}' was not found on {self.endpoint}"
            raise RepoNotFoundError(msg, status=_status(err), hint=hint, **ids) from None
        except DisabledRepoError as err:
            msg = f"{what}repo '{repo_id}' is disabled on {self.endpoint} (HTTP {_status(err)})"
            hint = "No token opens a disabled repo; its page may say why. Use another repo or a copy."
            raise HubError(msg, status=_status(err), hint=hint, **ids) from None
        except HfRevisionNotFoundError as err:
            if call.path is not None:  # a pinned commit the Hub no longer has
                msg = f"{what}{where}: commit {revision[:12]} is no longer on {self.endpoint}"
                raise RevisionNotFoundError(msg, status=_status(err), hint=RELOCK_HINT, **ids) from None
            msg = f"{what}revision '{revision}' of '{repo_id}' was not found"
            hint = "Use a branch, tag or commit that exists (see the repo's 'Files' tab)."
            raise RevisionNotFoundError(msg, status=_status(err), hint=hint, **ids) from None
        except EntryNotFoundError as err:
            msg = f"{what}{where} was not found at {revision[:12]}"
            raise RemoteFileNotFoundError(msg, status=_status(err), **ids) from None
        except HfHubHTTPError as err:
            raise self._http_error(err, what, where, ids) from None
        except OfflineModeIsEnabled:
            msg = f"{what}{where} needs the network, but HF_HUB_OFFLINE is set"
            raise OfflineError(msg, hint="Unset HF_HUB_OFFLINE to download.", **ids) from None
        except (httpx2.UnsupportedProtocol, httpx2.InvalidURL, httpx2.TooManyRedirects) as err:
            msg = f"{what}{where}: {type(err).__name__}: {err}"
            raise HubError(msg, hint="Check HF_ENDPOINT and any proxy in between.", **ids) from None
        except httpx2.TransportError as err:
            host = failed_host(err, self.endpoint)
            moved = host != host_of(self.endpoint)
            via = " (a download host the Hub redirected to)" if moved else ""
            reason = untrusted_certificate(err)
            if reason is not None:  # the same certificate would come back: no retry
                trust = f"presents a certificate this machine does not trust ({reason})"
                msg = f"{what}cannot fetch {where}: {host}{via} {trust}"
                raise HubError(msg, hint=certificate_hint(host), **ids) from None
            kind = "timed out" if isinstance(err, httpx2.TimeoutException) else "failed"
            msg = f"{what}connection to {host}{via} {kind} for {where}: {type(err).__name__}"
            hint = blocked_hint(host) if moved else unreachable_hint(self.settings.endpoint)
            # The shared client stays open: other transfers are using it, and httpx drops only
            # the broken connection from its pool (closing it would fail them all).
            raise TransientHubError(msg, hint=hint, **ids) from None
        except httpx2.StreamError as err:  # a stream closed under us: a fresh request will do
            msg = f"{what}the stream of {where} broke: {type(err).__name__}"
            raise TransientHubError(msg, **ids) from None
        except httpx2.HTTPError as err:  # decoding and other request errors: not worth retrying
            msg = f"{what}request for {where} failed: {type(err).__name__}: {err}"
            raise HubError(msg, **ids) from None
        except HFValidationError as err:
            msg = f"{what}{where}: {err}"
            raise UsageError(msg) from None

    def _http_error(self, err: HfHubHTTPError, what: str, where: str, ids: dict[str, str]) -> HubError:
        """Our error for an HTTP error status, naming the host that answered it."""
        status, response = _status(err), err.response
        if response is None:
            return HubError(f"{what}request for {where} failed: {err}", **ids)
        host = foreign_host(response.url, self.endpoint)
        if host is not None and status in _STALE_LINK:
            msg = (
                f"{what}the download host {host} refused {where} (HTTP {status}) twice, with freshly "
                "signed links; no token is ever sent there, so HF_TOKEN is not the cause."
            )
            return HubError(msg, status=status, hint=blocked_hint(host), **ids)
        if host is None and status in (401, 403):
            msg = f"{what}access to {where} was refused (HTTP {status})"
            return AccessDeniedError(msg, status=status, hint=TOKEN_HINT, **ids)
        who = f"the download host {host}" if host is not None else "the Hub"
        msg = f"{what}{who} answered HTTP {status} for {where}"
        if status in _TRANSIENT_STATUS:
            limit = parse_ratelimit_headers(response.headers) if status == 429 else None
            seconds, why = server_wait(response.headers, limit, time.time())
            return TransientHubError(
                f"{msg}: {why}" if why else msg, retry_after=seconds, status=status, **ids
            )
        return HubError(msg, status=status, **ids)


def _remote_file(item: dict[str, Any]) -> tuple[RemoteFile, bool]:
    """One tree entry as the Hub's JSON has it (the fields huggingface_hub's `RepoFile` reads).

    Parsed here rather than through `RepoFile`: importing `huggingface_hub.hf_api` for it
    would cost every command that lists a repo about 0.07 s.
    """
    path, size, lfs = str(item["path"]), int(item["size"]), item.get("lfs")
    if lfs is not None:
        return RemoteFile(path, size, Digest("sha256", str(lfs["oid"]))), True
    # Without `lfs`, `oid` is the content's git sha1, except for a Xet-only entry, where it
    # hashes a pointer: `RemoteRepo.unhashed` names those so they are never fetched as is.
    return RemoteFile(path, size, Digest("gitsha1", str(item["oid"]))), not item.get("xetHash")


def _arrived(response: httpx2.Response) -> Callable[[], bool]:
    """Whether more of `response`'s body is already on this machine: decrypted and waiting in the
    TLS layer, or in the socket (httpcore's `network_stream` extension says where to look)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return never_waiting
    tls = stream.get_extra_info("ssl_object")

    def arrived() -> bool:
        return bool((tls is not None and tls.pending()) or stream.get_extra_info("is_readable"))

    return arrived


def _read_more_per_call() -> None:
    """Let every HTTP/1.1 connection of this process read up to `SOCKET_READ` bytes per call."""
    connection = getattr(httpcore2, "HTTP11Connection", None)
    if connection is not None and getattr(connection, "READ_NUM_BYTES", SOCKET_READ) < SOCKET_READ:
        connection.READ_NUM_BYTES = SOCKET_READ


def _log_responses() -> None:
    """With `-v`, log every response of the shared client, redirect hops (the CDN) and metadata
    calls included: method, URL without its query (a CDN URL's is a signature), status; no header."""
    if not _log.isEnabledFor(logging.DEBUG):
        return
    hooks = get_session().event_hooks["response"]
    if _log_response not in hooks:
        hooks.append(_log_response)


def _log_response(response: httpx2.Response) -> None:
    request = response.request
    span = request.headers.get("Range")
    where = f" [{span}]" if span else ""
    _log.debug(
        "%s %s%s -> %d", request.method, request.url.copy_with(query=None), where, response.status_code
    )


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _ignore(_text: str) -> None:
    pass
