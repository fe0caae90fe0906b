"""What a repo holds at a commit: the plain data every byte source lists and every lockfile pins."""

from __future__ import annotations

from dataclasses import dataclass

from wanmodels.digests import Digest


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
