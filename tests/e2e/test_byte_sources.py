"""The `ByteSource` conformance suite: every source passes the same contract (after rclone's fstests).

Run against the in-memory source, the Hub on the test Hub server and the object store on the
S3-compatible test server: ranges, reads to the end, a server that ignores `Range`, lengths,
transient vs fatal errors, a stream left early, and reads from many threads at once. A new
source joins by adding one backend below.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.hubserver import Fault, HubServer
from tests.support.memsource import MemFault, MemorySource
from tests.support.repos import add_repos
from tests.support.s3server import S3Server
from wanmodels.config import Settings, StoreLocation
from wanmodels.digests import Digest
from wanmodels.errors import HubError, TransientHubError
from wanmodels.planning.plan import Action, ModelPlan, Plan, PlannedFile
from wanmodels.sources.base import ByteSource
from wanmodels.sources.router import StoreFirst
from wanmodels.sources.s3 import S3Store

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes, every offset distinguishable
REPO, PATH, MISSING = "conform/repo", "weights.bin", "absent.bin"
DIGEST = Digest("sha256", hashlib.sha256(DATA).hexdigest())


@dataclass
class Backend:
    """One source under test: its file `PATH` holds `DATA`; `fault` arms one misbehaviour of the
    next read (`transient`: a 503; `ignore_range`: the whole file whatever was asked)."""

    source: ByteSource
    commit: str
    fault: Callable[[str], None]
    lists: bool  # it lists repos (an object store serves blobs by digest only)
    ignores_range: bool = True  # its test server can be made to answer a range with the whole file


def _memory() -> Iterator[Backend]:
    source = MemorySource()
    commit = source.add_repo(REPO, {PATH: DATA})
    yield Backend(source, commit, lambda kind: source.add_fault(MemFault(PATH, kind)) and None, lists=True)


def _hub() -> Iterator[Backend]:
    from wanmodels.sources.hub import Hub

    with HubServer() as server:
        commit = add_repos(server, {REPO: {PATH: DATA}})[REPO]

        def fault(kind: str) -> None:
            server.add_fault(
                Fault(path=PATH, kind="status", status=503)
                if kind == "transient"
                else Fault(path=PATH, kind=kind)
            )

        hub = Hub(Settings(endpoint=server.url, retries=0))
        try:
            yield Backend(hub, commit, fault, lists=True)
        finally:
            hub.close()


def _s3(s3: S3Server) -> Iterator[Backend]:
    commit = "c" * 40
    location = StoreLocation("s3", s3.new_bucket(), "conform/")
    s3.client().put_object(Bucket=location.bucket, Key=location.blob_key(DIGEST), Body=DATA)
    item = PlannedFile("entry", REPO, commit, PATH, f"entry/{PATH}", len(DATA), DIGEST, Action.DOWNLOAD, 0)
    plan = Plan(Path("/nowhere"), (ModelPlan(None, commit, (item,)),))  # type: ignore[arg-type]
    settings = Settings(hub_fallback=False, retries=0, retry_wait=0.01)
    source = StoreFirst(
        S3Store(location, settings, connections=4),
        plan,
        settings,
        notify=lambda _: None,
        cancel=threading.Event(),
    )

    def fault(kind: str) -> None:
        s3.add_fault(
            Fault(origin="s3", path=f"*{DIGEST.hexdigest}", kind="status", status=503)
            if kind == "transient"
            else Fault(origin="s3", path=f"*{DIGEST.hexdigest}", kind=kind)
        )

    yield Backend(source, commit, fault, lists=False, ignores_range=False)


@pytest.fixture(params=["memory", "hub", "s3"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backend]:
    if request.param == "memory":
        yield from _memory()
    elif request.param == "hub":
        yield from _hub()
    else:
        s3 = request.getfixturevalue("s3")
        for name, value in s3.env().items():
            monkeypatch.setenv(name, value)
        yield from _s3(s3)


def read(
    backend: Backend, start: int = 0, end: int | None = None, path: str = PATH
) -> tuple[int, int | None, bool, bytes]:
    with backend.source.open_range(REPO, backend.commit, path, start=start, end=end) as stream:
        return stream.offset, stream.length, stream.whole, b"".join(stream.chunks)


def test_a_whole_file_from_byte_0(backend: Backend) -> None:
    offset, length, _, data = read(backend)
    assert (offset, data) == (0, DATA)
    assert length in (None, len(DATA))


@pytest.mark.parametrize(
    ("start", "end"), [(0, 1), (1000, 70_000), (len(DATA) - 4, len(DATA)), (65_536, None)]
)
def test_a_range_is_exactly_its_bytes(backend: Backend, start: int, end: int | None) -> None:
    offset, length, whole, data = read(backend, start, end)
    stop = len(DATA) if end is None else end
    assert (offset, whole, data) == (start, False, DATA[start:stop])
    assert length in (None, stop - start)


def test_a_server_that_ignores_range_sends_the_whole_file_and_says_so(backend: Backend) -> None:
    if not backend.ignores_range:
        pytest.skip("S3 honours Range by protocol, and a signed request cannot be changed on its way")
    backend.fault("ignore_range")
    offset, _, whole, data = read(backend, 5000, 6000)
    assert (offset, whole, data) == (0, True, DATA)  # the reader must notice and start over


def test_a_transient_failure_is_worth_retrying_and_the_next_read_works(backend: Backend) -> None:
    backend.fault("transient")
    with pytest.raises(TransientHubError):
        read(backend, 0, 10)
    assert read(backend, 0, 10)[3] == DATA[:10]


def test_a_file_the_source_lacks_is_a_fatal_error(backend: Backend) -> None:
    with pytest.raises(HubError) as failed:
        read(backend, path=MISSING)
    assert not isinstance(failed.value, TransientHubError)


def test_a_stream_left_early_leaves_the_source_usable(backend: Backend) -> None:
    for _ in range(3):
        with backend.source.open_range(REPO, backend.commit, PATH) as stream:
            first = next(iter(stream.chunks))
            assert DATA.startswith(first)
    assert read(backend, 100, 200)[3] == DATA[100:200]


def test_many_threads_read_their_own_ranges(backend: Backend) -> None:
    spans = [(i * 65_536, (i + 1) * 65_536) for i in range(8)]
    got: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def one(start: int, end: int) -> None:
        try:
            got[start] = read(backend, start, end)[3]
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=one, args=span) for span in spans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(got[start] == DATA[start:end] for start, end in spans)


def test_a_listing_gives_every_files_size_and_digest(backend: Backend) -> None:
    if not backend.lists:
        pytest.skip("an object store serves blobs by digest; listings come from the Hub")
    repo = backend.source.list_repo(REPO, backend.commit, entry="conform")
    (listed,) = [f for f in repo.files if f.path == PATH]
    assert (repo.commit, listed.size, listed.digest) == (backend.commit, len(DATA), DIGEST)
