"""The S3 test server itself: moto behind the proxy, its signature checks, its log and its fault knobs."""

from __future__ import annotations

import threading

import pytest

from tests.support.hubserver import Fault, HubServer
from tests.support.s3server import S3Server, _client


def proxied(s3: S3Server, key: str | None = None, secret: str | None = None):  # type: ignore[no-untyped-def]
    return _client("s3", s3.url, key or s3.access_key, secret or s3.secret_key)


def test_requests_through_the_proxy_are_signed_checked_and_logged(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    client = proxied(s3)
    client.put_object(Bucket=bucket, Key="a/b.bin", Body=b"0123456789")
    got = client.get_object(Bucket=bucket, Key="a/b.bin", Range="bytes=2-5")
    assert got["Body"].read() == b"2345"
    assert got["ContentRange"] == "bytes 2-5/10"
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        proxied(s3, secret="not-it").get_object(Bucket=bucket, Key="a/b.bin")
    gets = s3.gets(bucket, "a/b.bin")
    assert [(r.range, r.status, r.bytes_sent) for r in gets] == [
        ("bytes=2-5", 206, 4),
        (None, 403, gets[1].bytes_sent),
    ]
    assert s3.bytes_sent(bucket) == 4
    assert s3.errors == []


def test_status_cut_corrupt_and_hang_faults(s3: S3Server) -> None:
    bucket = s3.new_bucket()
    s3.client().put_object(Bucket=bucket, Key="k", Body=b"x" * 100_000)
    client = proxied(s3)
    slow = s3.add_fault(Fault(origin="s3", kind="status", status=503, path="k"))
    with pytest.raises(Exception, match="SlowDown"):
        client.get_object(Bucket=bucket, Key="k")
    assert slow.applied == 1
    s3.add_fault(Fault(origin="s3", kind="status", status=403, headers={"x-error-code": "AccessDenied"}))
    with pytest.raises(Exception, match="AccessDenied"):
        client.get_object(Bucket=bucket, Key="k")
    s3.add_fault(Fault(origin="s3", kind="corrupt", path="k"))
    # A part of the object: of a whole one, botocore checks the stored CRC and refuses these bytes.
    corrupted = client.get_object(Bucket=bucket, Key="k", Range="bytes=0-49999")["Body"].read()
    assert corrupted == bytes([ord("x") ^ 0xFF]) * 50_000
    s3.add_fault(Fault(origin="s3", kind="cut", path="k", after_bytes=1000))
    with pytest.raises(Exception):  # noqa: B017, PT011  (botocore's streaming error, whichever it is)
        client.get_object(Bucket=bucket, Key="k")["Body"].read()
    assert s3.gets(bucket, "k")[-1].bytes_sent == 1000
    hang = s3.add_fault(Fault(origin="s3", kind="hang", path="other", seconds=0.3))
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x" * 100_000  # another key: no hang
    assert hang.applied == 0
    s3.add_fault(Fault(origin="s3", kind="status", status=503, repo_id="elsewhere-*"))
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x" * 100_000  # another bucket


def test_a_hung_request_is_answered_after_its_wait_and_the_fault_only_matches_its_origin(
    s3: S3Server,
) -> None:
    bucket = s3.new_bucket()
    s3.client().put_object(Bucket=bucket, Key="k", Body=b"abc")
    s3.add_fault(Fault(origin="s3", kind="hang", path="k", seconds=0.2))
    done = threading.Event()
    body: list[bytes] = []

    def read() -> None:
        body.append(proxied(s3).get_object(Bucket=bucket, Key="k")["Body"].read())
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(30)
    assert body == [b"abc"]
    assert s3.gets(bucket, "k")[0].fault == "hang"
    with pytest.raises(ValueError, match="origin='s3'"):
        s3.add_fault(Fault(kind="status"))
    with HubServer() as hub:
        hub.add_fault(Fault(origin="s3", kind="status"))  # accepted, and never matches a Hub request
        assert hub.requests == []
