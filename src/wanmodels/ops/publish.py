"""Publish a locked, verified stack to an object store: each file once, named by its digest.

What nodes then read with `wanmodels download --from URL` (layout: `wanmodels.sources.router`). Every
blob carries the digest in its metadata; a blob already there with that digest and the right
size is skipped (never judged by its ETag, which is no sha256 for a multipart object), anything
else at its key is replaced. Files up to `PART_SIZE` go up in one PUT, larger ones in parts,
several at a time; a stopped run leaves its multipart upload open and the next run reuses every
part the store holds with the same size and checksum. The store checks each PUT and part against
the sha256 sent with it, and the bytes of every file are hashed as they are read: a file that
changed since it was verified is never published under its old digest.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from wanmodels._fs import safe_join
from wanmodels._text import count, human_bytes
from wanmodels._threads import map_threads, own_event
from wanmodels.config import Settings, StoreLocation
from wanmodels.digests import Digest, Hasher
from wanmodels.errors import EXIT_OK, IntegrityError, Interrupted, LocalIOError, WanmodelsError
from wanmodels.inputs.manifest import Manifest
from wanmodels.sources.pins import resolve_selections
from wanmodels.sources.retry import retried
from wanmodels.sources.router import open_store

if TYPE_CHECKING:
    from wanmodels.sources.s3 import PartInfo, S3Store

T = TypeVar("T")
PART_SIZE: Final = 16 << 20  # also the largest single PUT
MAX_PARTS: Final = 10_000  # S3's limit per upload
MAX_PARTS_IN_FLIGHT: Final = 8  # bounds memory: twice this many parts are held at most


class BlobAction(str, Enum):
    """What publish does (or, in a dry run, would do) with one blob."""

    UPLOAD = "upload"
    RESUME = "resume"  # a stopped multipart upload is continued
    REPLACE = "replace"  # the key holds another size or no (or another) recorded digest
    PRESENT = "present"  # already there: skipped


@dataclass(frozen=True, slots=True)
class PublishedBlob:
    """One digest of the stack and what became of it in the store."""

    key: str
    digest: Digest
    size: int
    local_path: str  # the first file of the root that holds these bytes
    action: BlobAction
    bytes_sent: int = 0
    bytes_reused: int = 0  # parts of a stopped upload that were kept


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The outcome of `publish`: every blob, the lockfile key(s), what moved."""

    store: str
    blobs: tuple[PublishedBlob, ...]
    locks: tuple[str, ...]
    dry_run: bool
    seconds: float = 0.0
    files: int = 0  # selected files (several may share a blob)

    @property
    def bytes_sent(self) -> int:
        return sum(b.bytes_sent for b in self.blobs)

    @property
    def to_send(self) -> int:
        return sum(b.size for b in self.blobs if b.action is not BlobAction.PRESENT)

    @property
    def exit_code(self) -> int:
        return EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "dry_run": self.dry_run,
            "files": self.files,
            "blobs": [
                {
                    "key": b.key,
                    "digest": str(b.digest),
                    "size": b.size,
                    "local": b.local_path,
                    "action": b.action.value,
                    "bytes_sent": b.bytes_sent,
                    "bytes_reused": b.bytes_reused,
                }
                for b in self.blobs
            ],
            "locks": list(self.locks),
            "bytes_to_send": self.to_send,
            "bytes_sent": self.bytes_sent,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class _Blob:
    key: str
    digest: Digest
    size: int
    local_path: str
    path: Path


@dataclass
class _Sent:
    bytes_sent: int = 0
    bytes_reused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sent: int = 0, reused: int = 0) -> None:
        with self.lock:
            self.bytes_sent += sent
            self.bytes_reused += reused


