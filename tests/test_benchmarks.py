"""Smoke test of the benchmark harness: it runs end to end at a tiny scale and writes every case row.

No assertion about speed: the figures only mean something at `--small` or full scale.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN = REPO_ROOT / "benchmarks" / "run.py"


def _case_rows() -> tuple[str, ...]:
    """The harness's own list of table rows, read without running the script."""
    tree = ast.parse(RUN.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CASE_ROWS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("benchmarks/run.py defines no CASE_ROWS")


EXPECTED_CASES = _case_rows()


@pytest.mark.slow
def test_benchmark_harness_runs_tiny(tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--small", "--tiny", "--repeat", "1", "--out", str(out)],
        cwd=REPO_ROOT,
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
