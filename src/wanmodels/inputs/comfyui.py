"""ComfyUI workflows as manifests: every model a saved workflow names, placed where ComfyUI looks.

A workflow saved by the ComfyUI frontend (UI format) lists what a node needs in its
`properties.models`: `{name, url, directory, hash?, hash_type?}`, on top-level nodes and on
the nodes of subgraphs (`definitions.subgraphs[].nodes`). Each model becomes one entry:
repo, revision and repo path from its Hub `resolve` URL, mapped to `<directory>/<name>`
under the root. Only the URL's path is kept, never its host, so the bytes come from
`HF_ENDPOINT` (a mirror) when it is set, even for a workflow that names huggingface.co.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from wanmodels._fs import TooLarge, check_relative, read_at_most
from wanmodels.config import LOCAL_MANIFEST
from wanmodels.errors import ManifestError
from wanmodels.inputs.manifest import REPO_ID_RE, Manifest, parse_manifest
from wanmodels.layout import reserved

DEFAULT_ROOT: Final = "./ComfyUI/models"
MAX_WORKFLOW_BYTES: Final = 32 << 20  # saved workflows are kilobytes; a few MB with large subgraphs
URL_FORM: Final = "https://huggingface.co/<owner>/<repo>/resolve/<revision>/<path>"
_HEX64: Final = re.compile(r"^[0-9a-fA-F]{64}$")
_PLAIN: Final = re.compile(r"^(?:(?:\.{1,2}/|/|~/)[A-Za-z0-9_./-]*|[A-Za-z_][A-Za-z0-9_./-]*)$")
_YAML_WORDS: Final = frozenset({"yes", "no", "true", "false", "on", "off", "null", "y", "n"})
_MODES: Final = {2: "muted", 4: "bypassed"}


@dataclass(frozen=True, slots=True)
class ModelRef:
    """One model one node asks for."""

    workflow: str  # the file as the user named it
    node: str  # e.g. "UNETLoader (node 37)"
    directory: str
    name: str
    repo: str
    revision: str
    repo_path: str
    sha256: str | None = None

    @property
    def target(self) -> str:
        return f"{self.directory}/{self.name}"

    @property
    def source(self) -> tuple[str, str, str]:
        return (self.repo, self.revision, self.repo_path)


@dataclass(frozen=True, slots=True)
class WorkflowModel:
    """One manifest entry: a model file and every node (of every workflow) that needs it."""

    name: str
    repo: str
    revision: str
    folder: str
    repo_path: str
    file_name: str
    sha256: str | None
    needed_by: tuple[str, ...]  # "image_to_video_wan.json: UNETLoader (node 37)"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What `import_workflows` wrote."""

    path: Path
    workflows: tuple[Path, ...]
    models: tuple[WorkflowModel, ...]
    root: Path
    warnings: tuple[str, ...] = ()  # names that may imitate others (see `lookalike`)


