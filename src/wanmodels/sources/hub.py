"""The only module that imports huggingface_hub: resolve revisions, list files, stream bytes.

Every request goes through huggingface_hub's shared HTTP client (`get_session`), so its auth
headers, proxy settings, offline switch and request log apply, and `hf_raise_for_status` maps
answers to its error types. Metadata (a revision lookup and the pages of one recursive tree
listing per repo) is bounded by the read timeout and retried here with the transfer policy
(`wanmodels.sources.retry`); file bytes are retried by `wanmodels.transfer.fetch`. Every huggingface_hub and
httpx2 exception is turned into ours here, naming the host that failed (the Hub, or the CDN
host it redirected to), so nothing above this module ever sees their types.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypedDict, TypeVar
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

# huggingface_hub.utils re-exports these with plain `from ._x import y`, which mypy's strict mode
# does not count as exported; they are its documented helpers.
from huggingface_hub.utils import (  # type: ignore[attr-defined]
    build_hf_headers,
    get_session,
    hf_raise_for_status,
    parse_ratelimit_headers,
)

from wanmodels.config import Settings
from wanmodels.digests import Digest
from wanmodels.errors import (
    AccessDeniedError,
    HubError,
    LocalIOError,
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransientHubError,
    UsageError,
    WanmodelsError,
    on_behalf,
)
from wanmodels.repos import RemoteFile, RemoteRepo
from wanmodels.sources._hub_http import (
    blocked_hint,
    certificate_hint,
    failed_host,
    foreign_host,
    host_of,
    next_page,
    origin,
    private_address,
    server_wait,
    unreachable_hint,
    untrusted_certificate,
)
from wanmodels.sources.base import Stream, never_waiting
from wanmodels.sources.retry import RateFloor, retried

_log = logging.getLogger(__name__)
T = TypeVar("T")
COMMIT_RE: Final = re.compile(r"^[0-9a-f]{40}$")
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_STALE_LINK: Final = frozenset({401, 403, 404, 410})  # an expired or revoked signed CDN link
TOKEN_HINT: Final = "Pass a token with access: set HF_TOKEN or run `hf auth login`, then re-run."
RELOCK_HINT: Final = "Run `wanmodels lock` to pin what the revision points to now, then download again."
# httpcore reads a socket 64 KiB at a time, and each read passes through h11 and httpx (tens of
# microseconds of Python). Where this process, not the link, sets the rate (loopback, a LAN, a
# mirror), that overhead was an eighth of a download's time; a larger read returns whatever the
# socket holds, so a capped link sees no change. httpcore has no knob for it but this attribute.
SOCKET_READ: Final = 256 << 10
# Bounds on what a Hub (or something posing as one) may make this process read and keep. A page of
# the Hub's listing is about 0.3 MiB (1,000 entries) and a repo with 100,000 files lists in 100 pages;
# these are far past any real repo and far short of exhausting a machine.
MAX_ANSWER_BYTES: Final = 32 << 20
MAX_LISTING_PAGES: Final = 10_000
MAX_LISTING_ENTRIES: Final = 1_000_000
LISTING_HINT: Final = "Check HF_ENDPOINT: a Hub or mirror answering this way is broken or hostile."
# The request extension that carries a Hub's check of where a request may go: httpx copies a
# request's extensions onto each redirect it follows, and runs the client's request hooks on each.
_GUARD: Final = "wanmodels.destination_check"
PRIVATE_HINT: Final = (
    "A public Hub or mirror has no reason to send a download into this network. If that host is "
    "yours (a LAN cache in front of the Hub), set WANMODELS_ALLOW_PRIVATE_REDIRECTS=1."
)


def is_commit(revision: str) -> bool:
    """Whether `revision` is already a full commit hash (no metadata request needed)."""
    return bool(COMMIT_RE.match(revision))


class _Ids(TypedDict):
    """The repo and revision every error of one call names."""

    repo_id: str
    revision: str


class _RefusedDestination(Exception):
    """Raised inside the HTTP client when a public Hub's redirect leads to a private address."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(host, address)
        self.host = host
        self.address = address


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
        self._endpoint_private: bool | None = None  # resolved at the first request elsewhere
        if not settings.offline:
            _headers()  # an unreadable token file fails the run here, once, not every file
        _TWEAKS.apply()
        self._closed = False

    def close(self) -> None:
        """Undo what this Hub changed in the process (see `_Tweaks`) once no other Hub is open."""
        if not self._closed:
            self._closed = True
            _TWEAKS.release()

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
            msg = f"{on_behalf(entry)}cannot list '{repo_id}' at '{revision}' while offline"
            raise OfflineError(
                msg, repo_id=repo_id, revision=revision, hint="Unset HF_HUB_OFFLINE or --offline."
            )
        call = _Call(repo_id, revision, entry)
        commit = revision if is_commit(revision) else self._retrying(call, partial(self._commit_of, call))
        files: dict[str, RemoteFile] = {}
        unhashed: set[str] = set()
        url: str | None = (
            f"{self.endpoint}/api/models/{repo_id}/tree/{quote(commit, safe='')}?recursive=true&expand=false"
        )
        asked: set[str] = set()
        entries = 0
        # A listing that never ends (a next link back to a page already sent, empty pages that go
        # on, the same files again) is refused at the first sign, not followed until memory runs out.
        while url is not None:
            if url in asked:
                raise _refused(call, "leads back to a page it already sent")
            if len(asked) >= MAX_LISTING_PAGES:
                raise _refused(call, f"goes on past {MAX_LISTING_PAGES:,} pages")
            asked.add(url)
            page, raw, url = self._retrying(call, partial(self._tree_page, url, call))
            entries += raw
            if raw == 0 and url is not None:
                raise _refused(call, "sent an empty page that says more follow")
            if entries > MAX_LISTING_ENTRIES:
                raise _refused(call, f"holds more than {MAX_LISTING_ENTRIES:,} entries")
            for remote, hashed in page:
                if remote.path in files:
                    raise _refused(call, f"lists '{remote.path}' twice")
                files[remote.path] = remote
                if not hashed:
                    unhashed.add(remote.path)
        return RemoteRepo(repo_id, revision, commit, tuple(files.values()), frozenset(unhashed))

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
        headers = _headers()
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
                    source=host_of(response.url),
                )
            finally:
                with contextlib.suppress(OSError):  # closing a socket can fail; nothing is lost
                    response.close()

    # -- where requests may go ------------------------------------------------------------------

    def _extensions(self) -> dict[str, Any]:
        """What our requests carry so `_check_destination` vets them, and every redirect they follow."""
        hooks = get_session().event_hooks["request"]
        if _check_destination not in hooks:  # huggingface_hub may have made a new client meanwhile
            hooks.append(_check_destination)
        return {_GUARD: self._vet}

    def _vet(self, url: httpx2.URL) -> None:
        """Refuse a request of a public Hub's (a redirect, or a link one gave) to a private address.

        A Hub endpoint that is itself private (a LAN mirror, a test server) may send us anywhere,
        and so may any Hub when the user allowed it.
        """
        if self.settings.allow_private_redirects or origin(str(url)) == origin(self.endpoint):
            return
        if self._endpoint_private is None:
            self._endpoint_private = private_address(httpx2.URL(self.endpoint).host) is not None
        if self._endpoint_private:
            return
        address = private_address(url.host)
        if address is not None:
            raise _RefusedDestination(host_of(url), address)

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
            msg = f"{on_behalf(call.entry)}the Hub gave no commit for '{call.repo_id}' at '{call.revision}'"
            raise HubError(msg, repo_id=call.repo_id, revision=call.revision)
        return sha

    def _tree_page(self, url: str, call: _Call) -> tuple[list[tuple[RemoteFile, bool]], int, str | None]:
        """One page of the listing: each file with whether its digest is of its bytes, how many
        entries the page held (folders too), and the next URL."""
        page, response = self._get_json(url, call)
        try:
            if not isinstance(page, list):
                msg = f"a page is {type(page).__name__}, not a list"
                raise TypeError(msg)
            items = [_remote_file(item) for item in page if item.get("type") == "file"]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            msg = f"{on_behalf(call.entry)}the Hub's file listing of '{call.repo_id}' cannot be read: {err!r}"
            raise HubError(msg, repo_id=call.repo_id, revision=call.revision) from None
        return (
            items,
            len(page),
            next_page(
                {str(rel): link for rel, link in response.links.items()},
                str(response.url),
                self.endpoint,
                call.repo_id,
            ),
        )

    def _get_json(self, url: str, call: _Call) -> tuple[Any, httpx2.Response]:
        """GET one metadata answer, read whole only while it stays under `MAX_ANSWER_BYTES`."""
        response = self._send(get_session(), url, _headers())
        try:
            if response.status_code >= 400:
                response.read()  # hf_raise_for_status reads the error body
            hf_raise_for_status(response)
            body = _read_answer(response, call, url, RateFloor(self.settings))
        finally:
            with contextlib.suppress(OSError):  # a close that fails loses nothing: the body is read
                response.close()
        try:
            return json.loads(body), response
        except (ValueError, RecursionError) as err:
            why = "nested too deeply" if isinstance(err, RecursionError) else "not JSON"
            msg = f"{on_behalf(call.entry)}the Hub's answer for '{call.repo_id}' is {why} ({url})"
            raise HubError(msg, repo_id=call.repo_id, revision=call.revision, hint=LISTING_HINT) from None

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
        request = session.build_request(
            "GET", url, headers=headers, timeout=self.settings.timeout, extensions=self._extensions()
        )
        return session.send(request, stream=True)

    # -- errors ---------------------------------------------------------------------------------

    @contextmanager
    def _translated(self, call: _Call) -> Iterator[None]:
        """Turn huggingface_hub and transport exceptions raised inside the block into ours."""
        repo_id, revision = call.repo_id, call.revision
        what = on_behalf(call.entry)
        where = f"'{call.path}' in '{repo_id}'" if call.path else f"'{repo_id}'"
        ids: _Ids = {"repo_id": repo_id, "revision": revision}
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
            hint = private + TOKEN_HINT[1:]
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
        except _RefusedDestination as err:
            hub, private = host_of(self.endpoint), f"{err.host}, which is {err.address}"
            msg = f"{what}{where}: the Hub at {hub} redirected to {private}; not following it"
            raise HubError(msg, hint=PRIVATE_HINT, **ids) from None
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
        except WanmodelsError:
            raise  # ours (HubError, LocalIOError are OSErrors too): already said what failed
        except OSError as err:  # a socket call outside httpcore's own mapping (closing one, say)
            host = failed_host(err, self.endpoint)
            msg = f"{what}connection to {host} failed for {where}: {err.strerror or type(err).__name__}"
            raise TransientHubError(msg, repo_id=repo_id, revision=revision) from None

    def _http_error(self, err: HfHubHTTPError, what: str, where: str, ids: _Ids) -> HubError:
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


