"""Measure how wanmodels recovers: re-runs, resume after SIGKILL, exit time after SIGINT/SIGTERM,
and a connection cut mid-file, on the loopback test Hub. Prints what it measured; asserts nothing.

    python -m benchmarks.recovery    # from the repo root
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.hubserver import Fault, HubServer, client_env
from tests.support.repos import add_repos, safetensors_bytes, seed_repos

from benchmarks.partwatch import JournalWatch, kept_bytes

BIG = "big.safetensors"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="wanmodels-recovery-"))
    with HubServer() as srv:
        add_repos(srv, seed_repos())
        env = client_env(srv, work, WANMODELS_RETRY_WAIT="0.2")

        def run(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
            start = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "wanmodels", *args], cwd=work, env=env, capture_output=True, text=True
            )
            return proc, time.monotonic() - start

        def spawn(*args: str) -> subprocess.Popen[str]:
            return subprocess.Popen(
                [sys.executable, "-m", "wanmodels", *args],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )

        proc, seconds = run("download")
        print(
            f"fresh bundled download: exit {proc.returncode}, {len(srv.requests)} requests "
            f"({len(srv.gets())} file GETs), {srv.bytes_sent()} bytes, {seconds:.2f}s"
        )
        srv.clear_log()
        proc, seconds = run("download")
        print(f"second download: exit {proc.returncode}, {len(srv.requests)} requests, {seconds:.2f}s")
        proc, seconds = run("verify")
        print(f"verify: exit {proc.returncode}, {len(srv.requests)} requests, {seconds:.2f}s")

        data = safetensors_bytes({"w": ("F32", [(64 << 20) // 4])}, seed=7)
        srv.add_repo("test/big", {BIG: data})
        (work / "big.yaml").write_text("version: 1\nmodels:\n  - name: big\n    repo: test/big\n")
        partial = work / "models" / ".wanmodels" / "partial"
        target = work / "models" / "big" / BIG

        srv.throttle_bps = 32 << 20
        srv.clear_log()
        killed = spawn("download", "-m", "big.yaml")
        wait_for_part(partial, len(data) // 2)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        kept = kept_bytes(partial, BIG)
        first = srv.bytes_sent(BIG)
        srv.throttle_bps = None
        srv.clear_log()
        proc, _ = run("download", "-m", "big.yaml")
        second = srv.bytes_sent(BIG)
        left = len(data) - kept
        print(
            f"SIGKILL at {kept / len(data):.0%} of a {len(data):,} B file: second run sent {second:,} B for "
            f"{left:,} B left (ratio {second / left:.4f}) in {len(srv.gets(BIG))} GETs; "
            f"re-sent overall {first + second - len(data):,} B "
            f"({(first + second - len(data)) / len(data):.3%}); exit {proc.returncode}"
        )

        srv.throttle_bps = 4 << 20
        for sig in (signal.SIGINT, signal.SIGTERM):
            target.unlink(missing_ok=True)
            for part in [*partial.glob("*.part"), *partial.glob("*.journal")]:
                part.unlink()
            proc_bg = spawn("download", "-m", "big.yaml")
            wait_for_part(partial, 1 << 20)
            sent = time.monotonic()
            proc_bg.send_signal(sig)
            _, err = proc_bg.communicate(timeout=10)
            last = err.strip().splitlines()[-1] if err.strip() else "(no message)"
            print(
                f"{sig.name}: exit {proc_bg.returncode} after {time.monotonic() - sent:.3f}s, "
                f"part kept {kept_bytes(partial, BIG):,} B; {last}"
            )
        srv.throttle_bps = None

        for part in [*partial.glob("*.part"), *partial.glob("*.journal")]:
            part.unlink()
        target.unlink(missing_ok=True)
        srv.clear_log()
        srv.add_fault(Fault(path=BIG, kind="cut", after_bytes=8 << 20, times=3))
        proc, seconds = run("download", "-m", "big.yaml")
        print(
            f"connection cut 3 times: exit {proc.returncode}, {len(srv.gets(BIG))} GETs, "
            f"{srv.bytes_sent(BIG):,} B sent for a {len(data):,} B file, {seconds:.2f}s"
        )
    return 0


def wait_for_part(folder: Path, at_least: int, timeout: float = 30) -> int:
    """Wait until the part's journal records `at_least` bytes (a multi-connection part is sparse: its
    size on disk is not what arrived)."""
    watch = JournalWatch(folder, BIG)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = watch.done_bytes()
        if done >= at_least:
            return done
        time.sleep(0.01)
    return watch.done_bytes()


if __name__ == "__main__":
    sys.exit(main())
