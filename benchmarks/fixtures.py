"""The benchmark's fixture repos: files written to disk once, shaped like the repos the presets select from.

Every weight is pseudo-random bytes (8 MiB blocks); `.safetensors` files are valid (an 8-byte LE header
length, a space-padded JSON header of one U8 tensor, then its bytes), so format checks pass on them.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from benchmarks.harness import MIB

BLOCK = 8 * MIB
SCALES = {"full": 1, "small": 40, "tiny": 512}

# -- the bundled `wan2.1-i2v` preset (cases 1-7, the plain Hub) ------------------------------------------

WAN = "Wan-AI/Wan2.1-I2V-14B-480P"
CLIP = "openai/clip-vit-large-patch14"
VAE = "stabilityai/sd-vae-ft-mse"
T5 = "google/t5-v1_1-base"
MANY = "bench/many-small-files"
LARGEST = "diffusion_pytorch_model-00001-of-00003.safetensors"

# Full-scale sizes in MiB of the files the bundled manifest selects (~2 GiB in all, the largest 1 GiB).
WEIGHTS_MIB: dict[str, dict[str, float]] = {
    WAN: {
        LARGEST: 1024,
        "diffusion_pytorch_model-00002-of-00003.safetensors": 384,
        "diffusion_pytorch_model-00003-of-00003.safetensors": 384,
    },
    CLIP: {"model.safetensors": 128},
    VAE: {"diffusion_pytorch_model.safetensors": 64},
    T5: {"pytorch_model.bin": 64},
}
# The encoders and VAE Wan's generate.py opens beside the shards: selected, kept small.
WAN_SMALL_KIB: dict[str, int] = {
    "models_t5_umt5-xxl-enc-bf16.pth": 256,
    "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth": 192,
    "Wan2.1_VAE.pth": 128,
}
# Its two tokenizer folders (selected, a few KiB).
WAN_TOKENIZER_FILES: tuple[str, ...] = tuple(
    f"{folder}/{name}"
    for folder, vocab in (
        ("google/umt5-xxl", "spiece.model"),
        ("xlm-roberta-large", "sentencepiece.bpe.model"),
    )
    for name in (vocab, "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json")
)
# Files the manifest does not select: present on the Hub, never fetched by wanmodels (kept small).
UNSELECTED_KIB: dict[str, dict[str, int]] = {
    WAN: {},
    CLIP: {"tf_model.h5": 256, "flax_model.msgpack": 256, "pytorch_model.bin": 256},
    VAE: {"diffusion_pytorch_model.bin": 128},
    T5: {"tf_model.h5": 128, "flax_model.msgpack": 128},
}

# -- the `wan2.1-comfyui-fp16` preset (case 8, the CDN link) ---------------------------------------------

COMFY = "Comfy-Org/Wan_2.1_ComfyUI_repackaged"
COMFY_PRESET = "wan2.1-comfyui-fp16"
COMFY_TOTAL_MIB = 240  # at full scale; --small and --tiny divide it like the other fixtures
# The real stack's files and sizes in GB (32.8 : 6.7 : 1.26 : 0.25), largest first; the second
# element is where the preset places each file under its root.
COMFY_FILES: dict[str, tuple[float, str]] = {
    "split_files/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors": (
        32.8,
        "diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors",
    ),
    "split_files/text_encoders/umt5_xxl_fp16.safetensors": (6.7, "text_encoders/umt5_xxl_fp16.safetensors"),
    "split_files/clip_vision/clip_vision_h.safetensors": (1.26, "clip_vision/clip_vision_h.safetensors"),
    "split_files/vae/wan_2.1_vae.safetensors": (0.25, "vae/wan_2.1_vae.safetensors"),
}
COMFY_UNSELECTED_KIB = {
    "split_files/diffusion_models/wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors": 256,
    "split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors": 128,
}


def write_random(path: Path, size: int, seed: int, prefix: bytes = b"") -> None:
    """Write `prefix` then pseudo-random bytes, 8 MiB at a time, up to exactly `size` bytes."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(prefix)
        left = size - len(prefix)
        while left > 0:
            n = min(BLOCK, left)
            f.write(rng.randbytes(n))
            left -= n


def write_safetensors(path: Path, size: int, seed: int) -> None:
    """A valid single-tensor safetensors file of about `size` bytes (U8 tensor of N bytes)."""
    n = max(size - 128, 1)
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}, separators=(",", ":"))
    raw = header.encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    prefix = struct.pack("<Q", len(raw)) + raw
    write_random(path, len(prefix) + n, seed, prefix)