def _refused(call: _Call, why: str) -> HubError:
    msg = f"{on_behalf(call.entry)}the Hub's file listing of '{call.repo_id}' {why}; not reading further"
    return HubError(msg, repo_id=call.repo_id, revision=call.revision, hint=LISTING_HINT)


def _read_answer(response: httpx2.Response, call: _Call, url: str, floor: RateFloor) -> bytes:
    """The body of a metadata answer, refused as soon as it would pass `MAX_ANSWER_BYTES`, and
    dropped (to be retried) if it trickles in under the floor's rate."""
    declared = response.headers.get("Content-Length")
    body = bytearray()
    if not (declared and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES):
        chunks = response.iter_bytes()
        while True:
            asked_at = time.monotonic()
            chunk = next(chunks, None)
            if chunk is None:
                return bytes(body)
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                break
            slow = floor.read(time.monotonic() - asked_at, len(chunk))
            if slow is not None:
                host, rate = host_of(response.url), floor.why(slow)
                msg = f"{on_behalf(call.entry)}{host} sent its answer for '{call.repo_id}' at {rate}"
                raise TransientHubError(msg, repo_id=call.repo_id, revision=call.revision)
    limit = f"{MAX_ANSWER_BYTES >> 20} MiB"
    msg = f"{on_behalf(call.entry)}the Hub's answer for '{call.repo_id}' is larger than {limit} ({url})"
    raise HubError(msg, repo_id=call.repo_id, revision=call.revision, hint=LISTING_HINT)


