"""Filesystem safety: relative-path checks, joins that cannot escape the root, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wanmodels._fs import atomic_write, atomic_writer, check_relative, safe_join

SAFE_PATHS = [
    "a",
    "config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "a/b/c/d.bin",
    ".gitattributes",
    "..hidden",
    "a..b",
    "dir/...",
    "name with inner space.txt",
    "ünïcode/файл.json",
]

# (path, fragment of the reason)
UNSAFE_PATHS = [
    ("", "empty"),
    (" a", "surrounding spaces"),
    ("a ", "surrounding spaces"),
    ("a\n", "surrounding spaces"),
    ("/etc/passwd", "absolute"),
    ("/", "absolute"),
    ("//server/share", "absolute"),
    ("..", "'..'"),
    ("../a", "'..'"),
    ("a/..", "'..'"),
    ("a/../b", "'..'"),
    ("a/b/../../..", "'..'"),
    ("a\\b", "backslash"),
    ("..\\a", "backslash"),
    ("a\0b", "NUL"),
    ("a//b", "empty or '.' component"),
    ("a/", "empty or '.' component"),
    (".", "empty or '.' component"),
    ("./a", "empty or '.' component"),
    ("a/./b", "empty or '.' component"),
    ("C:x", "absolute"),
    ("C:/x", "absolute"),
    ("c:", "absolute"),
]


@pytest.mark.parametrize("path", SAFE_PATHS)
def test_check_relative_accepts_plain_relative_paths(path: str) -> None:
    assert check_relative(path) is None


@pytest.mark.parametrize(("path", "reason"), UNSAFE_PATHS, ids=[repr(p) for p, _ in UNSAFE_PATHS])
def test_check_relative_explains_unsafe_paths(path: str, reason: str) -> None:
    result = check_relative(path)
    assert result is not None
    assert reason in result


@pytest.mark.parametrize("path", SAFE_PATHS)
def test_safe_join_joins_under_root(tmp_path: Path, path: str) -> None:
    assert safe_join(tmp_path, path) == tmp_path.joinpath(*path.split("/"))


@pytest.mark.parametrize(("path", "reason"), UNSAFE_PATHS, ids=[repr(p) for p, _ in UNSAFE_PATHS])
def test_safe_join_refuses_unsafe_paths(tmp_path: Path, path: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as err:
        safe_join(tmp_path, path)
    assert repr(path) in str(err.value)


def test_safe_join_follows_a_folder_link_the_user_made(tmp_path: Path) -> None:
    """A folder symlink in the root is the user's (models on another disk); wanmodels makes none,
    so it is followed. A name from a manifest or a server still cannot climb out (see above)."""
    root = tmp_path / "root"
    other_disk = tmp_path / "other-disk"
    root.mkdir()
    other_disk.mkdir()
    (root / "loras").symlink_to(other_disk, target_is_directory=True)
    assert safe_join(root, "loras/x.safetensors") == root / "loras" / "x.safetensors"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("a/" + "n" * 256, "longer than 255 bytes"),
        ("a/" + "é" * 128, "longer than 255 bytes"),
        ("/".join(["d" * 200] * 16), "longer than 2048"),
    ],
)
def test_names_no_filesystem_can_store_are_refused_before_the_disk(path: str, reason: str) -> None:
    assert reason in (check_relative(path) or "")
    assert check_relative("a/" + "n" * 255) is None


def test_safe_join_allows_symlink_staying_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert safe_join(root, "alias/x.bin") == root / "alias" / "x.bin"


def test_safe_join_allows_root_that_is_itself_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    link = tmp_path / "root-link"
    link.symlink_to(real, target_is_directory=True)
    assert safe_join(link, "a/b.json") == link / "a" / "b.json"


class _BoomError(Exception):
    pass


def _write_half_then_fail(path: Path) -> None:
    with atomic_writer(path) as f:
        f.write(b"half of the new")
        raise _BoomError


def _leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != name)


def test_atomic_write_creates_file_and_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.lock"
    atomic_write(path, b"first")
    assert path.read_bytes() == b"first"
    assert _leftovers(path.parent, "x.lock") == []


def test_atomic_write_replaces_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_bytes(b"old content that is longer than the new one")
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert _leftovers(tmp_path, "x.lock") == []
    atomic_write(path, b"")
    assert path.read_bytes() == b""
    assert _leftovers(tmp_path, "x.lock") == []


def test_atomic_write_replaces_file_not_writes_through_it(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_bytes(b"old")
    before = os.stat(path).st_ino
    hardlink = tmp_path / "hardlink"
    os.link(path, hardlink)
    atomic_write(path, b"new")
    assert hardlink.read_bytes() == b"old"
    assert os.stat(path).st_ino != before


def test_atomic_writer_failure_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_bytes(b"old")

    with pytest.raises(_BoomError):
        _write_half_then_fail(path)
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path, "x.lock") == []
