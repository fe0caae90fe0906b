"""Manifest parsing: every rule rejected with `file:LINE` (and the key), valid defaults, presets."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.paths import MANIFESTS
from wanmodels.errors import ManifestError
from wanmodels.inputs.manifest import (
    DEFAULT_REVISION,
    Manifest,
    ModelSpec,
    load_manifest,
    parse_manifest,
)
from wanmodels.inputs.presets import open_manifest

MARK = "# <-"  # a line ending with this marker is the line the error must name


def _doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def _marked_line(text: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), start=1) if line.rstrip().endswith(MARK)]
    assert len(lines) == 1, f"test bug: expected exactly one '{MARK}' marker in:\n{text}"
    return lines[0]


def _write(tmp_path: Path, text: str, name: str = "broken-manifest.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _parse(text: str, base_dir: Path = Path("/srv/wan"), source: str = "m.yaml") -> Manifest:
    return parse_manifest(text, source=source, base_dir=base_dir, lock_path=base_dir / "m.lock")


def _assert_located(err: pytest.ExceptionInfo[ManifestError], file: str, line: int, key: str | None) -> None:
    text = str(err.value)
    where = f"{file}:{line}: "
    assert text.startswith(where), f"{text!r} does not start with {where!r}"
    if key is not None:
        assert text.startswith(f"{where}'{key}': "), f"{text!r} does not name key {key!r}"
    assert err.value.line == line
    assert err.value.key == key
    assert err.value.file == file


VALID_ENTRY = """\
version: 1
models:
  - name: vae
    repo: org/vae
