"""Manifest v1: YAML in, a validated `Manifest` out, with file:line in every error.

`_yaml` turns the text into line-numbered nodes with the safe loader (a manifest can never
execute code); this module walks them by hand, so every error names the line and key.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from wanmodels._fs import TooLarge, check_relative, read_at_most
from wanmodels._text import shorten
from wanmodels.errors import ManifestError
from wanmodels.inputs._yaml import (
    MAX_BYTES,
    check_keys,
    opt_string,
    read_nodes,
    require,
    string,
    string_list,
    too_large,
    type_name,
)
from wanmodels.inputs._yaml import Node as _Node
from wanmodels.inputs.options import (
    OPTIONS_KEY,
    Option,
    choose,
    fill,
    parse_options,
    resolve_models,
    variables,
)
from wanmodels.layout import preset_lock_path, reserved

MANIFEST_VERSION: Final = 1
DEFAULT_ROOT: Final = "./models"
DEFAULT_REVISION: Final = "main"
PRESET_OWNER: Final = "preset:"  # a bundled preset's name in a root's records
_SHA256_RE: Final = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")
_FILE_KEYS: Final = ("path", "sha256")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REPO_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_UNSET_VAR: Final = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\})")  # left by os.path.expandvars
_TOP_KEYS: Final = ("version", "description", "model", "runtime", "root", "allow_hidden", "options", "models")
_TEXT_KEYS: Final = ("description", "model", "runtime")  # plain text, `${...}` filled
_MODEL_KEYS: Final = (
    "name",
    "repo",
    "revision",
    "folder",
    "include",
    "exclude",
    "files",
    "expect",
    "description",
)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One manifest entry: which repo, at which revision, which files, into which folder."""

    name: str
    repo: str
    revision: str = DEFAULT_REVISION
    folder: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    expect: tuple[str, ...] = ()
    description: str = ""
    line: int = 0
    sha256: tuple[tuple[str, str], ...] = ()  # `files:` repo path -> declared sha256 (lowercase hex)
    origin: str = ""  # where the entry came from when no file holds it (a workflow's node)

    @property
    def where(self) -> str:
        """Where a user finds this entry: its manifest line, or the workflow node it came from."""
        return self.origin or f"line {self.line}"

    @property
    def selects_everything(self) -> bool:
        """True when neither `include` nor `files` narrows the repo down."""
        return not self.include and not self.files

    def declared_sha256(self, repo_path: str) -> str | None:
        """The sha256 the manifest declares for a `files:` path, if any."""
        return next((digest for path, digest in self.sha256 if path == repo_path), None)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated manifest; `root` is absolute, `source` is what error messages call it."""

    source: str
    root: Path
    lock_path: Path
    models: tuple[ModelSpec, ...]
    version: int = MANIFEST_VERSION
    path: Path | None = field(default=None)
    preset: str | None = None  # the bundled preset this came from, if any
    description: str = ""
    cli_args: tuple[str, ...] = ()  # `-m`/`--root`/`--with` arguments that select this manifest again
    model: str = ""  # which model this stack is, for listings ("Wan 2.2 I2V A14B")
    runtime: str = ""  # the program that loads what it places
    options: tuple[Option, ...] = ()  # the choices it declares
    chosen: tuple[tuple[str, str], ...] = ()  # each option's value in this resolution

    @property
    def choices(self) -> tuple[tuple[str, str], ...]:
        """The chosen values that differ from the defaults (what `--with` must repeat)."""
        defaults = {o.name: o.default for o in self.options}
        return tuple((name, value) for name, value in self.chosen if defaults.get(name) != value)

    def command(self, *words: str) -> str:
        """A `wanmodels` command line that acts on this very manifest and root (for hints)."""
        return shlex.join(["wanmodels", *words, *self.cli_args])

    @property
    def identity(self) -> str:
        """What names this manifest in a root's records, whatever the current directory: its
        path relative to the root, so a project moved with its models keeps its claims."""
        if self.preset is not None:
            return f"{PRESET_OWNER}{self.preset}"
        if self.path is None:
            return self.source
        return os.path.relpath(self.path.resolve(), self.root.resolve())

    def select(self, names: tuple[str, ...] | list[str] = ()) -> tuple[ModelSpec, ...]:
        """The entries named in `names` (all when empty), in manifest order.

        Raises:
            ManifestError: a name is not in the manifest.
        """
        if not names:
            return self.models
        known = {m.name for m in self.models}
        unknown = [n for n in names if n not in known]
        if unknown:
            msg = f"no entry named {', '.join(repr(n) for n in unknown)}"
            hint = f"Entries: {', '.join(sorted(known))}."
            raise ManifestError(msg, file=self.source, hint=hint)
        wanted = set(names)
        return tuple(m for m in self.models if m.name in wanted)

    def with_root(self, root: Path) -> Manifest:
        """A copy whose models land under `root` instead (for --root / WANMODELS_ROOT).

        A preset's pin lives in the root it provisioned, so it moves along.
        """
        lock_path = preset_lock_path(root, self.preset) if self.preset is not None else self.lock_path
        args = self.cli_args if root == self.root else (*_without_root(self.cli_args), "--root", str(root))
        return replace(self, root=root, lock_path=lock_path, cli_args=args)


def owner_exists(root: Path, owner: str) -> bool:
    """Whether the manifest a root's records name as `owner` is still there: a claim of a
    manifest that was deleted or moved away holds nothing back."""
    if owner.startswith(PRESET_OWNER):
        return True
    path = Path(owner)  # relative to the root; records of older versions hold absolute paths
    return (path if path.is_absolute() else root / path).is_file()


def _without_root(args: tuple[str, ...]) -> tuple[str, ...]:
    if "--root" not in args:
        return args
    i = args.index("--root")
    return args[:i] + args[i + 2 :]


def load_manifest(
    path: Path | str,
    *,
    base_dir: Path | None = None,
    lock_dir: Path | None = None,
    source: str | None = None,
    choices: Sequence[tuple[str, str]] = (),
) -> Manifest:
    """Read and validate a manifest file.

    Args:
        path: the YAML file.
        base_dir: where a relative `root` starts; default: the manifest's folder.
        lock_dir: where the lockfile lives; default: the manifest's folder.
        source: the name used in messages; default: the path as given.
        choices: (option, value) pairs for the options it declares (`--with`); the others
            take their defaults.

    Raises:
        ManifestError: unreadable file, bad YAML or any broken rule (file, line and key named),
            including a choice of an option or value the manifest does not declare.
    """
    path = Path(path)
    label = source or str(path)
    try:
        text = read_at_most(path, MAX_BYTES).decode("utf-8")
    except FileNotFoundError:
        msg = "manifest not found"
        raise ManifestError(
            msg, file=label, hint="Pass -m PATH or a preset name; see `wanmodels list`."
        ) from None
    except TooLarge:
        raise too_large(label) from None
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read manifest: {err}"
        raise ManifestError(msg, file=label) from None
    folder = path.resolve().parent
    return parse_manifest(
        text,
        source=label,
        base_dir=base_dir or folder,
        lock_path=(lock_dir or folder) / f"{path.stem}.lock",
        path=path,
        choices=choices,
    )


def resolve_document(
    text: str, source: str, choices: Sequence[tuple[str, str]] = ()
) -> tuple[_Node, tuple[Option, ...], dict[str, str]]:
    """The document (a mapping) with its options resolved: `options:` removed, the entries the
    choices leave out dropped, `${...}` filled; with the options and each one's value."""
    doc = read_nodes(text, source)
    if not isinstance(doc.value, dict):
        msg = "the document must be a mapping with 'version', 'root' and 'models'"
        raise ManifestError(msg, file=source, line=doc.line)
    top: dict[str, _Node] = doc.value
    check_keys(top, _TOP_KEYS, source, where="top level")
    options_node = top.pop(OPTIONS_KEY, None)
    options = parse_options(options_node, source)
    if choices and not options:
        msg = "--with: this manifest declares no options"
        hint = "Drop --with, or declare options: (docs/manifest.md)."
        raise ManifestError(msg, file=source, line=doc.line, hint=hint)
    chosen = choose(options, choices, source, options_node.key_line if options_node else doc.line)
    known = variables(options, chosen)
    for key in _TEXT_KEYS:
        if key in top:
            top[key] = fill(top[key], known, source)
    if "models" in top:
        top["models"] = resolve_models(top["models"], options, chosen, source)
    return doc, options, chosen