def json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def build_repos(base: Path, divisor: int) -> dict[str, dict[str, Path | bytes]]:
    """Write the bundled preset's fixture files under `base`; repo id -> {repo path: Path or bytes}."""
    repos: dict[str, dict[str, Path | bytes]] = {}
    seed = 1
    for repo_id, weights in WEIGHTS_MIB.items():
        files: dict[str, Path | bytes] = {}
        for name, mib in weights.items():
            size = max(int(mib * MIB / divisor), 4096)
            path = base / repo_id / name
            seed += 1
            if name.endswith(".safetensors"):
                write_safetensors(path, size, seed)
            else:
                write_random(path, size, seed, b"PK\x03\x04")
            files[name] = path
        for name, kib in UNSELECTED_KIB[repo_id].items():
            seed += 1
            path = base / repo_id / name
            if name.endswith(".safetensors"):
                write_safetensors(path, kib * 1024, seed)
            else:
                write_random(path, kib * 1024, seed)
            files[name] = path
        files["config.json"] = json_bytes({"model_type": repo_id.rpartition("/")[2]})
        files["README.md"] = f"# {repo_id}\n\nBenchmark fixture.\n".encode()
        repos[repo_id] = files
    wan = repos[WAN]
    shards = list(WEIGHTS_MIB[WAN])
    wan["diffusion_pytorch_model.safetensors.index.json"] = json_bytes(
        {
            "metadata": {"total_size": sum(Path(wan[s]).stat().st_size for s in shards)},  # type: ignore[arg-type, misc]
            "weight_map": {f"blocks.{i}.w": s for i, s in enumerate(shards)},
        }
    )
    for name, kib in WAN_SMALL_KIB.items():
        seed += 1
        write_random(base / WAN / name, kib * 1024, seed, b"PK\x03\x04")
        wan[name] = base / WAN / name
    for name in WAN_TOKENIZER_FILES:
        wan[name] = json_bytes({"fixture": name}) if name.endswith(".json") else b"\n\x0e\n\x05<unk>" * 64
    repos[CLIP]["preprocessor_config.json"] = json_bytes({"crop_size": 224})
    repos[CLIP]["tokenizer.json"] = json_bytes({"version": "1.0"})
    repos[T5]["spiece.model"] = b"\n\x0e\n\x05<pad>" + bytes(range(256)) * 8
    repos[T5]["special_tokens_map.json"] = json_bytes({"eos_token": "</s>"})
    repos[T5]["tokenizer_config.json"] = json_bytes({"model_max_length": 512})
    repos[T5]["generation_config.json"] = json_bytes({"eos_token_id": 1})
    return repos


def many_files_repo() -> dict[str, Path | bytes]:
    """1,000 small JSON files in 10 folders (case 7's plan)."""
    return {f"dir{i // 100}/file{i:04d}.json": json_bytes({"i": i}) for i in range(1000)}


def bundled_selection() -> dict[str, tuple[str, list[str]]]:
    """Entry name -> (repo, selected files) of the bundled preset, as the fixture repos resolve it."""
    return {
        "wan2.1-i2v": (
            WAN,
            [
                "config.json",
                *WEIGHTS_MIB[WAN],
                "diffusion_pytorch_model.safetensors.index.json",
                *WAN_SMALL_KIB,
                *WAN_TOKENIZER_FILES,
            ],
        ),
        "clip-vit-large": (CLIP, ["config.json", "preprocessor_config.json", "model.safetensors"]),
        "sd-vae": (VAE, ["config.json", "diffusion_pytorch_model.safetensors"]),
        "t5-base": (
            T5,
            [
                "config.json",
                "pytorch_model.bin",
                "spiece.model",
                "special_tokens_map.json",
                "tokenizer_config.json",
            ],
        ),
    }


def selected_bytes(repos: dict[str, dict[str, Path | bytes]]) -> int:
    """Bytes of every file the bundled preset selects."""
    total = 0
    for repo, files in bundled_selection().values():
        for name in files:
            value = repos[repo][name]
            total += value.stat().st_size if isinstance(value, Path) else len(value)
    return total


def build_comfy(base: Path, divisor: float) -> dict[str, Path | bytes]:
    """The ComfyUI fp16 stack in its real proportions, `COMFY_TOTAL_MIB / divisor` MiB in all."""
    weight = sum(gb for gb, _ in COMFY_FILES.values())
    files: dict[str, Path | bytes] = {}
    for seed, (name, (gb, _)) in enumerate(COMFY_FILES.items(), start=101):
        size = max(int(COMFY_TOTAL_MIB * MIB * gb / weight / divisor), 4096)
        write_safetensors(base / COMFY / name, size, seed)
        files[name] = base / COMFY / name
    for seed, (name, kib) in enumerate(COMFY_UNSELECTED_KIB.items(), start=201):
        write_safetensors(base / COMFY / name, kib * 1024, seed)
        files[name] = base / COMFY / name
    files["README.md"] = b"# Wan 2.1 ComfyUI repackaged\n\nBenchmark fixture.\n"
    return files
