"""File-format sanity checks that catch truncated or mangled weights without hashing them.

A safetensors file is an 8-byte little-endian header length, a JSON header giving each
tensor's byte range, then the data; a file cut short or with a lying header fails here
in microseconds. JSON files must parse, and a sharded checkpoint's index must name only
shards that are present.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Final

MAX_HEADER: Final = 100 << 20
MAX_JSON: Final = 64 << 20


def check_format(path: Path, siblings: frozenset[str] = frozenset()) -> str | None:
    """Return what is wrong with the file's format, or None when it looks sane.

    Args:
        path: the file on disk.
        siblings: names, relative to the file's directory, of the good files beside it (index checks).
    """
    name = path.name
    try:
        if name.endswith(".safetensors"):
            return _check_safetensors(path)
        if name.endswith(".json"):
            return _check_json(path, siblings)
    except OSError as err:
        return f"cannot read: {err.strerror}"
    return None


def _check_safetensors(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "not a safetensors file: shorter than its 8-byte header length"
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            return f"safetensors header claims {n} bytes but the file has {size}"
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        return "safetensors header is not valid JSON"
    if not isinstance(header, dict):
        return "safetensors header is not a JSON object"
    data_size = size - 8 - n
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
            return f"safetensors tensor {key!r} has no valid data_offsets"
        start, stop = offsets
        if not 0 <= start <= stop <= data_size:
            return f"safetensors tensor {key!r} spans bytes {start}-{stop}, beyond the {data_size} data bytes"
        end = max(end, stop)
    if end != data_size:
        return f"safetensors data is {data_size} bytes but its tensors cover {end}"
    return None


def _check_json(path: Path, siblings: frozenset[str]) -> str | None:
    if path.stat().st_size > MAX_JSON:
        return None
    try:
        doc = json.loads(path.read_bytes())
    except RecursionError:
        return "not valid JSON: nested too deeply"
    except ValueError as err:
        return f"not valid JSON: {err}"
    if (
        path.name.endswith(".index.json")
        and isinstance(doc, dict)
        and isinstance(doc.get("weight_map"), dict)
    ):
        absent = sorted({str(v) for v in doc["weight_map"].values()} - siblings)
        if absent:
            which = "a shard that is" if len(absent) == 1 else f"{len(absent)} shards that are"
            return f"index names {which} not present: {', '.join(absent[:3])}"
    return None
