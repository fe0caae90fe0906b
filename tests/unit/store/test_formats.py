"""Format sanity checks: safetensors headers against the bytes, JSON parsing, index shards present."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wanmodels.store.formats import check_format

DTYPE_SIZES = {"F32": 4, "F16": 2, "BF16": 2, "U8": 1}


def _safetensors(tensors: dict[str, tuple[str, list[int]]], *, pad: bool = True) -> bytes:
    """A valid safetensors blob: u64 LE header length, JSON header, then contiguous tensor data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        size = count * DTYPE_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    if pad:
        raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(i % 251 for i in range(offset))


def _raw(header: Any, data: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


GOOD_TENSORS: dict[str, tuple[str, list[int]]] = {
    "weight": ("F16", [4, 4]),
    "bias": ("F32", [4]),
    "scale": ("BF16", [2, 2, 2]),
}
GOOD = _safetensors(GOOD_TENSORS)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(GOOD, id="three_tensors"),
        pytest.param(_safetensors(GOOD_TENSORS, pad=False), id="unpadded_header"),
        pytest.param(_safetensors({}), id="metadata_only_no_data"),
        pytest.param(_raw({}, b""), id="empty_header"),
        pytest.param(_safetensors({"empty": ("F32", [0]), "x": ("U8", [3])}), id="zero_sized_tensor"),
        pytest.param(
            _raw(
                {
                    "b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]},
                    "a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                },
                b"abcd",
            ),
            id="tensors_listed_out_of_order",
        ),
    ],
)
def test_check_format_accepts_valid_safetensors(tmp_path: Path, data: bytes) -> None:
    assert check_format(_write(tmp_path, "model.safetensors", data)) is None


def _header_len(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


# (id, bytes, fragment the message must contain)
BROKEN_SAFETENSORS: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty_file", lambda: b"", "shorter than its 8-byte header length"),
    ("seven_bytes", lambda: GOOD[:7], "shorter than its 8-byte header length"),
    ("truncated_in_header", lambda: GOOD[: 8 + _header_len(GOOD) // 2], "header claims"),
    ("truncated_in_data", lambda: GOOD[:-5], "beyond the"),
    ("header_length_beyond_file", lambda: struct.pack("<Q", 10_000) + b"{}", "header claims 10000 bytes"),
    ("header_length_huge", lambda: struct.pack("<Q", 2**63) + b"{}" * 10, "header claims"),
    (
        "tensor_offsets_exceed_data",
        lambda: _raw({"w": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]}}, b"1234"),
        "'w' spans bytes 0-8, beyond the 4 data bytes",
    ),
    (
        "tensor_offsets_reversed",
        lambda: _raw({"w": {"dtype": "U8", "shape": [2], "data_offsets": [3, 1]}}, b"1234"),
        "'w' spans bytes 3-1",
    ),
    (
        "tensor_offset_negative",
        lambda: _raw({"w": {"dtype": "U8", "shape": [2], "data_offsets": [-2, 2]}}, b"12"),
        "'w' spans bytes -2-2",
    ),
    ("data_longer_than_tensors", lambda: GOOD + b"trailing", "but its tensors cover"),
    (
        "data_longer_than_only_tensor",
        lambda: _raw({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, b"1234"),
        "data is 4 bytes but its tensors cover 2",
    ),
    ("header_not_json", lambda: _raw(b"{not json", b""), "header is not valid JSON"),
    ("header_not_utf8", lambda: _raw(b'{"\xff": 1}', b""), "header is not valid JSON"),
    ("header_is_a_list", lambda: _raw([1, 2], b""), "header is not a JSON object"),
    (
        "missing_data_offsets",
        lambda: _raw({"w": {"dtype": "U8", "shape": [2]}}, b"12"),
        "'w' has no valid data_offsets",
    ),
    (
        "data_offsets_wrong_length",
        lambda: _raw({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0]}}, b"12"),
        "'w' has no valid data_offsets",
    ),
    (
        "data_offsets_floats",
        lambda: _raw({"w": {"dtype": "U8", "shape": [2], "data_offsets": [0.0, 2.0]}}, b"12"),
        "'w' has no valid data_offsets",
    ),
    (
        "data_offsets_bools",
        lambda: _raw({"w": {"dtype": "U8", "shape": [1], "data_offsets": [False, True]}}, b"1"),
        "'w' has no valid data_offsets",
    ),
    ("tensor_info_not_object", lambda: _raw({"w": [0, 2]}, b"12"), "'w' has no valid data_offsets"),
]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [pytest.param(make, fragment, id=case_id) for case_id, make, fragment in BROKEN_SAFETENSORS],
)
def test_check_format_explains_broken_safetensors(
    tmp_path: Path, make: Callable[[], bytes], fragment: str
) -> None:
    message = check_format(_write(tmp_path, "model.safetensors", make()))
    assert isinstance(message, str)
    assert fragment in message


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_check_format_explains_deeply_nested_json(tmp_path: Path, name: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    data = _raw(nested, b"") if name.endswith(".safetensors") else nested
    message = check_format(_write(tmp_path, name, data))
    assert isinstance(message, str)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'{"a": 1}', id="object"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"just a string"', id="string"),
        pytest.param('{"ñ": "ü"}'.encode(), id="utf8"),
    ],
)
def test_check_format_accepts_valid_json(tmp_path: Path, data: bytes) -> None:
    assert check_format(_write(tmp_path, "config.json", data)) is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"a": 1', id="truncated"),
        pytest.param(b"{'a': 1}", id="single_quotes"),
        pytest.param(b'{"a": 1}\x00\x00', id="trailing_nul"),
        pytest.param(b'{"a": "\xff"}', id="not_utf8"),
    ],
)
def test_check_format_explains_invalid_json(tmp_path: Path, data: bytes) -> None:
    message = check_format(_write(tmp_path, "tokenizer_config.json", data))
    assert isinstance(message, str)
    assert message.startswith("not valid JSON")


