"""The only module that imports huggingface_hub: resolve revisions, list files, stream bytes.

Metadata goes through `HfApi` (one `repo_info` and one recursive tree listing per repo);
bytes go through the hub's shared HTTP client (`get_session`) so its auth headers, proxy
settings and offline switch apply. Every hub exception is turned into ours here, at the
call site, so nothing above this module ever sees a huggingface_hub type.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx2
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.errors import RevisionNotFoundError as HfRevisionNotFoundError
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import build_hf_headers, close_session, get_session, hf_raise_for_status

from wanmodels.config import Settings
from wanmodels.errors import (
    AccessDeniedError,
    HubError,
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    RevisionNotFoundError,
    TransientHubError,
)
from wanmodels.integrity import Digest
from wanmodels.remote import RemoteFile, RemoteRepo, Stream

_log = logging.getLogger(__name__)
COMMIT_RE: Final = re.compile(r"^[0-9a-f]{40}$")
STREAM_CHUNK: Final = 1 << 20
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


def is_commit(revision: str) -> bool:
    """Whether `revision` is already a full commit hash (no metadata request needed)."""
    return bool(COMMIT_RE.match(revision))


class Hub:
    """The Hub as a `ByteSource`: bound to one endpoint and one set of timeouts."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._api = HfApi(endpoint=settings.endpoint)
        # Where each file's `resolve` URL redirected to (a CDN): later ranges go straight
        # there, saving a round trip each. Signed links expire; a refusal sends us back.
        self._links: dict[tuple[str, str, str], str] = {}
        self._links_lock = threading.Lock()
        _log_responses()

    def list_repo(self, repo_id: str, revision: str, *, entry: str) -> RemoteRepo:
        """Resolve `revision` to a commit and list every file with its size and digest.

        Args:
            repo_id: `owner/name`.
            revision: branch, tag or 40-hex commit (a commit costs no `repo_info` call).
            entry: the manifest entry, named in error messages.

        Raises:
            OfflineError: offline mode is on.
            RepoNotFoundError, RevisionNotFoundError, AccessDeniedError, HubError.
        """
        if self.settings.offline:
            msg = f"entry '{entry}': cannot list '{repo_id}' at '{revision}' while offline"
            raise OfflineError(
                msg, repo_id=repo_id, revision=revision, hint="Unset HF_HUB_OFFLINE or --offline."
            )
        with self._translated(repo_id, revision, entry):
            commit = revision if is_commit(revision) else self._api.repo_info(repo_id, revision=revision).sha
            if not commit:
                msg = f"entry '{entry}': the Hub returned no commit for '{repo_id}' at '{revision}'"
                raise HubError(msg, repo_id=repo_id, revision=revision)
            tree = self._api.list_repo_tree(repo_id, revision=commit, recursive=True)
            files = tuple(_remote_file(item) for item in tree if isinstance(item, RepoFile))
        return RemoteRepo(repo_id=repo_id, revision=revision, commit=commit, files=files)

    def file_url(self, repo_id: str, commit: str, path: str) -> str:
        """The `resolve` URL of a file at a commit on this endpoint."""
        return hf_hub_url(repo_id, path, revision=commit, endpoint=self.settings.endpoint)

    @contextmanager
    def open_range(
        self, repo_id: str, commit: str, path: str, *, start: int = 0, end: int | None = None
    ) -> Iterator[Stream]:
        """GET bytes `[start, end)` of a file; the server may ignore the range (then `offset` is 0).

        Raises:
            TransientHubError: worth retrying (5xx, 429, 408, timeout, dropped connection).
            RemoteFileNotFoundError, AccessDeniedError, RepoNotFoundError, HubError, OfflineError.
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
        with self._translated(repo_id, commit, None, path=path):
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
                )
            finally:
                response.close()

    def _get(self, key: tuple[str, str, str], headers: dict[str, str]) -> httpx2.Response:
        """Open a streaming GET: at the file's CDN link when one is known and still good, else the Hub."""
        session = get_session()
        with self._links_lock:
            link = self._links.get(key)
        if link is not None:
            # The token is for the Hub only; a CDN link is signed and needs none.
            plain = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            request = session.build_request("GET", link, headers=plain, timeout=self.settings.timeout)
            response = session.send(request, stream=True)
            if response.status_code not in _STALE_LINK:
                return response
            response.close()
            with self._links_lock:
                self._links.pop(key, None)
        url = self.file_url(*key)
        request = session.build_request("GET", url, headers=headers, timeout=self.settings.timeout)
        response = session.send(request, stream=True)
        if response.status_code < 400 and response.url.origin != request.url.origin:
            with self._links_lock:
                self._links[key] = str(response.url)
        return response

    @contextmanager
    def _translated(
        self, repo_id: str, revision: str, entry: str | None, *, path: str | None = None
    ) -> Iterator[None]:
        """Turn huggingface_hub and transport exceptions raised inside the block into ours."""
        what = f"entry '{entry}': " if entry else ""
        where = f"'{path}' in '{repo_id}'" if path else f"'{repo_id}'"
        try:
            yield
        # GatedRepoError subclasses RepositoryNotFoundError, so it must come first.
        except GatedRepoError as err:
            msg = f"{what}{where} is gated: your token has no access (HTTP {_status(err)})"
            hint = "Accept the conditions on the repo's page, then " + TOKEN_HINT
            raise AccessDeniedError(
                msg, status=_status(err), hint=hint, repo_id=repo_id, revision=revision
            ) from None
        except RepositoryNotFoundError as err:
            hint = KNOWN_PLACEHOLDERS.get(repo_id) or (
                "Check the repo id in the manifest; if it is private, "
                + TOKEN_HINT[0].lower()
                + TOKEN_HINT[1:]
            )
            msg = f"{what}repo '{repo_id}' was not found on {self._endpoint_name()}"
            raise RepoNotFoundError(
                msg, status=_status(err), hint=hint, repo_id=repo_id, revision=revision
            ) from None
        except HfRevisionNotFoundError as err:
            msg = f"{what}revision '{revision}' of '{repo_id}' was not found"
            hint = "Use a branch, tag or commit that exists (see the repo's 'Files' tab)."
            raise RevisionNotFoundError(
                msg, status=_status(err), hint=hint, repo_id=repo_id, revision=revision
            ) from None
        except EntryNotFoundError as err:
            msg = f"{what}{where} was not found at {revision[:12]}"
            raise RemoteFileNotFoundError(
                msg, status=_status(err), repo_id=repo_id, revision=revision
            ) from None
        except HfHubHTTPError as err:
            status = _status(err)
            if status in (401, 403):
                msg = f"{what}access to {where} was refused (HTTP {status})"
                raise AccessDeniedError(
                    msg, status=status, hint=TOKEN_HINT, repo_id=repo_id, revision=revision
                ) from None
            msg = f"{what}the Hub answered HTTP {status} for {where}"
            if status in _TRANSIENT_STATUS:
                raise TransientHubError(
                    msg, retry_after=_retry_after(err), status=status, repo_id=repo_id, revision=revision
                ) from None
            raise HubError(msg, status=status, repo_id=repo_id, revision=revision) from None
        except OfflineModeIsEnabled:
            msg = f"{what}{where} needs the network, but HF_HUB_OFFLINE is set"
            raise OfflineError(
                msg, hint="Unset HF_HUB_OFFLINE to download.", repo_id=repo_id, revision=revision
            ) from None
        except httpx2.TooManyRedirects as err:
            msg = f"{what}{where}: {err}"
            raise HubError(
                msg, hint="Check HF_ENDPOINT and any proxy in between.", repo_id=repo_id, revision=revision
            ) from None
        except httpx2.TransportError as err:
            if isinstance(err, httpx2.ConnectError):
                # Like huggingface_hub's own backoff: a broken TLS or proxy session is best rebuilt.
                close_session()
            kind = "timed out" if isinstance(err, httpx2.TimeoutException) else "failed"
            msg = f"{what}connection to {self._endpoint_name()} {kind} for {where}: {type(err).__name__}"
            raise TransientHubError(msg, repo_id=repo_id, revision=revision) from None
        except httpx2.HTTPError as err:  # decoding and other request errors: not worth retrying
            msg = f"{what}request for {where} failed: {type(err).__name__}: {err}"
            raise HubError(msg, repo_id=repo_id, revision=revision) from None

    def _endpoint_name(self) -> str:
        return self.settings.endpoint or "the Hugging Face Hub"


def _log_responses() -> None:
    """With wanmodels' logger at DEBUG (`-v`), log every response of the shared client.

    One line per request, redirect hops and metadata calls included: method, URL without its
    query string (a CDN URL's query is a signature) and status. No header is ever logged.
    """
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


def _remote_file(item: RepoFile) -> RemoteFile:
    if item.lfs is not None:
        return RemoteFile(item.path, int(item.size), Digest("sha256", item.lfs.sha256))
    return RemoteFile(item.path, int(item.size), Digest("gitsha1", item.blob_id))


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(err: HfHubHTTPError) -> float | None:
    response = getattr(err, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
