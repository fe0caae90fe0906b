"""The lockfile: deterministic bytes, round trips, malformed files named, drift against the manifest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from wanmodels.digests import Digest
from wanmodels.errors import LockError
from wanmodels.inputs.lockfile import (
    LockedFile,
    LockedModel,
    Lockfile,
    read_lock,
    selection_fingerprint,
    write_lock,
)
from wanmodels.inputs.manifest import Manifest, ModelSpec
from wanmodels.inputs.selection import SelectedFile, Selection
from wanmodels.repos import RemoteFile


def _digest(path: str, algorithm: str = "sha256") -> Digest:
    if algorithm == "gitsha1":
        return Digest("gitsha1", hashlib.sha1(path.encode()).hexdigest())
    return Digest("sha256", hashlib.sha256(path.encode()).hexdigest())


def _spec(name: str, **changes: Any) -> ModelSpec:
    base = ModelSpec(
        name=name,
        repo=f"org/{name}",
        folder=name,
        include=("*.json", "*.safetensors"),
        exclude=("*.bin",),
        expect=("config.json",),
        line=3,
    )
    return dataclasses.replace(base, **changes)


def _selection(spec: ModelSpec, paths: list[str]) -> Selection:
    files = tuple(
        SelectedFile(
            RemoteFile(p, 100 + i, _digest(p, "gitsha1" if p.endswith(".json") else "sha256")),
            f"{spec.folder}/{p}",
        )
        for i, p in enumerate(paths)
    )
    return Selection(spec=spec, commit=spec.name[0] * 40, files=files)


SPECS = (_spec("vae"), _spec("clip"), _spec("t5"))
SELECTIONS = [
    _selection(SPECS[0], ["model.safetensors", "config.json"]),
    _selection(SPECS[1], ["z.json", "a/config.json", "m.safetensors"]),
    _selection(SPECS[2], ["config.json"]),
]


def _manifest(*specs: ModelSpec) -> Manifest:
    return Manifest(source="m.yaml", root=Path("/models"), lock_path=Path("/m.lock"), models=specs)


def _lock() -> Lockfile:
    return Lockfile.from_selections(SELECTIONS)


# --- serialisation -----------------------------------------------------------------------------------


def test_lock_to_json_is_deterministic() -> None:
    first = _lock().to_json()
    again = Lockfile.from_selections(list(reversed(SELECTIONS))).to_json()
    assert first == again
    assert first.encode() == _lock().to_json().encode()


def test_lock_to_json_sorts_models_and_files_and_ends_with_one_newline() -> None:
    text = _lock().to_json()
    assert text.endswith("}\n")
    assert not text.endswith("\n\n")
    data = json.loads(text)
    assert list(data) == ["version", "models"]
    assert data["version"] == 1
    assert [m["name"] for m in data["models"]] == ["clip", "t5", "vae"]
    clip = data["models"][0]
    assert list(clip) == ["name", "repo", "revision", "commit", "selection", "files"]
    assert [f["local"] for f in clip["files"]] == ["clip/a/config.json", "clip/m.safetensors", "clip/z.json"]
    assert list(clip["files"][0]) == ["path", "local", "size", "digest"]
    assert clip["files"][0]["digest"].startswith("gitsha1:")
    assert clip["commit"] == "c" * 40
    assert clip["revision"] == "main"
    assert clip["selection"] == selection_fingerprint(SPECS[1])


def test_lock_to_json_is_two_space_indented_and_keeps_unicode() -> None:
    spec = _spec("uni", folder="ü")
    text = Lockfile.from_selections([_selection(spec, ["naïve.json"])]).to_json()
    assert '\n  "models": [\n' in text
    assert "ü/naïve.json" in text


def test_write_then_read_lock_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    lock = _lock()
    write_lock(path, lock)
    assert path.read_text(encoding="utf-8") == lock.to_json()
    assert read_lock(path) == lock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.lock"]


def test_write_lock_twice_gives_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.lock", tmp_path / "b.lock"
    write_lock(a, _lock())
    write_lock(b, Lockfile.from_selections(list(reversed(SELECTIONS))))
    assert a.read_bytes() == b.read_bytes()


def test_read_lock_missing_file_is_none(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "absent.lock") is None


def test_locked_model_to_selection_restores_files() -> None:
    lock = _lock()
    locked = lock.get("vae")
    assert locked is not None
    sel = locked.to_selection(SPECS[0])
    assert sel.spec == SPECS[0]
    assert sel.commit == "v" * 40
    assert sorted(sel.files, key=lambda f: f.local_path) == sorted(
        SELECTIONS[0].files, key=lambda f: f.local_path
    )
    assert lock.get("nope") is None


def test_lock_merged_replaces_same_names_and_keeps_others() -> None:
    old = _lock()
    newer = Lockfile.from_selections(
        [_selection(SPECS[0], ["only.json"]), _selection(_spec("aaa"), ["x.json"])]
    )
    merged = old.merged(newer)
    assert [m.name for m in merged.models] == ["aaa", "clip", "t5", "vae"]
    vae = merged.get("vae")
    assert vae is not None
    assert [f.path for f in vae.files] == ["only.json"]
    assert merged.get("clip") == old.get("clip")


# --- malformed lockfiles -----------------------------------------------------------------------------


def _valid_raw() -> dict[str, Any]:
    return json.loads(_lock().to_json())


def _mutate(change: Any) -> str:
    raw = _valid_raw()
    change(raw)
    return json.dumps(raw)


def _set_file(key: str, value: Any) -> Any:
    def change(raw: dict[str, Any]) -> None:
        raw["models"][0]["files"][0][key] = value

    return change


def _del_model_key(key: str) -> Any:
    def change(raw: dict[str, Any]) -> None:
        del raw["models"][0][key]

    return change


MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("not_json", "{this is not json", "not a valid lockfile"),
    ("empty", "", "not a valid lockfile"),
    ("json_list", "[]", "unsupported version"),
    ("json_string", '"lock"', "unsupported version"),
    ("version_2", _mutate(lambda r: r.update(version=2)), "unsupported version 2"),
    ("version_string", _mutate(lambda r: r.update(version="1")), "unsupported version"),
    ("version_missing", _mutate(lambda r: r.pop("version")), "unsupported version None"),
    ("models_missing", _mutate(lambda r: r.pop("models")), "'models'"),
    ("models_not_a_list", _mutate(lambda r: r.update(models=5)), "not a valid lockfile"),
    ("model_not_an_object", _mutate(lambda r: r.update(models=["vae"])), "not a valid lockfile"),
    ("model_name_missing", _mutate(_del_model_key("name")), "'name'"),
    ("model_commit_missing", _mutate(_del_model_key("commit")), "'commit'"),
    ("model_files_missing", _mutate(_del_model_key("files")), "'files'"),
    ("model_selection_missing", _mutate(_del_model_key("selection")), "'selection'"),
    ("file_digest_missing", _mutate(lambda r: r["models"][0]["files"][0].pop("digest")), "'digest'"),
    ("file_size_missing", _mutate(lambda r: r["models"][0]["files"][0].pop("size")), "'size'"),
    ("bad_digest_algorithm", _mutate(_set_file("digest", "md5:" + "0" * 32)), "not a digest"),
    ("bad_digest_length", _mutate(_set_file("digest", "sha256:abc")), "not a digest"),
    ("bad_digest_not_hex", _mutate(_set_file("digest", "sha256:" + "x" * 64)), "not a valid lockfile"),
    ("dotdot_local_path", _mutate(_set_file("local", "../outside/config.json")), "contains '..'"),
    ("absolute_local_path", _mutate(_set_file("local", "/etc/passwd")), "is absolute"),
    ("dotdot_repo_path", _mutate(_set_file("path", "a/../../b")), "contains '..'"),
    ("size_negative", _mutate(_set_file("size", -1)), "bad size"),
    ("size_string", _mutate(_set_file("size", "100")), "bad size"),
    ("size_bool", _mutate(_set_file("size", True)), "bad size"),
    ("short_commit", _mutate(lambda r: r["models"][0].update(commit="abc123")), "bad commit 'abc123'"),
    ("long_commit", _mutate(lambda r: r["models"][0].update(commit="a" * 41)), "bad commit"),
    ("not_utf8", b'{"version": 1, "models": [], "x": "\xff"}', "cannot read lockfile"),
]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [pytest.param(content, fragment, id=case_id) for case_id, content, fragment in MALFORMED],
)
def test_read_lock_rejects_malformed_lockfile_naming_path(
    tmp_path: Path, content: str | bytes, fragment: str
) -> None:
    path = tmp_path / "stack.lock"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(LockError) as err:
        read_lock(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert fragment in message


def test_read_lock_error_hints_at_relocking(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    path.write_text("nope")
    with pytest.raises(LockError) as err:
        read_lock(path)
    assert err.value.hint is not None
    assert "wanmodels lock" in err.value.hint


def test_read_lock_of_a_directory_is_a_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    path.mkdir()
    with pytest.raises(LockError, match="cannot read lockfile") as err:
        read_lock(path)
    assert str(path) in str(err.value)


def test_read_lock_accepts_empty_model_list(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    path.write_text('{"version": 1, "models": []}\n')
    assert read_lock(path) == Lockfile(models=())


# --- drift / matches ---------------------------------------------------------------------------------


def test_drift_is_empty_when_lock_matches_manifest() -> None:
    assert _lock().drift(_manifest(*SPECS)) == []


def test_drift_reports_edited_entry() -> None:
    edited = _spec("clip", include=("*.json",))
    problems = _lock().drift(_manifest(SPECS[0], edited, SPECS[2]))
    assert problems == ["entry 'clip' changed in the manifest since it was locked"]


def test_drift_reports_entry_missing_from_lock() -> None:
    lock = Lockfile.from_selections(SELECTIONS[:2])
    problems = lock.drift(_manifest(*SPECS))
    assert problems == ["entry 't5' is not in the lockfile"]


def test_drift_reports_lock_entry_no_longer_in_manifest() -> None:
    problems = _lock().drift(_manifest(SPECS[0], SPECS[1]))
    assert problems == ["lockfile entry 't5' is no longer in the manifest"]


def test_drift_reports_every_problem_in_order() -> None:
    lock = Lockfile.from_selections(SELECTIONS[:2])
    manifest = _manifest(_spec("vae", revision="v2"), SPECS[1], _spec("new"))
    assert lock.drift(manifest) == [
        "entry 'vae' changed in the manifest since it was locked",
        "entry 'new' is not in the lockfile",
    ]


def test_drift_for_chosen_specs_ignores_other_entries() -> None:
    lock = Lockfile.from_selections(SELECTIONS[:1])
    manifest = _manifest(*SPECS)
    assert lock.drift(manifest, specs=(SPECS[0],)) == []
    assert lock.drift(manifest, specs=(SPECS[2],)) == ["entry 't5' is not in the lockfile"]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"repo": "other/vae"}, id="repo"),
        pytest.param({"revision": "v1.0"}, id="revision"),
        pytest.param({"folder": "vae2"}, id="folder"),
        pytest.param({"include": ("*.json",)}, id="include"),
        pytest.param({"include": ("*.safetensors", "*.json")}, id="include_order"),
        pytest.param({"exclude": ()}, id="exclude"),
        pytest.param({"files": (("a.json", "b.json"),)}, id="files"),
        pytest.param({"name": "vae2"}, id="name"),
    ],
)
def test_locked_model_does_not_match_changed_selection(changes: dict[str, Any]) -> None:
    locked = _lock().get("vae")
    assert locked is not None
    assert locked.matches(SPECS[0])
    assert not locked.matches(dataclasses.replace(SPECS[0], **changes))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"description": "new words"}, id="description"),
        pytest.param({"expect": ()}, id="expect"),
        pytest.param({"line": 99}, id="line"),
    ],
)
def test_locked_model_still_matches_after_cosmetic_changes(changes: dict[str, Any]) -> None:
    locked = _lock().get("vae")
    assert locked is not None
    assert locked.matches(dataclasses.replace(SPECS[0], **changes))


def test_selection_fingerprint_is_short_and_stable() -> None:
    fp = selection_fingerprint(SPECS[0])
    assert len(fp) == 16
    int(fp, 16)
    assert fp == selection_fingerprint(_spec("vae"))


def test_locked_model_built_by_hand_matches_by_fingerprint() -> None:
    spec = _spec("x")
    locked = LockedModel(
        name="x",
        repo="org/x",
        revision="main",
        commit="0" * 40,
        selection=selection_fingerprint(spec),
        files=(LockedFile("a.json", "x/a.json", 1, _digest("a.json")),),
    )
    assert locked.matches(spec)
    assert not dataclasses.replace(locked, selection="0" * 16).matches(spec)


@pytest.mark.parametrize("version", [True, 1.0])
def test_read_lock_rejects_non_int_version(tmp_path: Path, version: Any) -> None:
    path = tmp_path / "m.lock"
    path.write_text(json.dumps({"version": version, "models": []}))
    with pytest.raises(LockError, match="unsupported version"):
        read_lock(path)


def test_read_lock_rejects_deeply_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(LockError) as err:
        read_lock(path)
    assert str(path) in str(err.value)
