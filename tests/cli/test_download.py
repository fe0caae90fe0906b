"""download end to end: the real CLI (`tests.support.clirun`) against the loopback Hub server."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.cli import Cli, spawn, write_manifest
from tests.support.files import partial_bytes
from tests.support.hubserver import Fault, HubServer
from tests.support.repos import safetensors_bytes, seed_repos
from tests.support.waiting import wait_until
from wanmodels.store.partial import list_parts

SEED_SELECTION = {
    "Wan-AI/Wan2.1-I2V-14B-480P": (
        "wan2.1-i2v",
        {
            "config.json",
            "diffusion_pytorch_model-00001-of-00003.safetensors",
            "diffusion_pytorch_model-00002-of-00003.safetensors",
            "diffusion_pytorch_model-00003-of-00003.safetensors",
            "diffusion_pytorch_model.safetensors.index.json",
            # the rest of what Wan's generate.py opens under --ckpt_dir
            "models_t5_umt5-xxl-enc-bf16.pth",
            "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
            "Wan2.1_VAE.pth",
            "google/umt5-xxl/special_tokens_map.json",
            "google/umt5-xxl/spiece.model",
            "google/umt5-xxl/tokenizer.json",
            "google/umt5-xxl/tokenizer_config.json",
            "xlm-roberta-large/sentencepiece.bpe.model",
            "xlm-roberta-large/special_tokens_map.json",
            "xlm-roberta-large/tokenizer.json",
            "xlm-roberta-large/tokenizer_config.json",
        },
    ),
    "openai/clip-vit-large-patch14": (
        "clip-vit-large",
        {"config.json", "preprocessor_config.json", "model.safetensors"},
    ),
    "stabilityai/sd-vae-ft-mse": ("sd-vae", {"config.json", "diffusion_pytorch_model.safetensors"}),
    "google/t5-v1_1-base": (
        "t5-base",
        {
            "config.json",
            "pytorch_model.bin",
            "spiece.model",
            "special_tokens_map.json",
            "tokenizer_config.json",
        },
    ),
}


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_download_bundled_manifest_gets_exactly_the_selected_files(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    run = cli("download")
    assert run.returncode == 0, run.stderr
    models = workdir / "models"
    repos = seed_repos()
    for repo_id, (folder, wanted) in SEED_SELECTION.items():
        assert tree(models / folder) == wanted
        for name in wanted:
            assert (models / folder / name).read_bytes() == repos[repo_id][name], name
    fetched = {(r.repo_id, r.file) for r in hub.gets()}
    wanted_pairs = {(repo_id, name) for repo_id, (_, names) in SEED_SELECTION.items() for name in names}
    assert fetched == wanted_pairs  # each once; TF/Flax/pickle duplicates never requested
    clip = [r.file for r in hub.requests if r.repo_id == "openai/clip-vit-large-patch14"]
    assert not {"tf_model.h5", "flax_model.msgpack", "pytorch_model.bin"} & set(clip)
    assert (workdir / "models" / ".wanmodels" / "locks" / "wan2.1-i2v.lock").is_file()
    assert not list((models / ".wanmodels" / "partial").glob("*"))


def test_second_download_fetches_nothing_and_sends_no_request(cli: Cli, hub: HubServer) -> None:
    assert cli("download").returncode == 0
    hub.clear_log()
    run = cli("download", "--json")
    assert run.returncode == 0, run.stderr
    assert hub.requests == []  # the lockfile pins everything and the state cache vouches for the files
    doc = run.json()
    assert doc["bytes"]["fetched"] == 0
    assert {f["action"] for m in doc["models"] for f in m["files"]} == {"keep"}


def test_download_dry_run_shows_plan_and_fetches_nothing(cli: Cli, hub: HubServer, workdir: Path) -> None:
    run = cli("download", "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    doc = run.json()
    total = sum(len(repo[1]) for repo in SEED_SELECTION.values())
    assert sum(len(m["files"]) for m in doc["models"]) == total
    assert doc["bytes"]["to_fetch"] == doc["bytes"]["total"] > 0
    assert doc["bytes"]["present"] == 0
    assert hub.gets() == []
    assert not (workdir / "models").exists()
    assert "to fetch" in run.stderr


def big_manifest(hub: HubServer, workdir: Path, size: int) -> tuple[Path, bytes]:
    data = safetensors_bytes({"w": ("F32", [size // 4])}, seed=7)
    hub.add_repo("test/big", {"config.json": b"{}", "big.safetensors": data})
    manifest = write_manifest(
        workdir / "big.yaml",
        "version: 1\nroot: ./models\nmodels:\n  - name: big\n    repo: test/big\n",
    )
    return manifest, data


STALL_AFTER = 256 << 10


def test_download_resumes_after_sigkill_with_little_resent(hub: HubServer, workdir: Path, cli: Cli) -> None:
    manifest, data = big_manifest(hub, workdir, 24 << 20)
    # Two connections, each of which the server leaves hanging after 256 KiB: the kill lands
    # mid-transfer however slow the machine is, and only once every byte sent has had its chance
    # to reach the part. (The first asks for the head of the file, the second takes over its tail.)
    # Every request stalls: a takeover's is at least 1 MiB, whatever rate the count measured (a
    # request of exactly the stall's size would end before it, and the next one would be in
    # flight at the kill).
    stall = Fault(path="big.safetensors", kind="stall", after_bytes=STALL_AFTER, seconds=120, times=None)
    hub.add_fault(stall)
    models = workdir / "models"
    args = ("download", "-m", str(manifest), "--workers", "2", "--timeout", "120")
    proc = spawn(hub, workdir, *args, quiet=True)
    wait_until(lambda: partial_bytes(models) == 2 * STALL_AFTER, "256 KiB from each connection in the part")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    (part,) = list_parts(models / ".wanmodels" / "partial")
    assert len(part.done) == 2  # two ranges, one per connection
    kept = part.done_bytes
    assert not (models / "big" / "big.safetensors").exists()
    assert hub.wait_idle(30)  # the stalled GETs notice the hang-up and are logged
    first_run_bytes = hub.bytes_sent("big.safetensors")
    assert first_run_bytes == kept, hub.gets("big.safetensors")  # every byte received was journalled
    hub.clear_faults()
    hub.throttle_bps = 64 << 20  # paced: about one write in flight per connection when a range splits
    hub.clear_log()
    rerun = cli("download", "-m", str(manifest))
    assert rerun.returncode == 0, rerun.stderr
    assert (models / "big" / "big.safetensors").read_bytes() == data
    gets = hub.gets("big.safetensors")
    assert gets and all(g.range is not None and g.status == 206 for g in gets), gets
    second_run_bytes = sum(g.bytes_sent for g in gets)
    assert second_run_bytes <= len(data) - kept + (1 << 20), "the re-run fetched what the part already held"
    # Nothing was lost at the kill: anything sent twice was sent to the re-run.
    resent = first_run_bytes + second_run_bytes - len(data)
    assert 0 <= resent <= 8 * (128 << 10), f"re-sent {resent} bytes of {len(data)}"


def test_download_never_places_wrong_bytes(cli: Cli, hub: HubServer, workdir: Path) -> None:
    hub.add_fault(Fault(path="model.safetensors", kind="corrupt", times=None, repo_id="openai/*"))
    run = cli("download")
    assert run.returncode == 1, run.stderr
    assert "clip-vit-large/model.safetensors" in run.stderr
    assert "expected sha256:" in run.stderr and "got sha256:" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (workdir / "models" / "clip-vit-large" / "model.safetensors").exists()
    assert not list((workdir / "models" / ".wanmodels" / "partial").glob("*.part"))
    assert (workdir / "models" / "sd-vae" / "config.json").is_file()  # the others still landed
    hub.clear_faults()
    hub.clear_log()
    again = cli("download")
    assert again.returncode == 0, again.stderr
    assert [r.file for r in hub.gets()] == ["model.safetensors"]
    expected = seed_repos()["openai/clip-vit-large-patch14"]["model.safetensors"]
    assert (workdir / "models" / "clip-vit-large" / "model.safetensors").read_bytes() == expected


def test_download_retries_a_cut_connection_with_range(hub: HubServer, workdir: Path, cli: Cli) -> None:
    manifest, data = big_manifest(hub, workdir, 4 << 20)
    hub.add_fault(Fault(path="big.safetensors", kind="cut", after_bytes=1 << 20, times=2))
    run = cli("download", "-m", str(manifest), "--workers", "1")
    assert run.returncode == 0, run.stderr
    assert (workdir / "models" / "big" / "big.safetensors").read_bytes() == data
    gets = hub.gets("big.safetensors")
    assert len(gets) == 3
    assert gets[1].range is not None and gets[2].range is not None
    assert hub.bytes_sent("big.safetensors") == len(data)  # nothing received was sent twice


@pytest.mark.parametrize(
    ("repo", "revision", "expected"),
    [
        ("nobody/missing", "main", "repo 'nobody/missing' was not found"),
        ("stabilityai/sd-vae-ft-mse", "no-such-branch", "revision 'no-such-branch'"),
        ("blongsta/wan2.1-i2v", "main", "Wan-AI/Wan2.1-I2V-14B-480P"),
    ],
)
def test_download_unknown_repo_or_revision_exits_3(
    cli: Cli, workdir: Path, repo: str, revision: str, expected: str
) -> None:
    manifest = write_manifest(
        workdir / "m.yaml",
        f"version: 1\nmodels:\n  - name: broken\n    repo: {repo}\n    revision: {revision}\n",
    )
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3
    assert "entry 'broken'" in run.stderr and expected in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_entries_of_one_repo_that_failed_together_are_named_in_one_message(cli: Cli, workdir: Path) -> None:
    # One listing per repo: its failure is every entry's, and is told once with all their names.
    manifest = write_manifest(
        workdir / "m.yaml",
        "version: 1\nmodels:\n"
        "  - name: unet\n    repo: nobody/missing\n    include: ['unet/*']\n"
        "  - name: vae\n    repo: nobody/missing\n    include: ['vae/*']\n"
        "  - name: clip\n    repo: nobody/missing\n    include: ['clip/*']\n"
        "  - name: other\n    repo: stabilityai/sd-vae-ft-mse\n    revision: no-such-branch\n",
    )
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: 4 entries could not be resolved: entries 'unet', 'vae' and 'clip': ")
    assert line.count("nobody/missing' was not found") == 1
    assert "entry 'other'" in line and "revision 'no-such-branch'" in line
    # All four in the one repo that is missing: one sentence.
    manifest.write_text(manifest.read_text().replace("stabilityai/sd-vae-ft-mse", "nobody/missing"))
    manifest.write_text(manifest.read_text().replace("revision: no-such-branch", "revision: main"))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 3
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("error: entries 'unet', 'vae', 'clip' and 'other' could not be resolved: repo ")
    assert "entry '" not in line


def test_download_selection_that_matches_nothing_exits_2(cli: Cli, workdir: Path) -> None:
    manifest = write_manifest(
        workdir / "m.yaml",
        "version: 1\nmodels:\n  - name: t5\n    repo: google/t5-v1_1-base\n    include: ['*.safetensors']\n",
    )
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 2
    assert "entry 't5'" in run.stderr and "matches nothing" in run.stderr


def test_download_json_reports_error_document_on_failure(cli: Cli, workdir: Path) -> None:
    manifest = write_manifest(
        workdir / "m.yaml", "version: 1\nmodels:\n  - name: x\n    repo: nobody/missing\n"
    )
    run = cli("download", "-m", str(manifest), "--json")
    assert run.returncode == 3
    doc = run.json()
    assert doc["status"] == "error" and doc["error"]["exit_code"] == 3
    assert doc["error"]["type"] == "RepoNotFoundError"
