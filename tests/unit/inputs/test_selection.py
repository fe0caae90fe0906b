"""Selection: which repo files an entry selects, and where they land (what to do with each:
tests/unit/planning/test_plan.py)."""

from __future__ import annotations

import pytest

from tests.support.specs import model_spec, remote_file
from wanmodels.errors import HubError, SelectionError
from wanmodels.inputs.selection import Selection, matches, select
from wanmodels.repos import RemoteFile

COMMIT = "a" * 40




def _repo(*paths: str) -> tuple[RemoteFile, ...]:
    return tuple(remote_file(p, size=100 + i) for i, p in enumerate(paths))



def _locals(selection: Selection) -> list[str]:
    return [f.local_path for f in selection.files]


T5_REPO = _repo(
    ".gitattributes",
    "README.md",
    "config.json",
    "flax_model.msgpack",
    "pytorch_model.bin",
    "special_tokens_map.json",
    "spiece.model",
    "tf_model.h5",
    "tokenizer_config.json",
)

DIFFUSERS_REPO = _repo(
    "model_index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.bin",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "text_encoder/deep/er/model.safetensors",
)


# --- matches -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "patterns", "expected"),
    [
        pytest.param("config.json", ["config.json"], True, id="exact"),
        pytest.param("config.json", ["*.json"], True, id="star_suffix"),
        pytest.param("vae/config.json", ["*.json"], True, id="star_crosses_slash"),
        pytest.param("a/b/c/d.bin", ["a/*.bin"], True, id="star_crosses_many_slashes"),
        pytest.param("vae/config.json", ["config.json"], False, id="no_implicit_basename_match"),
        pytest.param("vae/x.bin", ["vae/"], True, id="dir_slash_means_dir_star"),
        pytest.param("vae/deep/x.bin", ["vae/"], True, id="dir_slash_is_recursive"),
        pytest.param("vae", ["vae/"], False, id="dir_slash_needs_something_inside"),
        pytest.param("vae-ft/x.bin", ["vae/"], False, id="dir_slash_is_not_a_prefix_match"),
        pytest.param("vae/x.bin", ["vae"], False, id="bare_dir_does_not_match_children"),
        pytest.param("model.bin", ["model.?in"], True, id="question_mark"),
        pytest.param("model-1.bin", ["model-[0-9].bin"], True, id="char_class"),
        pytest.param("model-a.bin", ["model-[0-9].bin"], False, id="char_class_miss"),
        pytest.param("Config.JSON", ["*.json"], False, id="case_sensitive"),
        pytest.param("config.json", [], False, id="no_patterns"),
        pytest.param("tf_model.h5", ["*.bin", "*.h5"], True, id="any_of_several"),
        pytest.param("tf_model.h5", ["*.bin", "*.json"], False, id="none_of_several"),
        pytest.param(
            "diffusion_pytorch_model-00001-of-00003.safetensors",
            ["diffusion_pytorch_model-*-of-*.safetensors"],
            True,
            id="shard_pattern",
        ),
    ],
)
def test_matches_uses_fnmatch_semantics(path: str, patterns: list[str], expected: bool) -> None:
    assert matches(path, patterns) is expected


def test_matches_accepts_any_iterable() -> None:
    assert matches("a.json", iter(["*.bin", "*.json"]))
    assert matches("a.json", ("*.json",))


# --- select ------------------------------------------------------------------------------------------


def test_select_everything_when_no_include_or_files() -> None:
    sel = select(model_spec(), COMMIT, T5_REPO)
    assert sel.commit == COMMIT
    assert sel.spec.name == "t5"
    assert _locals(sel) == sorted(f"t5/{f.path}" for f in T5_REPO)
    assert {f.remote for f in sel.files} == set(T5_REPO)


def test_select_everything_minus_exclude() -> None:
    sel = select(model_spec(exclude=("*.h5", "*.msgpack", ".git*")), COMMIT, T5_REPO)
    assert _locals(sel) == [
        "t5/README.md",
        "t5/config.json",
        "t5/pytorch_model.bin",
        "t5/special_tokens_map.json",
        "t5/spiece.model",
        "t5/tokenizer_config.json",
    ]


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        pytest.param(
            ("*.json",), (), ["config.json", "special_tokens_map.json", "tokenizer_config.json"], id="glob"
        ),
        pytest.param(
            ("*.json", "*.bin"),
            ("special_*",),
            ["config.json", "pytorch_model.bin", "tokenizer_config.json"],
            id="include_minus_exclude",
        ),
        pytest.param(("config.json",), (), ["config.json"], id="exact_name"),
        pytest.param(
            ("config.json", "*.json"),
            (),
            ["config.json", "special_tokens_map.json", "tokenizer_config.json"],
            id="overlapping_patterns_no_duplicates",
        ),
    ],
)
def test_select_include_and_exclude(
    include: tuple[str, ...], exclude: tuple[str, ...], expected: list[str]
) -> None:
    sel = select(model_spec(include=include, exclude=exclude), COMMIT, T5_REPO)
    assert _locals(sel) == [f"t5/{p}" for p in expected]