"""

# (id, manifest text with the error line marked, key the message must name or None)
INVALID_MANIFESTS: list[tuple[str, str, str | None]] = [
    (
        "bad_yaml_unclosed_bracket",
        """
        version: 1
        models: [{name: a, repo: a/b}
        root: ./models  # <-
        """,
        None,
    ),
    (
        "bad_yaml_unclosed_bracket_in_entry",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            include: [config.json, "*.bin"
            expect: [config.json]  # <-
        """,
        None,
    ),
    (
        "bad_yaml_indentation",
        """
        version: 1
          models: []  # <-
        """,
        None,
    ),
    (
        "bad_yaml_indentation_in_entry",
        """
        version: 1
        models:
          - name: a
             repo: a/b  # <-
        """,
        None,
    ),
    (
        "bad_yaml_tab_indent",
        "version: 1\nmodels:\n\t- name: a  # <-\n\t  repo: a/b\n",
        None,
    ),
    (
        "unknown_top_level_key",
        """
        version: 1
        colour: red  # <-
        models:
          - name: a
            repo: a/b
        """,
        "colour",
    ),
    (
        "unknown_model_key",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            branch: dev  # <-
        """,
        "branch",
    ),
    (
        "missing_version",
        """
        models:  # <-
          - name: a
            repo: a/b
        """,
        "version",
    ),
    (
        "missing_models",
        """
        version: 1  # <-
        root: ./models
        """,
        "models",
    ),
    (
        "missing_name",
        """
        version: 1
        models:
          - name: a
            repo: a/b
          - repo: c/d  # <-
            folder: c
        """,
        "name",
    ),
    (
        "missing_repo",
        """
        version: 1
        models:
          - name: a  # <-
            folder: a
        """,
        "repo",
    ),
    (
        "version_as_string",
        """
        version: "1"  # <-
        models:
          - name: a
            repo: a/b
        """,
        "version",
    ),
    (
        "version_as_bool",
        """
        version: true  # <-
        models:
          - name: a
            repo: a/b
        """,
        "version",
    ),
    (
        "unsupported_version_2",
        """
        version: 2  # <-
        models:
          - name: a
            repo: a/b
        """,
        "version",
    ),
    (
        "models_as_mapping",
        """
        version: 1
        models: {a: {name: a, repo: a/b}}  # <-
        """,
        "models",
    ),
    (
        "models_empty_list",
        """
        version: 1
        models: []  # <-
        """,
        "models",
    ),
    (
        "model_entry_not_a_mapping",
        """
        version: 1
        models:
          - a/b  # <-
        """,
        "models",
    ),
    (
        "root_as_list",
        """
        version: 1
        root: [a, b]  # <-
        models:
          - name: a
            repo: a/b
        """,
        "root",
    ),
    (
        "include_as_string",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            include: "*.safetensors"  # <-
        """,
        "include",
    ),
    (
        "exclude_as_mapping",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            exclude: {a: b}  # <-
        """,
        "exclude",
    ),
    (
        "files_as_list",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files: [config.json]  # <-
        """,
        "files",
    ),
    (
        "name_as_int",
        """
        version: 1
        models:
          - name: 5  # <-
            repo: a/b
        """,
        "name",
    ),
    (
        "repo_as_list",
        """
        version: 1
        models:
          - name: a
            repo: [a, b]  # <-
        """,
        "repo",
    ),
    (
        "include_item_not_a_string",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            include: [3]  # <-
        """,
        "include",
    ),
    (
        "duplicate_top_level_key",
        """
        version: 1
        models:
          - name: a
            repo: a/b
        version: 1  # <-
        """,
        "version",
    ),
    (
        "duplicate_model_key",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            repo: a/c  # <-
        """,
        "repo",
    ),
    (
        "duplicate_files_key",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              x.json: one.json
              x.json: two.json  # <-
        """,
        "x.json",
    ),
    (
        "duplicate_key_int_and_string_spelling",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              1: one.json
              "1": two.json  # <-
        """,
        "1",
    ),
    (
        "duplicate_name",
        """
        version: 1
        models:
          - name: a
            repo: a/b
          - name: a  # <-
            repo: c/d
            folder: other
        """,
        "name",
    ),
    (
        "one_target_two_files_of_one_repo",
        """
        version: 1
        models:
          - name: a
            repo: org/wan
            folder: vae
            files:
              split/vae.safetensors: wan_vae.safetensors
          - name: b  # <-
            repo: org/wan
            folder: vae
            files:
              other/vae.safetensors: wan_vae.safetensors
        """,
        "files",
    ),
    (
        "folder_inside_another_entrys_file",
        """
        version: 1
        models:
          - name: a
            repo: org/a
            folder: vae
            files:
              x.safetensors: sub
          - name: b  # <-
            repo: org/b
            folder: vae/sub
        """,
        "folder",
    ),
    (
        "file_where_another_entry_has_its_folder",
        """
        version: 1
        models:
          - name: a
            repo: org/a
            folder: vae/sub
          - name: b  # <-
            repo: org/b
            folder: vae
            files:
              x.safetensors: sub
        """,
        "files",
    ),
    (
        "files_sha256_not_hex",
        """
        version: 1
        models:
          - name: a
            repo: org/a
            files:
              x.safetensors:
                path: y.safetensors
                sha256: abc123  # <-
        """,
        "files.x.safetensors.sha256",
    ),
    (
        "files_sha256_wrong_type",
        """
        version: 1
        models:
          - name: a
            repo: org/a
            files:
              x.safetensors:
                sha256: [a]  # <-
        """,
        "files.x.safetensors.sha256",
    ),
    (
        "files_mapping_unknown_key",
        """
        version: 1
        models:
          - name: a
            repo: org/a
            files:
              x.safetensors:
                to: y.safetensors  # <-
        """,
        "to",
    ),
    (
        "files_mapping_bad_path",
        """
        version: 1
        models:
          - name: a
            repo: org/a
            files:
              x.safetensors:
                path: ../y.safetensors  # <-
        """,
        "files.x.safetensors",
    ),
    (
        "absolute_folder",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            folder: /etc  # <-
        """,
        "folder",
    ),
    (
        "dotdot_folder",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            folder: models/../../escape  # <-
        """,
        "folder",
    ),
    (
        "drive_letter_folder",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            folder: "C:/models"  # <-
        """,
        "folder",
    ),
    (
        "absolute_files_source",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              /etc/passwd: passwd  # <-
        """,
        "files./etc/passwd",
    ),
    (
        "dotdot_files_source",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              ../secret.json: secret.json  # <-
        """,
        "files.../secret.json",
    ),
    (
        "absolute_files_target",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              config.json: /tmp/config.json  # <-
        """,
        "files.config.json",
    ),
    (
        "dotdot_files_target",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              config.json: ../../config.json  # <-
        """,
        "files.config.json",
    ),
    (
        "files_two_sources_one_target",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            files:
              x/config.json: config.json
              y/config.json: config.json  # <-
        """,
        "files",
    ),
    (
        "absolute_expect",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            expect: [/etc/passwd]  # <-
        """,
        "expect",
    ),
    (
        "dotdot_expect",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            expect: [../config.json]  # <-
        """,
        "expect",
    ),
    (
        "absolute_include_pattern",
        """
        version: 1
        models:
          - name: a
            repo: a/b
            include: ["/*.bin"]  # <-
        """,
        "include",
    ),
    (
        "repo_without_slash",
        """
        version: 1
        models:
          - name: a
            repo: no-slash  # <-
        """,
        "repo",
    ),
    (
        "repo_with_two_slashes",
        """
        version: 1
        models:
          - name: a
            repo: a/b/c  # <-
        """,
        "repo",
    ),
    (
        "repo_with_space",
        """
        version: 1
        models:
          - name: a
            repo: "org/my model"  # <-
        """,
        "repo",
    ),
    (
        "name_with_space_and_bang",
        """
        version: 1
        models:
          - name: "bad name!"  # <-
            repo: a/b
        """,
        "name",
    ),
    (
        "name_starting_with_dash",
        """
        version: 1
        models:
          - name: "-vae"  # <-
            repo: a/b
        """,
        "name",
    ),
    (
        "name_with_slash",
        """
        version: 1
        models:
          - name: a/b  # <-
            repo: a/b
        """,
        "name",
    ),
    (
        "name_empty",
        """
        version: 1
        models:
          - name: ""  # <-
            repo: a/b
        """,
        "name",
    ),
    (
        "merge_key",
        """
        version: 1
        base: &base {repo: a/b}
        models:
          - name: a
            <<: *base  # <-
        """,
        None,
    ),
    (
        "document_is_a_list",
        """
        - version: 1  # <-
        """,
        None,
    ),
    (
        "two_documents",
        """
        version: 1
        models:
          - name: a
            repo: a/b
        ---  # <-
        version: 1
        """,
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "key"),
    [pytest.param(text, key, id=case_id) for case_id, text, key in INVALID_MANIFESTS],
)
def test_manifest_rejects_invalid_document_naming_file_line_and_key(
    tmp_path: Path, text: str, key: str | None
) -> None:
    text = _doc(text)
    line = _marked_line(text)
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    _assert_located(err, str(path), line, key)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param("\n\n", 1, id="blank_lines"),
        pytest.param("# nothing but a comment\n", 1, id="only_comment"),
    ],
)
def test_manifest_rejects_empty_document(tmp_path: Path, text: str, line: int) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError, match="empty") as err:
        load_manifest(path)
    _assert_located(err, str(path), line, None)