def _remote_file(item: dict[str, Any]) -> tuple[RemoteFile, bool]:
    """One tree entry as the Hub's JSON has it (the fields huggingface_hub's `RepoFile` reads).

    Parsed here rather than through `RepoFile`: importing `huggingface_hub.hf_api` for it
    would cost every command that lists a repo about 0.07 s.
    """
    path, size, lfs = str(item["path"]), int(item["size"]), item.get("lfs")
    if size < 0:
        msg = f"'{path}' has a negative size ({size})"
        raise ValueError(msg)
    if lfs is not None:
        return RemoteFile(path, size, Digest("sha256", str(lfs["oid"]))), True
    # Without `lfs`, `oid` is the content's git sha1, except for a Xet-only entry, where it
    # hashes a pointer: `RemoteRepo.unhashed` names those so they are never fetched as is.
    return RemoteFile(path, size, Digest("gitsha1", str(item["oid"]))), not item.get("xetHash")


def _headers() -> dict[str, str]:
    """huggingface_hub's headers (the token, the user agent); an unreadable token file is ours.

    Raises:
        LocalIOError: the saved token cannot be read (owned by another user, `sudo hf auth login`,
            a folder in its place).
    """
    try:
        return build_hf_headers()
    except OSError as err:
        where = f"'{err.filename}'" if err.filename else "file"
        msg = f"cannot read the Hugging Face token {where}: {err.strerror or err}"
        hint = (
            "Make it readable by this user, or set HF_TOKEN, or point HF_HOME at a folder of your "
            "own and run `hf auth login` there."
        )
        raise LocalIOError(msg, hint=hint) from None


