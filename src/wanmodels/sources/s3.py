"""The only module that imports botocore: blobs of a bucket prefix on S3 or an S3-compatible store.

Reads are ranged GETs streamed in chunks; writes are single PUTs or multipart uploads whose parts
a later run can reuse. Credentials, region and endpoint come from botocore's own chain (the
`AWS_*` variables, `~/.aws/config` profiles, SSO, web identity, container and instance
metadata; `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` for MinIO, Ceph or R2), resolved when the
store is opened. botocore's own retries are off: every transient failure is raised as
`TransientHubError` and retried by `wanmodels.sources.retry`/`wanmodels.transfer.fetch`, with the same budget,
back-off and messages as the Hub. No answer, header or credential is ever put in a message
beyond the error code and the object's URL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

# botocore ships no type information (botocore-stubs would be one more dependency for mypy alone).
import botocore.exceptions as bx  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from wanmodels import __version__
from wanmodels.config import Settings, StoreLocation
from wanmodels.digests import Digest
from wanmodels.errors import (
    AccessDeniedError,
    HubError,
    RemoteFileNotFoundError,
    TransientHubError,
    UsageError,
)
from wanmodels.sources.base import Stream

_log = logging.getLogger(__name__)
DIGEST_META: Final = "wanmodels-digest"  # user metadata (x-amz-meta-wanmodels-digest) of every blob
READ_CHUNK: Final = 256 << 10
_TRANSIENT_CODES: Final = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_DENIED_CODES: Final = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}
)
CREDENTIALS_HINT: Final = (
    "Check the credentials botocore finds (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "the node's role) and that they may read the prefix (s3:GetObject and s3:ListBucket)."
)


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store holds at a key: its size, and the digest publish recorded in its metadata."""

    size: int
    digest: Digest | None


@dataclass(frozen=True, slots=True)
class PartInfo:
    """A part of an unfinished multipart upload, as the store lists it."""

    number: int
    size: int
    etag: str
    sha256: str | None  # base64, when the store keeps part checksums