def test_manifest_rejects_unclosed_bracket_at_end_of_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nmodels: [\n  {name: a, repo: a/b}\n")
    with pytest.raises(ManifestError, match="invalid YAML") as err:
        load_manifest(path)
    # PyYAML reports the stream end: the (empty) line after the last newline.
    _assert_located(err, str(path), 4, None)


def test_manifest_duplicate_key_message_names_first_occurrence(tmp_path: Path) -> None:
    text = _doc(
        """
        version: 1
        models:
          - name: a
            repo: a/b
            include: [x]
            exclude: [y]
            include: [z]
        """
    )
    with pytest.raises(ManifestError, match=r"duplicate key \(first at line 5\)") as err:
        load_manifest(_write(tmp_path, text))
    assert err.value.line == 7


def test_manifest_rejects_python_tag_without_executing_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'version: !!python/object/apply:os.system ["touch {marker}"]\nmodels: []\n'
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError, match="not allowed") as err:
        load_manifest(path)
    _assert_located(err, str(path), 1, None)
    assert not marker.exists(), "the python tag was executed"


@pytest.mark.parametrize(
    "tagged",
    [
        pytest.param('!!python/object/apply:os.system ["touch {m}"]', id="apply_in_list"),
        pytest.param("!!python/name:os.system", id="python_name"),
        pytest.param('!!python/object/new:os.system ["touch {m}"]', id="object_new"),
        pytest.param("!!binary aGk=", id="binary"),
        pytest.param("!!set {a, b}", id="set"),
        pytest.param("!custom thing", id="local_tag"),
    ],
)
def test_manifest_rejects_any_non_data_tag(tmp_path: Path, tagged: str) -> None:
    marker = tmp_path / "pwned"
    text = _doc(
        f"""
        version: 1
        models:
          - name: a
            repo: a/b
            description: {tagged.replace("{m}", str(marker))}  # <-
        """
    )
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError, match="not allowed") as err:
        load_manifest(path)
    _assert_located(err, str(path), _marked_line(text), None)
    assert not marker.exists()


