"""Smoke test of the benchmark harness: it runs end to end at a tiny scale and writes every case row.

No assertion about speed: the figures only mean something at `--small` or full scale.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN = REPO_ROOT / "benchmarks" / "run.py"

EXPECTED_CASES = (
    "1. fresh download: wanmodels / hf",
    "1. fresh download: wanmodels / curl",
    "2. resume after SIGKILL: wanmodels",
    "2. resume after SIGKILL: hf (peer figure)",
    "3. no-op re-run: requests",
    "3. no-op re-run: wall time",
    "4. verify --full / sha256sum -P1",
    "4. verify --full / sha256sum -P2",
    "5. start-up: --help / hf --help",
    "5. start-up: --version / hf --help",
    "6. peak RSS: download",
    "6. peak RSS: verify --full",
    "7. plan of 1,000 files",
)


@pytest.mark.slow
def test_benchmark_harness_runs_tiny(tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--small", "--tiny", "--repeat", "1", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    for case in EXPECTED_CASES:
        assert any(row.startswith(f"| {case} |") for row in rows), f"missing row {case!r}:\n{table}"
