"""Smoke test of the benchmark harness: it runs end to end at a tiny scale and writes every case row.

No assertion about speed: the figures only mean something at `--small` or full scale. Cases 8-9 (the
CDN link) run too; their aria2c row says "not run" unless aria2c is already installed (the test never
installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchmarks import pagereport, run
from benchmarks.cases import cdn
from benchmarks.run import CASE_ROWS
from benchmarks.tools import find_nginx

from tests.support.paths import REPO_ROOT


def test_case_rows_are_unique_and_numbered() -> None:
    assert len(set(CASE_ROWS)) == len(CASE_ROWS)
    numbers = [int(case.split(".", 1)[0]) for case in CASE_ROWS]
    assert numbers == sorted(numbers)
    assert set(numbers) == set(range(1, 17))
    assert any(case.startswith("12. 1/32 of the link per connection") for case in CASE_ROWS)
    assert any(case.startswith("8. CDN link: wanmodels / aria2c") for case in CASE_ROWS)
    assert any(case.startswith("10. default stack at test scale") for case in CASE_ROWS)


@pytest.mark.slow
def test_benchmark_harness_runs_tiny(tmp_path: Path) -> None:
    out = tmp_path / "r.md"
    argv = ["-m", "benchmarks.run", "--tiny", "--repeat", "1", "--no-install", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    table = out.read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    for case in CASE_ROWS:
        matching = [row for row in rows if row.startswith(f"| {case} |")]
        assert len(matching) == 1, f"missing row {case!r}:\n{table}"
        if "aria2c" in case or "hf (peer figure)" in case:
            continue  # aria2c may not be installed; hf cannot be caught at 50% at this scale
        if "over HTTPS" in case and shutil.which("openssl") is None:
            continue  # its certificate is made with the openssl command
        if "nginx" in case and find_nginx(install=False)[0] is None:
            continue  # --no-install: the static server of case 16 is installed only by a full run
        assert "not run" not in matching[0], f"{case!r} did not run:\n{table}"


@pytest.mark.slow
def test_the_chaos_run_passes_at_a_small_scale(tmp_path: Path) -> None:
    out = tmp_path / "chaos.md"
    argv = ["-m", "benchmarks.chaos", "--kills", "3", "--faults", "2", "--mib", "8", "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    text = out.read_text()
    assert text.startswith("# chaos run: PASS")
    faults = 2 if shutil.which("fiu-run") and shutil.which("fiu-ctrl") else 0  # skipped without libfiu
    assert f"| tree checks / wrong files placed | {3 + faults + 1} / 0 |" in text  # and the clean run's
    assert "| clean run exit / `verify --full` exit | 0 / 0 |" in text


def test_hold_pages_pauses_reporting_and_puts_the_old_order_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    order, counter = tmp_path / "page_reporting_order", tmp_path / "reported_kib"
    order.write_text("9\n")
    counter.write_text("1000\n")
    monkeypatch.setattr(pagereport, "ORDER", order)
    monkeypatch.setattr(pagereport, "REPORTED", counter)
    with pagereport.held(True) as lines:
        assert order.read_text() == pagereport.PAUSED
        counter.write_text(str(1000 + 3 * 1024))
    assert order.read_text() == "9"
    assert lines == [
        f"free page reporting: paused for this run (page_reporting_order 9 → {pagereport.PAUSED}, then back "
        "to 9; 3 MiB reported meanwhile)"
    ]
    with pytest.raises(KeyboardInterrupt), pagereport.held(True):
        raise KeyboardInterrupt
    assert order.read_text() == "9"
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit):
        terminated_while_held()
    assert order.read_text() == "9"
    assert signal.getsignal(signal.SIGTERM) is handler
    with pagereport.held(False) as lines:
        assert order.read_text() == "9"
    assert lines[0].startswith("free page reporting: on (order 9);")
    order.write_text("4294967295\n")  # no reporting device registered
    with pagereport.held(True) as lines:
        assert order.read_text().strip() == "4294967295"
    assert lines == ["free page reporting: not active (page_reporting_order 4294967295)"]
    monkeypatch.setattr(pagereport, "ORDER", tmp_path / "absent")
    with pagereport.held(True) as lines:
        pass
    assert lines == ["free page reporting: not on this machine"]


def terminated_while_held() -> None:
    """SIGTERM by default ends a process without unwinding; under `held` it must unwind."""
    with pagereport.held(True):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises long before this ends


class RefusingOrder:
    """A `page_reporting_order` that a stock kernel guards: values above 10 are refused."""

    def __init__(self) -> None:
        self.value = "9"

    def read_text(self) -> str:
        return self.value + "\n"

    def write_text(self, value: str) -> None:
        if int(value) > pagereport.MAX_ORDER:
            raise OSError(22, "Invalid argument")
        self.value = value


def test_hold_pages_says_when_the_kernel_refuses_to_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    refusing = RefusingOrder()
    monkeypatch.setattr(pagereport, "ORDER", refusing)
    with pagereport.held(True) as lines:
        assert refusing.value == "9"
    assert lines == ["free page reporting: on (order 9); could not pause it: Invalid argument"]


def test_without_openssl_the_https_rows_say_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "openssl_missing", lambda: "the `openssl` command is not installed")
    out = run.Results()
    run.tls_case(tmp_path, 512, 1, (None, "not installed"), out)
    assert set(out.rows) == set(cdn.TLS_ROWS)
    reason = "not run: the `openssl` command is not installed"
    assert all(row.wanmodels == reason for row in out.rows.values())