def _billion_laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["version: 1", "l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"models: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def test_manifest_rejects_alias_bomb_quickly(tmp_path: Path) -> None:
    text = _billion_laughs()
    path = _write(tmp_path, text)
    started = time.monotonic()
    with pytest.raises(ManifestError, match="too deeply nested or too large") as err:
        load_manifest(path)
    assert time.monotonic() - started < 20  # 0.16 s measured; generous for a busy machine
    match = re.match(rf"{re.escape(str(path))}:(\d+): ", str(err.value))
    assert match is not None, str(err.value)
    assert 1 <= int(match.group(1)) <= len(text.splitlines())


def test_manifest_rejects_self_referencing_alias(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nmodels: &loop [*loop]\n")
    with pytest.raises(ManifestError, match="too deeply nested") as err:
        load_manifest(path)
    _assert_located(err, str(path), 2, None)


def test_manifest_rejects_deeply_nested_flow_collections(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nmodels: " + "[" * 800 + "]" * 800 + "\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert f"{path}:2" in str(err.value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("!!bool maybe", id="bool_maybe"),
        pytest.param("!!int ''", id="int_empty"),
        pytest.param("!!float ''", id="float_empty"),
    ],
)
def test_manifest_rejects_explicit_scalar_tag_with_bad_value(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f"version: {value}\nmodels: []\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    _assert_located(err, str(path), 1, None)


def test_manifest_rejects_explicit_int_tag_with_non_number(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: !!int abc\nmodels: []\n")
    with pytest.raises(ManifestError, match="bad value") as err:
        load_manifest(path)
    _assert_located(err, str(path), 1, None)


def test_manifest_rejects_root_with_unknown_user_home(tmp_path: Path) -> None:
    text = "version: 1\nroot: ~no-such-user-wanmodels/models\nmodels:\n  - name: a\n    repo: a/b\n"
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    _assert_located(err, str(path), 2, "root")


@pytest.mark.parametrize(
    ("key", "bad"),
    [pytest.param("expect", "../config.json", id="expect"), pytest.param("include", "/x.bin", id="include")],
)
def test_manifest_names_the_line_of_the_bad_list_item(tmp_path: Path, key: str, bad: str) -> None:
    text = _doc(
        f"""
        version: 1
        models:
          - name: a
            repo: a/b
            {key}:
              - config.json
              - "{bad}"  # <-
        """
    )
    path = _write(tmp_path, text)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    _assert_located(err, str(path), _marked_line(text), key)


def test_load_manifest_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ManifestError, match="manifest not found") as err:
        load_manifest(missing)
    assert str(missing) in str(err.value)


def test_load_manifest_uses_source_label_in_messages(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 3\nmodels: []\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path, source="preset 'x'")
    assert str(err.value).startswith("preset 'x':1: 'version': ")


def test_load_manifest_rejects_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\ndescription: caf\xe9\n")
    with pytest.raises(ManifestError, match="cannot read manifest") as err:
        load_manifest(path)
    assert str(path) in str(err.value)


# --- valid manifests ---------------------------------------------------------------------------------


def test_manifest_fills_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    path = _write(folder, VALID_ENTRY, name="stack.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    manifest = load_manifest(path)

    assert manifest.version == 1
    assert manifest.root == folder.resolve() / "models"
    assert manifest.lock_path == folder.resolve() / "stack.lock"
    assert manifest.source == str(path)
    assert manifest.path == path
    (spec,) = manifest.models
    assert spec == ModelSpec(name="vae", repo="org/vae", revision=DEFAULT_REVISION, folder="vae", line=3)
    assert spec.revision == "main"
    assert spec.selects_everything


def test_manifest_keeps_all_given_fields(tmp_path: Path) -> None:
    text = _doc(
        """
        version: 1
        root: /data/weights
        models:
          - name: wan
            description: the big one
            repo: Wan-AI/Wan2.1-I2V-14B-480P
            revision: 0123456789abcdef0123456789abcdef01234567
            folder: diffusion/wan
            include: ["*.safetensors", config.json]
            exclude: [tf_model.h5, flax/]
            expect: [config.json]
        """
    )
    manifest = load_manifest(_write(tmp_path, text, name="m.yaml"))
    assert manifest.root == Path("/data/weights")
    (spec,) = manifest.models
    assert spec.name == "wan"
    assert spec.description == "the big one"
    assert spec.revision == "0123456789abcdef0123456789abcdef01234567"
    assert spec.folder == "diffusion/wan"
    assert spec.include == ("*.safetensors", "config.json")
    assert spec.exclude == ("tf_model.h5", "flax/")
    assert spec.expect == ("config.json",)
    assert spec.files == ()
    assert not spec.selects_everything


def test_manifest_preserves_files_mapping_in_order(tmp_path: Path) -> None:
    text = _doc(
        """
        version: 1
        models:
          - name: vae
            repo: org/vae
            files:
              vae/diffusion_pytorch_model.safetensors: vae.safetensors
              config.json: config.json
              a/b/c.json: nested/c.json
        """
    )
    (spec,) = load_manifest(_write(tmp_path, text, name="m.yaml")).models
    assert spec.files == (
        ("vae/diffusion_pytorch_model.safetensors", "vae.safetensors"),
        ("config.json", "config.json"),
        ("a/b/c.json", "nested/c.json"),
    )
    assert not spec.selects_everything


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        pytest.param(None, "models", id="default"),
        pytest.param("./weights", "weights", id="dot_relative"),
        pytest.param("weights/sub", "weights/sub", id="relative"),
        pytest.param("../shared", "../shared", id="parent"),
    ],
)
def test_manifest_relative_root_starts_at_manifest_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str | None, expected: str
) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    root_line = f"root: {root}\n" if root is not None else ""
    path = _write(folder, f"version: 1\n{root_line}models:\n  - name: a\n    repo: a/b\n", name="m.yaml")
    assert load_manifest(path).root == (folder / expected).resolve()
    assert load_manifest(path, base_dir=tmp_path / "base").root == (tmp_path / "base" / expected).resolve()


def test_manifest_root_null_means_default(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\nroot:\nmodels:\n  - name: a\n    repo: a/b\n", name="m.yaml")
    assert load_manifest(path).root == tmp_path.resolve() / "models"


def test_manifest_accepts_sibling_folders_with_common_prefix(tmp_path: Path) -> None:
    text = _doc(
        """
        version: 1
        models:
          - name: a
            repo: a/b
            folder: vae
          - name: b
            repo: c/d
            folder: vae-ft
          - name: c
            repo: e/f
            folder: text/t5
          - name: d
            repo: g/h
            folder: text/clip
        """
    )
    manifest = load_manifest(_write(tmp_path, text, name="m.yaml"))
    assert [m.folder for m in manifest.models] == ["vae", "vae-ft", "text/t5", "text/clip"]


def test_manifest_lets_entries_share_and_nest_folders(tmp_path: Path) -> None:
    """ComfyUI's category folders hold files from many repos; only a path taken twice is decided later."""
    text = _doc(
        """
        version: 1
        models:
          - name: wan21-vae
            repo: Comfy-Org/Wan_2.1_ComfyUI_repackaged
            folder: vae
            files:
              split_files/vae/wan_2.1_vae.safetensors: wan_2.1_vae.safetensors
          - name: wan22-vae
            repo: Comfy-Org/Wan_2.2_ComfyUI_Repackaged
            folder: vae
            files:
              split_files/vae/wan_2.1_vae.safetensors: wan_2.1_vae.safetensors
          - name: same-file-again
            repo: Comfy-Org/Wan_2.1_ComfyUI_repackaged
            folder: vae
            files:
              split_files/vae/wan_2.1_vae.safetensors: wan_2.1_vae.safetensors
          - name: other-vae
            repo: org/other
            folder: vae
            include: ["*.safetensors"]
          - name: nested
            repo: org/nested
            folder: vae/extra
        """
    )
    manifest = load_manifest(_write(tmp_path, text, name="m.yaml"))
    assert [m.folder for m in manifest.models] == ["vae", "vae", "vae", "vae", "vae/extra"]


def test_manifest_files_may_declare_a_sha256(tmp_path: Path) -> None:
    digest = "AB" * 32
    text = _doc(
        f"""
        version: 1
        models:
          - name: wan
            repo: org/wan
            files:
              split/model.safetensors:
                path: model.safetensors
                sha256: {digest}
              config.json:
                sha256: sha256:{"cd" * 32}
              tokenizer.json: tok/tokenizer.json
        """
    )
    (spec,) = load_manifest(_write(tmp_path, text, name="m.yaml")).models
    assert spec.files == (
        ("split/model.safetensors", "model.safetensors"),
        ("config.json", "config.json"),
        ("tokenizer.json", "tok/tokenizer.json"),
    )
    assert spec.sha256 == (("split/model.safetensors", "ab" * 32), ("config.json", "cd" * 32))
    assert spec.declared_sha256("split/model.safetensors") == "ab" * 32
    assert spec.declared_sha256("tokenizer.json") is None


@pytest.mark.parametrize(
    "line",
    ["include: [config.json, *.ckpt]", "include:\n      - *.ckpt", "exclude: [*.bin]"],
)
def test_unquoted_glob_error_says_to_quote_it(tmp_path: Path, line: str) -> None:
    text = f"version: 1\nmodels:\n  - name: a\n    repo: org/a\n    {line}\n"
    with pytest.raises(ManifestError, match="invalid YAML") as err:
        load_manifest(_write(tmp_path, text, name="m.yaml"))
    assert "Quote patterns that start with '*'" in str(err.value)
    assert 'include: ["*.ckpt"]' in str(err.value)


def test_other_yaml_errors_get_no_glob_hint(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="invalid YAML") as err:
        load_manifest(_write(tmp_path, "version: 1\nmodels: [\n", name="m.yaml"))
    assert "Quote" not in str(err.value)


def test_manifest_records_entry_lines(tmp_path: Path) -> None:
    text = "version: 1\nmodels:\n  - name: a\n    repo: a/b\n\n  - name: b\n    repo: c/d\n"
    manifest = load_manifest(_write(tmp_path, text, name="m.yaml"))
    assert [m.line for m in manifest.models] == [3, 6]


def test_bundled_preset_loads_with_four_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = open_manifest(None)
    assert len(manifest.models) == 4
    assert [m.folder for m in manifest.models] == ["wan2.1-i2v", "clip-vit-large", "sd-vae", "t5-base"]
    assert manifest.root == tmp_path.resolve() / "models"
    # A preset's pin lives in the root it provisions, so `--root` finds it from any directory.
    assert manifest.lock_path == tmp_path.resolve() / "models" / ".wanmodels" / "locks" / "wan2.1-i2v.lock"
    assert manifest.source == "preset 'wan2.1-i2v'"
    for spec in manifest.models:
        assert spec.include, spec.name
        assert set(spec.expect) <= set(spec.include)


def test_bundled_preset_file_loads_from_its_own_folder() -> None:
    path = MANIFESTS / "wan2.1-i2v.yaml"
    manifest = load_manifest(path)
    assert [m.name for m in manifest.models] == ["wan2.1-i2v", "clip-vit-large", "sd-vae", "t5-base"]
    assert manifest.root == path.parent / "models"


def test_open_manifest_by_preset_name_and_root_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = open_manifest("wan2.1-i2v", root=tmp_path / "elsewhere")
    assert manifest.root == tmp_path / "elsewhere"
    assert len(manifest.models) == 4


def test_open_manifest_by_path(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID_ENTRY, name="mine.yaml")
    manifest = open_manifest(str(path))
    assert manifest.source == str(path)
    assert [m.name for m in manifest.models] == ["vae"]


@pytest.mark.parametrize("arg", ["no-such-preset", "missing.yaml", "sub/missing"])
def test_open_manifest_unknown_name_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arg: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError) as err:
        open_manifest(arg)
    assert arg in str(err.value)


def test_manifest_select_returns_named_entries_in_manifest_order(tmp_path: Path) -> None:
    text = "version: 1\nmodels:\n" + "".join(f"  - name: {n}\n    repo: o/{n}\n" for n in ("a", "b", "c"))
    manifest = load_manifest(_write(tmp_path, text, name="m.yaml"))
    assert [m.name for m in manifest.select(["c", "a"])] == ["a", "c"]
    assert manifest.select(()) == manifest.models
    assert manifest.select([]) == manifest.models


def test_manifest_select_unknown_name_lists_entries(tmp_path: Path) -> None:
    text = "version: 1\nmodels:\n  - name: b\n    repo: o/b\n  - name: a\n    repo: o/a\n"
    path = _write(tmp_path, text, name="m.yaml")
    manifest = load_manifest(path)
    with pytest.raises(ManifestError) as err:
        manifest.select(["a", "zz", "yy"])
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert "'zz'" in message
    assert "'yy'" in message
    assert "Entries: a, b." in message


def test_manifest_with_root_changes_only_root(tmp_path: Path) -> None:
    manifest = load_manifest(_write(tmp_path, VALID_ENTRY, name="m.yaml"))
    moved = manifest.with_root(tmp_path / "x")
    assert moved.root == tmp_path / "x"
    assert (moved.models, moved.lock_path, moved.source) == (
        manifest.models,
        manifest.lock_path,
        manifest.source,
    )


# --- property-based ----------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "version",
        "root",
        "models",
        "name",
        "repo",
        "revision",
        "folder",
        "include",
        "exclude",
        "files",
        "expect",
    ]
)
_TEXT = st.text(max_size=20)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.just(1),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.sampled_from(["a/b", "org/model", "a", "../x", "/abs", "x/", "*.json", "C:x", ""]),
)
_DOCS = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(_KEYS, _TEXT), children, max_size=5),
    ),
    max_leaves=25,
)
_SHALLOW = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.one_of(_KEYS, _TEXT), _SCALARS, max_size=3),
)