def read_workflow(path: Path) -> tuple[ModelRef, ...]:
    """Every model a UI-format workflow names, top-level nodes first, then subgraph nodes.

    Raises:
        ManifestError: unreadable, not JSON (with the line), not a UI-format workflow, no
            model list at all, or a model entry that is broken (node id and type named).
    """
    label = str(path)
    try:
        text = read_at_most(path, MAX_WORKFLOW_BYTES).decode("utf-8-sig")
    except FileNotFoundError:
        msg = "workflow not found"
        raise ManifestError(msg, file=label) from None
    except TooLarge as err:
        msg = f"the workflow is {err}; not reading it"
        raise ManifestError(msg, file=label, hint="Pass a workflow saved by the ComfyUI frontend.") from None
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read workflow: {err}"
        raise ManifestError(msg, file=label) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"not valid JSON: {err.msg} (column {err.colno}); is the file complete?"
        raise ManifestError(msg, file=label, line=err.lineno) from None
    except RecursionError:
        msg = "not valid JSON: nested too deeply"
        raise ManifestError(msg, file=label) from None
    if isinstance(doc, dict) and doc and all(isinstance(v, dict) and "class_type" in v for v in doc.values()):
        msg = "an API-format workflow names model files but carries no download URLs"
        hint = "In ComfyUI, save it with Workflow > Save (not Export (API)) and import that file."
        raise ManifestError(msg, file=label, hint=hint)
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        msg = "not a ComfyUI workflow: there is no 'nodes' list"
        raise ManifestError(msg, file=label, hint="Pass a workflow saved by the ComfyUI frontend.")
    top = _list(doc.get("models"), label, "models")
    refs = [_ref(m, label, "the workflow's model list") for m in top]
    for node in doc["nodes"]:
        refs += _node_refs(node, label, None)
    definitions = doc.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    for graph in _list(subgraphs, label, "definitions.subgraphs"):
        graph_name = str(graph.get("name") or graph.get("id") or "?") if isinstance(graph, dict) else "?"
        nodes = graph.get("nodes") if isinstance(graph, dict) else None
        for node in _list(nodes, label, f"subgraph '{graph_name}' nodes"):
            refs += _node_refs(node, label, graph_name)
    if not refs:
        msg = "names no models: no node lists any in 'properties.models'"
        hint = "Open it in ComfyUI, pick models that offer a download, save it, and import it again."
        raise ManifestError(msg, file=label, hint=hint)
    return tuple(refs)


def merge_models(workflows: Sequence[tuple[ModelRef, ...]]) -> tuple[WorkflowModel, ...]:
    """One entry per model file, in order of first appearance, with readable unique names.

    The same target from the same repo file is one entry, whichever workflows need it. The
    same target from two different repos or revisions gives two entries: the plan keeps it
    once when the Hub lists one digest for both, and refuses otherwise.

    Raises:
        ManifestError: one workflow asks for two different files at one path, or two nodes
            declare different sha256s for one file.
    """
    groups: dict[tuple[str, tuple[str, str, str]], list[ModelRef]] = {}
    by_repo: dict[tuple[str, str, str], ModelRef] = {}  # (target, repo, revision) -> first ref
    for refs in workflows:
        by_target: dict[str, ModelRef] = {}
        for ref in refs:
            # In one workflow a path has one source; across workflows, only one file per repo.
            first = by_target.setdefault(ref.target, ref)
            if first.source == ref.source:
                first = by_repo.setdefault((ref.target, ref.repo, ref.revision), ref)
            if first.source != ref.source:
                msg = (
                    f"'{ref.target}' is wanted from two files: {_describe(first)} by "
                    f"{Path(first.workflow).name}: {first.node}, {_describe(ref)} by {ref.node}"
                )
                raise ManifestError(msg, file=ref.workflow, hint="Fix one node's model list in ComfyUI.")
            groups.setdefault((ref.target, ref.source), []).append(ref)
    used = _Names()
    models = []
    for group in groups.values():
        head = group[0]
        declared = {r.sha256 for r in group if r.sha256}
        if len(declared) > 1:
            nodes = "; ".join(f"{r.workflow}: {r.node} says {r.sha256}" for r in group if r.sha256)
            msg = f"'{head.target}' ({_describe(head)}) has conflicting sha256s: {nodes}"
            raise ManifestError(msg, file=group[-1].workflow)
        needed_by = tuple(dict.fromkeys(f"{Path(r.workflow).name}: {r.node}" for r in group))
        models.append(
            WorkflowModel(
                name=_unique_name(head, used),
                repo=head.repo,
                revision=head.revision,
                folder=head.directory,
                repo_path=head.repo_path,
                file_name=head.name,
                sha256=declared.pop().lower() if declared else None,
                needed_by=needed_by,
            )
        )
    return tuple(models)