def _check_destination(request: httpx2.Request) -> None:
    """A request hook of the shared client: the check of the Hub that sent the request, if any."""
    vet = request.extensions.get(_GUARD)
    if vet is not None:
        vet(request.url)


def _arrived(response: httpx2.Response) -> Callable[[], bool]:
    """Whether more of `response`'s body is already on this machine: decrypted and waiting in the
    TLS layer, or in the socket (httpcore's `network_stream` extension says where to look)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return never_waiting
    tls = stream.get_extra_info("ssl_object")

    def arrived() -> bool:
        try:
            return bool((tls is not None and tls.pending()) or stream.get_extra_info("is_readable"))
        except OSError:  # a socket that cannot say is one to wait on: the next read will tell
            return False

    return arrived


class _Tweaks:
    """What a Hub changes in this process, made explicit and undone by the last `Hub.close`:
    httpcore's read size for every HTTP/1.1 connection (`SOCKET_READ`), and with `-v` a
    response hook on huggingface_hub's shared client. Counted, since Hubs may overlap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._read_size: int | None = None  # what httpcore had before, while changed
        self._hooked: list[Callable[[httpx2.Response], None]] | None = None

    def apply(self) -> None:
        with self._lock:
            self._users += 1
            connection = getattr(httpcore2, "HTTP11Connection", None)
            before = getattr(connection, "READ_NUM_BYTES", None) if connection is not None else None
            if connection is not None and isinstance(before, int) and before < SOCKET_READ:
                self._read_size = before
                connection.READ_NUM_BYTES = SOCKET_READ
            if _log.isEnabledFor(logging.DEBUG):
                hooks = get_session().event_hooks["response"]
                if _log_response not in hooks:
                    hooks.append(_log_response)
                    self._hooked = hooks

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            connection = getattr(httpcore2, "HTTP11Connection", None)
            if self._read_size is not None and connection is not None:
                connection.READ_NUM_BYTES = self._read_size
                self._read_size = None
            if self._hooked is not None:
                with contextlib.suppress(ValueError):
                    self._hooked.remove(_log_response)
                self._hooked = None


def _log_response(response: httpx2.Response) -> None:
    request = response.request
    span = request.headers.get("Range")
    where = f" [{span}]" if span else ""
    _log.debug(
        "%s %s%s -> %d", request.method, request.url.copy_with(query=None), where, response.status_code
    )


_TWEAKS: Final = _Tweaks()


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _ignore(_text: str) -> None:
    pass