def publish(
    manifest: Manifest,
    location: StoreLocation,
    names: tuple[str, ...] = (),
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    notify: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> PublishResult:
    """Upload the chosen entries' files to `location` by digest, then their lockfile.

    Needs the lockfile (it names every digest) and a root that verifies against it; checks
    nothing on the Hub. In a dry run, only looks at what the store holds.

    Raises:
        LockError: there is no lockfile, or it does not match the manifest.
        WanmodelsError: a file of the root does not verify (exit 1, the fix in the hint).
        IntegrityError: a file changed while it was read (nothing is published under its digest).
        UsageError: the `s3` extra is not installed.
        HubError: the store refused (no bucket, credentials, failures past the retry budget).
        LocalIOError: a file cannot be read.
        Interrupted: `cancel` was set or Ctrl-C; a multipart upload is kept open for the next run.
    """
    settings = settings or Settings()
    say = notify or _ignore
    with own_event(cancel) as run_cancel:
        return _Publisher(manifest, location, settings, say, run_cancel).run(names, dry_run=dry_run)


class _Publisher:
    def __init__(
        self,
        manifest: Manifest,
        location: StoreLocation,
        settings: Settings,
        notify: Callable[[str], None],
        cancel: threading.Event,
    ) -> None:
        self.manifest = manifest
        self.location = location
        self.settings = settings
        self.notify = notify
        self.cancel = cancel
        self.store: S3Store | None = None

    def run(self, names: tuple[str, ...], *, dry_run: bool) -> PublishResult:
        started = time.monotonic()
        blobs, files = self._blobs(names)
        store = self.store = open_store(self.location, self.settings, connections=self.settings.workers)
        self._retried(store.check_bucket, "open")
        actions = map_threads(
            self._action, blobs, self.settings.workers, name="wanmodels-head", cancel=self.cancel
        )
        locks = (self.location.lock_key(self.manifest.lock_path.name),)
        if dry_run:
            planned = tuple(_published(b, a, _Sent()) for b, a in zip(blobs, actions, strict=True))
            return PublishResult(str(self.location), planned, locks, True, time.monotonic() - started, files)
        todo = [(b, a) for b, a in zip(blobs, actions, strict=True) if a is not BlobAction.PRESENT]
        sent = {b.key: _Sent() for b in blobs}
        small = [(b, a) for b, a in todo if b.size <= PART_SIZE]
        large = [(b, a) for b, a in todo if b.size > PART_SIZE]
        if todo:
            self.notify(
                f"uploading {count(len(todo), 'blob')} ({human_bytes(sum(b.size for b, _ in todo))}) "
                f"to {self.location}; {len(blobs) - len(todo)} already there"
            )
        map_threads(
            lambda job: self._put(job[0], sent[job[0].key]),
            small,
            self.settings.workers,
            name="wanmodels-put",
            cancel=self.cancel,
        )
        # One large file at a time, its parts in parallel: memory stays bounded by the parts in flight.
        map_threads(
            lambda job: self._multipart(job[0], sent[job[0].key]),
            large,
            1,
            name="wanmodels-upload",
            cancel=self.cancel,
        )
        self._put_lock(locks[0])
        done = tuple(_published(b, a, sent[b.key]) for b, a in zip(blobs, actions, strict=True))
        return PublishResult(str(self.location), done, locks, False, time.monotonic() - started, files)

    # -- what to publish ------------------------------------------------------------------------

    def _blobs(self, names: tuple[str, ...]) -> tuple[list[_Blob], int]:
        """Every distinct digest of the chosen entries, largest first, from a root that verifies."""
        from wanmodels.ops.verify import verify

        manifest = self.manifest
        selections, _ = resolve_selections(manifest, manifest.select(names), self.settings, frozen=True)
        report = verify(manifest, names, settings=self.settings)
        bad = [f for f in report.findings if f.is_error]
        if bad:
            listed = "; ".join(f"'{f.path}': {f.detail}" for f in bad[:3])
            more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
            msg = f"cannot publish: {count(len(bad), 'file')} of the root do not verify: {listed}{more}"
            hint = f"Run `{manifest.command('download')}` first; publish sends only verified files."
            raise WanmodelsError(msg, hint=hint)
        blobs: dict[Digest, _Blob] = {}
        files = 0
        for sel in selections:
            for item in sel.files:
                files += 1
                digest = item.remote.digest
                if digest not in blobs:
                    path = safe_join(manifest.root, item.local_path)
                    blobs[digest] = _Blob(
                        self.location.blob_key(digest), digest, item.remote.size, item.local_path, path
                    )
        return sorted(blobs.values(), key=lambda b: (-b.size, b.key)), files

    def _action(self, blob: _Blob) -> BlobAction:
        store = self._store
        info = self._retried(lambda: store.head(blob.key), "look up")
        if info is not None and info.size == blob.size and info.digest == blob.digest:
            return BlobAction.PRESENT
        if blob.size > PART_SIZE and self._retried(lambda: store.unfinished_upload(blob.key), "look up"):
            return BlobAction.RESUME
        return BlobAction.UPLOAD if info is None else BlobAction.REPLACE

    # -- uploads --------------------------------------------------------------------------------

    def _put(self, blob: _Blob, sent: _Sent) -> None:
        data = _read(blob, 0, blob.size)
        hasher = Hasher(blob.digest.algorithm, blob.size)
        hasher.update(data)
        _check(blob, hasher)
        checksum = _sha256_b64(data)
        self._retried(
            lambda: self._store.put(blob.key, data, digest=blob.digest, sha256_b64=checksum), "write"
        )
        sent.add(len(data))
        self.notify(f"uploaded '{blob.local_path}' ({human_bytes(blob.size)}) as {self._store.url(blob.key)}")

    def _multipart(self, blob: _Blob, sent: _Sent) -> None:
        """Upload a large file in parts; a stopped upload of the same key is continued."""
        store = self._store
        size = max(PART_SIZE, -(-blob.size // MAX_PARTS))
        stopped = self._retried(lambda: store.unfinished_upload(blob.key), "look up")
        held: dict[int, PartInfo] = {}
        if stopped is not None:
            upload = stopped
            held = self._retried(lambda: store.parts(blob.key, stopped), "look up")
        else:
            upload = self._retried(lambda: store.start_upload(blob.key, digest=blob.digest), "write")
        hasher = Hasher(blob.digest.algorithm, blob.size)
        done: dict[int, tuple[str, str]] = {}
        failures: list[BaseException] = []
        work: queue.Queue[tuple[int, bytes, str] | None] = queue.Queue(maxsize=MAX_PARTS_IN_FLIGHT)

        def uploader() -> None:
            while (job := work.get()) is not None:
                if failures or self.cancel.is_set():
                    continue
                try:
                    etag = self._retried(partial(self._upload_part, blob.key, upload, job), "write")
                except BaseException as err:  # handed to the reading thread
                    failures.append(err)
                    continue
                done[job[0]] = (etag, job[2])
                sent.add(len(job[1]))

        uploaders = [
            threading.Thread(target=uploader, name=f"wanmodels-part-{i}", daemon=True)
            for i in range(max(1, min(MAX_PARTS_IN_FLIGHT, self.settings.workers)))
        ]
        for thread in uploaders:
            thread.start()
        try:
            for number, offset in enumerate(range(0, blob.size, size), start=1):
                if failures or self.cancel.is_set():
                    break
                data = _read(blob, offset, min(size, blob.size - offset))
                hasher.update(data)
                checksum = _sha256_b64(data)
                part = held.get(number)
                if part is not None and _same_part(part, data, checksum):
                    done[number] = (part.etag, checksum)
                    sent.add(reused=len(data))
                    continue
                work.put((number, data, checksum))
        finally:
            for _ in uploaders:
                work.put(None)
            for thread in uploaders:
                while thread.is_alive():
                    thread.join(0.2)
        if failures:
            raise failures[0]
        if self.cancel.is_set():
            msg = f"interrupted while uploading '{blob.local_path}'; the next publish continues it"
            raise Interrupted(msg)
        try:
            _check(blob, hasher)
        except IntegrityError:
            self._retried(lambda: store.abort(blob.key, upload), "write")
            raise
        parts = [(n, *done[n]) for n in sorted(done)]
        self._retried(lambda: store.complete(blob.key, upload, parts), "write")
        kept = f", {human_bytes(sent.bytes_reused)} kept from a stopped run" if sent.bytes_reused else ""
        self.notify(
            f"uploaded '{blob.local_path}' ({human_bytes(blob.size)}, {count(len(parts), 'part')}{kept}) "
            f"as {store.url(blob.key)}"
        )

    def _upload_part(self, key: str, upload: str, job: tuple[int, bytes, str]) -> str:
        number, data, checksum = job
        return self._store.upload_part(key, upload, number, data, sha256_b64=checksum)

    def _put_lock(self, key: str) -> None:
        try:
            data = self.manifest.lock_path.read_bytes()
        except OSError as err:
            msg = f"cannot read the lockfile '{self.manifest.lock_path}': {err.strerror}"
            raise LocalIOError(msg) from None
        checksum = _sha256_b64(data)
        self._retried(lambda: self._store.put(key, data, digest=None, sha256_b64=checksum), "write")

    # -- helpers --------------------------------------------------------------------------------

    @property
    def _store(self) -> S3Store:
        assert self.store is not None
        return self.store

    def _retried(self, request: Callable[[], T], action: str) -> T:
        what = f"interrupted while waiting to {action} in {self.location}"
        return retried(request, self.settings, notify=self.notify, cancel=self.cancel, interrupted=what)


def _read(blob: _Blob, offset: int, length: int) -> bytes:
    try:
        with blob.path.open("rb") as f:
            f.seek(offset)
            data = f.read(length)
    except OSError as err:
        msg = f"cannot read '{blob.local_path}': {err.strerror}"
        raise LocalIOError(msg) from None
    if len(data) != length:
        msg = f"'{blob.local_path}' is shorter than its {blob.size} bytes: it changed since it was verified"
        raise IntegrityError(
            msg, path=blob.local_path, expected=str(blob.size), actual="shorter", hint=_REVERIFY
        )
    return data


_REVERIFY: Final = "Run `wanmodels verify` (and download again if it fails), then publish again."


def _check(blob: _Blob, hasher: Hasher) -> None:
    actual = hasher.digest()
    if actual != blob.digest:
        msg = (
            f"'{blob.local_path}' changed since it was verified: expected {blob.digest} got {actual}; "
            "it was not published"
        )
        raise IntegrityError(
            msg, path=blob.local_path, expected=str(blob.digest), actual=str(actual), hint=_REVERIFY
        )


def _same_part(part: PartInfo, data: bytes, checksum: str) -> bool:
    """Whether a part the store holds has these bytes: its sha256 where the store keeps part
    checksums, else its ETag, which S3 and its look-alikes make the MD5 of an unencrypted part."""
    if part.size != len(data):
        return False
    if part.sha256 is not None:
        return part.sha256 == checksum
    return part.etag.strip('"').lower() == hashlib.md5(data, usedforsecurity=False).hexdigest()


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _published(blob: _Blob, action: BlobAction, sent: _Sent) -> PublishedBlob:
    return PublishedBlob(
        blob.key, blob.digest, blob.size, blob.local_path, action, sent.bytes_sent, sent.bytes_reused
    )


def _ignore(_text: str) -> None:
    pass