def parse_manifest(
    text: str,
    *,
    source: str,
    base_dir: Path,
    lock_path: Path,
    path: Path | None = None,
    choices: Sequence[tuple[str, str]] = (),
    origins: tuple[str, ...] = (),
) -> Manifest:
    """Validate manifest text; see `load_manifest`. `origins` name where each entry came from,
    in order, when the text exists only in memory (a workflow): messages cite those, not lines."""
    doc, options, chosen = resolve_document(text, source, choices)
    top: dict[str, _Node] = doc.value
    version = require(top, "version", source, doc.line)
    if type(version.value) is not int or version.value != MANIFEST_VERSION:
        msg = f"unsupported version {version.value!r}"
        raise ManifestError(msg, file=source, line=version.line, key="version", hint="Use 'version: 1'.")
    root_text = opt_string(top, "root", source) or DEFAULT_ROOT
    root_line = top["root"].line if "root" in top else doc.line
    root = _resolve_root(root_text, base_dir, source, root_line)
    models_node = require(top, "models", source, doc.line)
    if not isinstance(models_node.value, list) or not models_node.value:
        msg = "must be a non-empty list of entries"
        raise ManifestError(msg, file=source, line=models_node.line, key="models")
    allow_hidden = _flag(top, "allow_hidden", source)
    models = tuple(_model(node, source, allow_hidden=allow_hidden) for node in models_node.value)
    if origins:
        models = tuple(replace(m, origin=o) for m, o in zip(models, origins, strict=True))
    _check_unique(models, source)
    return Manifest(
        source=source,
        root=root,
        lock_path=lock_path,
        models=models,
        path=path,
        description=opt_string(top, "description", source) or "",
        model=opt_string(top, "model", source) or "",
        runtime=opt_string(top, "runtime", source) or "",
        options=options,
        chosen=tuple(chosen.items()),
    )


