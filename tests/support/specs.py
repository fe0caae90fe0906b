"""Plain values for the pure unit tests of selection and planning: a digest derived from a path,
a repo file, a manifest entry (no server, no disk)."""

from __future__ import annotations

import hashlib

from wanmodels.digests import Digest
from wanmodels.inputs.manifest import ModelSpec
from wanmodels.repos import RemoteFile


def path_digest(path: str) -> Digest:
    """A sha256 digest that differs per path, so two files never look alike by accident."""
    return Digest("sha256", hashlib.sha256(path.encode()).hexdigest())


def remote_file(path: str, size: int = 10) -> RemoteFile:
    return RemoteFile(path=path, size=size, digest=path_digest(path))


def model_spec(
    *,
    name: str = "t5",
    folder: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    files: tuple[tuple[str, str], ...] = (),
    expect: tuple[str, ...] = (),
) -> ModelSpec:
    """An entry of repo `org/<name>`, in folder `<name>` unless given, as if read from line 7."""
    return ModelSpec(
        name=name,
        repo=f"org/{name}",
        folder=folder if folder is not None else name,
        include=include,
        exclude=exclude,
        files=files,
        expect=expect,
        line=7,
    )