def _index(weight_map: dict[str, str]) -> bytes:
    return json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}).encode()


SHARDS = {
    "blocks.0.w": "diffusion_pytorch_model-00001-of-00002.safetensors",
    "blocks.1.w": "diffusion_pytorch_model-00002-of-00002.safetensors",
    "blocks.1.b": "diffusion_pytorch_model-00002-of-00002.safetensors",
}


def test_check_format_index_with_all_shards_present(tmp_path: Path) -> None:
    path = _write(tmp_path, "diffusion_pytorch_model.safetensors.index.json", _index(SHARDS))
    assert check_format(path, frozenset(SHARDS.values()) | {"config.json"}) is None


def test_check_format_index_names_absent_shard(tmp_path: Path) -> None:
    path = _write(tmp_path, "diffusion_pytorch_model.safetensors.index.json", _index(SHARDS))
    message = check_format(path, frozenset({"diffusion_pytorch_model-00001-of-00002.safetensors"}))
    assert isinstance(message, str)
    assert "diffusion_pytorch_model-00002-of-00002.safetensors" in message
    assert "00001-of-00002" not in message


def test_check_format_index_without_siblings_lists_first_absent_shards_sorted(tmp_path: Path) -> None:
    shards = {f"t{i}": f"s{i}.safetensors" for i in (4, 2, 3, 1)}
    path = _write(tmp_path, "model.safetensors.index.json", _index(shards))
    message = check_format(path)
    assert message is not None
    assert message.endswith("s1.safetensors, s2.safetensors, s3.safetensors")


@pytest.mark.parametrize(
    ("name", "doc"),
    [
        pytest.param("config.json", {"weight_map": {"w": "absent.safetensors"}}, id="not_an_index_name"),
        pytest.param("model.safetensors.index.json", {"metadata": {}}, id="index_without_weight_map"),
        pytest.param("model.safetensors.index.json", {"weight_map": ["a"]}, id="weight_map_not_a_mapping"),
        pytest.param("model.safetensors.index.json", ["a"], id="index_not_an_object"),
    ],
)
def test_check_format_only_checks_shards_of_a_real_index(tmp_path: Path, name: str, doc: Any) -> None:
    assert check_format(_write(tmp_path, name, json.dumps(doc).encode())) is None


@pytest.mark.parametrize("name", ["pytorch_model.bin", "spiece.model", "README.md", "tf_model.h5"])
def test_check_format_ignores_other_formats(tmp_path: Path, name: str) -> None:
    assert check_format(_write(tmp_path, name, b"\x00garbage")) is None


def test_check_format_unreadable_file_returns_message(tmp_path: Path) -> None:
    folder = tmp_path / "model.safetensors"
    folder.mkdir()
    message = check_format(folder)
    assert isinstance(message, str)
    assert message.startswith("cannot read")
    assert check_format(tmp_path / "missing.json") is not None
