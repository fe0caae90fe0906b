"""What the Hub says a repo holds at a commit: plain data, so planning never imports the hub client."""

from __future__ import annotations

from dataclasses import dataclass

from wanmodels.integrity import Digest


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file of a repo at a commit: its path, size and the digest its bytes must have."""

    path: str
    size: int
    digest: Digest


@dataclass(frozen=True, slots=True)
class RemoteRepo:
    """A repo resolved to one commit, with every file it holds there."""

    repo_id: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]