def test_select_include_directory_pattern_recurses() -> None:
    sel = select(model_spec(name="sd", include=("vae/",), exclude=("*.bin",)), COMMIT, DIFFUSERS_REPO)
    assert _locals(sel) == ["sd/vae/config.json", "sd/vae/diffusion_pytorch_model.safetensors"]


def test_select_include_star_crosses_directories() -> None:
    sel = select(model_spec(name="sd", include=("*.safetensors",)), COMMIT, DIFFUSERS_REPO)
    assert _locals(sel) == [
        "sd/text_encoder/deep/er/model.safetensors",
        "sd/unet/diffusion_pytorch_model.safetensors",
        "sd/vae/diffusion_pytorch_model.safetensors",
    ]


def test_select_files_mapping_only_selects_named_files_renamed() -> None:
    spec = model_spec(
        name="sd",
        folder="vae",
        files=(
            ("vae/diffusion_pytorch_model.safetensors", "model.safetensors"),
            ("vae/config.json", "config.json"),
        ),
    )
    sel = select(spec, COMMIT, DIFFUSERS_REPO)
    assert [(f.remote.path, f.local_path) for f in sel.files] == [
        ("vae/config.json", "vae/config.json"),
        ("vae/diffusion_pytorch_model.safetensors", "vae/model.safetensors"),
    ]


def test_select_files_and_include_are_combined() -> None:
    spec = model_spec(
        name="sd",
        folder="out",
        files=(("vae/diffusion_pytorch_model.safetensors", "vae.safetensors"),),
        include=("unet/*.json", "model_index.json"),
    )
    sel = select(spec, COMMIT, DIFFUSERS_REPO)
    assert [(f.remote.path, f.local_path) for f in sel.files] == [
        ("model_index.json", "out/model_index.json"),
        ("unet/config.json", "out/unet/config.json"),
        ("vae/diffusion_pytorch_model.safetensors", "out/vae.safetensors"),
    ]


def test_select_files_entry_is_kept_when_include_also_matches_it() -> None:
    spec = model_spec(name="t5", files=(("config.json", "cfg/config.json"),), include=("*.json",))
    sel = select(spec, COMMIT, T5_REPO)
    by_remote = {f.remote.path: f.local_path for f in sel.files}
    assert by_remote["config.json"] == "t5/cfg/config.json"
    assert len(sel.files) == 3


def test_select_exclude_does_not_drop_explicit_files_entry() -> None:
    spec = model_spec(files=(("tf_model.h5", "tf_model.h5"),), exclude=("*.h5",))
    assert _locals(select(spec, COMMIT, T5_REPO)) == ["t5/tf_model.h5"]


def test_select_local_paths_are_folder_slash_target() -> None:
    spec = model_spec(
        name="t5", folder="text/t5", include=("spiece.model",), files=(("config.json", "c.json"),)
    )
    sel = select(spec, COMMIT, T5_REPO)
    assert _locals(sel) == ["text/t5/c.json", "text/t5/spiece.model"]


def test_select_keeps_remote_size_and_digest() -> None:
    sel = select(model_spec(include=("pytorch_model.bin",)), COMMIT, T5_REPO)
    (item,) = sel.files
    original = next(f for f in T5_REPO if f.path == "pytorch_model.bin")
    assert item.remote == original


def test_select_files_naming_missing_path_suggests_nearest() -> None:
    spec = model_spec(files=(("pytorch_model.safetensors", "model.safetensors"),))
    with pytest.raises(SelectionError) as err:
        select(spec, COMMIT, T5_REPO)
    message = str(err.value)
    assert "entry 't5' (line 7)" in message
    assert "'pytorch_model.safetensors'" in message
    assert "org/t5" in message
    assert "Nearest repo files:" in message
    assert "pytorch_model.bin" in (err.value.hint or "")


def test_select_files_missing_with_nothing_close_lists_repo_files() -> None:
    spec = model_spec(files=(("zzzzzzzzzzzzzzzzzzzz", "z"),))
    with pytest.raises(SelectionError) as err:
        select(spec, COMMIT, _repo("a.json", "b.json"))
    assert err.value.hint == "Repo files: a.json, b.json."


