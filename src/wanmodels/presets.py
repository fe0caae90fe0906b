"""Bundled manifests (presets): where they live in an install or a checkout, and their names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

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
    from wanmodels.manifest import load_manifest

    infos = []
    for name in list_presets():
        path = preset_path(name)
        assert path is not None
        infos.append(PresetInfo(name, load_manifest(path, source=f"preset '{name}'").description))
    return tuple(infos)
