"""Digests and streaming hashers: sha256 as hashlib computes it, gitsha1 as git computes it."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pytest

from wanmodels.digests import READ_SIZE, Digest, Hasher, hash_file, hash_stream

SHA256_HEX = hashlib.sha256(b"wan").hexdigest()
SHA1_HEX = hashlib.sha1(b"wan").hexdigest()


def _git_blob_sha1(path: Path) -> str:
    out = subprocess.run(
        ["git", "hash-object", "--no-filters", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=path.parent,
    )
    return out.stdout.strip()


# --- Digest ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "algorithm", "hexdigest"),
    [
        pytest.param(f"sha256:{SHA256_HEX}", "sha256", SHA256_HEX, id="sha256"),
        pytest.param(f"gitsha1:{SHA1_HEX}", "gitsha1", SHA1_HEX, id="gitsha1"),
        pytest.param(f"sha256:{SHA256_HEX.upper()}", "sha256", SHA256_HEX, id="uppercase_is_lowered"),
    ],
)
def test_digest_parse_and_str_round_trip(text: str, algorithm: str, hexdigest: str) -> None:
    digest = Digest.parse(text)
    assert digest.algorithm == algorithm
    assert digest.hexdigest == hexdigest
    assert str(digest) == f"{algorithm}:{hexdigest}"
    assert Digest.parse(str(digest)) == digest


def test_digest_equality_is_case_insensitive() -> None:
    assert Digest("sha256", SHA256_HEX.upper()) == Digest("sha256", SHA256_HEX)
    assert hash(Digest("sha256", SHA256_HEX.upper())) == hash(Digest("sha256", SHA256_HEX))
    assert Digest.parse(f"sha256:{SHA256_HEX.upper()}") == Digest.parse(f"sha256:{SHA256_HEX}")


def test_digest_differs_by_algorithm_and_value() -> None:
    assert Digest("sha256", SHA256_HEX) != Digest("sha256", "0" * 64)
    assert Digest("gitsha1", SHA256_HEX[:40]) != Digest("sha256", SHA256_HEX)


@pytest.mark.parametrize(
    ("algorithm", "value"),
    [
        ("sha256", SHA256_HEX[:40]),
        ("gitsha1", SHA256_HEX),
        ("sha256", "../" + SHA256_HEX[3:]),
        ("sha256", ""),
    ],
)
def test_a_digest_is_exactly_hex_of_its_length(algorithm: str, value: str) -> None:
    """A digest names a blob in the HF cache: nothing but hex of the right length gets through."""
    with pytest.raises(ValueError, match="digest"):
        Digest(algorithm, value)  # type: ignore[arg-type]


def test_digest_short_form() -> None:
    assert Digest("sha256", SHA256_HEX).short == f"sha256:{SHA256_HEX[:12]}…"


def test_digest_rejects_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unknown digest algorithm"):
        Digest("md5", "0" * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(SHA256_HEX, id="no_algorithm"),
        pytest.param(f"md5:{'0' * 32}", id="unknown_algorithm"),
        pytest.param(f"SHA256:{SHA256_HEX}", id="uppercase_algorithm"),
        pytest.param(f"sha256:{SHA256_HEX[:-1]}", id="sha256_too_short"),
        pytest.param(f"sha256:{SHA256_HEX}0", id="sha256_too_long"),
        pytest.param(f"sha256:{SHA1_HEX}", id="sha256_with_sha1_length"),
        pytest.param(f"gitsha1:{SHA256_HEX}", id="gitsha1_with_sha256_length"),
        pytest.param(f"gitsha1:{SHA1_HEX[:-1]}", id="gitsha1_too_short"),
        pytest.param(f"sha256:{'g' * 64}", id="non_hex"),
        pytest.param(f"sha256:{'z' + SHA256_HEX[1:]}", id="one_non_hex_char"),
        pytest.param("sha256:", id="no_value"),
        pytest.param("sha256", id="no_colon"),
        pytest.param(f"sha256 {SHA256_HEX}", id="space_separator"),
    ],
)
def test_digest_parse_rejects_bad_text(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError; the message varies by rule
        Digest.parse(text)


@pytest.mark.parametrize(
    "hexdigest",
    [
        pytest.param("-" + SHA256_HEX[1:], id="minus_sign"),
        pytest.param("+" + SHA256_HEX[1:], id="plus_sign"),
        pytest.param("0x" + SHA256_HEX[2:], id="0x_prefix"),
        pytest.param("0_" * 31 + "00", id="underscores"),
        pytest.param(" " + SHA256_HEX[1:], id="leading_space"),
        pytest.param(SHA256_HEX[1:] + "\n", id="trailing_newline"),
    ],
)
def test_digest_parse_rejects_non_hex_that_int_accepts(hexdigest: str) -> None:
    assert len(hexdigest) == 64
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError will do
        Digest.parse(f"sha256:{hexdigest}")


# --- hashing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello\n", id="small"),
        pytest.param(b"\x00\xff" * 1000, id="binary"),
        pytest.param(os.urandom(READ_SIZE + 17), id="more_than_one_read"),
    ],
)
def test_hash_file_sha256_equals_hashlib(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    assert hash_file(path, "sha256") == Digest("sha256", hashlib.sha256(content).hexdigest())


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello\n", id="small"),
        pytest.param(b"line1\r\nline2\r\n", id="crlf_not_normalised"),
        pytest.param(bytes(range(256)) * 40, id="binary"),
        pytest.param(os.urandom(READ_SIZE + 3), id="more_than_one_read"),
    ],
)
def test_hash_file_gitsha1_equals_git_hash_object(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "blob"
    path.write_bytes(content)
    expected = _git_blob_sha1(path)
    assert hash_file(path, "gitsha1") == Digest("gitsha1", expected)
    assert hash_file(path, "gitsha1", size=len(content)).hexdigest == expected


def test_gitsha1_of_known_blob() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    hasher = Hasher("gitsha1", 6)
    hasher.update(b"hello\n")
    assert hasher.digest() == Digest("gitsha1", "ce013625030ba8dba906f756967f9e9ca394464a")


def test_hasher_reset_starts_over(tmp_path: Path) -> None:
    for algorithm in ("sha256", "gitsha1"):
        hasher = Hasher(algorithm, 5)
        hasher.update(b"garbage that is thrown away")
        hasher.reset()
        hasher.update(b"hello")
        fresh = Hasher(algorithm, 5)
        fresh.update(b"hello")
        assert hasher.digest() == fresh.digest()
    assert Hasher("sha256", 0).digest().hexdigest == hashlib.sha256(b"").hexdigest()


def test_hasher_accepts_memoryview() -> None:
    hasher = Hasher("sha256", 3)
    hasher.update(memoryview(b"abc"))
    assert hasher.digest().hexdigest == hashlib.sha256(b"abc").hexdigest()


def test_hash_stream_respects_limit_and_counts_bytes() -> None:
    data = b"x" * (READ_SIZE + 100)
    hasher = Hasher("sha256", 0)
    assert hash_stream(io.BytesIO(data), hasher, limit=READ_SIZE + 5) == READ_SIZE + 5
    assert hasher.digest().hexdigest == hashlib.sha256(data[: READ_SIZE + 5]).hexdigest()
    whole = Hasher("sha256", 0)
    assert hash_stream(io.BytesIO(data), whole) == len(data)
    assert hash_stream(io.BytesIO(b""), Hasher("sha256", 0)) == 0


def test_hash_file_streams_20_mib_file(tmp_path: Path) -> None:
    block = os.urandom(1 << 20)
    path = tmp_path / "big.safetensors"
    expected = hashlib.sha256()
    with path.open("wb") as f:
        for i in range(20):
            chunk = bytes([i]) + block[1:]
            f.write(chunk)
            expected.update(chunk)
    assert path.stat().st_size == 20 << 20
    assert hash_file(path, "sha256") == Digest("sha256", expected.hexdigest())
