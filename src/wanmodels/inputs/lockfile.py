"""The lockfile: every entry pinned to a commit, every selected file to a size and digest.

```json
{
  "version": 1,
  "models": [
    {
      "name": "sd-vae",
      "repo": "stabilityai/sd-vae-ft-mse",
      "revision": "main",
      "commit": "31f26fdeee1355a5c34592e401dd41e45d25a493",
      "selection": "9c1e…",            (fingerprint of folder/include/exclude/files/sha256)
      "files": [
        {"path": "config.json", "local": "sd-vae/config.json", "size": 547,
         "digest": "gitsha1:…"}
      ]
    }
  ]
}
```
Keys in a fixed order, files sorted, a trailing newline: the same inputs give the same bytes,
so the file diffs cleanly and CI can key a cache on its hash. Written atomically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from wanmodels._fs import TooLarge, atomic_write, check_relative, read_at_most
from wanmodels.digests import Digest
from wanmodels.errors import LockError
from wanmodels.inputs.manifest import Manifest, ModelSpec
from wanmodels.inputs.selection import SelectedFile, Selection, checked
from wanmodels.repos import RemoteFile

LOCK_VERSION: Final = 1
MAX_LOCK_BYTES: Final = 64 << 20  # a lockfile of 100,000 files is about 25 MiB


def selection_fingerprint(spec: ModelSpec) -> str:
    """A short hash of everything in an entry that decides which files land where (and their digests)."""
    data: list[object] = [
        spec.repo,
        spec.revision,
        spec.folder,
        list(spec.include),
        list(spec.exclude),
        list(spec.files),
    ]
    if spec.sha256:  # only when declared, so locks written before per-file digests stay valid
        data.append(list(spec.sha256))
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class LockedFile:
    path: str
    local: str
    size: int
    digest: Digest


@dataclass(frozen=True, slots=True)
class LockedModel:
    name: str
    repo: str
    revision: str
    commit: str
    selection: str
    files: tuple[LockedFile, ...]

    def matches(self, spec: ModelSpec) -> bool:
        """Whether this pin still describes `spec` (same repo, revision and selection)."""
        return self.name == spec.name and self.selection == selection_fingerprint(spec)

    def to_selection(self, spec: ModelSpec) -> Selection:
        """The pinned files as a selection, held to the same rules as a fresh one.

        Raises:
            SelectionError: a file lies outside the entry's folder, twice, or `expect` is unmet.
        """
        files = tuple(SelectedFile(RemoteFile(f.path, f.size, f.digest), f.local) for f in self.files)
        return checked(Selection(spec=spec, commit=self.commit, files=files))


@dataclass(frozen=True, slots=True)
class Lockfile:
    models: tuple[LockedModel, ...]
    version: int = LOCK_VERSION

    def get(self, name: str) -> LockedModel | None:
        return next((m for m in self.models if m.name == name), None)

    @classmethod
    def from_selections(cls, selections: tuple[Selection, ...] | list[Selection]) -> Lockfile:
        models = []
        for sel in selections:
            files = tuple(
                LockedFile(f.remote.path, f.local_path, f.remote.size, f.remote.digest)
                for f in sorted(sel.files, key=lambda f: f.local_path)
            )
            models.append(
                LockedModel(
                    name=sel.spec.name,
                    repo=sel.spec.repo,
                    revision=sel.spec.revision,
                    commit=sel.commit,
                    selection=selection_fingerprint(sel.spec),
                    files=files,
                )
            )
        return cls(models=tuple(sorted(models, key=lambda m: m.name)))

    def merged(self, newer: Lockfile) -> Lockfile:
        """This lock with `newer`'s models replacing same-named ones (others kept, order by name)."""
        by_name = {m.name: m for m in self.models}
        by_name.update({m.name: m for m in newer.models})
        return Lockfile(models=tuple(by_name[n] for n in sorted(by_name)))

    def drift(self, manifest: Manifest, specs: tuple[ModelSpec, ...] | None = None) -> list[str]:
        """Why this lock no longer describes the manifest's entries; empty when it does."""
        problems = []
        for spec in specs if specs is not None else manifest.models:
            locked = self.get(spec.name)
            if locked is None:
                problems.append(f"entry '{spec.name}' is not in the lockfile")
            elif not locked.matches(spec):
                problems.append(f"entry '{spec.name}' changed in the manifest since it was locked")
        if specs is None:
            names = {m.name for m in manifest.models}
            problems += [
                f"lockfile entry '{m.name}' is no longer in the manifest"
                for m in self.models
                if m.name not in names
            ]
        return problems

    def to_json(self) -> str:
        data = {
            "version": self.version,
            "models": [
                {
                    "name": m.name,
                    "repo": m.repo,
                    "revision": m.revision,
                    "commit": m.commit,
                    "selection": m.selection,
                    "files": [
                        {"path": f.path, "local": f.local, "size": f.size, "digest": str(f.digest)}
                        for f in m.files
                    ],
                }
                for m in self.models
            ],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def read_lock(path: Path) -> Lockfile | None:
    """Read a lockfile; None when there is none.

    Raises:
        LockError: the file exists but is not a valid lockfile (named, with the fix).
    """
    hint = "Delete it and run `wanmodels lock` with the same -m/--root to write a new one."
    try:
        text = read_at_most(path, MAX_LOCK_BYTES).decode("utf-8")
    except FileNotFoundError:
        return None
    except TooLarge as err:
        msg = f"{path}: not a valid lockfile (it is {err})"
        raise LockError(msg, hint=hint) from None
    except (OSError, UnicodeDecodeError) as err:
        msg = f"{path}: cannot read lockfile: {err}"
        raise LockError(msg) from None
    try:
        return _parse(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        if isinstance(err, RecursionError):
            detail = "nested too deeply"
        else:
            detail = str(err) if isinstance(err, ValueError) else f"missing or wrong field {err}"
        msg = f"{path}: not a valid lockfile ({detail})"
        raise LockError(msg, hint=hint) from None


def write_lock(path: Path, lockfile: Lockfile) -> None:
    """Write `lockfile` to `path` atomically and deterministically."""
    atomic_write(path, lockfile.to_json().encode())


def _parse(raw: Any) -> Lockfile:
    if not isinstance(raw, dict) or type(raw.get("version")) is not int or raw["version"] != LOCK_VERSION:
        msg = f"unsupported version {raw.get('version') if isinstance(raw, dict) else raw!r}"
        raise ValueError(msg)
    models = []
    for m in raw["models"]:
        files = []
        for f in m["files"]:
            for key in ("path", "local"):
                reason = check_relative(str(f[key]))
                if reason is not None:
                    msg = f"file {f[key]!r} {reason}"
                    raise ValueError(msg)
            if type(f["size"]) is not int or f["size"] < 0:
                msg = f"bad size for {f['path']!r}"
                raise ValueError(msg)
            files.append(
                LockedFile(str(f["path"]), str(f["local"]), f["size"], Digest.parse(str(f["digest"])))
            )
        commit = str(m["commit"])
        if len(commit) != 40:
            msg = f"bad commit {commit!r}"
            raise ValueError(msg)
        models.append(
            LockedModel(
                name=str(m["name"]),
                repo=str(m["repo"]),
                revision=str(m["revision"]),
                commit=commit,
                selection=str(m["selection"]),
                files=tuple(files),
            )
        )
    return Lockfile(models=tuple(models))
