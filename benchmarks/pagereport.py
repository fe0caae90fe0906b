"""A virtual machine's free page reporting, paused for a run with `--hold-pages`.

With virtio-balloon free page reporting, the guest kernel hands pages it has freed back to the
host. The next first touch of each such page then costs a fault on the host, and that cost is
charged to whichever process touches it: a tool writing 1 GiB of new page cache on this 2-core VM
used 1.66-1.70 core-s after 8 s idle, against 0.19-0.20 core-s with reporting paused (one
`os.pwrite` loop, measured 2026-12-08). That made case 16's CPU per GiB depend on how long the
pages had been free, not on the tool.

Reporting covers only free blocks of at least `page_reporting_order`; a value above the largest
order the buddy allocator makes (10 on x86-64) reports nothing. The kernel this was measured on
accepts one; a stock kernel refuses any value above 10, and then the run goes on unpaused and says
so. The old value is put back when the run ends, on Ctrl-C, SIGTERM and SIGHUP too; after a
SIGKILL, run the command printed when reporting was paused.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

PARAMS = Path("/sys/module/page_reporting/parameters")
ORDER = PARAMS / "page_reporting_order"
REPORTED = PARAMS / "reported_kib"  # a counter some kernels add; absent upstream
MAX_ORDER = 10  # the largest block the buddy allocator makes on x86-64
PAUSED = str(MAX_ORDER + 1)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `held`, which puts the order back


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP end the process without running `finally` blocks; make them unwind."""
    old = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def held(hold: bool) -> Iterator[list[str]]:
    """Pause free page reporting while the block runs when `hold` (and the kernel reports pages).

    Yields a list that holds, once the block ends, the report's line on what reporting did.
    """
    lines: list[str] = []
    order = _read(ORDER)
    if order is None:
        lines.append("free page reporting: not on this machine")
        yield lines
        return
    if not order.isdigit() or int(order) > MAX_ORDER:
        # No device registered (the kernel shows -1 as 4294967295), or paused by a killed run.
        lines.append(f"free page reporting: not active (page_reporting_order {order})")
        yield lines
        return
    if not hold:
        lines.append(
            f"free page reporting: on (order {order}); CPU figures include the host's faults on pages "
            "touched for the first time since they were freed (`--hold-pages` pauses it)"
        )
        yield lines
        return
    before = _read(REPORTED)
    undo = f"echo {order} > {ORDER}"
    try:
        ORDER.write_text(PAUSED)
    except OSError as err:
        line = f"free page reporting: on (order {order}); could not pause it: {err.strerror}"
        print(f"--hold-pages: {line}; the run goes on with it", file=sys.stderr)
        lines.append(line)
        yield lines
        return
    print(f"--hold-pages: free page reporting paused; if this run is killed: `{undo}`", file=sys.stderr)
    try:
        with _signals_unwind():
            yield lines
    finally:
        after = _read(REPORTED)
        try:
            ORDER.write_text(order)
            back = f"then back to {order}"
        except OSError as err:
            back = f"NOT put back ({err.strerror}): run `{undo}`"
        moved = ""
        if before is not None and after is not None and before.isdigit() and after.isdigit():
            moved = f"; {(int(after) - int(before)) >> 10} MiB reported meanwhile"
        lines.append(
            f"free page reporting: paused for this run (page_reporting_order {order} → {PAUSED}, "
            f"{back}{moved})"
        )
