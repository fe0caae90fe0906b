"""Planning rules for shared folders: declared sha256s, whole shard sets, one file per path."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from wanmodels.digests import Digest
from wanmodels.errors import IntegrityError, SelectionError
from wanmodels.inputs.manifest import ModelSpec
from wanmodels.inputs.selection import SelectedFile, Selection, check_targets, select
from wanmodels.planning.plan import LocalState, make_plan
from wanmodels.repos import RemoteFile

COMMIT_21 = "1" * 40
COMMIT_22 = "2" * 40
VAE = "split_files/vae/wan_2.1_vae.safetensors"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _lfs(path: str, content: str = "", size: int = 100) -> RemoteFile:
    return RemoteFile(path, size, Digest("sha256", _sha(content or path)))


def _small(path: str, size: int = 10) -> RemoteFile:
    return RemoteFile(path, size, Digest("gitsha1", hashlib.sha1(path.encode()).hexdigest()))


def _spec(name: str, repo: str = "org/repo", **fields: object) -> ModelSpec:
    return replace(ModelSpec(name=name, repo=repo, folder=name, line=4), **fields)  # type: ignore[arg-type]


# --- declared sha256 in `files:` ----------------------------------------------------------------------


def test_declared_sha256_that_matches_the_listing_is_accepted() -> None:
    remote = _lfs(VAE, "vae bytes")
    spec = _spec(
        "vae", folder="vae", files=((VAE, "wan_2.1_vae.safetensors"),), sha256=((VAE, _sha("vae bytes")),)
    )
    (item,) = select(spec, COMMIT_21, (remote,)).files
    assert item.remote == remote
    assert item.local_path == "vae/wan_2.1_vae.safetensors"


def test_declared_sha256_that_differs_from_the_listing_is_an_integrity_error() -> None:
    remote = _lfs(VAE, "what the hub has")
    declared = _sha("what the workflow says")
    spec = _spec("vae", folder="vae", files=((VAE, "wan_2.1_vae.safetensors"),), sha256=((VAE, declared),))
    with pytest.raises(IntegrityError) as err:
        select(spec, COMMIT_21, (remote,))
    text = str(err.value)
    assert VAE in text
    assert f"declares sha256:{declared}" in text
    assert f"Hub lists {remote.digest}" in text
    assert "nothing was fetched" in text
    assert err.value.exit_code == 1
    assert (err.value.expected, err.value.actual) == (f"sha256:{declared}", str(remote.digest))


def test_declared_sha256_of_a_small_git_file_becomes_the_digest_to_check() -> None:
    """The Hub lists only a git blob sha1 for non-LFS files: the download is held to the declared sha256."""
    remote = _small("config.json")
    declared = _sha("config bytes")
    spec = _spec("cfg", files=(("config.json", "config.json"),), sha256=(("config.json", declared),))
    (item,) = select(spec, COMMIT_21, (remote, _small("other.json"))).files
    assert item.remote == RemoteFile("config.json", remote.size, Digest("sha256", declared))


def test_undeclared_files_keep_the_listed_digest() -> None:
    remote = _small("config.json")
    spec = _spec("cfg", files=(("config.json", "config.json"),))
    (item,) = select(spec, COMMIT_21, (remote,)).files
    assert item.remote.digest == remote.digest


# --- a sharded checkpoint is selected whole ---------------------------------------------------------

SHARDED = (
    _small("config.json"),
    _small("model.safetensors.index.json"),
    _lfs("model-00001-of-00003.safetensors"),
    _lfs("model-00002-of-00003.safetensors"),
    _lfs("model-00003-of-00003.safetensors"),
    _small("transformer/diffusion_pytorch_model.safetensors.index.json"),
    _lfs("transformer/diffusion_pytorch_model-00001-of-00002.safetensors"),
    _lfs("transformer/diffusion_pytorch_model-00002-of-00002.safetensors"),
    _small("model_index.json"),
)


@pytest.mark.parametrize(
    ("include", "missing"),
    [
        pytest.param(
            ("config.json", "model.safetensors.index.json", "model-00001-of-00003.safetensors"),
            ["model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"],
            id="one_of_three",
        ),
        pytest.param(
            ("*.json",),
            [
                "model-00001-of-00003.safetensors",
                "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors",
            ],
            id="index_without_shards",
        ),
        pytest.param(
            ("transformer/*.json", "transformer/*-00002-of-00002.safetensors"),
            ["transformer/diffusion_pytorch_model-00001-of-00002.safetensors"],
            id="in_a_subfolder",
        ),
    ],
)
def test_index_with_only_some_of_its_shards_fails_at_plan_time(
    include: tuple[str, ...], missing: list[str]
) -> None:
    with pytest.raises(SelectionError) as err:
        select(_spec("wan", include=include), COMMIT_21, SHARDED)
    text = str(err.value)
    assert "entry 'wan' (line 4)" in text
    assert f"missing {', '.join(missing)}" in text


@pytest.mark.parametrize(
    "include",
    [
        pytest.param(("config.json", "model*"), id="index_and_all_shards"),
        pytest.param(("model-0000*.safetensors",), id="shards_without_index"),
        pytest.param(("model_index.json", "transformer/"), id="other_folder_complete"),
        pytest.param(("model_index.json",), id="not_a_shard_index"),
    ],
)
def test_complete_shard_sets_and_unsharded_files_pass(include: tuple[str, ...]) -> None:
    assert select(_spec("wan", include=include), COMMIT_21, SHARDED).files


# --- check_targets: one file per path across entries -----------------------------------------------


def _selection(name: str, repo: str, commit: str, *items: tuple[RemoteFile, str]) -> Selection:
    spec = _spec(name, repo=repo, folder="vae")
    return Selection(spec, commit, tuple(SelectedFile(remote, local) for remote, local in items))


def test_same_bytes_from_two_repos_are_fetched_once_and_complete_both_entries() -> None:
    first = _selection(
        "vae21", "Comfy-Org/Wan_2.1", COMMIT_21, (_lfs(VAE, "vae"), "vae/wan_2.1_vae.safetensors")
    )
    second = _selection(
        "vae22",
        "Comfy-Org/Wan_2.2",
        COMMIT_22,
        (_lfs(VAE, "vae"), "vae/wan_2.1_vae.safetensors"),
        (_lfs("split_files/vae/wan2.2_vae.safetensors"), "vae/wan2.2_vae.safetensors"),
    )
    kept = check_targets((first, second))
    assert kept == (first, second)  # each entry keeps the file: each is complete, and locked, alone
    plan = make_plan(Path("/r"), kept, lambda item: LocalState())
    fetched = [f.local_path for f in plan.fetch_order()]
    assert sorted(fetched) == ["vae/wan2.2_vae.safetensors", "vae/wan_2.1_vae.safetensors"]  # once each
    assert plan.to_fetch == sum(f.size for f in plan.unique_files)


def test_different_bytes_for_one_path_name_both_entries_and_sources() -> None:
    first = _selection(
        "vae21", "Comfy-Org/Wan_2.1", COMMIT_21, (_lfs(VAE, "one"), "vae/wan_2.1_vae.safetensors")
    )
    second = _selection(
        "vae22", "Comfy-Org/Wan_2.2", COMMIT_22, (_lfs(VAE, "two"), "vae/wan_2.1_vae.safetensors")
    )
    with pytest.raises(SelectionError) as err:
        check_targets((first, second))
    text = str(err.value)
    for needle in ("entry 'vae21'", "entry 'vae22'", "'Comfy-Org/Wan_2.1'", "'Comfy-Org/Wan_2.2'", VAE):
        assert needle in text
    assert _sha("one")[:12] in text
    assert _sha("two")[:12] in text
    assert err.value.exit_code == 2


def test_same_digest_but_other_size_is_not_the_same_file() -> None:
    first = _selection("a", "org/a", COMMIT_21, (_lfs("x", "same", size=1), "vae/x"))
    second = _selection("b", "org/b", COMMIT_22, (_lfs("x", "same", size=2), "vae/x"))
    with pytest.raises(SelectionError):
        check_targets((first, second))


def test_a_file_where_another_entry_puts_files_is_an_error() -> None:
    first = _selection("a", "org/a", COMMIT_21, (_lfs("x"), "vae/sub"))
    second = _selection("b", "org/b", COMMIT_22, (_lfs("y"), "vae/sub/y.safetensors"))
    for order in ((first, second), (second, first)):
        with pytest.raises(SelectionError, match="is a file, but"):
            check_targets(order)


def test_disjoint_files_in_one_folder_pass_unchanged() -> None:
    first = _selection("a", "org/a", COMMIT_21, (_lfs("x"), "vae/x.safetensors"))
    second = _selection("b", "org/b", COMMIT_22, (_lfs("y"), "vae/y.safetensors"))
    kept = check_targets((first, second))
    assert kept == (first, second)