def render_manifest(
    models: Sequence[WorkflowModel], *, root: str, workflows: Sequence[str], manifest_arg: str | None = None
) -> str:
    """The manifest as editable YAML, with a comment naming the nodes that need each entry."""
    use = _comment(f" -m {shlex.quote(manifest_arg)}") if manifest_arg else ""  # a command to paste
    lines = [
        f"# ComfyUI models imported by `wanmodels import` from: {_comment(', '.join(workflows))}",
        "# Each entry puts one file where ComfyUI's loaders look: <root>/<folder>/<file>.",
        "# Point `root` at your ComfyUI models folder (or pass --root), then run:",
        f"#   wanmodels download{use} --dry-run && wanmodels download{use} && wanmodels verify{use}",
        "version: 1",
        f"root: {_scalar(root)}",
        "models:",
    ]
    for m in models:
        lines += [""] + [f"  # {_comment(who)}" for who in m.needed_by]
        lines += [
            f"  - name: {_scalar(m.name)}",
            f"    repo: {_scalar(m.repo)}",
            f"    revision: {_scalar(m.revision)}",
            f"    folder: {_scalar(m.folder)}",
            "    files:",
        ]
        if m.sha256 is None:
            lines.append(f"      {_scalar(m.repo_path)}: {_scalar(m.file_name)}")
        else:
            lines += [
                f"      {_scalar(m.repo_path)}:",
                f"        path: {_scalar(m.file_name)}",
                f"        sha256: {_scalar(m.sha256)}",  # 64 decimal digits would read as a number
            ]
    return "\n".join(lines) + "\n"


def workflow_manifest(path: Path) -> Manifest:
    """A workflow used as a manifest (`-m WORKFLOW.json`).

    A workflow says nothing about where models live: the root is `./ComfyUI/models` of the
    current directory (callers apply `--root`); the lockfile is `<stem>.lock` beside it.

    Raises:
        ManifestError: see `read_workflow` and `merge_models`.
    """
    models = merge_models([read_workflow(path)])
    text = render_manifest(models, root=DEFAULT_ROOT, workflows=[path.name])
    lock_path = path.resolve().parent / f"{path.stem}.lock"
    # The manifest exists only in memory: every message names the workflow's node, never a line.
    origins = tuple(_origin(m) for m in models)
    try:
        return parse_manifest(
            text, source=str(path), base_dir=Path.cwd(), lock_path=lock_path, path=path, origins=origins
        )
    except ManifestError as err:
        raise _in_workflows(err, text, models, str(path)) from None


def import_workflows(
    workflows: Sequence[Path], output: Path, *, force: bool = False, root: str | None = None
) -> ImportResult:
    """Write one editable manifest holding every model the workflows name.

    Args:
        workflows: UI-format workflow files; models they share become one entry.
        output: the manifest to write (its lockfile will sit beside it).
        force: replace `output` if it exists.
        root: where models go (relative to the current directory); default `./ComfyUI/models`
            relative to the manifest.

    Raises:
        ManifestError: `output` exists without `force`, is one of the workflows or is not
            YAML; or any workflow is bad (see `read_workflow`, `merge_models`).
        LocalIOError: `output` cannot be written.
    """
    from wanmodels._fs import atomic_write
    from wanmodels.errors import LocalIOError

    if not workflows:
        msg = "no workflow given"
        raise ManifestError(msg, hint="Pass one or more workflow .json files saved by ComfyUI.")
    if output.suffix.lower() == ".json" or output.resolve() in {w.resolve() for w in workflows}:
        msg = "the manifest must be a new .yaml file, not a workflow"
        raise ManifestError(msg, file=str(output), hint="Pass -o wanmodels.yaml (or another .yaml path).")
    if output.exists() and not force:
        msg = "already exists; not overwritten"
        raise ManifestError(msg, file=str(output), hint="Pass --force to replace it.")
    models = merge_models([read_workflow(w) for w in workflows])
    root_text = DEFAULT_ROOT if root is None else _root_text(root, output)
    arg = None if output == Path(LOCAL_MANIFEST) else str(output)
    text = render_manifest(models, root=root_text, workflows=[w.name for w in workflows], manifest_arg=arg)
    folder = output.resolve().parent
    if not folder.is_dir():
        msg = f"the folder '{output.parent}' does not exist"
        hint = "Create it first, or pass -o with a path in a folder that exists."
        raise ManifestError(msg, file=str(output), hint=hint)
    # Check what will be written exactly as `download` will read it.
    origins = tuple(_origin(m) for m in models)
    try:
        written = parse_manifest(
            text,
            source=str(output),
            base_dir=folder,
            lock_path=folder / f"{output.stem}.lock",
            origins=origins,
        )
    except ManifestError as err:  # nothing is written: name the workflow node, not a line of it
        raise _in_workflows(err, text, models, ", ".join(str(w) for w in workflows)) from None
    try:
        atomic_write(output, text.encode())
    except OSError as err:
        msg = f"cannot write '{output}': {err.strerror}"
        raise LocalIOError(msg) from None
    warnings = tuple(
        f"'{m.folder}/{m.file_name}' ({m.needed_by[0]}) {why}: check the node's model list in ComfyUI"
        for m in models
        if (why := lookalike(f"{m.folder}/{m.file_name}")) is not None
    )
    return ImportResult(output, tuple(workflows), models, written.root, warnings)