def _resolve_root(text: str, base_dir: Path, source: str, line: int) -> Path:
    if "\0" in text:
        msg = "contains a NUL byte"
        raise ManifestError(msg, file=source, line=line, key="root")
    unset = _UNSET_VAR.search(os.path.expandvars(text))
    if unset is not None:
        msg = f"{text!r} names the environment variable {unset.group(0)}, which is not set"
        hint = "Set it before running wanmodels, or write the path out."
        raise ManifestError(msg, file=source, line=line, key="root", hint=hint)
    try:
        # `~` and `$VAR` as a shell would expand them (a manifest shared by a team says `$HOME/models`).
        root = Path(os.path.expandvars(text)).expanduser()
    except RuntimeError:
        msg = f"cannot expand {text!r}: unknown user"
        raise ManifestError(msg, file=source, line=line, key="root") from None
    return root if root.is_absolute() else (base_dir / root).resolve()


def _flag(top: dict[str, _Node], key: str, source: str) -> bool:
    node = top.get(key)
    if node is None or node.value is None:
        return False
    if not isinstance(node.value, bool):
        msg = f"must be true or false, got {type_name(node.value)}"
        raise ManifestError(msg, file=source, line=node.line, key=key)
    return node.value


def _check_visible(path: str, source: str, line: int, key: str, *, is_file: bool) -> None:
    """A target inside a hidden folder (`.ssh/`, `.config/`) is refused unless the manifest says
    `allow_hidden: true`: no model runtime reads from one, and a shared manifest could aim there."""
    parts = path.split("/")
    hidden = next((p for p in (parts[:-1] if is_file else parts) if p.startswith(".")), None)
    if hidden is not None:
        msg = f"path {path!r} lies inside the hidden folder {hidden!r}"
        hint = (
            "Models never live there; if this is meant, add 'allow_hidden: true' at the top of the manifest."
        )
        raise ManifestError(msg, file=source, line=line, key=key, hint=hint)


