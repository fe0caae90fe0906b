"""`tests.support.clirun` stands in for `python -m wanmodels`: the exit code, stdout and stderr of a child.

Most CLI tests run in this process (a tenth of the cost), so this checks the claim on the kinds of call
they make: a usage error, a bad manifest, a plan, a download, a `--json` document, an error document.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cli import cli_env, write_manifest
from tests.support.clirun import needs_process, run_in_child, run_in_process
from tests.support.hubserver import HubServer

_SECONDS = re.compile(r"\d+(\.\d+)? ?(s|ms)\b")
_RATE = re.compile(r"\d+(\.\d+)? ?[KMG]?i?B/s")
_JSON_SECONDS = re.compile(r'"seconds": [\d.]+')


def _same_shape(text: str, root: Path) -> str:
    """Only what may differ between two runs: the folder and the time figures."""
    text = _JSON_SECONDS.sub('"seconds": <time>', text.replace(str(root), "<root>"))
    return _RATE.sub("<rate>", _SECONDS.sub("<time>", text))


@pytest.mark.parametrize(
    "args",
    [
        ("download", "--no-such-flag"),
        ("download", "--json", "--workers", "x"),
        ("download", "-m", "no-such-preset"),
        ("download", "-m", "bad.yaml"),
        ("download", "--dry-run"),
        ("download", "--dry-run", "--json"),
        ("download",),
        ("download", "--json", "-m", "gone.yaml"),
        ("status", "--json"),
        ("verify",),
        ("lock", "--check"),
        ("--version",),
        ("download", "--help"),
    ],
)
def test_in_process_matches_a_child(hub: HubServer, tmp_path: Path, args: tuple[str, ...]) -> None:
    runs = []
    for how, runner in (("child", run_in_child), ("here", run_in_process)):
        root = tmp_path / how
        root.mkdir()
        write_manifest(root / "bad.yaml", "version: 1\nmodels: [\n")
        write_manifest(root / "gone.yaml", "version: 1\nmodels:\n  - name: g\n    repo: test/gone\n")
        run = runner(args, cwd=root, env=cli_env(hub))
        runs.append((run.returncode, _same_shape(run.stdout, root), _same_shape(run.stderr, root)))
    assert runs[0] == runs[1]


def test_calls_that_need_a_fresh_interpreter_get_one() -> None:
    assert needs_process(["download", "-v"], {})
    assert needs_process(["download"], {"HF_HUB_OFFLINE": "1"})
    assert needs_process(["download"], {"HF_HOME": "/x"})
    assert not needs_process(["download"], {"HF_TOKEN": "t", "WANMODELS_WORKERS": "2"})
