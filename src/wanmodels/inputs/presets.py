"""Where a manifest comes from: the bundled presets (where they live in an install or a
checkout, their names), and `open_manifest`, which turns what `-m` names into a `Manifest`.

A preset is a manifest file in `manifests/`, often with options; an alias is a name kept for a
preset with some options fixed (the names from before options existed, so their lockfiles,
which live under the alias's name, stay valid)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from wanmodels.config import DEFAULT_PRESET
from wanmodels.errors import ManifestError
from wanmodels.inputs.comfyui import workflow_manifest
from wanmodels.inputs.manifest import Manifest, load_manifest
from wanmodels.inputs.options import Option

# Repos that circulate in old model lists but do not exist, and what to use instead.
PLACEHOLDER_REPOS: Final = {
    "blongsta/wan2.1-i2v": (
        "It is a placeholder from an old model list; the official Wan 2.1 I2V weights are "
        "Wan-AI/Wan2.1-I2V-14B-480P or Wan-AI/Wan2.1-I2V-14B-720P (and their -Diffusers variants), "
        "or Comfy-Org/Wan_2.1_ComfyUI_repackaged for ComfyUI."
    ),
}

# alias -> (preset, the options it fixes): what each old name always selected.
ALIASES: Final[dict[str, tuple[str, tuple[tuple[str, str], ...]]]] = {
    "wan2.1-i2v-480p": ("wan2.1-i2v-native", (("resolution", "480p"),)),
    "wan2.1-i2v-720p": ("wan2.1-i2v-native", (("resolution", "720p"),)),
    "wan2.1-i2v-480p-diffusers": ("wan2.1-i2v-diffusers", (("resolution", "480p"),)),
    "wan2.1-comfyui-fp16": ("wan2.1-comfyui", (("precision", "fp16"),)),
}


def preset_dir() -> Path:
    """The folder of bundled manifests.

    A wheel carries them inside the package (`wanmodels/manifests/`); an editable install
    or a source checkout reads the repository's top-level `manifests/` folder instead.
    """
    packaged = Path(__file__).resolve().parents[1] / "manifests"  # wanmodels/manifests in a wheel
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "manifests"


def list_presets() -> tuple[str, ...]:
    """Names of the bundled manifests and of the aliases, sorted."""
    folder = preset_dir()
    if not folder.is_dir():
        return ()
    return tuple(sorted({p.stem for p in folder.glob("*.yaml")} | set(ALIASES)))


def preset_path(name: str) -> Path | None:
    """The file of preset `name` (for an alias, its preset's), or None when there is no such preset."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = preset_dir() / f"{ALIASES[name][0] if name in ALIASES else name}.yaml"
    return path if path.is_file() else None


def preset_choices(name: str) -> tuple[tuple[str, str], ...]:
    """The options an alias fixes (none for a preset)."""
    return ALIASES[name][1] if name in ALIASES else ()


@dataclass(frozen=True, slots=True)
class PresetInfo:
    """What `list` shows of a preset: its description (with its size), which model it is and
    which program loads it, its options; for an alias, the preset and the options it fixes."""

    name: str
    description: str
    model: str = ""
    runtime: str = ""
    options: tuple[Option, ...] = ()
    alias_of: str | None = None
    fixed: tuple[tuple[str, str], ...] = ()


def describe_presets() -> tuple[PresetInfo, ...]:
    """Every preset and alias, each at its default choices (reads and validates each manifest)."""
    infos = []
    for name in list_presets():
        path = preset_path(name)
        assert path is not None
        fixed = preset_choices(name)
        loaded = load_manifest(path, source=f"preset '{name}'", choices=fixed)
        alias_of = ALIASES[name][0] if name in ALIASES else None
        infos.append(
            PresetInfo(
                name, loaded.description, loaded.model, loaded.runtime, loaded.options, alias_of, fixed
            )
        )
    return tuple(infos)


def open_manifest(
    arg: str | None, *, root: Path | None = None, choices: Sequence[tuple[str, str]] = ()
) -> Manifest:
    """Open the manifest a user named: a file path, a ComfyUI workflow (`.json`), a preset
    name, or None for the default preset; `choices` are (option, value) pairs (`--with`).

    A preset's `root` is relative to the current directory and its lockfile lives inside
    that root (its YAML lives inside the installed package, where neither belongs); an
    alias is its preset with some options fixed, under its own name. A workflow's root is
    `./ComfyUI/models` of the current directory; its lockfile `<stem>.lock` sits beside it.

    Raises:
        ManifestError: no such file or preset, the manifest (or workflow) is invalid, or a
            choice names an option or value the manifest does not declare.
    """
    name = arg if arg is not None else DEFAULT_PRESET
    args = ("-m", arg) if arg is not None else ()
    if arg is not None and arg.lower().endswith(".json"):
        if choices:
            msg = "--with: a workflow declares no options"
            raise ManifestError(msg, file=arg, hint="Drop --with.")
        manifest = replace(workflow_manifest(Path(arg)), cli_args=args)
    elif arg is not None and (Path(arg).is_file() or "/" in arg or arg.endswith((".yaml", ".yml"))):
        manifest = replace(load_manifest(arg, choices=choices), cli_args=args)
    else:
        path = preset_path(name)
        if path is None:
            msg = "no such manifest file or preset"
            hint = f"Presets: {', '.join(list_presets()) or 'none'}; or pass -m path/to/manifest.yaml."
            raise ManifestError(msg, file=name, hint=hint)
        fixed = preset_choices(name)
        loaded = load_manifest(
            path, base_dir=Path.cwd(), source=f"preset '{name}'", choices=(*fixed, *choices)
        )
        manifest = replace(loaded, preset=name, cli_args=args).with_root(loaded.root)
    shown = [pair for pair in manifest.choices if pair not in preset_choices(name)]
    if shown:
        with_args = tuple(word for n, v in shown for word in ("--with", f"{n}={v}"))
        manifest = replace(manifest, cli_args=(*manifest.cli_args, *with_args))
    return manifest.with_root(root) if root is not None else manifest


def init_manifest(
    preset: str, target: Path, *, force: bool = False, choices: Sequence[tuple[str, str]] = ()
) -> Path:
    """Write a preset to `target` as an editable manifest: a copy of its file, or, when it
    has options, the manifest those choices resolve to (plain entries, no options left).

    Raises:
        ManifestError: no such preset, a bad choice, or `target` exists and `force` is not set.
        LocalIOError: `target` cannot be written.
    """
    from wanmodels._fs import atomic_write
    from wanmodels.errors import LocalIOError

    source = preset_path(preset)
    if source is None:
        msg = "no such preset"
        raise ManifestError(msg, file=preset, hint=f"Presets: {', '.join(list_presets())}.")
    chosen = (*preset_choices(preset), *choices)
    text = source.read_text(encoding="utf-8")
    resolved = resolved_text(text, f"preset '{preset}'", chosen, preset)
    if target.exists() and not force:
        msg = "already exists; not overwritten"
        raise ManifestError(msg, file=str(target), hint="Pass --force to replace it.")
    try:
        atomic_write(target, resolved.encode("utf-8"))
    except OSError as err:
        msg = f"cannot write '{target}': {err.strerror}"
        raise LocalIOError(msg) from None
    return target


def resolved_text(text: str, source: str, choices: Sequence[tuple[str, str]], name: str) -> str:
    """The manifest `text` resolved for `choices`, as YAML: unchanged when it declares no
    options, else its leading comment, a line naming the choices, and the plain entries.

    Raises:
        ManifestError: the manifest or a choice is invalid.
    """
    from wanmodels.inputs._yaml import dump
    from wanmodels.inputs.manifest import resolve_document
    from wanmodels.inputs.options import plain

    doc, options, chosen = resolve_document(text, source, choices)
    if not options:
        return text
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    picked = " ".join(f"--with {key}={value}" for key, value in chosen.items())
    header.append(f"# Written by `wanmodels init --preset {name} {picked}`: these choices, resolved.")
    body = dump(plain(doc))
    body = body.replace("\n  - name:", "\n\n  - name:").replace("models:\n\n", "models:\n")
    return "\n".join(header) + "\n" + body
