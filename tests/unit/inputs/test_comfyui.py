"""Reading ComfyUI workflows: model references out of UI-format JSON, merged, rendered as YAML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.support.comfy_workflows import HF, I2V_WORKFLOW, model, node, wan22_i2v, workflow, write
from tests.support.repos import COMFY22_REPO_ID, COMFY_REPO_ID
from wanmodels.errors import ManifestError
from wanmodels.inputs.comfyui import (
    ModelRef,
    import_workflows,
    merge_models,
    read_workflow,
    render_manifest,
    workflow_manifest,
)
from wanmodels.inputs.manifest import parse_manifest

VAE = "split_files/vae/wan_2.1_vae.safetensors"
SHA = "0123456789abcdef" * 4


def _one(tmp_path: Path, *models: dict[str, object], node_type: str = "UNETLoader") -> Path:
    return write(tmp_path / "wf.json", workflow(node(7, node_type, *models)))


def test_reads_the_four_models_of_the_wan21_i2v_workflow() -> None:
    refs = read_workflow(I2V_WORKFLOW)
    assert [(r.target, r.repo, r.revision, r.repo_path, r.node) for r in refs] == [
        (
            "diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors",
            COMFY_REPO_ID,
            "main",
            "split_files/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors",
            "UNETLoader (node 37)",
        ),
        (
            "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
            COMFY_REPO_ID,
            "main",
            "split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
            "CLIPLoader (node 38)",
        ),
        ("vae/wan_2.1_vae.safetensors", COMFY_REPO_ID, "main", VAE, "VAELoader (node 39)"),
        (
            "clip_vision/clip_vision_h.safetensors",
            COMFY_REPO_ID,
            "main",
            "split_files/clip_vision/clip_vision_h.safetensors",
            "CLIPVisionLoader (node 49)",
        ),
    ]
    assert all(r.sha256 is None for r in refs)


def test_models_inside_subgraphs_count(tmp_path: Path) -> None:
    refs = read_workflow(write(tmp_path / "wan22.json", wan22_i2v()))
    assert len(refs) == 5
    assert refs[0].node == "VAELoader (node 90 in subgraph 'Image to Video (Wan2.2)')"
    assert {r.repo for r in refs} == {COMFY_REPO_ID, COMFY22_REPO_ID}
    lora = refs[-1]
    assert lora.repo_path == "split_files/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"
    assert lora.target == "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"


def test_a_renamed_model_lands_under_its_name(tmp_path: Path) -> None:
    item = model("org/loras", "out/SYSTMS_INFL8_LoRA_v2.safetensors", "loras", name="infl8.safetensors")
    (ref,) = read_workflow(_one(tmp_path, item, node_type="LoraLoaderModelOnly"))
    assert (ref.target, ref.repo_path) == ("loras/infl8.safetensors", "out/SYSTMS_INFL8_LoRA_v2.safetensors")


@pytest.mark.parametrize(
    ("host", "revision", "query"),
    [
        pytest.param(HF, "main", "?download=true", id="download_query"),
        pytest.param("https://hf.co", "main", "", id="short_host"),
        pytest.param("https://hf-mirror.example", "main", "", id="mirror_host"),
        pytest.param("http://127.0.0.1:8765", "main", "", id="test_server"),
        pytest.param(HF, "refs%2Fpr%2F3", "", id="encoded_revision"),
    ],
)
def test_any_hub_host_gives_repo_revision_and_path(
    tmp_path: Path, host: str, revision: str, query: str
) -> None:
    item = model(COMFY_REPO_ID, "split_files/vae/wan%202.1.safetensors", "vae", host=host, revision=revision)
    item["url"] += query
    item["name"] = "wan 2.1.safetensors"
    (ref,) = read_workflow(_one(tmp_path, item))
    assert ref.repo == COMFY_REPO_ID
    assert ref.revision == ("refs/pr/3" if "%2F" in revision else "main")
    assert ref.repo_path == "split_files/vae/wan 2.1.safetensors"


@pytest.mark.parametrize("hash_type", ["SHA256", "sha256", None])
def test_a_declared_sha256_is_carried(tmp_path: Path, hash_type: str | None) -> None:
    extra = {"hash": SHA.upper()} | ({"hash_type": hash_type} if hash_type else {})
    (ref,) = read_workflow(_one(tmp_path, model(COMFY_REPO_ID, VAE, "vae", **extra)))
    assert ref.sha256 == SHA


def test_other_hash_types_are_not_carried(tmp_path: Path) -> None:
    item = model(COMFY_REPO_ID, VAE, "vae", hash="d41d8cd98f00b204e9800998ecf8427e", hash_type="md5")
    (ref,) = read_workflow(_one(tmp_path, item))
    assert ref.sha256 is None


def test_bypassed_and_muted_nodes_still_count_and_say_so(tmp_path: Path) -> None:
    doc = workflow(
        node(1, "LoraLoaderModelOnly", model("org/a", "a.safetensors", "loras"), mode=4),
        node(2, "LoraLoaderModelOnly", model("org/b", "b.safetensors", "loras"), mode=2),
    )
    refs = read_workflow(write(tmp_path / "wf.json", doc))
    assert [r.node for r in refs] == [
        "LoraLoaderModelOnly (node 1, bypassed)",
        "LoraLoaderModelOnly (node 2, muted)",
    ]


def test_a_workflow_level_model_list_counts(tmp_path: Path) -> None:
    doc = workflow(node(1, "KSampler"))
    doc["models"] = [model(COMFY_REPO_ID, VAE, "vae")]
    (ref,) = read_workflow(write(tmp_path / "wf.json", doc))
    assert ref.node == "the workflow's model list"


# --- bad input: one ManifestError (exit 2) naming the file, the line or the node --------------------


def _bad_model(url: str = f"{HF}/{COMFY_REPO_ID}/resolve/main/{VAE}", **changes: object) -> dict[str, object]:
    item: dict[str, object] = {"name": "wan_2.1_vae.safetensors", "url": url, "directory": "vae"}
    item.update(changes)
    return {k: v for k, v in item.items() if v is not None}


BAD_WORKFLOWS = [
    pytest.param("{}", "not a ComfyUI workflow", id="empty_object"),
    pytest.param("[1, 2]", "not a ComfyUI workflow", id="a_list"),
    pytest.param('{"nodes": {}}', "not a ComfyUI workflow", id="nodes_not_a_list"),
    pytest.param(
        '{"3": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}}}',
        "API-format workflow names model files but carries no download URLs",
        id="api_format",
    ),
    pytest.param(json.dumps(workflow(node(1, "KSampler"))), "names no models", id="no_model_list"),
    pytest.param(
        json.dumps(workflow(node(37, "UNETLoader", _bad_model("https://civitai.com/api/download/models/1")))),
        "UNETLoader (node 37): model 'wan_2.1_vae.safetensors': "
        "url 'https://civitai.com/api/download/models/1' is not a Hub resolve URL",
        id="not_a_resolve_url",
    ),
    pytest.param(
        json.dumps(workflow(node(37, "VAELoader", _bad_model(f"{HF}/{COMFY_REPO_ID}/blob/main/{VAE}")))),
        "VAELoader (node 37): model 'wan_2.1_vae.safetensors': url",
        id="blob_page_url",
    ),
    pytest.param(
        json.dumps(workflow(node(5, "VAELoader", _bad_model(f"{HF}/datasets/org/data/resolve/main/x.bin")))),
        "points into a dataset repo",
        id="dataset_url",
    ),
    pytest.param(json.dumps(workflow(node(5, "VAELoader", _bad_model("ftp://x/y")))), "node 5", id="ftp_url"),
    pytest.param(
        json.dumps(workflow(node(5, "VAELoader", _bad_model(directory=None)))),
        "VAELoader (node 5): model 'wan_2.1_vae.safetensors' has no 'directory'",
        id="no_directory",
    ),
    pytest.param(
        json.dumps(workflow(node(5, "VAELoader", _bad_model(name="../../.bashrc")))),
        "contains '..'",
        id="name_escapes",
    ),
    pytest.param(
        json.dumps(workflow(node(5, "VAELoader", _bad_model(directory=".wanmodels")))),
        "keeps for its own files",
        id="reserved_directory",
    ),
    pytest.param(
        json.dumps(workflow(node(5, "VAELoader", _bad_model(hash="abc", hash_type="SHA256")))),
        "'hash' 'abc' is not a sha256",
        id="bad_hash",
    ),
    pytest.param(
        json.dumps(workflow(node(5, "VAELoader", "not a model"))),
        "VAELoader (node 5): a model in 'properties.models' is not a JSON object",
        id="model_not_an_object",
    ),
    pytest.param(json.dumps(workflow("not a node")), "a node is not a JSON object", id="node_not_an_object"),
]


@pytest.mark.parametrize(("text", "needle"), BAD_WORKFLOWS)
def test_bad_workflows_are_one_manifest_error_naming_the_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ManifestError) as err:
        read_workflow(path)
    assert str(err.value).startswith(f"{path}: ")
    assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_truncated_json_names_the_line(tmp_path: Path) -> None:
    text = I2V_WORKFLOW.read_text(encoding="utf-8")
    cut = text[: text.index('"directory"', len(text) // 3)]  # stops mid-object, like a broken download
    path = tmp_path / "cut.json"
    path.write_text(cut, encoding="utf-8")
    with pytest.raises(ManifestError, match="not valid JSON") as err:
        read_workflow(path)
    assert err.value.line == cut.count("\n") + 1
    assert str(err.value).startswith(f"{path}:{err.value.line}: ")
    assert "is the file complete?" in str(err.value)


def test_missing_and_binary_files_are_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="workflow not found"):
        read_workflow(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ManifestError, match="cannot read workflow"):
        read_workflow(tmp_path / "bin.json")


def test_two_files_for_one_target_in_one_workflow_name_both_nodes(tmp_path: Path) -> None:
    doc = workflow(
        node(39, "VAELoader", model(COMFY_REPO_ID, VAE, "vae")),
        node(90, "VAELoader", model(COMFY22_REPO_ID, VAE, "vae")),
    )
    path = write(tmp_path / "wf.json", doc)
    with pytest.raises(ManifestError) as err:
        merge_models([read_workflow(path)])
    text = str(err.value)
    assert text.startswith(f"{path}: 'vae/wan_2.1_vae.safetensors' is wanted from two files")
    assert "VAELoader (node 39)" in text
    assert "VAELoader (node 90)" in text
    assert COMFY_REPO_ID in text
    assert COMFY22_REPO_ID in text


def test_one_file_declared_with_two_sha256s_is_an_error(tmp_path: Path) -> None:
    first = write(
        tmp_path / "a.json", workflow(node(1, "VAELoader", model(COMFY_REPO_ID, VAE, "vae", hash=SHA)))
    )
    other = "f" * 64
    second = write(
        tmp_path / "b.json", workflow(node(2, "VAELoader", model(COMFY_REPO_ID, VAE, "vae", hash=other)))
    )
    with pytest.raises(ManifestError, match="conflicting sha256s") as err:
        merge_models([read_workflow(first), read_workflow(second)])
    assert SHA in str(err.value)
    assert other in str(err.value)


# --- merging and naming ------------------------------------------------------------------------------


def test_merging_keeps_one_entry_per_file_and_names_every_node_that_needs_it(tmp_path: Path) -> None:
    wan22 = write(tmp_path / "wan22.json", wan22_i2v())
    models = merge_models([read_workflow(I2V_WORKFLOW), read_workflow(wan22)])
    names = [m.name for m in models]
    assert len(names) == len(set(names)) == 8
    umt5 = next(m for m in models if m.file_name == "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    assert umt5.needed_by == (
        "image_to_video_wan.json: CLIPLoader (node 38)",
        "wan22.json: CLIPLoader (node 84 in subgraph 'Image to Video (Wan2.2)')",
    )
    vaes = [m for m in models if m.file_name == "wan_2.1_vae.safetensors"]
    assert [(m.name, m.repo, m.folder) for m in vaes] == [
        ("wan_2.1_vae", COMFY_REPO_ID, "vae"),
        ("vae-wan_2.1_vae", COMFY22_REPO_ID, "vae"),
    ]


def test_names_stay_unique_and_valid(tmp_path: Path) -> None:
    def ref(directory: str, name: str, repo: str = "org/repo") -> ModelRef:
        return ModelRef("wf.json", "Loader (node 1)", directory, name, repo, "main", f"{directory}/{name}")

    refs = (
        ref("loras", "model.safetensors"),
        ref("vae", "model.safetensors"),
        ref("vae", "sub/model.safetensors"),
        ref("vae", "sub2/model.safetensors"),
        ref("checkpoints", "+++weird name (v2)!.ckpt"),
        ref("checkpoints", "noext"),
    )
    names = [m.name for m in merge_models([refs])]
    assert names == ["model", "vae-model", "model-repo", "model-2", "weird-name-v2-", "noext"]


def test_rendered_manifest_reads_back_as_the_same_entries(tmp_path: Path) -> None:
    odd = model("org/odd", "files/yes", "checkpoints", name="on")
    weird = 'a "quoted" #name: x\u2028y.ckpt'
    quoted = model("org/odd", quote(f"dir/{weird}"), "checkpoints", name=weird)
    hashed = model(COMFY_REPO_ID, VAE, "vae", hash=SHA.upper(), hash_type="SHA256")
    doc = workflow(node(1, "CheckpointLoaderSimple\nroot: /etc", odd, quoted), node(2, "VAELoader", hashed))
    path = write(tmp_path / "odd #1.json", doc)
    models = merge_models([read_workflow(path)])
    text = render_manifest(models, root="./ComfyUI/models", workflows=["odd #1.json\nversion: 2"])
    manifest = parse_manifest(text, source="m.yaml", base_dir=tmp_path, lock_path=tmp_path / "m.lock")
    assert [(s.name, s.repo, s.folder, s.files, s.sha256) for s in manifest.models] == [
        ("on", "org/odd", "checkpoints", (("files/yes", "on"),), ()),
        (
            "a-quoted-name-x-y",
            "org/odd",
            "checkpoints",
            (('dir/a "quoted" #name: x\u2028y.ckpt', 'a "quoted" #name: x\u2028y.ckpt'),),
            (),
        ),
        ("wan_2.1_vae", COMFY_REPO_ID, "vae", ((VAE, "wan_2.1_vae.safetensors"),), ((VAE, SHA),)),
    ]
    assert manifest.root == tmp_path / "ComfyUI" / "models"
    assert yaml.safe_load(text)["version"] == 1
    assert "# odd #1.json: CheckpointLoaderSimple root: /etc (node 1)" in text


def test_workflow_manifest_roots_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    manifest = workflow_manifest(I2V_WORKFLOW)
    assert manifest.root == tmp_path / "ComfyUI" / "models"
    assert manifest.lock_path == I2V_WORKFLOW.parent / "image_to_video_wan.lock"
    assert manifest.source == str(I2V_WORKFLOW)
    assert [m.folder for m in manifest.models] == ["diffusion_models", "text_encoders", "vae", "clip_vision"]


def test_import_never_overwrites_a_workflow_or_a_json_file(tmp_path: Path) -> None:
    wf = write(tmp_path / "wf.json", json.loads(I2V_WORKFLOW.read_text(encoding="utf-8")))
    before = wf.read_bytes()
    for output in (wf, tmp_path / "out.json"):
        with pytest.raises(ManifestError, match=r"must be a new \.yaml file"):
            import_workflows([wf], output, force=True)
    assert wf.read_bytes() == before
    with pytest.raises(ManifestError, match="no workflow given"):
        import_workflows([], tmp_path / "m.yaml")


@pytest.mark.parametrize(
    ("root", "written"),
    [
        pytest.param(None, "./ComfyUI/models", id="default"),
        pytest.param("models", "../models", id="relative_to_cwd"),
        pytest.param("/srv/ComfyUI/models", "/srv/ComfyUI/models", id="absolute"),
    ],
)
def test_import_writes_the_root_relative_to_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str | None, written: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    result = import_workflows([I2V_WORKFLOW], Path("conf/comfy.yaml"), root=root)
    text = (tmp_path / "conf" / "comfy.yaml").read_text(encoding="utf-8")
    assert f"\nroot: {written}\n" in text
    expected = {None: tmp_path / "conf" / "ComfyUI" / "models", "models": tmp_path / "models"}.get(root)
    assert result.root == (expected or Path(written))
    assert "wanmodels download -m conf/comfy.yaml --dry-run" in text


def test_two_workflows_wanting_two_files_of_one_repo_at_one_path_is_an_error(tmp_path: Path) -> None:
    first = write(tmp_path / "a.json", workflow(node(1, "VAELoader", model(COMFY_REPO_ID, VAE, "vae"))))
    other = model(COMFY_REPO_ID, "split_files/vae/other.safetensors", "vae", name="wan_2.1_vae.safetensors")
    second = write(tmp_path / "b.json", workflow(node(2, "VAELoader", other)))
    with pytest.raises(ManifestError) as err:
        merge_models([read_workflow(first), read_workflow(second)])
    text = str(err.value)
    assert text.startswith(f"{second}: 'vae/wan_2.1_vae.safetensors' is wanted from two files")
    assert "a.json: VAELoader (node 1)" in text
    assert "VAELoader (node 2)" in text


def test_long_names_stay_unique_and_valid() -> None:
    long = "x" * 120 + ".safetensors"
    refs = tuple(
        ModelRef("wf.json", "L (node 1)", f"d{i}", long, f"org/{'r' * 90}", "main", f"p{i}/{long}")
        for i in range(4)
    )
    names = [m.name for m in merge_models([refs])]
    assert len(set(names)) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", n) for n in names), names


def test_the_suggested_command_quotes_the_manifest_name(tmp_path: Path) -> None:
    """The comment's `wanmodels download -m ...` must work when pasted, spaces and all."""
    path = write(tmp_path / "w.json", workflow(node(1, "VAELoader", model(COMFY_REPO_ID, VAE, "vae"))))
    models = merge_models([read_workflow(path)])
    text = render_manifest(models, root="./m", workflows=["w.json"], manifest_arg="my stack.yaml")
    (command,) = [ln for ln in text.splitlines() if "wanmodels download" in ln]
    assert "download -m 'my stack.yaml' --dry-run" in command
