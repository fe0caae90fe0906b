"""Where a run's bytes come from: the Hub, or an object store holding the stack's blobs by digest.

`open_source` is the one place a download chooses. With a store (`--from`, `$WANMODELS_FROM`),
each file is read from `<prefix>/blobs/<algorithm>/<hex>`, the digest the lockfile pins, through
the same pool, resume, rate limit and hashing as the Hub path; the Hub is asked only for a blob
the store lacks or holds wrong (unless `hub_fallback` is off), and is not even loaded otherwise.
A bucket is an untrusted cache: its bytes are placed only when they hash to the pinned digest.

```
s3://bucket/prefix/
  blobs/sha256/<64 hex>     an LFS file, named by the sha256 the Hub lists
  blobs/gitsha1/<40 hex>    a small file, named by its git blob sha1 (what the lockfile pins)
  locks/<name>.lock         the lockfile(s) published with them, for people and scripts
```
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from wanmodels.config import STORES, StoreLocation
from wanmodels.digests import Digest
from wanmodels.errors import HubError, RemoteFileNotFoundError, UsageError
from wanmodels.repos import RemoteRepo
from wanmodels.sources.base import ByteSource, Stream

if TYPE_CHECKING:
    from wanmodels.config import Settings
    from wanmodels.planning.plan import Plan, PlannedFile
    from wanmodels.sources.s3 import S3Store


def open_store(location: StoreLocation, settings: Settings, *, connections: int) -> S3Store:
    """The client for `location`; botocore is imported here, only when a URL needs it.

    Raises:
        UsageError: the `s3` extra is not installed.
        HubError: botocore cannot be configured (a bad profile or endpoint).
    """
    import importlib

    module, name, extra = STORES[location.scheme]  # parse_store_url admits no other scheme
    try:
        store: S3Store = getattr(importlib.import_module(module), name)(
            location, settings, connections=connections
        )
    except ImportError as err:
        msg = f"{location} needs wanmodels' {extra} support, which is not installed ({err.name} is missing)"
        hint = f"Install the extra: pip install 'wanmodels[{extra}]'."
        raise UsageError(msg, hint=hint) from None
    return store


def open_source(
    settings: Settings,
    plan: Plan,
    *,
    notify: Callable[[str], None],
    cancel: threading.Event,
) -> ByteSource:
    """The source a download reads `plan`'s missing bytes from: the store of `settings`, else the Hub.

    A store is tried once before any transfer starts (one ranged read of the first blob), so a
    missing bucket or refused credentials end the run with one line instead of failing every file.

    Raises:
        UsageError: the `s3` extra is not installed.
        HubError: the bucket does not exist, or the credentials are refused.
        Interrupted: `cancel` was set while the first read was being retried.
    """
    if settings.store is None:
        from wanmodels.sources.hub import Hub

        return Hub(settings, notify=notify, cancel=cancel)
    store = open_store(settings.store, settings, connections=settings.workers)
    source = StoreFirst(store, plan, settings, notify=notify, cancel=cancel)
    source.probe()
    return source


def close_source(source: ByteSource) -> None:
    """Let a source the run opened undo what it changed in the process (a Hub's transport tweaks)."""
    close = getattr(source, "close", None)
    if callable(close):
        close()


class StoreFirst:
    """A `ByteSource` that reads every planned file's blob from a store, the Hub only where it must.

    The Hub takes over a file whose blob is missing, has another size, or hashed wrong once
    (`rejected`), and the run says so; with `hub_fallback` off that file fails instead, naming
    the object. Listings (a run without a lockfile) always go to the Hub.
    """

    def __init__(
        self,
        store: S3Store,
        plan: Plan,
        settings: Settings,
        *,
        notify: Callable[[str], None],
        cancel: threading.Event,
    ) -> None:
        self.store = store
        self.settings = settings
        self._notify = notify
        self._cancel = cancel
        self._files: dict[tuple[str, str, str], PlannedFile] = {
            (f.repo_id, f.commit, f.repo_path): f for m in plan.models for f in m.files
        }
        self._hub: ByteSource | None = None
        self._lock = threading.Lock()
        self._elsewhere: set[Digest] = set()  # blobs read from the Hub instead: missing or bad
        self._from_store: set[tuple[str, str, str]] = set()  # files whose latest bytes came from the store

    @property
    def hub(self) -> ByteSource:
        with self._lock:
            if self._hub is None:
                from wanmodels.sources.hub import (
                    Hub,  # a run the store serves whole never loads huggingface_hub
                )

                self._hub = Hub(self.settings, notify=self._notify, cancel=self._cancel)
            return self._hub

    def close(self) -> None:
        if self._hub is not None:
            close_source(self._hub)

    def probe(self) -> None:
        """Read one byte of the first blob to fetch: the bucket and the credentials must work."""
        from wanmodels.sources.retry import retried

        first = next((f for f in self._files.values() if f.needs_bytes and f.size), None)
        if first is None:
            return

        def attempt() -> None:
            try:
                with self.store.open(self.store.location.blob_key(first.digest), start=0, end=1):
                    pass
            except RemoteFileNotFoundError:
                pass  # that blob is missing; the others may not be

        what = f"interrupted while trying {self.store.location}"
        retried(attempt, self.settings, notify=self._notify, cancel=self._cancel, interrupted=what)

    def list_repo(self, repo_id: str, revision: str, *, entry: str) -> RemoteRepo:
        return self.hub.list_repo(repo_id, revision, entry=entry)

    @contextmanager
    def open_range(
        self, repo_id: str, commit: str, path: str, *, start: int = 0, end: int | None = None
    ) -> Iterator[Stream]:
        """Bytes `[start, end)` of the file's blob, or of the Hub's file where the store cannot serve it.

        Raises:
            RemoteFileNotFoundError: the blob is missing (or the file is not planned) and the
                fallback is off.
            HubError: the blob has another size and the fallback is off; as `S3Store.open`.
        """
        item = self._files.get((repo_id, commit, path))
        if item is None and not self.settings.hub_fallback:
            # Not a file of the plan, so no blob to read; an air-gapped node asks the Hub nothing.
            msg = f"'{path}' of '{repo_id}' is not a file of this plan, and the Hub fallback is off"
            raise RemoteFileNotFoundError(msg, repo_id=repo_id, revision=commit)
        if item is None or self._use_hub(item, None):
            with self.hub.open_range(repo_id, commit, path, start=start, end=end) as stream:
                yield stream
            return
        with ExitStack() as stack:
            why: str | None = None
            try:
                stream, total = stack.enter_context(
                    self.store.open(self.store.location.blob_key(item.digest), start=start, end=end)
                )
            except RemoteFileNotFoundError:
                why = "is not in the store"
            else:
                if total is not None and total != item.size:
                    why = f"holds {total} bytes, not {item.size}"
            if why is not None:
                stack.close()
                self._use_hub(item, why)
                stream = stack.enter_context(self.hub.open_range(repo_id, commit, path, start=start, end=end))
            else:
                with self._lock:
                    self._from_store.add((repo_id, commit, path))
            yield stream

    def rejected(self, repo_id: str, commit: str, path: str) -> str | None:
        """Hear that the bytes of a file did not hash to its digest: name the object they came from.

        With the fallback on, the next try reads the file from the Hub; None when the store
        was not the source of those bytes.
        """
        key = (repo_id, commit, path)
        with self._lock:
            if key not in self._from_store:
                return None
            self._from_store.discard(key)
        item = self._files[key]
        where = f"the object {self.store.url(self.store.location.blob_key(item.digest))}"
        if self.settings.hub_fallback:
            with self._lock:
                self._elsewhere.add(item.digest)
            self._notify(
                f"'{item.local_path}': {where} holds other bytes than the lockfile pins; "
                "it was not placed, the next try reads the file from the Hub"
            )
        return where

    def _use_hub(self, item: PlannedFile, why: str | None) -> bool:
        """Whether `item` is read from the Hub; with `why`, its blob has just failed us so."""
        with self._lock:
            if why is None:
                return item.digest in self._elsewhere
            first = item.digest not in self._elsewhere
            if self.settings.hub_fallback:
                self._elsewhere.add(item.digest)
        url = self.store.url(self.store.location.blob_key(item.digest))
        if not self.settings.hub_fallback:
            msg = f"'{item.local_path}': {url} {why}, and --no-fallback keeps the Hub out of it"
            hint = f"Publish the stack there: `wanmodels publish {self.store.location}` where it is complete."
            if why.startswith("is not"):
                raise RemoteFileNotFoundError(msg, repo_id=item.repo_id, revision=item.commit, hint=hint)
            raise HubError(msg, repo_id=item.repo_id, revision=item.commit, hint=hint)
        if first:
            self._notify(f"'{item.local_path}': {url} {why}; fetching the file from the Hub instead")
        return True
