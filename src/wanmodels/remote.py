"""Where bytes come from: plain data about remote files, and the `ByteSource` protocol.

Planning and fetching talk to a `ByteSource`, never to huggingface_hub directly: the Hub
client (`wanmodels.hub.Hub`) is one implementation, tests use an in-memory one, and
local sources (another folder, the Hugging Face cache) can stand in for the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from wanmodels.integrity import Digest


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file of a repo at a commit: its path, size and the digest its bytes must have."""

    path: str
    size: int
    digest: Digest


@dataclass(frozen=True, slots=True)
class RemoteRepo:
    """A repo resolved to one commit, with every file it holds there.

    `unhashed` names files listed without a digest of their bytes (a Xet hash but no LFS
    sha256): they are in `files` so selections see them, but their digest there is only the
    git blob id of a pointer, so fetching one needs a sha256 declared in the manifest.
    """

    repo_id: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]
    unhashed: frozenset[str] = frozenset()


def never_waiting() -> bool:
    """`Stream.waiting` of a source that cannot tell whether more bytes have arrived."""
    return False


@dataclass(frozen=True, slots=True)
class Stream:
    """An open read of a file: where its bytes start, how many follow, and the bytes.

    A server that ignores `Range` sends the whole file (`whole`, `offset` 0) whatever was
    asked for, and the reader must notice.
    """

    offset: int
    length: int | None
    chunks: Iterator[bytes]
    whole: bool = False
    # Whether more bytes have already arrived, so the next chunk comes without waiting: the
    # reader may then write several together. Never, when the source cannot tell.
    waiting: Callable[[], bool] = never_waiting


class ByteSource(Protocol):
    """Lists repos and opens byte ranges of their files; methods may be called from many threads."""

    def list_repo(self, repo_id: str, revision: str, *, entry: str) -> RemoteRepo:
        """Resolve `revision` to a commit and list every file with its size and digest.

        Raises:
            HubError (or a subclass): the repo or revision cannot be listed.
        """
        ...

    def open_range(
        self, repo_id: str, commit: str, path: str, *, start: int = 0, end: int | None = None
    ) -> AbstractContextManager[Stream]:
        """Open bytes `[start, end)` of a file (to its end when `end` is None).

        Raises:
            TransientHubError: worth retrying; HubError: not worth it.
        """
        ...
