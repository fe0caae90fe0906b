"""What the fake Hub serves: files hashed once, commits, branches, and who may read which repo."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

LFS_SUFFIXES: tuple[str, ...] = (
    ".safetensors",
    ".bin",
    ".pth",
    ".pt",
    ".h5",
    ".msgpack",
    ".ckpt",
    ".onnx",
    ".gguf",
)
LFS_THRESHOLD = 1 << 20  # files strictly larger than this are stored in LFS whatever their name

_HASH_PIECE = 8 << 20

FileSource = bytes | bytearray | memoryview | Path


def is_lfs(path: str, size: int) -> bool:
    """Say whether the Hub would store this file in LFS, which decides its ETag and tree `lfs` block."""
    return path.lower().endswith(LFS_SUFFIXES) or size > LFS_THRESHOLD


def git_blob_sha1(data: bytes | bytearray | memoryview) -> str:
    """Git object id of a blob, which is what the Hub reports as `oid`/`blobId` for regular files."""
    digest = hashlib.sha1(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """Git LFS pointer text: the Hub's `oid` for an LFS file is the git sha1 of this, not of the content."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class FileEntry:
    """One file of one commit, with every hash a client may check it against.

    `blob_id` is what the Hub advertises (`oid` in trees, `blobId` in siblings, ETag of regular files):
    the git sha1 of the content for regular files, of the LFS pointer for LFS files. `git_sha1` and
    `sha256` are always those of the content, so tests can build manifests without re-hashing.
    """

    path: str
    size: int
    lfs: bool
    git_sha1: str
    sha256: str
    blob_id: str
    data: bytes | None = field(default=None, repr=False, compare=False)
    source: Path | None = None

    @property
    def etag(self) -> str:
        """Value the client stores the blob under: sha256 for LFS files, git sha1 otherwise."""
        return self.sha256 if self.lfs else self.git_sha1

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file, reported as `pointerSize`."""
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def xet_hash(self) -> str:
        """A stand-in Xet hash (64 hex, derived from the content): only ever listed, never served by Xet."""
        return hashlib.sha256(b"xet\0" + self.sha256.encode()).hexdigest()

    def read(self) -> bytes:
        """Whole content, for small files and assertions."""
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()


@dataclass(frozen=True)
class Commit:
    sha: str
    files: Mapping[str, FileEntry]
    dirs: frozenset[str]
    date: str
    title: str
    xet_only: frozenset[str] = frozenset()  # paths listed with `xetHash` and no `lfs` block


@dataclass
class Repo:
    repo_id: str
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Access:
    token: str
    gated: bool


@dataclass(frozen=True)
class RepoView:
    """A repo as one request sees it: content, token rule, and whether the Hub disabled it."""

    repo: Repo | None
    access: Access | None
    disabled: bool


def validate_repo_path(path: str) -> None:
    parts = path.split("/")
    if not path or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid repo file path {path!r}")


def utc_stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def hash_source(path: str, value: FileSource) -> FileEntry:
    """Hash a file once at add time: serving must never rehash, benchmarks push gigabytes through."""
    if isinstance(value, Path):
        size = value.stat().st_size
        sha1 = hashlib.sha1(b"blob %d\0" % size)
        sha256 = hashlib.sha256()
        with value.open("rb") as f:
            while chunk := f.read(_HASH_PIECE):
                sha1.update(chunk)
                sha256.update(chunk)
        data, source = None, value
    else:
        data = bytes(value)
        size = len(data)
        sha1 = hashlib.sha1(b"blob %d\0" % size)
        sha1.update(data)
        sha256 = hashlib.sha256(data)
        source = None
    lfs = is_lfs(path, size)
    content_sha1, content_sha256 = sha1.hexdigest(), sha256.hexdigest()
    blob_id = git_blob_sha1(lfs_pointer(content_sha256, size)) if lfs else content_sha1
    return FileEntry(
        path=path,
        size=size,
        lfs=lfs,
        git_sha1=content_sha1,
        sha256=content_sha256,
        blob_id=blob_id,
        data=data,
        source=source,
    )


class RepoStore:
    """Repos, commits and access rules behind one lock; handler threads read, tests write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._repos: dict[str, Repo] = {}
        self._access: dict[str, Access] = {}
        self._disabled: set[str] = set()
        self._commit_counter = itertools.count(1)

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, FileSource],
        branch: str,
        *,
        hostile: bool,
        xet_only: Iterable[str],
    ) -> str:
        if not repo_id or repo_id.startswith("/") or repo_id.endswith("/") or repo_id.count("/") > 1:
            raise ValueError(f"invalid repo id {repo_id!r}")
        entries: dict[str, FileEntry] = {}
        for path, value in files.items():
            if not hostile:
                validate_repo_path(path)
            entries[path] = hash_source(path, value)
        xet = frozenset(xet_only)
        if xet - entries.keys():
            raise ValueError(f"xet_only names files not in the commit: {sorted(xet - entries.keys())}")
        dirs = frozenset("/".join(p.split("/")[:i]) for p in entries for i in range(1, p.count("/") + 1))
        clash = dirs & entries.keys()
        if clash:
            raise ValueError(f"paths used both as file and directory: {sorted(clash)}")
        now = time.time()
        with self._lock:
            repo = self._repos.setdefault(repo_id, Repo(repo_id))
            parent = repo.refs.get(branch)
            seed = json.dumps(
                [
                    repo_id,
                    branch,
                    parent,
                    next(self._commit_counter),
                    sorted((p, e.blob_id) for p, e in entries.items()),
                ]
            )
            sha = hashlib.sha1(seed.encode()).hexdigest()
            title = f"Commit {len(repo.commits) + 1} on {branch}"
            repo.commits[sha] = Commit(sha, dict(entries), dirs, utc_stamp(now), title, xet)
            repo.refs[branch] = sha
        return sha

    def set_branch(self, repo_id: str, name: str, commit: str) -> None:
        with self._lock:
            repo = self._repos[repo_id]
            sha = repo.refs.get(commit, commit)
            if sha not in repo.commits:
                raise KeyError(f"{repo_id} has no commit {commit!r}")
            repo.refs[name] = sha

    def require_token(self, repo_id: str, token: str | None, gated: bool) -> None:
        with self._lock:
            if token is None:
                self._access.pop(repo_id, None)
            else:
                self._access[repo_id] = Access(token, gated)

    def disable(self, repo_id: str, disabled: bool) -> None:
        with self._lock:
            if disabled:
                self._disabled.add(repo_id)
            else:
                self._disabled.discard(repo_id)

    def commit(self, repo_id: str, revision: str) -> Commit:
        with self._lock:
            repo = self._repos[repo_id]
            sha = repo.refs.get(revision, revision)
            if sha not in repo.commits:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            return repo.commits[sha]

    def has_repo(self, repo_id: str) -> bool:
        with self._lock:
            return repo_id in self._repos

    def view(self, repo_id: str) -> RepoView:
        with self._lock:
            return RepoView(self._repos.get(repo_id), self._access.get(repo_id), repo_id in self._disabled)