def test_select_include_pattern_matching_nothing_is_an_error() -> None:
    spec = model_spec(include=("config.json", "*.safetensors"))
    with pytest.raises(SelectionError) as err:
        select(spec, COMMIT, T5_REPO)
    assert "entry 't5'" in str(err.value)
    assert "'include' pattern '*.safetensors' matches nothing" in str(err.value)


def test_select_t5_like_repo_without_safetensors_is_an_error() -> None:
    with pytest.raises(SelectionError, match="matches nothing"):
        select(model_spec(include=("*.safetensors",)), COMMIT, T5_REPO)


def test_select_everything_excluded_is_an_error() -> None:
    spec = model_spec(include=("*.bin",), exclude=("pytorch_*",))
    with pytest.raises(SelectionError) as err:
        select(spec, COMMIT, T5_REPO)
    assert "the selection matches no file of 'org/t5'" in str(err.value)
    assert "entry 't5' (line 7)" in str(err.value)


def test_select_empty_repo_is_an_error() -> None:
    with pytest.raises(SelectionError, match="matches no file") as err:
        select(model_spec(), COMMIT, ())
    assert err.value.hint == "Repo files: none."


def test_select_error_hint_samples_at_most_eight_files() -> None:
    repo = _repo(*(f"f{i:02d}.txt" for i in range(12)))
    with pytest.raises(SelectionError) as err:
        select(model_spec(exclude=("*",)), COMMIT, repo)
    assert err.value.hint is not None
    assert err.value.hint.endswith("f07.txt (+4 more).")


def test_select_expect_not_provided_is_an_error() -> None:
    spec = model_spec(include=("*.json",), expect=("config.json", "pytorch_model.bin"))
    with pytest.raises(SelectionError) as err:
        select(spec, COMMIT, T5_REPO)
    assert "'expect' names 'pytorch_model.bin'" in str(err.value)
    assert "entry 't5' (line 7)" in str(err.value)


def test_select_expect_is_checked_against_local_target_names() -> None:
    spec = model_spec(files=(("pytorch_model.bin", "weights.bin"),), expect=("weights.bin",))
    assert _locals(select(spec, COMMIT, T5_REPO)) == ["t5/weights.bin"]
    renamed_away = model_spec(files=(("pytorch_model.bin", "weights.bin"),), expect=("pytorch_model.bin",))
    with pytest.raises(SelectionError, match="'expect'"):
        select(renamed_away, COMMIT, T5_REPO)


def test_select_expect_in_subfolder() -> None:
    spec = model_spec(name="sd", include=("vae/",), expect=("vae/config.json",))
    assert "sd/vae/config.json" in _locals(select(spec, COMMIT, DIFFUSERS_REPO))


@pytest.mark.parametrize(
    "bad_path",
    [
        pytest.param("../escape.bin", id="dotdot"),
        pytest.param("a/../../escape.bin", id="inner_dotdot"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("a\\..\\b.bin", id="backslash"),
        pytest.param("a//b.bin", id="empty_component"),
    ],
)
def test_select_unsafe_server_path_that_gets_selected_is_a_hub_error(bad_path: str) -> None:
    repo = (*T5_REPO, remote_file(bad_path))
    with pytest.raises(HubError) as err:
        select(model_spec(), COMMIT, repo)
    assert repr(bad_path) in str(err.value)
    assert err.value.repo_id == "org/t5"
    assert err.value.revision == COMMIT


def test_select_unsafe_server_path_matched_by_include_is_a_hub_error() -> None:
    repo = (*T5_REPO, remote_file("../evil.json"))
    with pytest.raises(HubError):
        select(model_spec(include=("*.json",)), COMMIT, repo)


@pytest.mark.parametrize(
    ("include", "exclude"),
    [
        pytest.param(("*.json",), (), id="not_included"),
        pytest.param((), ("../*",), id="excluded"),
    ],
)
def test_select_unsafe_server_path_not_selected_is_ignored(
    include: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    repo = (*T5_REPO, remote_file("../evil.bin"))
    sel = select(model_spec(include=include, exclude=exclude), COMMIT, repo)
    assert all(".." not in f.local_path for f in sel.files)


def test_select_never_maps_two_remote_files_to_one_local_path() -> None:
    spec = model_spec(files=(("tf_model.h5", "pytorch_model.bin"),), include=("pytorch_model.bin",))
    try:
        sel = select(spec, COMMIT, T5_REPO)
    except SelectionError:
        return
    local = _locals(sel)
    assert len(local) == len(set(local)), local
