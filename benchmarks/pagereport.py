"""A virtual machine's free page reporting, paused for a run with `--hold-pages`.

With virtio-balloon free page reporting, the guest kernel hands pages it has freed back to the
host. The next first touch of each such page then costs a fault on the host, and that cost is
charged to whichever process touches it: a tool writing 1 GiB of new page cache on this 2-core VM
used 1.66-1.70 core-s after 8 s idle, against 0.19-0.20 core-s with reporting paused (one
`os.pwrite` loop, measured 2026-12-08). That made case 16's CPU per GiB depend on how long the
pages had been free, not on the tool.

Reporting covers only free blocks of at least `page_reporting_order`; a value above the largest
order the buddy allocator makes (10 on x86-64) reports nothing. The old value is put back when the
run ends (not after a SIGKILL of the benchmark: then write it back by hand, as the header says).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

PARAMS = Path("/sys/module/page_reporting/parameters")
ORDER = PARAMS / "page_reporting_order"
REPORTED = PARAMS / "reported_kib"  # a counter some kernels add; absent upstream
PAUSED = "11"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@contextlib.contextmanager
def held(hold: bool) -> Iterator[list[str]]:
    """Pause free page reporting while the block runs when `hold` (and the kernel has it).

    Yields a list that holds, once the block ends, the report's line on what reporting did.
    """
    lines: list[str] = []
    order = _read(ORDER)
    if order is None:
        lines.append("free page reporting: not on this machine")
        yield lines
        return
    if not hold:
        lines.append(
            f"free page reporting: on (order {order}); CPU figures include the host's faults on pages "
            "touched for the first time since they were freed (`--hold-pages` pauses it)"
        )
        yield lines
        return
    try:
        ORDER.write_text(PAUSED)
    except OSError as err:
        lines.append(f"free page reporting: on (order {order}); could not pause it: {err.strerror}")
        yield lines
        return
    before = _read(REPORTED)
    try:
        yield lines
    finally:
        after = _read(REPORTED)
        ORDER.write_text(order)
        moved = ""
        if before is not None and after is not None and before.isdigit() and after.isdigit():
            moved = f"; {(int(after) - int(before)) >> 10} MiB reported meanwhile"
        lines.append(
            f"free page reporting: paused for this run (page_reporting_order {order} → {PAUSED}, "
            f"then back to {order}{moved}); if the run was killed: `echo {order} > {ORDER}`"
        )
