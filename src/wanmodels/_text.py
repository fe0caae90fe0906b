"""Words for people: sizes in binary units and counted nouns, shared by messages and reports.

One unit system everywhere (progress, summaries, errors, docs): 1 KiB is 1024 bytes. Stdlib only,
so library modules can word their errors without importing the report layer.
"""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def count(n: int, noun: str) -> str:
    """2, 'file' -> '2 files'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def shorten(text: str, limit: int = 160) -> str:
    """`text` cut in the middle to at most `limit` characters, so one line stays one line even for
    a 6,000-character path; both ends stay readable."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return f"{text[: keep - keep // 2]}…{text[len(text) - keep // 2 :]}"
