"""From a ComfyUI workflow to a verified models folder, through the CLI and the loopback Hub.

Workflows name huggingface.co, as the ones users download do; the bytes must come from
`HF_ENDPOINT` (the test server), which is what a user behind a mirror needs too.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.cli import Cli, write_manifest
from tests.support.comfy_workflows import I2V_WORKFLOW, model, node, wan22_i2v, workflow, write
from tests.support.docs import fences, read_doc
from tests.support.hubserver import HubServer
from tests.support.repos import COMFY22_REPO_ID, COMFY_REPO_ID, add_repos, comfy22_repo, comfy_repo

VAE = "split_files/vae/wan_2.1_vae.safetensors"
I2V_TARGETS = {  # ComfyUI target -> repo path, as in the image_to_video_wan template
    target: f"split_files/{target}"
    for target in (
        "diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors",
        "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
        "clip_vision/clip_vision_h.safetensors",
        "vae/wan_2.1_vae.safetensors",
    )
}
WAN21 = comfy_repo()[COMFY_REPO_ID]
WAN22 = comfy22_repo()[COMFY22_REPO_ID]


@pytest.fixture
def comfy_hub(hub: HubServer) -> HubServer:
    add_repos(hub, comfy_repo())
    add_repos(hub, comfy22_repo())
    return hub


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".wanmodels" not in p.parts
    }


def _one_line_error(run_stderr: str) -> str:
    lines = run_stderr.strip().splitlines()
    assert len(lines) == 1, run_stderr
    assert "Traceback" not in run_stderr
    return lines[0]


def test_import_download_verify_gives_a_complete_comfyui_models_folder(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    shutil.copy(I2V_WORKFLOW, workdir)
    made = cli("import", "image_to_video_wan.json")
    assert made.returncode == 0, made.stderr
    root = workdir / "ComfyUI" / "models"
    assert _one_line_error(made.stderr) == (
        f"wrote wanmodels.yaml: 4 models from 1 workflow into {root}; next: wanmodels download --dry-run"
    )
    text = (workdir / "wanmodels.yaml").read_text(encoding="utf-8")
    assert "# image_to_video_wan.json: UNETLoader (node 37)\n  - name: wan2.1_i2v_480p_14B_fp16\n" in text

    fetched = cli("download")
    assert fetched.returncode == 0, fetched.stderr
    assert _files(root) == {target: WAN21[path] for target, path in I2V_TARGETS.items()}
    assert {r.path.split("/resolve/", 1)[1].split("/", 1)[1] for r in comfy_hub.gets()} == set(
        I2V_TARGETS.values()
    )

    checked = cli("verify", "--json")
    assert checked.returncode == 0, checked.stderr
    report = checked.json()
    assert report["status"] == "ok"
    assert sum(m["files_checked"] for m in report["models"]) == 4
    assert (workdir / "wanmodels.lock").is_file()


def test_import_refuses_to_overwrite_without_force(cli: Cli, comfy_hub: HubServer, workdir: Path) -> None:
    manifest = write_manifest(workdir / "wanmodels.yaml", "# mine\n")
    refused = cli("import", str(I2V_WORKFLOW))
    assert refused.returncode == 2
    assert "wanmodels.yaml: already exists; not overwritten" in _one_line_error(refused.stderr)
    assert manifest.read_text(encoding="utf-8") == "# mine\n"
    forced = cli("import", str(I2V_WORKFLOW), "--force", "--root", "/srv/ComfyUI/models")
    assert forced.returncode == 0, forced.stderr
    assert "\nroot: /srv/ComfyUI/models\n" in manifest.read_text(encoding="utf-8")


def test_import_to_another_path_names_it_in_the_next_command(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    made = cli("import", str(I2V_WORKFLOW), "-o", "comfy.yaml", "--root", "models")
    assert made.returncode == 0, made.stderr
    assert made.stderr.rstrip().endswith("next: wanmodels download -m comfy.yaml --dry-run")
    run = cli("download", "-m", "comfy.yaml")
    assert run.returncode == 0, run.stderr
    assert set(_files(workdir / "models")) == set(I2V_TARGETS)
    assert (workdir / "comfy.lock").is_file()


def test_a_workflow_is_a_manifest_for_every_command(cli: Cli, comfy_hub: HubServer, workdir: Path) -> None:
    wf = Path(shutil.copy(I2V_WORKFLOW, workdir / "wan.json"))
    listed = cli("list", "-m", "wan.json", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [m["folder"] for m in listed.json()["models"]] == [
        "diffusion_models",
        "text_encoders",
        "vae",
        "clip_vision",
    ]

    locked = cli("lock", "-m", "wan.json")
    assert locked.returncode == 0, locked.stderr
    lock = json.loads((workdir / "wan.lock").read_text(encoding="utf-8"))
    assert {f["local"] for m in lock["models"] for f in m["files"]} == set(I2V_TARGETS)
    assert cli("lock", "-m", "wan.json", "--check").returncode == 0

    before = cli("status", "-m", "wan.json")
    assert before.returncode == 1
    root = workdir / "elsewhere"
    fetched = cli("download", "-m", str(wf), "--root", str(root))
    assert fetched.returncode == 0, fetched.stderr
    assert set(_files(root)) == set(I2V_TARGETS)
    assert not (workdir / "ComfyUI").exists()

    status = cli("status", "-m", "wan.json", "--root", str(root), "--json")
    assert status.returncode == 0, status.stderr
    assert {m["state"] for m in status.json()["models"]} == {"complete"}
    verified = cli("verify", "-m", "wan.json", "--root", str(root))
    assert verified.returncode == 0, verified.stderr
    env_run = cli("status", "--root", str(root), WANMODELS_MANIFEST=str(wf))
    assert env_run.returncode == 0, env_run.stderr


def test_two_workflows_merge_and_the_shared_vae_is_fetched_once(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    write(workdir / "wan22.json", wan22_i2v())
    made = cli("import", str(I2V_WORKFLOW), "wan22.json")
    assert made.returncode == 0, made.stderr
    assert "8 models from 2 workflows" in made.stderr
    text = (workdir / "wanmodels.yaml").read_text(encoding="utf-8")
    assert text.count("umt5_xxl_fp8_e4m3fn_scaled.safetensors:") == 1  # one file, two workflows
    assert "# wan22.json: CLIPLoader (node 84 in subgraph 'Image to Video (Wan2.2)')" in text

    fetched = cli("download", "--json")
    assert fetched.returncode == 0, fetched.stderr
    planned = [f["path"] for m in fetched.json()["models"] for f in m["files"]]
    assert planned.count("vae/wan_2.1_vae.safetensors") == 2  # in both entries, each complete alone
    assert len(comfy_hub.gets(VAE)) == 1  # but fetched once
    root = workdir / "ComfyUI" / "models"
    assert _files(root) == {
        **{target: WAN21[path] for target, path in I2V_TARGETS.items()},
        "diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors": WAN22[
            "split_files/diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
        ],
        "diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors": WAN22[
            "split_files/diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"
        ],
        "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors": WAN22[
            "split_files/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"
        ],
    }
    verified = cli("verify")
    assert verified.returncode == 0, verified.stderr
    again = cli("download", "--frozen")
    assert again.returncode == 0, again.stderr


def test_the_same_target_with_different_bytes_is_an_error_naming_both(
    cli: Cli, hub: HubServer, workdir: Path
) -> None:
    add_repos(hub, comfy_repo())
    add_repos(hub, comfy22_repo(own_vae_bytes=True))
    write(workdir / "wan22.json", wan22_i2v())
    assert cli("import", str(I2V_WORKFLOW), "wan22.json").returncode == 0
    for command in (("download",), ("lock",), ("download", "--dry-run")):
        run = cli(*command)
        assert run.returncode == 2, run.stderr
        line = _one_line_error(run.stderr)
        for needle in (
            "two different files",
            "entry 'wan_2.1_vae'",
            "entry 'vae-wan_2.1_vae'",
            COMFY_REPO_ID,
            COMFY22_REPO_ID,
        ):
            assert needle in line
    assert not (workdir / "ComfyUI" / "models" / "vae").exists()
    assert not (workdir / "wanmodels.lock").exists()


def _hashed_workflow(workdir: Path, vae_hash: str) -> Path:
    doc = workflow(
        node(39, "VAELoader", model(COMFY_REPO_ID, VAE, "vae", hash=vae_hash, hash_type="SHA256")),
        node(
            49,
            "CLIPVisionLoader",
            model(COMFY_REPO_ID, "split_files/clip_vision/clip_vision_h.safetensors", "clip_vision"),
        ),
    )
    return write(workdir / "hashed.json", doc)


def test_a_right_declared_hash_downloads(cli: Cli, comfy_hub: HubServer, workdir: Path) -> None:
    _hashed_workflow(workdir, hashlib.sha256(WAN21[VAE]).hexdigest().upper())
    run = cli("download", "-m", "hashed.json")
    assert run.returncode == 0, run.stderr
    assert (workdir / "ComfyUI" / "models" / "vae" / "wan_2.1_vae.safetensors").read_bytes() == WAN21[VAE]


def test_a_wrong_declared_hash_exits_1_before_any_byte_moves(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    wrong = "ab" * 32
    _hashed_workflow(workdir, wrong)
    run = cli("download", "-m", "hashed.json")
    assert run.returncode == 1, run.stderr
    line = _one_line_error(run.stderr)
    listed = hashlib.sha256(WAN21[VAE]).hexdigest()
    for needle in (VAE, f"declares sha256:{wrong}", f"Hub lists sha256:{listed}", "nothing was fetched"):
        assert needle in line
    assert comfy_hub.gets() == []
    assert not (workdir / "ComfyUI" / "models" / "vae").exists()


def test_a_declared_sha256_holds_a_small_git_file_too(cli: Cli, comfy_hub: HubServer, workdir: Path) -> None:
    """README.md is a plain git file (listed by blob sha1): the declared sha256 is what gets checked."""
    readme = WAN21["README.md"]

    def manifest(digest: str) -> str:
        return (
            f"version: 1\nroot: ./out\nmodels:\n  - name: readme\n    repo: {COMFY_REPO_ID}\n"
            "    folder: docs\n    files:\n      README.md:\n        path: wan21.md\n"
            f"        sha256: {digest}\n"
        )

    write_manifest(workdir / "m.yaml", manifest(hashlib.sha256(readme).hexdigest()))
    good = cli("download", "-m", "m.yaml")
    assert good.returncode == 0, good.stderr
    lock = json.loads((workdir / "m.lock").read_text(encoding="utf-8"))
    assert lock["models"][0]["files"][0]["digest"] == f"sha256:{hashlib.sha256(readme).hexdigest()}"
    assert (workdir / "out" / "docs" / "wan21.md").read_bytes() == readme

    shutil.rmtree(workdir / "out")
    write_manifest(workdir / "m.yaml", manifest("cd" * 32))
    assert cli("lock", "-m", "m.yaml", "--check").returncode == 1  # the edited hash invalidates the lock
    assert cli("download", "-m", "m.yaml", "--frozen").returncode == 2
    bad = cli("download", "-m", "m.yaml")
    assert bad.returncode == 1, bad.stderr
    assert "does not match: expected sha256:" + "cd" * 32 in bad.stderr
    assert not (workdir / "out" / "docs" / "wan21.md").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("{}", "not a ComfyUI workflow", id="empty_object"),
        pytest.param('{"nodes": [{"id": 1, "type": "UNETLoader"', "not valid JSON", id="truncated"),
        pytest.param(
            '{"3": {"class_type": "UNETLoader", "inputs": {}}}', "carries no download URLs", id="api"
        ),
        pytest.param(json.dumps(workflow(node(1, "KSampler"))), "names no models", id="no_models"),
        pytest.param(
            json.dumps(
                workflow(node(37, "UNETLoader", {"name": "x", "url": "https://x.org/x", "directory": "d"}))
            ),
            "UNETLoader (node 37): model 'x': url 'https://x.org/x' is not a Hub resolve URL",
            id="bad_url",
        ),
        pytest.param(
            json.dumps(
                workflow(
                    node(39, "VAELoader", model(COMFY_REPO_ID, VAE, "vae")),
                    node(90, "VAELoader", model(COMFY22_REPO_ID, VAE, "vae")),
                )
            ),
            "'vae/wan_2.1_vae.safetensors' is wanted from two files",
            id="conflicting_targets",
        ),
    ],
)
@pytest.mark.parametrize("command", ["import", "download", "verify", "lock", "status", "list"])
def test_bad_workflows_exit_2_with_one_line_naming_the_file(
    cli: Cli, workdir: Path, text: str, needle: str, command: str
) -> None:
    (workdir / "bad.json").write_text(text, encoding="utf-8")
    args = ("import", "bad.json") if command == "import" else (command, "-m", "bad.json")
    run = cli(*args)
    assert run.returncode == 2, run.stderr
    line = _one_line_error(run.stderr)
    assert line.startswith("error: bad.json:")
    assert needle in line
    assert not (workdir / "wanmodels.yaml").exists()


def test_truncated_workflow_error_names_the_line(cli: Cli, workdir: Path) -> None:
    (workdir / "cut.json").write_text('{\n  "nodes": [\n    {"id": 1,\n', encoding="utf-8")
    run = cli("import", "cut.json")
    assert run.returncode == 2
    assert _one_line_error(run.stderr).startswith("error: cut.json:4: not valid JSON")


def test_a_partial_shard_set_fails_at_plan_time(cli: Cli, workdir: Path) -> None:
    """Issue 10: one shard of three passed `download` and failed only at `verify`."""
    write_manifest(
        workdir / "m.yaml",
        "version: 1\nmodels:\n  - name: wan\n    repo: Wan-AI/Wan2.1-I2V-14B-480P\n    include:\n"
        "      - diffusion_pytorch_model.safetensors.index.json\n"
        '      - "diffusion_pytorch_model-00001-of-*.safetensors"\n',
    )
    run = cli("download", "-m", "m.yaml", "--dry-run")
    assert run.returncode == 2, run.stderr
    line = _one_line_error(run.stderr)
    assert "is selected with 1 of its 3 shards" in line
    assert "diffusion_pytorch_model-00002-of-00003.safetensors" in line
    assert "diffusion_pytorch_model-00003-of-00003.safetensors" in line


def test_an_unquoted_glob_gets_a_quoting_hint(cli: Cli, workdir: Path) -> None:
    write_manifest(
        workdir / "m.yaml",
        "version: 1\nmodels:\n  - name: t5\n    repo: google/t5-v1_1-base\n"
        "    include: [config.json, *.bin]\n",
    )
    run = cli("download", "-m", "m.yaml", "--dry-run")
    assert run.returncode == 2
    line = _one_line_error(run.stderr)
    assert "m.yaml:5: invalid YAML" in line
    assert "Quote patterns that start with '*'" in line


def test_the_quick_start_of_docs_comfyui_runs_and_shows_the_real_manifest(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    doc = read_doc("comfyui.md")
    home = workdir / "home"
    shutil.copy(I2V_WORKFLOW, workdir)
    commands = fences(doc, "bash")[0][1].strip().splitlines()
    assert commands[0].startswith("wanmodels import image_to_video_wan.json")
    for line in commands:
        run = cli(*shlex.split(line.replace("~", str(home)))[1:])
        assert run.returncode == 0, f"{line}: {run.stderr}"
    assert set(_files(home / "ComfyUI" / "models")) == set(I2V_TARGETS)
    shown = next(body for _, body in fences(doc, "yaml") if body.startswith("# ComfyUI models imported"))
    written = (workdir / "wanmodels.yaml").read_text(encoding="utf-8")
    assert written == shown.replace("/home/me", str(home))


def test_a_renamed_model_from_a_test_server_url_lands_under_its_name(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    renamed = model(COMFY_REPO_ID, VAE, "vae", name="wan21_vae_renamed.safetensors", host=comfy_hub.url)
    renamed["url"] += "?download=true"
    write(workdir / "renamed.json", workflow(node(39, "VAELoader", renamed)))
    run = cli("download", "-m", "renamed.json")
    assert run.returncode == 0, run.stderr
    assert _files(workdir / "ComfyUI" / "models") == {"vae/wan21_vae_renamed.safetensors": WAN21[VAE]}


# -- issue 21, item 16: a workflow's errors name the workflow and the node, never an unseen line ----


def test_a_workflow_used_as_the_manifest_names_its_node_in_errors(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    missing = "split_files/diffusion_models/wan2.1_t2v_1.3B_fp16.safetensors"
    wf = write(
        workdir / "t2v.json",
        workflow(
            node(37, "UNETLoader", model(COMFY_REPO_ID, missing, "diffusion_models")),
            node(39, "VAELoader", model(COMFY_REPO_ID, VAE, "vae")),
        ),
    )
    run = cli("download", "-m", str(wf), "--dry-run")
    assert run.returncode == 2, run.stderr
    line = _one_line_error(run.stderr)
    assert "entry 'wan2.1_t2v_1.3B_fp16' (t2v.json: UNETLoader (node 37)): 'files:' path " in line, line
    assert "(line " not in line and "files file" not in line, line
    # The hint names the way to fetch the rest, for this workflow.
    assert f"`wanmodels download --skip-missing -m {wf}`" in line, line


def test_a_clash_inside_a_workflow_names_both_nodes(cli: Cli, workdir: Path) -> None:
    wf = write(
        workdir / "clash.json",
        workflow(
            node(3, "LoraLoader", model(COMFY_REPO_ID, VAE, "loras", name="wan")),
            node(4, "LoraLoader", model(COMFY_REPO_ID, VAE, "loras", name="wan/inner.safetensors")),
        ),
    )
    for args in (("download", "-m", str(wf), "--dry-run"), ("import", str(wf), "-o", "out.yaml")):
        line = _one_line_error(cli(*args).stderr)
        assert "clash.json: LoraLoader (node 4)" in line and "clash.json: LoraLoader (node 3)" in line, line
        assert "(line " not in line and "out.yaml" not in line, line
    assert not (workdir / "out.yaml").exists()


def test_import_quotes_an_all_decimal_sha256_and_reads_its_own_file(
    cli: Cli, comfy_hub: HubServer, workdir: Path
) -> None:
    digest = hashlib.sha256(WAN21[VAE]).hexdigest()
    decimal = "1234567890" * 6 + "1234"
    for sha, name in ((digest, "real"), (decimal, "digits")):
        wf = write(
            workdir / f"{name}.json",
            workflow(node(39, "VAELoader", model(COMFY_REPO_ID, VAE, "vae", hash=sha))),
        )
        run = cli("import", str(wf), "-o", f"{name}.yaml")
        assert run.returncode == 0, run.stderr
        text = (workdir / f"{name}.yaml").read_text(encoding="utf-8")
        assert f'sha256: "{sha}"' in text, text
        assert yaml.safe_load(text)["models"][0]["files"][VAE]["sha256"] == sha
    assert cli("download", "-m", "real.yaml").returncode == 0
    # The all-digit one reads back as the digest it is (the Hub then says it differs).
    wrong = cli("download", "-m", "digits.yaml", "--dry-run")
    assert wrong.returncode == 1, wrong.stderr
    assert f"declares sha256:{decimal}" in wrong.stderr


def test_an_unquoted_decimal_sha256_in_a_manifest_gets_a_hint_to_quote_it(cli: Cli, workdir: Path) -> None:
    write_manifest(
        workdir / "m.yaml",
        "version: 1\nmodels:\n  - name: v\n    repo: a/b\n    files:\n"
        f"      x.bin:\n        sha256: {'1' * 64}\n",
    )
    line = _one_line_error(cli("download", "-m", "m.yaml", "--dry-run").stderr)
    assert "m.yaml:7: 'files.x.bin.sha256': must be 64 hex digits, got int" in line, line
    assert "Quote it" in line and 'sha256: "' in line, line


def test_import_refuses_an_output_folder_that_does_not_exist(cli: Cli, workdir: Path) -> None:
    out = workdir / "new" / "dir" / "x.yaml"
    run = cli("import", str(I2V_WORKFLOW), "-o", str(out))
    assert run.returncode == 2
    line = _one_line_error(run.stderr)
    assert "does not exist" in line and "Create it first" in line, line
    assert not (workdir / "new").exists()


def test_a_model_without_a_name_reads_as_english(cli: Cli, workdir: Path) -> None:
    loader = node(5, "VAELoader", model(COMFY_REPO_ID, VAE, "vae"))
    del loader["properties"]["models"][0]["name"]
    wf = write(workdir / "w.json", workflow(loader))
    line = _one_line_error(cli("import", str(wf)).stderr)
    assert "VAELoader (node 5): a model has no 'name'" in line and "None" not in line, line
    loader["properties"]["models"][0]["name"] = 5
    write(wf, workflow(loader))
    line = _one_line_error(cli("import", str(wf)).stderr)
    assert "'name' must be a non-empty string, got int 5" in line and "model 5" not in line, line
