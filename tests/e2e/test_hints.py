"""Messages that end with the next step (issue 21, items 17 and 19): a failed verify names its
repair command, a gated repo is one line per repo that says whether a token was sent, an outage
names every entry it hit and the endpoint, the traceback hint follows only surprises, `--json`
keeps the sentences apart, and a missing file among many entries does not block the others.
"""

from __future__ import annotations

import itertools
import shlex
import socket
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest
from tests.support.files import flip_last_byte
from tests.support.hubserver import HubServer
from tests.support.repos import VAE_REPO_ID
from wanmodels.errors import (
    AccessDeniedError,
    HubError,
    LocalIOError,
    RepoNotFoundError,
    WanmodelsError,
    with_hint,
)

TWO = (
    "version: 1\nmodels:\n"
    "  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n    include: [config.json, '*.safetensors']\n"
    "  - name: t5\n    repo: google/t5-v1_1-base\n    include: [config.json, spiece.model]\n"
)
MISSING_FILE = (
    "  - name: gone\n    repo: google/t5-v1_1-base\n"
    "    files:\n      no-such-file.safetensors: x.safetensors\n"
)
MISSING_REPO = "  - name: norepo\n    repo: nobody/no-such-repo\n"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _quoted_command(text: str, start: str) -> list[str]:
    """The `wanmodels ...` command quoted in `text` that starts with `start`, as arguments."""
    commands = [c for c in text.split("`") if c.startswith(start)]
    assert commands, text
    return shlex.split(commands[0])


# -- a failed verify says how to repair ------------------------------------------------------------


def test_a_failed_verify_names_the_repair_command_that_fixes_it(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "two.yaml", TWO)
    root = workdir / "elsewhere"
    assert cli("download", "-q", "-m", "two.yaml", "--root", str(root)).returncode == 0
    flip_last_byte(root / "vae" / "diffusion_pytorch_model.safetensors")
    (root / "t5" / "spiece.model").unlink()
    run = cli("verify", "--full", "-m", "two.yaml", "--root", str(root))
    assert run.returncode == 1
    verdict = run.stderr.strip().splitlines()[-1]
    assert verdict.startswith("verification failed: 2 of 2 models, 2 problems"), verdict
    argv = _quoted_command(verdict, "wanmodels verify --repair")
    assert argv[argv.index("-m") + 1] == "two.yaml" and argv[argv.index("--root") + 1] == str(root)
    fixed = cli(*argv[1:])
    assert fixed.returncode == 0, fixed.stderr
    assert cli("verify", "--full", "-m", "two.yaml", "--root", str(root)).returncode == 0


# -- gated: once per repo, and whether a token was sent ----------------------------------------------


def test_a_gated_repo_is_named_once_and_says_no_token_was_sent(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    assert cli("lock").returncode == 0  # pinned: each file's own request meets the gate
    hub.require_token(VAE_REPO_ID, "hf_right_token_123", gated=True)
    run = cli("download")
    assert run.returncode == 3, run.stderr
    gated = [line for line in run.stderr.splitlines() if line.startswith("failed: ")]
    assert len(gated) == 1, run.stderr
    (line,) = gated
    assert f"'{VAE_REPO_ID}' is gated and no token was sent" in line, line
    assert "your token" not in line
    assert ". Accept the conditions on the repo's page, then pass a token" in line, line
    assert "(2 files: sd-vae/config.json, sd-vae/diffusion_pytorch_model.safetensors)" in line, line
    wrong = cli("download", HF_TOKEN="hf_wrong_token_456")
    assert wrong.returncode == 3
    (line,) = [ln for ln in wrong.stderr.splitlines() if ln.startswith("failed: ")]
    assert "the token sent has no access" in line and "hf_wrong_token_456" not in wrong.stderr, line


# -- an outage names every entry, and the endpoint ----------------------------------------------------


def test_an_outage_names_every_entry_once_and_the_endpoint(cli: Cli, workdir: Path) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    run = cli("download", "--dry-run", HF_ENDPOINT=endpoint, WANMODELS_RETRY_WAIT="0.01")
    assert run.returncode == 3, run.stderr
    (line,) = [ln for ln in run.stderr.splitlines() if ln.startswith("error:")]
    for entry in ("wan2.1-i2v", "clip-vit-large", "sd-vae", "t5-base"):
        assert line.count(f"entry '{entry}'") == 1, line
    assert f"HF_ENDPOINT ({endpoint})" in line, line
    assert "WANMODELS_DEBUG" not in line


# -- the traceback hint is for surprises only --------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "helps"),
    [
        (WanmodelsError("'x': unexpected KeyError: 'y'"), True),
        (LocalIOError("cannot write the state file 'x': Input/output error"), True),
        (HubError("the Hub answered HTTP 500 for 'x'"), True),
        (RepoNotFoundError("repo 'a/b' was not found", hint="Check the repo id."), False),
        (AccessDeniedError("'a/b' is gated and no token was sent"), False),
        (LocalIOError("another wanmodels process is working on 'r'", hint="Wait for it."), False),
    ],
)
def test_the_traceback_hint_follows_only_errors_a_traceback_can_explain(
    err: WanmodelsError, helps: bool
) -> None:
    from wanmodels.cli.app import _traceback_helps

    assert _traceback_helps(err) is helps


