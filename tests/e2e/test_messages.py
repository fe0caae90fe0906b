"""The CLI's contract and wording for a first-time user (issue 10, items 2-6, 8-10, 13, 14).

Each test runs the real CLI (`tests.support.clirun`) against the fake Hub and checks what a user or a
script sees: which lines print under `-q`, that `--json` always yields one document, that
every suggested command works as given, what `status` knows without a lockfile, what `-v`
logs, and the words, counts and units of the summaries.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import signal
import time
from pathlib import Path

import pytest

from tests.support.cli import Cli, spawn, write_manifest
from tests.support.files import flip_last_byte
from tests.support.hubserver import Fault, HubServer
from tests.support.paths import DOCS, MANIFESTS, PACKAGE, README
from tests.support.repos import VAE_REPO_ID, add_repos, comfy_repo, safetensors_bytes

VAE_WEIGHTS = "sd-vae/diffusion_pytorch_model.safetensors"
HINT_RE = re.compile(r"`(wanmodels [^`]+)`")
DECIMAL_UNITS_RE = re.compile(r"\d(?:\.\d+)? ?(?:kB|KB|MB|GB|TB)\b")
TWO = (
    "version: 1\nmodels:\n"
    "  - name: vae\n    repo: stabilityai/sd-vae-ft-mse\n    include: [config.json, '*.safetensors']\n"
    "  - name: t5\n    repo: google/t5-v1_1-base\n    include: [config.json, spiece.model]\n"
)


@pytest.fixture
def comfy_hub(hub: HubServer) -> HubServer:
    add_repos(hub, comfy_repo())
    return hub


def hints(text: str) -> list[list[str]]:
    """Every `wanmodels ...` command quoted in `text`, as argument lists."""
    return [shlex.split(cmd) for cmd in HINT_RE.findall(text)]


def run_hint(cli: Cli, argv: list[str], **kwargs: object):
    assert argv[0] == "wanmodels"
    return cli(*argv[1:], **kwargs)


def partial_bytes(workdir: Path, local_path: str) -> int:
    """Bytes of `local_path` that its unfinished download's journal says have arrived."""
    from wanmodels.store.partial import list_parts

    infos = list_parts(workdir / "models" / ".wanmodels" / "partial")
    return sum(p.done_bytes for p in infos if p.local_path == local_path)


# -- item 2: `-q` means errors only, and an error names its file ------------------------------------


def test_quiet_download_names_the_file_that_failed(cli: Cli, hub: HubServer) -> None:
    hub.add_fault(
        Fault(path="diffusion_pytorch_model.safetensors", kind="corrupt", times=None, repo_id=VAE_REPO_ID)
    )
    run = cli("download", "-q")
    assert run.returncode == 1, run.stderr
    assert VAE_WEIGHTS in run.stderr
    assert "failed" in run.stderr
    assert run.stdout == ""
    # Errors only: no plan line, no per-model lines, no summary.
    assert "fetching" not in run.stderr and "clip-vit-large" not in run.stderr


def test_quiet_verify_names_the_corrupt_file(cli: Cli, workdir: Path) -> None:
    assert cli("download", "-q").returncode == 0
    flip_last_byte(workdir / "models" / VAE_WEIGHTS)
    run = cli("verify", "-q")
    assert run.returncode == 1
    assert VAE_WEIGHTS in run.stderr
    assert "hash" in run.stderr
    assert "t5-base" not in run.stderr  # the good entries stay silent


# -- item 3: `--json` prints one document even for a bad command line ---------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("download", "--json", "--bogus"),
        ("download", "--json", "--workers", "0"),
        ("download", "--workers=0", "--json"),
        ("verify", "--json", "--no-such-flag"),
        ("lock", "--json", "--check", "extra-arg"),
        ("status", "--json", "-m"),
    ],
)
def test_json_usage_error_prints_exactly_one_document(cli: Cli, args: tuple[str, ...]) -> None:
    run = cli(*args)
    assert run.returncode == 2, run.stderr
    doc = json.loads(run.stdout)  # the whole of stdout: one document, nothing else
    assert doc["schema_version"] == 1
    assert doc["command"] == args[0]
    assert doc["status"] == "error"
    assert doc["error"]["exit_code"] == 2
    assert doc["error"]["message"]
    assert "Error:" in run.stderr  # the human explanation still goes to stderr