class S3Store:
    """One bucket prefix, through one botocore client (thread-safe, `connections` sockets)."""

    def __init__(self, location: StoreLocation, settings: Settings, *, connections: int) -> None:
        self.location = location
        self.settings = settings
        config = Config(
            connect_timeout=settings.timeout,
            read_timeout=settings.timeout,
            retries={"total_max_attempts": 1},  # one retry loop: wanmodels.sources.retry
            max_pool_connections=max(10, connections + 2),
            user_agent_extra=f"wanmodels/{__version__}",
        )
        with self._translated("open", None):
            session = botocore.session.get_session()
            self._client: Any = session.create_client("s3", config=config)
        self.endpoint = str(self._client.meta.endpoint_url)
        self._local = threading.local()

    def url(self, key: str) -> str:
        return f"{self.location.scheme}://{self.location.bucket}/{key}"

    # -- reads ----------------------------------------------------------------------------------

    @contextmanager
    def open(
        self, key: str, *, start: int = 0, end: int | None = None
    ) -> Iterator[tuple[Stream, int | None]]:
        """GET bytes `[start, end)` of the object at `key`; yields the stream and the object's size.

        Raises:
            RemoteFileNotFoundError: there is no such object.
            TransientHubError: worth retrying (5xx, SlowDown, a timeout, a dropped connection).
            AccessDeniedError, HubError: not worth it (credentials, no such bucket, ...).
        """
        asked = None
        if end is not None:
            asked = f"bytes={start}-{end - 1}"
        elif start > 0:
            asked = f"bytes={start}-"
        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": key}
        if asked is not None:
            args["Range"] = asked
        with self._translated("read", key):
            answer = self._client.get_object(**args)
        body = answer["Body"]
        try:
            ranged = answer.get("ContentRange")
            total = _total_of(ranged) if ranged else answer.get("ContentLength")
            _log.debug("GET %s [%s] -> %s", self.url(key), asked or "whole", "206" if ranged else "200")
            yield (
                Stream(
                    offset=start if ranged else 0,
                    length=answer.get("ContentLength"),
                    chunks=self._chunks(body, key),
                    whole=not ranged and asked is not None,
                ),
                total,
            )
        finally:
            body.close()

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        while True:
            with self._translated("read", key):
                chunk = body.read(READ_CHUNK)
            if not chunk:
                return
            yield chunk

    def head(self, key: str) -> BlobInfo | None:
        """The size and recorded digest of the object at `key`; None when there is none.

        Raises:
            TransientHubError, AccessDeniedError, HubError.
        """
        try:
            with self._translated("look up", key):
                answer = self._client.head_object(Bucket=self.location.bucket, Key=key)
        except RemoteFileNotFoundError:
            return None
        recorded = (answer.get("Metadata") or {}).get(DIGEST_META)
        try:
            digest = Digest.parse(recorded) if recorded else None
        except ValueError:
            digest = None
        return BlobInfo(int(answer["ContentLength"]), digest)

    def check_bucket(self) -> None:
        """Fail early, with one line, when the bucket is missing or these credentials cannot use it.

        Raises:
            HubError (AccessDeniedError for credentials), TransientHubError.
        """
        with self._translated("open", None):
            self._client.head_bucket(Bucket=self.location.bucket)

    # -- writes ---------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, digest: Digest | None, sha256_b64: str) -> None:
        """Write one object in a single PUT; the store checks `sha256_b64` against what arrived.

        Raises:
            TransientHubError, AccessDeniedError, HubError.
        """
        meta = {DIGEST_META: str(digest)} if digest is not None else {}
        with self._translated("write", key):
            self._client.put_object(
                Bucket=self.location.bucket,
                Key=key,
                Body=data,
                ContentLength=len(data),
                Metadata=meta,
                ChecksumSHA256=sha256_b64,
            )
        _log.debug("PUT %s (%d bytes) -> 200", self.url(key), len(data))

    def unfinished_upload(self, key: str) -> str | None:
        """The newest multipart upload still open for exactly `key` (a run that was stopped)."""
        with self._translated("look up", key):
            answer = self._client.list_multipart_uploads(Bucket=self.location.bucket, Prefix=key)
        uploads = [u for u in answer.get("Uploads") or () if u.get("Key") == key]
        uploads.sort(key=lambda u: u.get("Initiated") or 0, reverse=True)
        return str(uploads[0]["UploadId"]) if uploads else None

    def parts(self, key: str, upload_id: str) -> dict[int, PartInfo]:
        """The parts an open upload already holds."""
        found: dict[int, PartInfo] = {}
        marker = 0
        while True:
            with self._translated("look up", key):
                answer = self._client.list_parts(
                    Bucket=self.location.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker
                )
            for part in answer.get("Parts") or ():
                number = int(part["PartNumber"])
                found[number] = PartInfo(
                    number, int(part["Size"]), str(part["ETag"]), part.get("ChecksumSHA256")
                )
            if not answer.get("IsTruncated"):
                return found
            marker = int(answer["NextPartNumberMarker"])

    def start_upload(self, key: str, *, digest: Digest) -> str:
        with self._translated("write", key):
            answer = self._client.create_multipart_upload(
                Bucket=self.location.bucket,
                Key=key,
                Metadata={DIGEST_META: str(digest)},
                ChecksumAlgorithm="SHA256",
            )
        return str(answer["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, *, sha256_b64: str) -> str:
        """Upload one part (checked by the store against `sha256_b64`); returns its ETag."""
        with self._translated("write", key):
            answer = self._client.upload_part(
                Bucket=self.location.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
                ChecksumSHA256=sha256_b64,
            )
        _log.debug("PUT %s part %d (%d bytes) -> 200", self.url(key), number, len(data))
        return str(answer["ETag"])

    def complete(self, key: str, upload_id: str, parts: list[tuple[int, str, str]]) -> None:
        """Join the parts `(number, etag, sha256_b64)` into the object."""
        listed = [{"PartNumber": n, "ETag": e, "ChecksumSHA256": c} for n, e, c in parts]
        with self._translated("write", key):
            self._client.complete_multipart_upload(
                Bucket=self.location.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
            )

    def abort(self, key: str, upload_id: str) -> None:
        with self._translated("write", key):
            self._client.abort_multipart_upload(Bucket=self.location.bucket, Key=key, UploadId=upload_id)

    # -- errors ---------------------------------------------------------------------------------

    @contextmanager
    def _translated(self, action: str, key: str | None) -> Iterator[None]:
        """Turn botocore's exceptions raised inside the block into ours, naming the object."""
        where = f"'{self.url(key)}'" if key is not None else f"bucket '{self.location.bucket}'"
        host = getattr(self, "endpoint", None) or "the object store"
        try:
            yield
        except bx.ClientError as err:
            raise self._client_error(err, action, where, host) from None
        except (bx.NoCredentialsError, bx.PartialCredentialsError) as err:
            msg = f"cannot {action} {where}: no usable AWS credentials were found ({type(err).__name__})"
            raise AccessDeniedError(msg, hint=CREDENTIALS_HINT) from None
        except bx.ProfileNotFound as err:
            msg = f"cannot {action} {where}: {err}"
            hint = "Set AWS_PROFILE to a profile of ~/.aws/config, or unset it."
            raise UsageError(msg, hint=hint) from None
        except bx.SSLError:  # the same certificate would come back: no retry
            msg = f"cannot {action} {where}: {host} presents a certificate this machine does not trust"
            hint = "Point AWS_CA_BUNDLE at the store's CA certificate."
            raise HubError(msg, hint=hint) from None
        except bx.FlexibleChecksumError:  # a whole object's stored checksum: bytes broken on the way
            msg = f"the bytes of {where} from {host} failed the store's own checksum"
            raise TransientHubError(msg) from None
        except (bx.HTTPClientError, bx.ConnectionError, bx.IncompleteReadError) as err:
            kind = "timed out" if isinstance(err, (bx.ReadTimeoutError, bx.ConnectTimeoutError)) else "failed"
            msg = f"connection to {host} {kind} for {where}: {type(err).__name__}"
            raise TransientHubError(msg) from None
        except (bx.BotoCoreError, ValueError) as err:
            # Configuration and credential-provider failures: not worth retrying.
            msg = f"cannot {action} {where}: {type(err).__name__}: {err}"
            raise HubError(msg, hint="Check AWS_ENDPOINT_URL, AWS_REGION and ~/.aws/config.") from None

    def _client_error(self, err: bx.ClientError, action: str, where: str, host: str) -> HubError:
        info = err.response.get("Error") or {}
        meta = err.response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        code = str(info.get("Code") or status)
        answered = f"{host} answered HTTP {status} {code}"
        if code in ("NoSuchKey", "404") and action != "open":
            return RemoteFileNotFoundError(f"{where} is not in the store", status=status)
        if code in ("NoSuchBucket",) or (action == "open" and status == 404):
            msg = f"bucket '{self.location.bucket}' does not exist at {host}"
            hint = "Check the URL (and AWS_ENDPOINT_URL); publish creates nothing, create the bucket first."
            return HubError(msg, status=status, hint=hint)
        if code in _DENIED_CODES or status in (401, 403):
            msg = f"cannot {action} {where}: {answered}"
            return AccessDeniedError(msg, status=status, hint=CREDENTIALS_HINT)
        if code in _TRANSIENT_CODES or status in _TRANSIENT_STATUS:
            msg = f"{answered} for {where}"
            return TransientHubError(msg, status=status, retry_after=_retry_after(meta))
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed") or status == 301:
            hint = "The bucket is in another region: set AWS_REGION (or AWS_DEFAULT_REGION) to its region."
            return HubError(f"cannot {action} {where}: {answered}", status=status, hint=hint)
        return HubError(f"cannot {action} {where}: {answered}", status=status)


def _total_of(content_range: str) -> int | None:
    """The object's size from `bytes a-b/total` (None when the store says `*`)."""
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else None


def _retry_after(meta: dict[str, Any]) -> float | None:
    value = (meta.get("HTTPHeaders") or {}).get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