def test_a_repo_not_found_carries_no_traceback_hint(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "m.yaml", "version: 1\nmodels:\n  - name: x\n    repo: nobody/nothing\n")
    run = cli("download", "--dry-run", "-m", "m.yaml")
    assert run.returncode == 3, run.stderr
    assert "was not found" in run.stderr and "WANMODELS_DEBUG" not in run.stderr


# -- --json keeps the period between the error and its fix --------------------------------------------


def test_json_error_messages_keep_the_sentences_apart(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "m.yaml", "version: 1\nmodels:\n  - name: x\n    repo: nobody/nothing\n")
    write_manifest(workdir / "bad.yaml", "version: 1\nbogus: 1\nmodels: []\n")
    for args in (("download", "-m", "m.yaml"), ("download", "-m", "bad.yaml"), ("download", "--frozen")):
        run = cli(*args, "--json")
        message = run.json()["error"]["message"]
        human = next(ln for ln in run.stderr.splitlines() if ln.startswith("error: "))
        assert human == f"error: {message}", (human, message)
        err = run.json()["error"]
        assert ". " in message and not any(f"{w} {c}" in message for w, c in _glued(message)), message
        assert err["exit_code"] == run.returncode


def _glued(message: str) -> list[tuple[str, str]]:
    """Word pairs where a sentence ran into the next one without a period ('nothing Check')."""
    words = message.split()
    return [
        (a, b)
        for a, b in itertools.pairwise(words)
        if b[:1].isupper() and a[-1:].isalnum() and b != "HF_TOKEN"
    ]


def test_with_hint_adds_a_period_only_where_one_is_missing() -> None:
    assert with_hint("no lockfile", "Run `wanmodels lock`.") == "no lockfile. Run `wanmodels lock`."
    assert with_hint("is it there?", "Look.") == "is it there? Look."
    assert with_hint("done.", None) == "done."
    assert str(WanmodelsError("a", hint="B.")) == "a. B."


# -- one missing file among many entries ----------------------------------------------------------------


def test_a_missing_file_names_the_option_that_fetches_the_rest(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "m.yaml", TWO + MISSING_FILE)
    run = cli("download", "--dry-run", "-m", "m.yaml")
    assert run.returncode == 2, run.stderr
    assert "no-such-file.safetensors" in run.stderr
    argv = _quoted_command(run.stderr, "wanmodels download --skip-missing")
    fetched = cli(*argv[1:])
    assert fetched.returncode == 1, fetched.stderr
    assert (workdir / "models" / "vae" / "config.json").is_file()
    assert (workdir / "models" / "t5" / "spiece.model").is_file()
    missing = [ln for ln in fetched.stderr.splitlines() if ln.startswith("missing: ")]
    assert len(missing) == 1 and "entry 'gone'" in missing[0] and "no-such-file" in missing[0], fetched.stderr
    assert any(ln.startswith("1 of 3 models missing on the Hub: ") for ln in fetched.stderr.splitlines())


def test_skip_missing_reports_every_missing_entry_in_json(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "m.yaml", TWO + MISSING_FILE + MISSING_REPO)
    plain = cli("download", "--dry-run", "-m", "m.yaml")
    assert plain.returncode == 3, plain.stderr  # a repo not found wins over a bad selection
    assert "entry 'gone'" in plain.stderr and "entry 'norepo'" in plain.stderr
    run = cli("download", "--skip-missing", "-m", "m.yaml", "--json")
    assert run.returncode == 1, run.stderr
    doc = run.json()
    assert doc["status"] == "partial"
    assert [e["name"] for e in doc["skipped"]] == ["gone", "norepo"]
    assert [m["name"] for m in doc["models"]] == ["vae", "t5"]
    assert all(m["status"] == "ok" for m in doc["models"])
    again = cli("download", "--skip-missing", "-m", "m.yaml")
    assert again.returncode == 1 and "fetched 0 B" in again.stderr, again.stderr


