"""Build small UI-format ComfyUI workflows for tests, shaped like the frontend saves them.

A node lists the models it needs in `properties.models`; newer workflows put most nodes in
subgraphs (`definitions.subgraphs[].nodes`) and leave an instance node (typed by the
subgraph's id) at the top level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.repos import COMFY22_REPO_ID, COMFY_REPO_ID

HF = "https://huggingface.co"
DATA = Path(__file__).resolve().parent / "data"
I2V_WORKFLOW = DATA / "image_to_video_wan.json"  # written like ComfyUI's image_to_video_wan.json template


def model(
    repo: str,
    repo_path: str,
    directory: str,
    *,
    name: str | None = None,
    revision: str = "main",
    host: str = HF,
    query: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One `properties.models` item; `name` defaults to the URL's file name."""
    entry = {
        "name": name or repo_path.rpartition("/")[2],
        "url": f"{host}/{repo}/resolve/{revision}/{repo_path}{query}",
        "directory": directory,
    }
    entry.update(extra)
    return entry


def node(node_id: int, node_type: str, *models: Any, mode: int = 0) -> dict[str, Any]:
    properties: dict[str, Any] = {"Node name for S&R": node_type}
    if models:
        properties["models"] = list(models)
    widgets = [models[0]["name"]] if models and isinstance(models[0], dict) else []
    return {
        "id": node_id,
        "type": node_type,
        "pos": [20, 10 * node_id],
        "size": [350, 82],
        "flags": {},
        "order": node_id,
        "mode": mode,
        "inputs": [],
        "outputs": [],
        "properties": properties,
        "widgets_values": widgets,
    }


def subgraph(graph_id: str, name: str, *nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": graph_id,
        "version": 1,
        "state": {"lastNodeId": 200, "lastLinkId": 300},
        "revision": 0,
        "config": {},
        "name": name,
        "inputNode": {"id": -10, "bounding": [0, 0, 120, 60]},
        "outputNode": {"id": -20, "bounding": [900, 0, 120, 60]},
        "inputs": [],
        "outputs": [],
        "widgets": [],
        "nodes": list(nodes),
        "groups": [],
        "links": [],
        "extra": {},
    }


def workflow(*nodes: dict[str, Any], subgraphs: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "5d0c1b9e-0000-4000-8000-000000000001",
        "revision": 0,
        "last_node_id": 200,
        "last_link_id": 300,
        "nodes": list(nodes),
        "links": [],
        "groups": [],
        "config": {},
        "extra": {"frontendVersion": "1.29.2"},
        "version": 0.4,
    }
    if subgraphs:
        doc["definitions"] = {"subgraphs": list(subgraphs)}
    return doc


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def wan22_i2v(host: str = HF) -> dict[str, Any]:
    """Like ComfyUI's video_wan2_2_14B_i2v template: every loader inside one subgraph; the text
    encoder from the 2.1 repo, the rest (including its copy of the 2.1 VAE) from the 2.2 repo."""
    graph_id = "84e2cf3f-de93-40ef-ab22-b9375296917b"
    split = "split_files"
    inner = (
        node(
            90, "VAELoader", model(COMFY22_REPO_ID, f"{split}/vae/wan_2.1_vae.safetensors", "vae", host=host)
        ),
        node(
            84,
            "CLIPLoader",
            model(
                COMFY_REPO_ID,
                f"{split}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                "text_encoders",
            ),
        ),
        node(
            96,
            "UNETLoader",
            model(
                COMFY22_REPO_ID,
                f"{split}/diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                "diffusion_models",
            ),
        ),
        node(
            95,
            "UNETLoader",
            model(
                COMFY22_REPO_ID,
                f"{split}/diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                "diffusion_models",
            ),
        ),
        node(
            102,
            "LoraLoaderModelOnly",
            model(
                COMFY22_REPO_ID,
                f"{split}/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
                "loras",
                query="?download=true",
            ),
        ),
        node(98, "WanImageToVideo"),
        node(86, "KSamplerAdvanced"),
    )
    return workflow(
        node(105, "MarkdownNote"),
        node(97, "LoadImage"),
        node(129, graph_id),
        subgraphs=(subgraph(graph_id, "Image to Video (Wan2.2)", *inner),),
    )