def _model(node: _Node, source: str, *, allow_hidden: bool = False) -> ModelSpec:
    if not isinstance(node.value, dict):
        msg = "each entry must be a mapping with at least 'name' and 'repo'"
        raise ManifestError(msg, file=source, line=node.line, key="models")
    entry: dict[str, _Node] = node.value
    check_keys(entry, _MODEL_KEYS, source, where="a model entry")
    name_node = require(entry, "name", source, node.line)
    name = string(name_node, "name", source)
    if not _NAME_RE.match(name):
        msg = f"{name!r} is not a valid name (letters, digits, '.', '_', '-')"
        raise ManifestError(msg, file=source, line=name_node.line, key="name")
    repo_node = require(entry, "repo", source, node.line)
    repo = string(repo_node, "repo", source)
    if not REPO_ID_RE.match(repo):
        msg = f"{repo!r} is not a repo id of the form 'owner/name'"
        raise ManifestError(msg, file=source, line=repo_node.line, key="repo")
    revision = opt_string(entry, "revision", source) or DEFAULT_REVISION
    folder = opt_string(entry, "folder", source) or name
    folder_line = entry["folder"].line if "folder" in entry else name_node.line
    _check_path(folder, source, folder_line, "folder")
    files, sha256 = _files(entry.get("files"), source)
    if not allow_hidden:
        _check_visible(folder, source, folder_line, "folder", is_file=False)
        for _, target in files:
            _check_visible(target, source, entry["files"].line, "files", is_file=True)
    expect = string_list(entry.get("expect"), "expect", source)
    for item, line in expect:
        _check_path(item, source, line, "expect")
    include = string_list(entry.get("include"), "include", source)
    exclude = string_list(entry.get("exclude"), "exclude", source)
    for key, patterns in (("include", include), ("exclude", exclude)):
        for pattern, line in patterns:
            if pattern.startswith("/"):
                msg = f"pattern {pattern!r} must be relative to the repo"
                raise ManifestError(msg, file=source, line=line, key=key)
    return ModelSpec(
        name=name,
        repo=repo,
        revision=revision,
        folder=folder,
        include=tuple(p for p, _ in include),
        exclude=tuple(p for p, _ in exclude),
        files=files,
        expect=tuple(p for p, _ in expect),
        description=opt_string(entry, "description", source) or "",
        line=node.line,
        sha256=sha256,
    )


