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


def duration(seconds: float) -> str:
    """75 -> '1m15s', 5000 -> '1h23m': short enough for a progress line."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def middle(text: str, width: int) -> str:
    """`text` cut to `width` characters in its middle ('wan2.2_i2v_…_high_noise'): both ends stay,
    and the ends are where names of one family differ (a version, a shard number, a suffix)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def short_path(path: str, width: int) -> str:
    """A path cut to `width` in its folders, keeping the file name whole while it fits; a
    longer file name is cut in its middle, keeping its extension."""
    if len(path) <= width:
        return path
    folder, _, name = path.rpartition("/")
    if folder and len(name) + 2 <= width:
        return middle(folder, width - len(name) - 1) + "/" + name
    stem, dot, ext = name.rpartition(".")
    if dot and 0 < len(ext) < width // 2:
        return middle(stem, width - len(ext) - 1) + "." + ext
    return middle(name, width)


def shorten(text: str, limit: int = 160) -> str:
    """`text` cut in the middle to at most `limit` characters, so one line stays one line even for
    a 6,000-character path; both ends stay readable."""
    return middle(text, limit)
