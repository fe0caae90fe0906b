"""The CLI contract: exit codes, one-line errors without tracebacks, lazy start-up, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Cli, write_manifest

VALID_ENTRY = "  - name: a\n    repo: org/a\n"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("version: 1\nmodels: [\n", 3, "invalid YAML"),
        ("version: 1\nmodels:\n" + VALID_ENTRY + "colour: red\n", 5, "'colour': unknown key"),
        ("version: 1\nmodels:\n  - name: a\n    repo: org/a\n    flavour: x\n", 5, "'flavour': unknown key"),
        ("version: 1\nmodels:\n  - name: a\n", 3, "'repo': missing required key"),
        ("version: '1'\nmodels:\n" + VALID_ENTRY, 1, "unsupported version"),
        ("version: 2\nmodels:\n" + VALID_ENTRY, 1, "unsupported version"),
        (
            "version: 1\nmodels:\n  - name: a\n    repo: org/a\n    include: '*.json'\n",
            5,
            "'include': must be a list",
        ),
        ("version: 1\nversion: 1\nmodels:\n" + VALID_ENTRY, 2, "'version': duplicate key"),
        ("version: 1\nmodels:\n" + VALID_ENTRY + VALID_ENTRY, 5, "duplicate name"),
        (
            "version: 1\nmodels:\n  - name: a\n    repo: org/a\n    folder: x\n"
            "    files:\n      p.bin: m.bin\n"
            "  - name: b\n    repo: org/a\n    folder: x\n    files:\n      q.bin: m.bin\n",
            8,
            "'x/m.bin' is claimed by two files of 'org/a'",
        ),
        ("version: 1\nmodels:\n  - name: a\n    repo: org/a\n    folder: /etc\n", 5, "is absolute"),
        ("version: 1\nmodels:\n  - name: a\n    repo: org/a\n    folder: ../up\n", 5, "'..'"),
        (
            "version: 1\nmodels:\n  - name: a\n    repo: org/a\n    files:\n      x.bin: ../../evil.bin\n",
            6,
            "'..'",
        ),
        (
            "version: 1\nmodels:\n  - name: a\n    repo: org/a\n    folder: m\n    files:\n      p.bin: sub\n"
            "  - name: b\n    repo: org/b\n    folder: m/sub\n",
            8,
            "'m/sub' is a file of entry 'a'",
        ),
    ],
)
def test_invalid_manifest_exits_2_with_file_and_line(
    cli: Cli, workdir: Path, text: str, line: int, needle: str
) -> None:
    manifest = write_manifest(workdir / "bad.yaml", text)
    run = cli("download", "--dry-run", "-m", str(manifest))
    assert run.returncode == 2, run.stderr
    assert f"bad.yaml:{line}:" in run.stderr
    assert needle in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_missing_manifest_names_presets(cli: Cli) -> None:
    run = cli("download", "-m", "no-such-preset")
    assert run.returncode == 2
    assert "wan2.1-i2v" in run.stderr


def test_manifest_python_tag_is_refused_not_run(cli: Cli, workdir: Path) -> None:
    marker = workdir / "pwned"
    manifest = write_manifest(
        workdir / "evil.yaml",
        f"version: 1\nmodels: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    run = cli("download", "--dry-run", "-m", str(manifest))
    assert run.returncode == 2
    assert "not allowed" in run.stderr
    assert not marker.exists()


def test_unknown_option_is_a_usage_error(cli: Cli) -> None:
    run = cli("download", "--no-such-flag")
    assert run.returncode == 2
    assert "Traceback" not in run.stderr


def test_bad_env_value_is_a_usage_error(cli: Cli) -> None:
    run = cli("download", "--dry-run", HF_HUB_OFFLINE="maybe")
    assert run.returncode == 2
    assert "HF_HUB_OFFLINE" in run.stderr


def test_version_and_help_do_not_import_the_hub_client() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['wanmodels', '--help']\n"
        "try:\n    runpy.run_module('wanmodels', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('huggingface_hub', 'yaml', 'rich.progress', 'httpx2') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    version = subprocess.run([sys.executable, "-m", "wanmodels", "--version"], capture_output=True, text=True)
    assert version.returncode == 0
    assert version.stdout.startswith("wanmodels ")


def test_help_lists_commands_with_examples() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "wanmodels", "download", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0
    assert "--dry-run" in run.stdout
    assert "Examples" in run.stdout


def test_json_stdout_is_only_json_when_progress_is_on(cli: Cli) -> None:
    run = cli("download", "--json")
    assert run.returncode == 0
    doc = run.json()  # raises if anything else reached stdout
    assert doc["command"] == "download"
    assert run.stderr  # human lines went to stderr


def test_quiet_prints_nothing_on_success(cli: Cli) -> None:
    run = cli("download", "--quiet")
    assert run.returncode == 0
    assert run.stderr == ""
    assert run.stdout == ""


def test_no_color_output_has_no_escape_codes(cli: Cli) -> None:
    run = cli("download", "--dry-run", NO_COLOR="1")
    assert run.returncode == 0
    assert "\x1b[" not in run.stderr


def test_token_is_never_printed(cli: Cli, workdir: Path, hub) -> None:
    token = "hf_supersecret_test_token_123"
    hub.require_token("stabilityai/sd-vae-ft-mse", token, gated=True)
    denied = cli("download", "--json")
    assert denied.returncode == 3
    assert "gated" in denied.stderr
    assert "HF_TOKEN" in denied.stderr
    ok = cli("download", "--json", HF_TOKEN=token)
    assert ok.returncode == 0, ok.stderr
    written = [p for p in workdir.rglob("*") if p.is_file() and p.stat().st_size < 5_000_000]
    for text in (
        denied.stdout,
        denied.stderr,
        ok.stdout,
        ok.stderr,
        *(p.read_bytes().decode("latin-1") for p in written),
    ):
        assert token not in text
    assert any(r.authorized for r in hub.requests)


def test_dry_run_of_a_large_repo_summarises_per_entry(cli: Cli, hub, workdir: Path) -> None:
    hub.add_repo("test/many", {f"f{i:04}.json": b"{}" for i in range(300)})
    manifest = write_manifest(
        workdir / "many.yaml", "version: 1\nmodels:\n  - name: many\n    repo: test/many\n"
    )
    run = cli("download", "--dry-run", "-m", str(manifest), "--json")
    assert run.returncode == 0, run.stderr
    assert "many: 300 files" in run.stderr
    assert len(run.stderr.splitlines()) == 2
    assert len(run.json()["models"][0]["files"]) == 300
