"""Where a manifest comes from: the bundled presets (where they live in an install or a
checkout, their names), and `open_manifest`, which turns what `-m` names into a `Manifest`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from wanmodels.errors import ManifestError
from wanmodels.manifest import Manifest, load_manifest

DEFAULT_PRESET: Final = "wan2.1-i2v"


def preset_dir() -> Path:
    """The folder of bundled manifests.

    A wheel carries them inside the package (`wanmodels/manifests/`); an editable install
    or a source checkout reads the repository's top-level `manifests/` folder instead.
    """
    packaged = Path(__file__).resolve().parent / "manifests"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "manifests"


def list_presets() -> tuple[str, ...]:
    """Names of the bundled manifests, sorted."""
    folder = preset_dir()
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.stem for p in folder.glob("*.yaml")))


def preset_path(name: str) -> Path | None:
    """The file of preset `name`, or None when there is no such preset."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = preset_dir() / f"{name}.yaml"
    return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class PresetInfo:
    """A preset's name and the one-line description (with its size) its manifest carries."""

    name: str
    description: str


def describe_presets() -> tuple[PresetInfo, ...]:
    """Every preset with its description (reads and validates each bundled manifest)."""
    infos = []
    for name in list_presets():
        path = preset_path(name)
        assert path is not None
        infos.append(PresetInfo(name, load_manifest(path, source=f"preset '{name}'").description))
    return tuple(infos)


def open_manifest(arg: str | None, *, root: Path | None = None) -> Manifest:
    """Open the manifest a user named: a file path, a ComfyUI workflow (`.json`), a preset
    name, or None for the default preset.

    A preset's `root` is relative to the current directory and its lockfile lives inside
    that root (its YAML lives inside the installed package, where neither belongs). A
    workflow's root is `./ComfyUI/models` of the current directory; its lockfile
    `<stem>.lock` sits beside it.

    Raises:
        ManifestError: no such file or preset, or the manifest (or workflow) is invalid.
    """
    name = arg if arg is not None else DEFAULT_PRESET
    args = ("-m", arg) if arg is not None else ()
    if arg is not None and arg.lower().endswith(".json"):
        from wanmodels.workflow import workflow_manifest  # imported here: workflow imports this module

        manifest = replace(workflow_manifest(Path(arg)), cli_args=args)
    elif arg is not None and (Path(arg).is_file() or "/" in arg or arg.endswith((".yaml", ".yml"))):
        manifest = replace(load_manifest(arg), cli_args=args)
    else:
        path = preset_path(name)
        if path is None:
            msg = "no such manifest file or preset"
            hint = f"Presets: {', '.join(list_presets()) or 'none'}; or pass -m path/to/manifest.yaml."
            raise ManifestError(msg, file=name, hint=hint)
        loaded = load_manifest(path, base_dir=Path.cwd(), source=f"preset '{name}'")
        manifest = replace(loaded, preset=name, cli_args=args).with_root(loaded.root)
    return manifest.with_root(root) if root is not None else manifest


def init_manifest(preset: str, target: Path, *, force: bool = False) -> Path:
    """Copy a preset to `target` as an editable manifest.

    Raises:
        ManifestError: no such preset, or `target` exists and `force` is not set.
        LocalIOError: `target` cannot be written.
    """
    from wanmodels._fs import atomic_write
    from wanmodels.errors import LocalIOError

    source = preset_path(preset)
    if source is None:
        msg = "no such preset"
        raise ManifestError(msg, file=preset, hint=f"Presets: {', '.join(list_presets())}.")
    if target.exists() and not force:
        msg = "already exists; not overwritten"
        raise ManifestError(msg, file=str(target), hint="Pass --force to replace it.")
    try:
        atomic_write(target, source.read_bytes())
    except OSError as err:
        msg = f"cannot write '{target}': {err.strerror}"
        raise LocalIOError(msg) from None
    return target