def test_skip_missing_still_stops_at_an_outage(cli: Cli, workdir: Path) -> None:
    """Missing means the Hub answered that it lacks the thing; no answer at all is not that."""
    write_manifest(workdir / "m.yaml", TWO + MISSING_FILE)
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    run = cli("download", "--skip-missing", "-m", "m.yaml", HF_ENDPOINT=endpoint, WANMODELS_RETRY_WAIT="0.01")
    assert run.returncode == 3, run.stderr
    assert not (workdir / "models" / "vae").exists()


# -- smaller items (issue 21, item 19) ----------------------------------------------------------------


def test_a_refused_frozen_run_leaves_nothing_in_the_root(cli: Cli, workdir: Path) -> None:
    root = workdir / "checkout" / "models"
    run = cli("download", "--frozen", "--root", str(root))
    assert run.returncode == 2, run.stderr
    assert not (workdir / "checkout").exists()
    # A preset's lockfile lives in the models folder: there is nothing to commit.
    line = run.stderr.strip().splitlines()[-1]
    assert "commit" not in line, line
    argv = _quoted_command(line, "wanmodels lock")
    assert argv[argv.index("--root") + 1] == str(root)
    assert cli(*argv[1:]).returncode == 0
    assert cli("download", "--frozen", "--root", str(root), "-q").returncode == 0


def test_a_manifests_frozen_hint_says_to_commit_its_lockfile(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "two.yaml", TWO)
    run = cli("download", "--frozen", "-m", "two.yaml")
    assert run.returncode == 2
    assert "Run `wanmodels lock -m two.yaml` and commit the lockfile." in run.stderr, run.stderr


def test_a_root_may_name_environment_variables(cli: Cli, workdir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_manifest(workdir / "two.yaml", TWO.replace("version: 1\n", "version: 1\nroot: $HOME/models\n"))
    run = cli("download", "-q", "-m", "two.yaml", HOME=str(home))
    assert run.returncode == 0, run.stderr
    assert (home / "models" / "t5" / "spiece.model").is_file()
    assert not (workdir / "$HOME").exists()
    write_manifest(
        workdir / "unset.yaml", TWO.replace("version: 1\n", "version: 1\nroot: ${NOT_SET_HERE}/m\n")
    )
    unset = cli("download", "--dry-run", "-m", "unset.yaml")
    assert unset.returncode == 2
    assert "unset.yaml:2: 'root':" in unset.stderr and "${NOT_SET_HERE}" in unset.stderr, unset.stderr
    assert "is not set" in unset.stderr


def test_a_failed_file_counts_the_bytes_that_did_arrive(cli: Cli, hub: HubServer, workdir: Path) -> None:
    from tests.support.hubserver import Fault

    weights = "diffusion_pytorch_model.safetensors"
    hub.add_fault(Fault(path=weights, kind="corrupt", times=None, repo_id=VAE_REPO_ID))
    run = cli("download", "sd-vae", "--json")
    assert run.returncode == 1, run.stderr
    (vae,) = run.json()["models"]
    failed = next(f for f in vae["files"] if f["repo_path"] == weights)
    assert failed["status"] == "failed"
    assert failed["bytes_fetched"] >= failed["size"] > 0  # the wrong bytes did cross the network
    assert run.json()["bytes"]["fetched"] >= failed["bytes_fetched"]


def test_an_outage_during_the_transfers_says_its_fix_once(cli: Cli, workdir: Path) -> None:
    assert cli("lock").returncode == 0  # pinned: no listing, every file's own request fails
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    run = cli("download", HF_ENDPOINT=endpoint, WANMODELS_RETRY_WAIT="0.01")
    assert run.returncode == 3, run.stderr
    failed = [line for line in run.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 26, run.stderr  # every file of the default preset
    assert all(f"HF_ENDPOINT ({endpoint})" not in line for line in failed), failed[0]
    fix = [line for line in run.stderr.splitlines() if line.startswith("for every failed file: ")]
    assert len(fix) == 1 and f"HF_ENDPOINT ({endpoint})" in fix[0], run.stderr
