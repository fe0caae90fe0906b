"""The wheel carries the bundled manifests, so a plain `pip install .` finds the default preset."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.paths import REPO_ROOT


def test_wheel_contains_the_bundled_manifest(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO_ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("wanmodels-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "wanmodels/manifests/wan2.1-i2v.yaml" in names
    assert "wanmodels/py.typed" in names  # type checkers read the package's own annotations (PEP 561)
    assert "wanmodels/cli/app.py" in names
    # Installed without the source tree, the package must find the preset inside itself.
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = "from wanmodels.inputs.presets import preset_path; print(preset_path('wan2.1-i2v'))"
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(target / "wanmodels" / "manifests" / "wan2.1-i2v.yaml")
