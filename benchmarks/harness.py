"""Run the tools under test as subprocesses and turn what they measured into table rows."""

from __future__ import annotations

import compileall
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.hubserver import HubServer, client_env

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(sys.executable).parent
MIB = 1 << 20


@dataclass
class Run:
    seconds: float
    rc: int
    maxrss_kib: int
    stdout: str
    stderr: str
    started: float = 0.0  # time.monotonic() just before the process was spawned
    cpu: float = 0.0  # its user + system CPU seconds (its own, from wait4: children reaped by it included)
    switches: int = 0  # its voluntary + involuntary context switches (wait4)


@dataclass
class Bench:
    """One server, the temp dir every case works in, and the commands run so far (for the report)."""

    srv: HubServer
    tmp: Path
    env: dict[str, str]
    commands: dict[str, str] = field(default_factory=dict)  # template label -> command as run

    def record(self, label: str, argv: Sequence[str], cwd: Path | None) -> None:
        if label not in self.commands:
            text = shlex.join(str(a) for a in argv)
            if cwd is not None:
                text = f"(cd {cwd} && {text})"
            text = text.replace(str(self.tmp), "$TMP").replace(str(BIN_DIR) + "/", "")
            self.commands[label] = text.replace(str(REPO_ROOT) + "/", "")

    def run(
        self,
        label: str,
        argv: Sequence[str],
        cwd: Path | None = None,
        *,
        check: bool = True,
        on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    ) -> Run:
        """Run one subprocess; its wall time and its own peak RSS.

        `on_start` runs in this thread while the child runs (e.g. to kill it at some point); the
        child is reaped only after it returns.
        """
        self.record(label, argv, cwd)
        out_path, err_path = self.tmp / "stdout.log", self.tmp / "stderr.log"
        # Every run starts with no dirty pages of the one before it: the kernel writing back the
        # last tool's GB while the next one runs made either tool's time vary by up to 30%.
        os.sync()
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start = time.perf_counter()
            started = time.monotonic()
            proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=self.env, stdout=out, stderr=err)
            with PeakRss(proc.pid) as peak:
                if on_start is not None:
                    on_start(proc)
                _, status, usage = os.wait4(proc.pid, 0)
                seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        result = Run(
            seconds,
            proc.returncode,
            peak.kib,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
            started,
            usage.ru_utime + usage.ru_stime,
            usage.ru_nvcsw + usage.ru_nivcsw,
        )
        if check and result.rc != 0:
            raise RuntimeError(f"{label} exited {result.rc}: {result.stderr[-2000:]}")
        return result


class PeakRss:
    """The peak RSS of a running child, from its `VmHWM` in /proc, polled every 5 ms until it exits.

    Not `ru_maxrss` from wait4: Linux starts a child's maxrss at the RSS its parent had when it
    spawned it (subprocess uses vfork, and exec keeps the old mm's high-water mark), so every child
    of this harness, which holds the servers and has written GBs of fixtures, would "peak" at the
    harness's own size (`/bin/true` reports 200 MiB under a 200 MiB parent). VmHWM belongs to the
    child's own address space. The last 5 ms of growth before exit can be missed.
    """

    def __init__(self, pid: int) -> None:
        self._status = Path(f"/proc/{pid}/status")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="peak-rss", daemon=True)
        self.kib = 0

    def _poll(self) -> None:
        while True:
            self._read()
            if self._stop.wait(0.005):
                self._read()
                return

    def _read(self) -> None:
        try:
            text = self._status.read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.kib = max(self.kib, int(line.split()[1]))
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def alive(pid: int) -> bool:
    """Whether the child still runs, without reaping it (the caller's wait4 must get its rusage)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is None


def fresh_dir(tmp: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))


COMPILE = "python -m compileall -q src/wanmodels"


def byte_compile() -> str:
    """Write wanmodels' `.pyc` files, as `pip install .` does: an editable install leaves that to
    the first import, which skips it under PYTHONDONTWRITEBYTECODE=1 (set on this machine), and
    then every run compiles ~40 modules again (~0.05 s) that a user's install does not.
    The peers' own modules were compiled when pip installed them. Returns the command, for the report."""
    compileall.compile_dir(REPO_ROOT / "src" / "wanmodels", quiet=1)
    return COMPILE


def wm(*args: str) -> list[str]:
    return [str(BIN_DIR / "wanmodels"), *args]


def hf(*args: str) -> list[str]:
    return [str(BIN_DIR / "hf"), *args]


def clean_env(srv: HubServer, tmp: Path) -> dict[str, str]:
    """The client environment of `tests.support.hubserver`, plus no colour and this venv's tools first."""
    env = client_env(srv, tmp, NO_COLOR="1")
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    return env


# -- rows -------------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    wanmodels: str
    peer: str
    ratio: str
    target: str
    met: str


def fmt_s(values: Sequence[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f} s (1 run)"
    return f"min {min(values):.3f} s, median {statistics.median(values):.3f} s"


def ratio_row(case: str, mine: list[float], peer: list[float], peer_name: str, limit: float | None) -> Row:
    """`mine` against `peer`, min over min; `limit` None means the ratio is reported, not judged."""
    ratio = min(mine) / min(peer)
    digits = 3 if abs(ratio - (limit or 0)) < 0.01 else 2  # near its limit, 1.00× could be either side
    return Row(
        case,
        fmt_s(mine),
        f"{peer_name}: {fmt_s(peer)}",
        f"{ratio:.{digits}f}× (min/min)",
        f"≤ {limit}×" if limit is not None else "(report)",
        "—" if limit is None else "yes" if ratio <= limit else "NO",
    )


def not_run(case: str, reason: str) -> Row:
    reason = " ".join(reason.split()).replace("|", "/")
    return Row(case, f"not run: {reason}", "", "", "", "")


def yes_no(ok: bool) -> str:
    return "yes" if ok else "NO"