# -- item 4: every suggested command keeps the user's -m/--root and works as given -------------------


def test_frozen_without_a_lock_suggests_the_lock_command_for_that_preset(
    cli: Cli, comfy_hub: HubServer, tmp_path: Path
) -> None:
    root = tmp_path / "comfy models"  # a space: the hint must quote it
    run = cli("download", "--frozen", "-m", "wan2.1-comfyui-fp16", "--root", str(root))
    assert run.returncode == 2
    (suggested,) = hints(run.stderr)
    assert suggested == ["wanmodels", "lock", "-m", "wan2.1-comfyui-fp16", "--root", str(root)]
    assert run_hint(cli, suggested).returncode == 0
    again = cli("download", "--frozen", "-m", "wan2.1-comfyui-fp16", "--root", str(root))
    assert again.returncode == 0, again.stderr
    assert (root / "diffusion_models" / "wan2.1_i2v_480p_14B_fp16.safetensors").is_file()


def test_status_hints_keep_the_preset_and_root(cli: Cli, comfy_hub: HubServer, tmp_path: Path) -> None:
    root = tmp_path / "R"
    unlocked = cli("status", "-m", "wan2.1-comfyui-fp16", "--root", str(root))
    assert unlocked.returncode == 1
    suggested = hints(unlocked.stdout)  # status's result is on stdout
    assert suggested
    for argv in suggested:
        assert argv[-4:] == ["-m", "wan2.1-comfyui-fp16", "--root", str(root)], argv
    dry = next(a for a in suggested if "--dry-run" in a)
    assert run_hint(cli, dry).returncode == 0
    finish = suggested[-1]
    assert finish[:2] == ["wanmodels", "download"]
    assert run_hint(cli, finish).returncode == 0
    assert cli("status", "-m", "wan2.1-comfyui-fp16", "--root", str(root)).returncode == 0


def test_broken_lockfile_hint_rewrites_that_manifests_lock(cli: Cli, workdir: Path) -> None:
    sub = workdir / "project"
    sub.mkdir()
    write_manifest(sub / "two.yaml", TWO)
    (sub / "two.lock").write_text("{not json", encoding="utf-8")
    run = cli("download", "--dry-run", "-m", "project/two.yaml")
    assert run.returncode == 2
    assert "two.lock" in run.stderr
    (suggested,) = hints(run.stderr)
    assert suggested[:2] == ["wanmodels", "lock"]
    (sub / "two.lock").unlink()
    assert run_hint(cli, suggested).returncode == 0
    assert json.loads((sub / "two.lock").read_text(encoding="utf-8"))["models"]
    assert not (workdir / "wanmodels.lock").exists()


def test_init_names_the_manifest_it_wrote_when_the_default_lookup_would_miss_it(
    cli: Cli, workdir: Path
) -> None:
    plain = cli("init")
    assert plain.returncode == 0
    assert hints(plain.stderr) == [["wanmodels", "download", "--dry-run"]]
    (workdir / "wanmodels.yaml").unlink()
    write_manifest(workdir / "other.yaml", TWO)
    # $WANMODELS_MANIFEST outranks ./wanmodels.yaml, so the hint must name the file.
    run = cli("init", WANMODELS_MANIFEST="other.yaml")
    (suggested,) = hints(run.stderr)
    assert suggested == ["wanmodels", "download", "-m", "wanmodels.yaml", "--dry-run"]
    dry = run_hint(cli, suggested, WANMODELS_MANIFEST="other.yaml")
    assert dry.returncode == 0
    assert "clip-vit-large" in dry.stderr  # the preset's entries, not other.yaml's


