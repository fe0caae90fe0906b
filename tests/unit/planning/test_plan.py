"""Planning: what to do with each selected file given what is on disk (`decide`), and the plan
it adds up to (`make_plan`: order, bytes present and to fetch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.specs import model_spec, path_digest, remote_file
from wanmodels.inputs.selection import SelectedFile, Selection
from wanmodels.planning.plan import Action, Check, LocalState, Plan, PlannedFile, decide, make_plan


@pytest.mark.parametrize(
    ("local", "size", "expected"),
    [
        pytest.param(LocalState(), 100, (Action.DOWNLOAD, 0), id="nothing_on_disk"),
        pytest.param(LocalState(Check.OK), 100, (Action.KEEP, 100), id="complete"),
        pytest.param(LocalState(Check.WRONG_HASH, ours=True), 100, (Action.REPLACE, 0), id="ours_damaged"),
        pytest.param(LocalState(Check.WRONG_HASH), 100, (Action.CONFLICT, 0), id="users_file"),
        pytest.param(LocalState(Check.WRONG_SIZE, 40), 100, (Action.CONFLICT, 0), id="users_truncated_file"),
        pytest.param(LocalState(Check.NOT_FILE), 100, (Action.CONFLICT, 0), id="users_folder"),
        pytest.param(
            LocalState(Check.WRONG_SIZE, 40, part_bytes=40), 100, (Action.CONFLICT, 0), id="users_file_wins"
        ),
        pytest.param(LocalState(part_bytes=40), 100, (Action.RESUME, 40), id="partial"),
        pytest.param(LocalState(part_bytes=100), 100, (Action.RESUME, 100), id="partial_whole_length"),
        pytest.param(LocalState(part_bytes=101), 100, (Action.DOWNLOAD, 0), id="partial_too_long"),
        pytest.param(
            LocalState(Check.WRONG_HASH, part_bytes=101, ours=True),
            100,
            (Action.REPLACE, 0),
            id="too_long_and_wrong",
        ),
        pytest.param(
            LocalState(Check.WRONG_SIZE, part_bytes=40, ours=True),
            100,
            (Action.RESUME, 40),
            id="wrong_but_partial",
        ),
        pytest.param(LocalState(Check.OK, part_bytes=40), 100, (Action.KEEP, 100), id="complete_wins"),
        pytest.param(LocalState(), 0, (Action.DOWNLOAD, 0), id="empty_file_missing"),
        pytest.param(LocalState(Check.OK), 0, (Action.KEEP, 0), id="empty_file_complete"),
    ],
)
def test_decide_picks_action_from_local_state(
    local: LocalState, size: int, expected: tuple[Action, int]
) -> None:
    assert decide(local, size) == expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        pytest.param(LocalState(Check.WRONG_HASH), (Action.REPLACE, 0), id="users_file"),
        pytest.param(LocalState(Check.WRONG_SIZE, 40, part_bytes=40), (Action.RESUME, 40), id="with_part"),
        pytest.param(LocalState(Check.OK), (Action.KEEP, 100), id="the_right_bytes_are_kept"),
    ],
)
def test_replace_foreign_moves_the_users_file_aside_instead(
    local: LocalState, expected: tuple[Action, int]
) -> None:
    assert decide(local, 100, replace_foreign=True) == expected


def _selection(name: str, sizes: dict[str, int]) -> Selection:
    spec = model_spec(name=name)
    files = tuple(SelectedFile(remote_file(p, size), f"{name}/{p}") for p, size in sizes.items())
    return Selection(spec=spec, commit=name[0] * 40, files=files)


def _plan(states: dict[str, LocalState]) -> Plan:
    sels = [
        _selection("vae", {"config.json": 500, "model.safetensors": 3000}),
        _selection("t5", {"config.json": 700, "pytorch_model.bin": 9000, "spiece.model": 800}),
    ]
    return make_plan(Path("/models"), sels, lambda item: states.get(item.local_path, LocalState()))


def test_make_plan_keeps_manifest_order_and_carries_fields() -> None:
    plan = _plan({})
    assert plan.root == Path("/models")
    assert [m.spec.name for m in plan.models] == ["vae", "t5"]
    assert [f.local_path for f in plan.files] == [
        "vae/config.json",
        "vae/model.safetensors",
        "t5/config.json",
        "t5/pytorch_model.bin",
        "t5/spiece.model",
    ]
    first = plan.files[0]
    assert (first.entry, first.repo_id, first.commit, first.repo_path) == (
        "vae",
        "org/vae",
        "v" * 40,
        "config.json",
    )
    assert first.size == 500
    assert first.digest == path_digest("config.json")
    assert all(f.action is Action.DOWNLOAD for f in plan.files)
    assert plan.to_fetch == 500 + 3000 + 700 + 9000 + 800
    assert plan.present == 0


def test_make_plan_probes_every_file_once() -> None:
    seen: list[str] = []

    def probe(item: SelectedFile) -> LocalState:
        seen.append(item.local_path)
        return LocalState()

    make_plan(Path("/m"), [_selection("a", {"x": 1, "y": 2}), _selection("b", {"z": 3})], probe)
    assert seen == ["a/x", "a/y", "b/z"]


def test_make_plan_accounts_present_and_to_fetch() -> None:
    plan = _plan(
        {
            "vae/model.safetensors": LocalState(Check.OK),
            "t5/pytorch_model.bin": LocalState(part_bytes=4000),
            "t5/spiece.model": LocalState(Check.WRONG_HASH, ours=True),
        }
    )
    actions = {f.local_path: (f.action, f.present, f.to_fetch) for f in plan.files}
    assert actions == {
        "vae/config.json": (Action.DOWNLOAD, 0, 500),
        "vae/model.safetensors": (Action.KEEP, 3000, 0),
        "t5/config.json": (Action.DOWNLOAD, 0, 700),
        "t5/pytorch_model.bin": (Action.RESUME, 4000, 5000),
        "t5/spiece.model": (Action.REPLACE, 0, 800),
    }
    vae, t5 = plan.models
    assert (vae.size, vae.present, vae.to_fetch) == (3500, 3000, 500)
    assert (t5.size, t5.present, t5.to_fetch) == (10500, 4000, 6500)
    assert plan.present == 7000
    assert plan.to_fetch == 7000


def test_fetch_order_is_largest_remaining_first_without_kept_files() -> None:
    plan = _plan(
        {
            "vae/model.safetensors": LocalState(Check.OK),
            "t5/pytorch_model.bin": LocalState(part_bytes=8500),  # 500 left
        }
    )
    order = [(f.local_path, f.to_fetch) for f in plan.fetch_order()]
    assert order == [
        ("t5/spiece.model", 800),
        ("t5/config.json", 700),
        ("t5/pytorch_model.bin", 500),
        ("vae/config.json", 500),
    ]


def test_fetch_order_all_kept_is_empty() -> None:
    done = LocalState(Check.OK)
    plan = make_plan(Path("/m"), [_selection("a", {"x": 5, "y": 6})], lambda _: done)
    assert plan.fetch_order() == ()
    assert plan.to_fetch == 0


def test_make_plan_with_no_selections_is_empty() -> None:
    plan = make_plan(Path("/m"), [], lambda _: LocalState())
    assert plan.models == ()
    assert plan.files == ()
    assert plan.fetch_order() == ()


def test_the_space_check_does_not_count_a_parts_reserved_blocks_twice() -> None:
    def resumed(present: int, reserved: int) -> PlannedFile:
        return PlannedFile(
            "e", "o/r", "c" * 40, "x.bin", "e/x.bin", 100, path_digest("x.bin"), Action.RESUME, present,
            reserved=reserved,
        )

    assert resumed(30, 100).to_fetch == 70 and resumed(30, 100).to_allocate == 0  # reserved up front
    assert resumed(30, 30).to_allocate == 70  # a sparse part: its missing bytes need space
    assert resumed(30, 60).to_allocate == 40  # partly reserved (a fallocate cut short by ENOSPC)
    assert resumed(30, 0).to_allocate == 70  # a filesystem that reports no blocks (compressed)
