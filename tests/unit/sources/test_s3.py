"""The S3 source against moto through the proxy: the `ByteSource` contract the Hub source keeps.

Written source-agnostic where the contract is (`open_range` of `StoreFirst`, the source a download
uses): ranges, reads to the end, lengths, transient vs fatal errors, a stream left early. These
are the cases a shared conformance suite runs against every source.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from tests.support.hubserver import Fault
from tests.support.s3server import S3Server
from wanmodels.config import Settings, StoreLocation, parse_store_url
from wanmodels.digests import Digest
from wanmodels.errors import (
    AccessDeniedError,
    HubError,
    RemoteFileNotFoundError,
    TransientHubError,
    UsageError,
)
from wanmodels.planning.plan import Action, ModelPlan, Plan, PlannedFile
from wanmodels.sources.router import StoreFirst
from wanmodels.sources.s3 import S3Store

DATA = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable
REPO, COMMIT, PATH = "test/repo", "c" * 40, "weights.bin"


def planned(data: bytes, path: str = PATH) -> PlannedFile:
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    return PlannedFile("entry", REPO, COMMIT, path, f"entry/{path}", len(data), digest, Action.DOWNLOAD, 0)


def source_for(location: StoreLocation, items: list[PlannedFile], *, fallback: bool = False) -> StoreFirst:
    plan = Plan(Path("/nonexistent"), (ModelPlan(None, COMMIT, tuple(items)),))  # type: ignore[arg-type]
    settings = Settings(hub_fallback=fallback, retries=1, retry_wait=0.01)
    store = S3Store(location, settings, connections=4)
    return StoreFirst(store, plan, settings, notify=lambda _: None, cancel=threading.Event())


@pytest.fixture
def store(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> tuple[S3Server, StoreLocation]:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    location = StoreLocation("s3", s3.new_bucket(), "pre/")
    s3.client().put_object(Bucket=location.bucket, Key=location.blob_key(planned(DATA).digest), Body=DATA)
    return s3, location


def read(source: StoreFirst, start: int = 0, end: int | None = None) -> tuple[int, int | None, bool, bytes]:
    with source.open_range(REPO, COMMIT, PATH, start=start, end=end) as stream:
        return stream.offset, stream.length, stream.whole, b"".join(stream.chunks)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (1, None), (100_000, None), (0, 1), (7, 300_007), (len(DATA) - 1, len(DATA))],
)
def test_a_range_is_exactly_the_bytes_asked_for(
    store: tuple[S3Server, StoreLocation], start: int, end: int | None
) -> None:
    _, location = store
    offset, length, whole, body = read(source_for(location, [planned(DATA)]), start, end)
    stop = len(DATA) if end is None else end
    assert (offset, length, whole) == (start, stop - start, False)
    assert body == DATA[start:stop]


def test_the_store_is_read_by_digest_and_names_the_object(store: tuple[S3Server, StoreLocation]) -> None:
    s3, location = store
    read(source_for(location, [planned(DATA)]), 0, 10)
    key = location.blob_key(planned(DATA).digest)
    assert key == f"pre/blobs/sha256/{hashlib.sha256(DATA).hexdigest()}"
    assert [r.file for r in s3.gets(location.bucket)] == [key]


def test_a_missing_blob_without_fallback_is_a_not_found_error_naming_it(
    store: tuple[S3Server, StoreLocation],
) -> None:
    _, location = store
    other = planned(b"not published")
    with pytest.raises(RemoteFileNotFoundError, match=r"s3://.*/pre/blobs/sha256/.*--no-fallback") as caught:
        read(source_for(location, [other]))
    assert not isinstance(caught.value, TransientHubError)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (503, "SlowDown", TransientHubError),
        (500, "InternalError", TransientHubError),
        (400, "RequestTimeout", TransientHubError),
        (403, "AccessDenied", AccessDeniedError),
        (400, "InvalidArgument", HubError),
    ],
)
def test_transient_and_fatal_answers(
    store: tuple[S3Server, StoreLocation], status: int, code: str, kind: type[HubError]
) -> None:
    s3, location = store
    s3.add_fault(Fault(origin="s3", kind="status", status=status, headers={"x-error-code": code}))
    with pytest.raises(kind, match=code) as caught:
        read(source_for(location, [planned(DATA)]))
    assert isinstance(caught.value, TransientHubError) == (kind is TransientHubError)
    assert caught.value.status == status


def test_a_connection_cut_mid_body_is_transient(store: tuple[S3Server, StoreLocation]) -> None:
    s3, location = store
    s3.add_fault(Fault(origin="s3", kind="cut", after_bytes=300_000))
    got = bytearray()

    def drain() -> None:
        with source_for(location, [planned(DATA)]).open_range(
            REPO, COMMIT, PATH, start=0, end=len(DATA)
        ) as stream:
            for chunk in stream.chunks:
                got.extend(chunk)

    with pytest.raises(TransientHubError):
        drain()
    assert bytes(got) == DATA[: len(got)]
    assert len(got) <= 300_000


def test_a_stream_left_early_lets_go_and_the_next_read_works(store: tuple[S3Server, StoreLocation]) -> None:
    _, location = store
    source = source_for(location, [planned(DATA)])
    for _ in range(3):  # more than once: every early exit hands its connection back (or drops it)
        with source.open_range(REPO, COMMIT, PATH) as stream:
            chunk = next(stream.chunks)
            assert chunk and DATA.startswith(chunk)
    assert read(source, 5, 10)[3] == DATA[5:10]


def test_refused_credentials_and_a_missing_bucket_are_fatal_and_one_line(
    store: tuple[S3Server, StoreLocation], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, location = store
    missing = StoreLocation("s3", "no-such-bucket-x", "")
    with pytest.raises(HubError, match="bucket 'no-such-bucket-x' does not exist") as caught:
        source_for(missing, [planned(DATA)]).probe()
    assert not isinstance(caught.value, TransientHubError)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    with pytest.raises(AccessDeniedError, match="SignatureDoesNotMatch") as denied:
        source_for(location, [planned(DATA)]).probe()
    assert "wrong-secret-value" not in str(denied.value) and "\n" not in str(denied.value)
    assert s3.secret_key not in str(denied.value)


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://b", "b", ""),
        ("s3://b/", "b", ""),
        ("s3://b/wan21", "b", "wan21/"),
        ("S3://b/a/b/", "b", "a/b/"),
    ],
)
def test_store_urls(url: str, bucket: str, prefix: str) -> None:
    assert parse_store_url(url) == StoreLocation("s3", bucket, prefix)


@pytest.mark.parametrize(
    "url", ["gs://b/p", "b/p", "s3://", "s3:///p", "s3://b/a//c", "s3://b/../c", "/tmp/x"]
)
def test_other_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError, match="--from"):
        parse_store_url(url)