def _check_never_crashes(text: str) -> None:
    try:
        result = _parse(text)
    except ManifestError as err:
        message = str(err)
    else:
        assert isinstance(result, Manifest)
        return
    assert message.startswith("m.yaml")


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_manifest_arbitrary_text_is_manifest_or_manifest_error(text: str) -> None:
    _check_never_crashes(text)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=" \t\n-:[]{},&*!|>'\"#%@`?0123456789xyz./", max_size=60))
def test_manifest_yaml_punctuation_is_manifest_or_manifest_error(text: str) -> None:
    _check_never_crashes(text)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCS)
def test_manifest_arbitrary_yaml_document_is_manifest_or_manifest_error(doc: Any) -> None:
    _check_never_crashes(yaml.safe_dump(doc))


_PATHS = st.one_of(
    st.sampled_from(["config.json", "a/b.bin", "x/", "*.json", "../x", "/abs", "a//b", "C:x", "a", "a/b"]),
    _TEXT,
)
_PATH_LISTS = st.one_of(st.lists(_PATHS, max_size=3), st.none())
_ENTRIES = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "vae", "t5-base", "a.b_c", "x1", "y2", "bad name"]),
        "repo": st.sampled_from(["a/b", "org/model", "Wan-AI/Wan2.1", "no-slash"]),
    },
    optional={
        "revision": _SCALARS,
        "folder": _PATHS,
        "include": _PATH_LISTS,
        "exclude": _PATH_LISTS,
        "files": st.one_of(st.dictionaries(_PATHS, _PATHS, max_size=3), st.none()),
        "expect": _PATH_LISTS,
        "description": _SCALARS,
    },
)
_MANIFESTS = st.fixed_dictionaries(
    {"version": st.just(1), "models": st.lists(_ENTRIES, min_size=1, max_size=4)},
    optional={"root": st.one_of(_PATHS, st.none())},
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MANIFESTS)
def test_manifest_shaped_document_is_manifest_or_manifest_error(doc: dict[str, Any]) -> None:
    _check_never_crashes(yaml.safe_dump(doc))
