"""Smoke tests against the real Hugging Face Hub. Deselected by default (`-m 'not network'` in
pyproject); run with `python -m pytest -m network` on a machine that can reach the Hub."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network


def test_bundled_preset_plans_against_the_real_hub(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    run = subprocess.run(
        [sys.executable, "-m", "wanmodels", "download", "--dry-run", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr


def test_small_real_file_downloads_and_verifies(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "version: 1\nmodels:\n  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n"
        "    include: [config.json]\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    for args in (["download"], ["verify", "--full"]):
        run = subprocess.run(
            [sys.executable, "-m", "wanmodels", *args, "-m", str(manifest)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