def _files(
    node: _Node | None, source: str
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """`files:` as (repo path, target) pairs and (repo path, sha256) pairs.

    A value is the target itself, or a mapping `{path: target, sha256: <64 hex>}` whose
    `path` defaults to the repo path.
    """
    if node is None or node.value is None:
        return (), ()
    if not isinstance(node.value, dict):
        msg = "must be a mapping of repo path -> path in the folder"
        raise ManifestError(msg, file=source, line=node.line, key="files")
    pairs: list[tuple[str, str]] = []
    digests: list[tuple[str, str]] = []
    targets: dict[str, int] = {}
    for repo_path, value in node.value.items():
        key = f"files.{repo_path}"
        if isinstance(value.value, dict):
            check_keys(value.value, _FILE_KEYS, source, where=f"'{key}'")
            path_node = value.value.get("path")
            target, target_line = repo_path, value.key_line
            if path_node is not None and path_node.value is not None:
                target, target_line = string(path_node, key, source), path_node.line
            sha_node = value.value.get("sha256")
            if sha_node is not None:
                match = _SHA256_RE.match(sha_node.value) if isinstance(sha_node.value, str) else None
                if match is None:
                    msg = f"must be 64 hex digits, got {type_name(sha_node.value)}"
                    hint = None
                    if isinstance(sha_node.value, (int, float)):  # YAML read the digits as a number
                        hint = 'Quote it (YAML reads unquoted digits as a number): sha256: "<64 hex digits>".'
                    raise ManifestError(msg, file=source, line=sha_node.line, key=f"{key}.sha256", hint=hint)
                digests.append((repo_path, match.group(1).lower()))
        else:
            target, target_line = string(value, key, source), value.line
        _check_path(repo_path, source, value.key_line or value.line, key)
        _check_path(target, source, target_line, key)
        if target in targets:
            msg = f"two repo files map to {target!r} (also line {targets[target]})"
            raise ManifestError(msg, file=source, line=target_line, key="files")
        targets[target] = target_line
        pairs.append((repo_path, target))
    return tuple(pairs), tuple(digests)


def _check_unique(models: tuple[ModelSpec, ...], source: str) -> None:
    """Unique names; entries may share and nest folders, but a path holds one file only.

    Two entries may place the same file (same repo, revision and repo path). The same
    target from different repos or revisions is decided by digest when the plan is made.
    """
    names: dict[str, int] = {}
    files: dict[str, tuple[ModelSpec, str]] = {}  # local path -> (entry, repo path)
    dirs: dict[str, ModelSpec] = {}  # every folder some entry needs -> the first such entry
    for m in models:
        if m.name in names:
            msg = f"duplicate name {m.name!r} (first at line {names[m.name]})"
            raise ManifestError(msg, file=source, line=m.line, key="name")
        names[m.name] = m.line
        needed = [m.folder] + [f"{m.folder}/{target}" for _, target in m.files]
        for path in needed:
            for parent in _parents(path, include_self=path == m.folder):
                if parent in files:
                    other = files[parent][0]
                    msg = f"'{parent}' is a file of entry {other.name!r} ({other.where}), not a folder"
                    raise ManifestError(msg, file=source, line=m.line, key="folder")
                dirs.setdefault(parent, m)
        for repo_path, target in m.files:
            local = f"{m.folder}/{target}"
            if local in dirs:
                owner = dirs[local]
                msg = f"'{local}' is a folder of entry {owner.name!r} ({owner.where}), not a file"
                raise ManifestError(msg, file=source, line=m.line, key="files")
            first = files.setdefault(local, (m, repo_path))
            other, other_path = first
            if (other.repo, other.revision) == (m.repo, m.revision) and other_path != repo_path:
                msg = (
                    f"'{local}' is claimed by two files of '{m.repo}': {repo_path!r} here and "
                    f"{other_path!r} of entry {other.name!r} ({other.where})"
                )
                hint = "Map one of them to another path."
                raise ManifestError(msg, file=source, line=m.line, key="files", hint=hint)


def _parents(path: str, *, include_self: bool) -> list[str]:
    """'a/b/c' -> ['a', 'a/b'] (plus 'a/b/c' with `include_self`)."""
    parts = path.split("/")
    stop = len(parts) + 1 if include_self else len(parts)
    return ["/".join(parts[:i]) for i in range(1, stop)]


def _check_path(path: str, source: str, line: int, key: str) -> None:
    reason = check_relative(path) or reserved(path)
    if reason is not None:
        msg = f"path {shorten(repr(path))} {reason}; paths must stay inside the model root"
        raise ManifestError(msg, file=source, line=line, key=key)