def test_no_hint_in_the_code_drops_the_manifest() -> None:
    """A hint that names a wanmodels command must be built with `Manifest.command`."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "same -m/--root" in line:  # a library call that has no manifest says so
                continue
            if re.search(r"(hint|msg|detail).*`wanmodels (lock|download|verify|status)", line):
                offenders.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert offenders == []


# -- item 5: a preset's pin is found from its root; status without a lockfile -------------------------


def test_preset_pin_is_found_from_the_root_in_another_directory(
    cli: Cli, comfy_hub: HubServer, tmp_path: Path
) -> None:
    root, a, b = tmp_path / "R", tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    assert cli("download", "-m", "wan2.1-comfyui", "--root", str(root), cwd=a).returncode == 0
    comfy_hub.clear_log()
    status = cli("status", "-m", "wan2.1-comfyui", "--root", str(root), "--json", cwd=b)
    assert status.returncode == 0, status.stderr
    assert {m["state"] for m in status.json()["models"]} == {"complete"}
    verify = cli("verify", "--offline", "-m", "wan2.1-comfyui", "--root", str(root), cwd=b)
    assert verify.returncode == 0, verify.stderr
    assert comfy_hub.requests == []
    assert not list(a.iterdir()) and not list(b.iterdir())  # nothing written beside the user


def test_status_without_a_lockfile_reports_bytes_and_partial_downloads(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    hub.add_repo("test/big", {"w.safetensors": safetensors_bytes(data_size=8 << 20, seed=5)})
    write_manifest(
        workdir / "two.yaml",
        "version: 1\nmodels:\n  - name: big\n    repo: test/big\n"
        "  - name: t5\n    repo: google/t5-v1_1-base\n    include: [config.json, spiece.model]\n",
    )
    # Interrupted while the big file streams: its part stays, the small files are in place.
    hub.throttle_bps = 1 << 20
    proc = spawn(hub, workdir, "download", "-m", "two.yaml")
    t5 = workdir / "models" / "t5"
    deadline = time.monotonic() + 60

    def placed_both() -> bool:  # in place, and their parts cleared away
        names = ("config.json", "spiece.model")
        return all((t5 / n).is_file() and not partial_bytes(workdir, f"t5/{n}") for n in names)

    while time.monotonic() < deadline and not (partial_bytes(workdir, "big/w.safetensors") and placed_both()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert not (workdir / "two.lock").exists()
    placed = sum(p.stat().st_size for p in t5.iterdir())
    run = cli("status", "-m", "two.yaml")
    assert run.returncode == 1
    assert "big [test/big] -> big: not locked (0 verified files, 0 B on disk, " in run.stdout, run.stdout
    assert "in partial downloads" in run.stdout
    doc = cli("status", "-m", "two.yaml", "--json").json()
    by_name = {m["name"]: m for m in doc["models"]}
    assert by_name["big"]["bytes_partial"] == partial_bytes(workdir, "big/w.safetensors") > 0
    assert by_name["t5"] == {**by_name["t5"], "files": 2, "bytes_present": placed, "bytes_partial": 0}
    # docs/troubleshooting.md promises exactly this.
    text = " ".join((DOCS / "troubleshooting.md").read_text(encoding="utf-8").split())
    assert "`wanmodels status` shows how many bytes are there, partial downloads included" in text
    assert "without one it reports the bytes on disk and in partial downloads" in text


# -- item 6: -v logs every request, metadata included, with its status and never the token --------


def test_verbose_lock_logs_every_request_with_status_and_no_token(cli: Cli, hub: HubServer) -> None:
    token = "hf_verbose_secret_token_987"
    run = cli("lock", "-v", HF_TOKEN=token)
    assert run.returncode == 0, run.stderr
    assert token not in run.stderr and token not in run.stdout
    served = [r for r in hub.requests if r.path.startswith("/api/")]
    assert len(served) >= 8  # repo_info + tree listing per repo
    logged = [line for line in run.stderr.splitlines() if re.search(r"GET http\S+/api/\S* -> \d{3}", line)]
    assert len(logged) == len(served), run.stderr
    assert all("-> 200" in line for line in logged)
    assert not any("?" in line.split(" -> ")[0] for line in logged)  # no query strings
    assert len(set(logged)) == len(logged)  # each request once, not once per handler


def test_verbose_download_logs_file_requests_too(cli: Cli, hub: HubServer) -> None:
    run = cli("download", "-v")
    assert run.returncode == 0, run.stderr
    assert re.search(r"GET http\S+/resolve/\S+ -> 20[06]", run.stderr), run.stderr
    requests = [line.split(" -> ")[0] for line in run.stderr.splitlines() if " -> " in line]
    assert requests and not any("?" in line for line in requests)  # signed CDN queries stay out


# -- item 8: first contact: the size, --dry-run, a preset per runtime ----------------------------------


def test_readme_quick_start_states_the_size_and_the_dry_run() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.split("## ", 1)[0]  # what a newcomer reads before the first section
    assert re.search(r"about \d+ GiB", start), start
    assert "--dry-run" in start
    for runtime, preset in (
        ("ComfyUI", "wan2.1-comfyui"),
        ("generate.py", "wan2.1-i2v-480p"),
        ("Diffusers", "wan2.1-i2v-480p-diffusers"),
    ):
        line = next((ln for ln in start.splitlines() if runtime in ln and preset in ln), None)
        assert line is not None, f"the quick start names no preset for {runtime}"


def test_list_shows_each_presets_description_and_size(cli: Cli) -> None:
    run = cli("list")
    assert run.returncode == 0
    for name in ("wan2.1-i2v", "wan2.1-i2v-480p", "wan2.1-comfyui", "wan2.1-comfyui-fp16"):
        line = next(ln for ln in run.stdout.splitlines() if ln.split() and ln.split()[0] == name)
        assert re.search(r"about \d+(\.\d+)? GiB", line), line


def test_plan_line_states_the_size_before_fetching(cli: Cli) -> None:
    run = cli("download")
    assert run.returncode == 0
    first = run.stderr.splitlines()[0]
    assert first.startswith("fetching 26 files, ") and "KiB (0 B already present) into " in first, first


# -- item 9: counts and wording ------------------------------------------------------------------------


def test_verify_counts_the_failed_models_and_uses_plurals(cli: Cli, workdir: Path) -> None:
    assert cli("download", "-q").returncode == 0
    (workdir / "models" / "sd-vae" / "config.json").unlink()
    run = cli("verify")
    assert run.returncode == 1
    assert "verification failed: 1 of 4 models, 1 problem" in run.stderr
    assert "sd-vae: FAILED (2 files)" in run.stderr
    assert "(s)" not in run.stderr
    assert "  missing: sd-vae/config.json\n" in run.stderr  # not "...: missing" twice


def test_status_and_repair_read_in_order_without_repeated_words(cli: Cli, workdir: Path) -> None:
    assert cli("download", "-q").returncode == 0
    (workdir / "models" / "sd-vae" / "config.json").unlink()
    status = cli("status")
    line = next(ln for ln in status.stdout.splitlines() if ln.startswith("sd-vae "))
    assert line.count("missing") == 1, line
    assert "[stabilityai/sd-vae-ft-mse@" in line and "1 of 2 files not in place" in line
    repair = cli("verify", "--repair")
    assert repair.returncode == 0, repair.stderr
    lines = repair.stderr.splitlines()
    assert lines[0] == "repairing 1 file that failed: sd-vae/config.json (missing)"
    assert lines[1].startswith("fetching 1 file, ")
    assert lines[-1].startswith("verified: 4 models")
    assert "FAILED" not in repair.stderr and "verification failed" not in repair.stderr


def test_no_plural_placeholders_anywhere(cli: Cli, workdir: Path) -> None:
    outputs = [cli("download", "--dry-run"), cli("download"), cli("verify"), cli("status"), cli("lock")]
    (workdir / "models" / "sd-vae" / "config.json").unlink()
    outputs += [cli("download", "--offline"), cli("status"), cli("verify")]
    for run in outputs:
        text = run.stdout + run.stderr  # status prints its result on stdout
        assert "(s)" not in text, text
        assert not re.search(r"\b1 (files|models|problems|entries)\b", text), text


def test_retry_message_counts_the_tries_left(cli: Cli, hub: HubServer, workdir: Path) -> None:
    write_manifest(workdir / "two.yaml", TWO)
    hub.add_fault(Fault(path="*.safetensors", kind="status", status=503, times=None, repo_id=VAE_REPO_ID))
    run = cli("download", "-m", "two.yaml", WANMODELS_RETRY_WAIT="0.01")
    assert run.returncode == 3
    retries = [ln for ln in run.stderr.splitlines() if "retrying" in ln]
    assert retries, run.stderr
    assert "0 more" not in run.stderr
    assert "last try" in retries[-1]
    assert "1 more try after this" in retries[-2]


def test_lock_wording_without_a_lockfile(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "two.yaml", TWO)
    check = cli("lock", "--check", "-m", "two.yaml")
    assert check.returncode == 1
    assert "no lockfile" in check.stderr
    assert "updated" not in check.stderr
    first = cli("lock", "-m", "two.yaml")
    assert first.returncode == 0
    assert "updated" not in first.stderr and "changed" not in first.stderr, first.stderr
    assert f"wrote {workdir / 'two.lock'}" in first.stderr
    second = cli("lock", "-m", "two.yaml")
    assert "unchanged" in second.stderr and "wrote" not in second.stderr


def test_a_refusal_reads_as_sentences_without_a_debug_hint(cli: Cli, workdir: Path) -> None:
    assert cli("init").returncode == 0
    run = cli("init")
    assert run.returncode == 2
    (line,) = run.stderr.splitlines()
    assert "not overwritten. Pass --force" in line
    assert "WANMODELS_DEBUG" not in line


def test_usage_errors_carry_no_debug_hint(cli: Cli) -> None:
    for args in (("download", "-m", "no-such-preset"), ("download", "--bogus"), ("status", "nope")):
        run = cli(*args)
        assert run.returncode == 2
        assert "WANMODELS_DEBUG" not in run.stderr


def test_offline_refusal_prints_no_fetching_line(cli: Cli, workdir: Path) -> None:
    assert cli("lock").returncode == 0
    run = cli("download", "--offline")
    assert run.returncode == 3
    assert "fetching" not in run.stderr
    assert re.search(r"\b\d+ files need the network", run.stderr), run.stderr
    assert "WANMODELS_DEBUG" not in run.stderr  # a refusal with its fix, not a surprise


def test_disk_space_refusal_prints_no_fetching_line(cli: Cli, workdir: Path) -> None:
    write_manifest(workdir / "two.yaml", TWO)
    assert cli("lock", "-m", "two.yaml").returncode == 0
    lock_path = workdir / "two.lock"
    lock = json.loads(lock_path.read_text(encoding="utf-8"))
    lock["models"][0]["files"][0]["size"] = 1 << 60  # an exabyte: no disk has that free
    lock_path.write_text(json.dumps(lock), encoding="utf-8")
    run = cli("download", "-m", "two.yaml")
    assert run.returncode == 4, run.stderr
    assert "not enough disk space" in run.stderr
    assert "fetching" not in run.stderr
    assert "WANMODELS_DEBUG" not in run.stderr
    assert re.search(r"needs \d+\.\d [KMGTP]iB", run.stderr), run.stderr


# -- item 10: one unit system -------------------------------------------------------------------------


def test_summaries_use_binary_units(cli: Cli, workdir: Path) -> None:
    runs = [
        cli("download", "--dry-run"),
        cli("download"),
        cli("verify", "--full"),
        cli("status"),
        cli("list"),
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        text = run.stdout + run.stderr  # status and list print their results on stdout
        assert not DECIMAL_UNITS_RE.search(text), text
    assert all("KiB" in run.stderr for run in runs[:2])
    assert "KiB" in runs[3].stdout


def test_progress_bars_use_binary_units() -> None:
    from rich.console import Console

    from wanmodels.cli.render import RichProgress
    from wanmodels.digests import Digest
    from wanmodels.inputs.manifest import ModelSpec
    from wanmodels.planning.plan import Action, ModelPlan, Plan, PlannedFile

    size = 11 * 1024 * 1024 + 512 * 1024  # 11.5 MiB
    item = PlannedFile(
        "e", "o/r", "c" * 40, "w.bin", "e/w.bin", size, Digest("sha256", "0" * 64), Action.DOWNLOAD, 0
    )
    plan = Plan(
        Path("/tmp/root"), (ModelPlan(ModelSpec(name="e", repo="o/r", folder="e"), "c" * 40, (item,)),)
    )
    out = io.StringIO()
    sink = RichProgress(Console(file=out, force_terminal=True, width=150, color_system=None))
    sink.plan_ready(plan)
    sink.file_started(item)
    sink.advance(item, 4 * 1024 * 1024)
    sink.progress.refresh()
    sink.close()
    text = out.getvalue()
    assert "4.0 MiB/11.5 MiB" in text, text
    assert not DECIMAL_UNITS_RE.search(text), text


def test_docs_and_presets_use_binary_units() -> None:
    texts = {
        p: p.read_text(encoding="utf-8")
        for p in (README, *DOCS.glob("*.md"), *MANIFESTS.glob("*.yaml"))
    }
    texts.pop(DOCS / "benchmarks.md")  # measurements against targets stated elsewhere, in their units
    for path, text in texts.items():
        text = text.replace("5 to 7 GB", "")  # quoting the original model list's wrong table
        assert not DECIMAL_UNITS_RE.search(text), f"{path.name}: {DECIMAL_UNITS_RE.search(text)}"


# -- item 13: help text ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["download", "verify", "import", "status", "lock", ""])
def test_help_has_no_type_names_and_fits_80_columns(cli: Cli, command: str) -> None:
    run = cli(*filter(None, [command, "--help"]), COLUMNS="80")
    assert run.returncode == 0
    assert not re.search(r"<(list|int|float|str|path|bool)[^>]*>", run.stdout, re.IGNORECASE), run.stdout
    assert "[[" not in run.stdout and "]...]" not in run.stdout
    for line in run.stdout.splitlines():
        assert len(line) <= 80, line
    examples = run.stdout.split("Examples:", 1)[1] if "Examples:" in run.stdout else ""
    for line in examples.strip().splitlines():
        # One example per line, its comment complete on that line.
        assert line.count("(") == line.count(")"), line
        assert line.strip().startswith("wanmodels "), line


# -- item 14: lock --json in manifest order ---------------------------------------------------------


def test_lock_json_lists_models_in_manifest_order(cli: Cli, workdir: Path) -> None:
    write_manifest(
        workdir / "order.yaml",
        "version: 1\nmodels:\n"
        "  - name: zeta\n    repo: google/t5-v1_1-base\n    include: [config.json]\n"
        "  - name: alpha\n    repo: stabilityai/sd-vae-ft-mse\n    include: [config.json]\n"
        "  - name: mid\n    repo: openai/clip-vit-large-patch14\n    include: [config.json]\n",
    )
    for args in (("lock", "--json"), ("lock", "--json"), ("lock", "--check", "--json")):
        doc = cli(*args, "-m", "order.yaml").json()
        assert [m["name"] for m in doc["models"]] == ["zeta", "alpha", "mid"]