def lookalike(path: str) -> str | None:
    """Why a name may imitate another (letters of two scripts in one name, as the Cyrillic 'а' in
    'vаe'), or None. A name wholly in one script (Latin, Cyrillic, Greek...) is just a name, and so
    is one whose extension alone is Latin ('модель.safetensors')."""
    for part in path.split("/"):
        stem = part.rpartition(".")[0] or part
        letters: dict[str, list[str]] = {}  # script -> its letters in the name
        for char in stem:
            if char.isalpha():
                letters.setdefault(unicodedata.name(char, "UNKNOWN").split(" ")[0], []).append(char)
        if len(letters) > 1:
            odd = min(letters.values(), key=len)[0]  # a letter of the script the name has least of
            names = " and ".join(sorted(script.title() for script in letters))
            return f"mixes {names} letters ('{odd}' is U+{ord(odd):04X} {unicodedata.name(odd, '')})"
    return None


def _origin(model: WorkflowModel) -> str:
    """The node (or nodes) a workflow entry came from, as `import` names them."""
    more = len(model.needed_by) - 1
    return model.needed_by[0] + (f" and {more} more node{'s' if more > 1 else ''}" if more else "")


def _in_workflows(
    err: ManifestError, text: str, models: Sequence[WorkflowModel], files: str
) -> ManifestError:
    """`err`, raised for the manifest rendered from the workflows, told in terms of the workflows:
    the node whose entry holds the line (or the workflow files, for the header)."""
    entry = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if err.line is not None and number > err.line:
            break
        entry += line.startswith("  - name: ")
    where = _origin(models[entry]) if err.line is not None and 0 <= entry < len(models) else files
    return ManifestError(err.detail, file=where, key=err.key, hint=err.hint)


def _list(value: Any, label: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        msg = f"'{where}' is not a list"
        raise ManifestError(msg, file=label)
    return value


def _node_refs(node: Any, label: str, graph: str | None) -> list[ModelRef]:
    if not isinstance(node, dict):
        msg = f"a node is not a JSON object{f' in subgraph {graph!r}' if graph else ''}"
        raise ManifestError(msg, file=label)
    properties = node.get("properties")
    models = properties.get("models") if isinstance(properties, dict) else None
    if not models:
        return []
    details = [f"node {node.get('id')}"]
    if node.get("mode") in _MODES:
        details.append(_MODES[node["mode"]])
    where = f"{node.get('type') or '?'} ({', '.join(details)}{f' in subgraph {graph!r}' if graph else ''})"
    return [_ref(m, label, where) for m in _list(models, label, f"{where}: properties.models")]


def _ref(model: Any, label: str, node: str) -> ModelRef:
    parsed = _parse_model(model)
    if isinstance(parsed, str):
        msg = f"{node}: {parsed}"
        raise ManifestError(msg, file=label)
    return ModelRef(label, node, *parsed)


def _parse_model(model: Any) -> tuple[str, str, str, str, str, str | None] | str:
    """(directory, name, repo, revision, repo path, sha256) of one model entry, or what is wrong."""
    if not isinstance(model, dict):
        return "a model in 'properties.models' is not a JSON object"
    fields = [model.get(key) for key in ("name", "url", "directory")]
    label = repr(fields[0]) if isinstance(fields[0], str) and fields[0] else None
    for key, value in zip(("name", "url", "directory"), fields, strict=True):
        if isinstance(value, str) and value:
            continue
        whose = f"model {label}" if label else "a model"
        if value is None or value == "":
            return f"{whose} has no '{key}'"
        return f"{whose}: '{key}' must be a non-empty string, got {type(value).__name__} {value!r}"
    name, url, directory = (str(f) for f in fields)
    for key, value in (("name", name), ("directory", directory)):
        reason = check_relative(value) or reserved(value)
        if reason is not None:
            return f"model {name!r}: '{key}' {value!r} {reason}"
    parsed = _parse_url(url)
    if isinstance(parsed, str):
        return f"model {name!r}: {parsed}"
    digest, kind = model.get("hash"), str(model.get("hash_type") or "sha256").lower()
    if digest is None or kind != "sha256":  # other hash types cannot be checked against the Hub
        return (directory, name, *parsed, None)
    if not isinstance(digest, str) or not _HEX64.match(digest):
        return f"model {name!r}: 'hash' {digest!r} is not a sha256 (64 hex digits)"
    return (directory, name, *parsed, digest.lower())


def _parse_url(url: str) -> tuple[str, str, str] | str:
    """(repo, revision, path) of a Hub `resolve` URL on any host, or why it is not one."""
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/")[1:]]
    why = f"url {url!r} is not a Hub resolve URL ({URL_FORM})"
    if parts.scheme not in ("http", "https") or not parts.netloc or len(segments) < 5:
        return why
    if segments[0] in ("datasets", "spaces"):
        return f"url {url!r} points into a {segments[0][:-1]} repo; wanmodels fetches model repos only"
    owner, repo, kind, revision, *rest = segments
    if kind == "blob":
        return f"url {url!r} is a web page ('blob'), not a download: use '/resolve/' in its place"
    repo_id, repo_path = f"{owner}/{repo}", "/".join(rest)
    if kind != "resolve" or not revision or not REPO_ID_RE.match(repo_id) or check_relative(repo_path):
        return why
    return repo_id, revision, repo_path


def _describe(ref: ModelRef) -> str:
    return f"'{ref.repo_path}' in '{ref.repo}' at '{ref.revision}'"


@dataclass(slots=True)
class _Names:
    """Entry names given so far, and for each stem that needed numbers the next one to try."""

    given: set[str] = field(default_factory=set)
    next_number: dict[str, int] = field(default_factory=dict)


def _unique_name(ref: ModelRef, names: _Names) -> str:
    """The file's stem, else with its folder or repo name, else numbered: stable and readable,
    and linear in the number of models however many share a stem."""

    def clean(text: str, limit: int) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "-", text).lstrip("._-")[:limit]

    base = ref.name.rpartition("/")[2]
    stem, dot, ext = base.rpartition(".")
    stem = clean(stem if dot and ext.isalnum() and len(ext) <= 12 else base, 64) or "model"
    repo_name = clean(ref.repo.rpartition("/")[2], 31)
    for candidate in (stem, f"{clean(ref.directory.replace('/', '-'), 31)}-{stem}", f"{stem}-{repo_name}"):
        name = candidate.lstrip("._-")
        if name not in names.given:
            names.given.add(name)
            return name
    # Numbers below the last one given to this stem are all taken: start after it.
    for number in itertools.count(names.next_number.get(stem, 2)):
        name = f"{stem}-{number}".lstrip("._-")
        if name not in names.given:
            names.given.add(name)
            names.next_number[stem] = number + 1
            return name
    raise AssertionError  # unreachable: the numbers never end


def _scalar(text: str) -> str:
    """A YAML scalar that reads back as exactly `text` (plain when safe, else double-quoted)."""
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    """Text safe inside a YAML comment: no line breaks of any kind."""
    return "".join(c if c.isprintable() else " " for c in text)


def _root_text(root: str, output: Path) -> str:
    """`--root` (relative to the current directory) as the manifest must say it (relative to itself)."""
    path = Path(root).expanduser()
    if path.is_absolute():
        return str(path)
    return os.path.relpath(Path.cwd() / path, output.resolve().parent)
