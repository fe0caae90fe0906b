"""Build deterministic fixture repos shaped like the real Wan 2.1 stack, for the fake Hub.

Files are small by default so tests stay fast; `scale` multiplies only the weight files so benchmarks can push
hundreds of MB through the same shapes. Everything is derived from fixed seeds, so two runs (and two machines)
produce byte-identical repos and therefore identical hashes and commit ids.

Stdlib only: benchmarks import it too.
"""

from __future__ import annotations

import functools
import json
import random
import struct
import zlib
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = [
    "CLIP_REPO_ID",
    "COMFY22_REPO_ID",
    "COMFY_REPO_ID",
    "DTYPE_SIZES",
    "T5_REPO_ID",
    "VAE_REPO_ID",
    "WAN_I2V_REPO_ID",
    "add_repos",
    "comfy22_repo",
    "comfy_repo",
    "parse_safetensors_header",
    "pseudo_random_bytes",
    "safetensors_bytes",
    "seed_repos",
]

WAN_I2V_REPO_ID = "Wan-AI/Wan2.1-I2V-14B-480P"
CLIP_REPO_ID = "openai/clip-vit-large-patch14"
VAE_REPO_ID = "stabilityai/sd-vae-ft-mse"
T5_REPO_ID = "google/t5-v1_1-base"
COMFY_REPO_ID = "Comfy-Org/Wan_2.1_ComfyUI_repackaged"
COMFY22_REPO_ID = "Comfy-Org/Wan_2.2_ComfyUI_Repackaged"

DTYPE_SIZES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}

_BLOCK = 1 << 20  # random block repeated to fill large payloads: fast, yet distinct per seed
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MSGPACK_MAGIC = b"\x81\xa6params"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
_GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in ("bin", "h5", "msgpack", "onnx", "pt", "pth", "safetensors", "ckpt", "gguf", "model")
).encode()

TensorSpec = tuple[str, list[int]]


class _RepoSink(Protocol):
    def add_repo(self, repo_id: str, files: Mapping[str, bytes], branch: str = "main") -> str: ...


@functools.lru_cache(maxsize=64)
def _block(seed: int) -> bytes:
    return random.Random(seed).randbytes(_BLOCK)


def pseudo_random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic filler of any size, built by repeating a seeded 1 MiB block (no per-byte Python loop)."""
    block = _block(seed)
    whole, rest = divmod(size, _BLOCK)
    return block * whole + block[:rest]


def _seed_of(name: str) -> int:
    """Stable per-file seed, so no two fixture files share content (and hence a cache blob)."""
    return zlib.crc32(name.encode())


def safetensors_bytes(
    tensors: Mapping[str, TensorSpec] | None = None,
    *,
    data_size: int | None = None,
    seed: int = 0,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """A valid safetensors file: u64 LE header length, space-padded JSON header, then contiguous tensor data.

    `tensors` maps names to `(dtype, shape)`. Without it, one tensor `weight` holds `data_size` bytes (F16
    when the size is even, U8 otherwise) so a test can ask for "a 40 MiB file" directly; giving both is an
    error.
    `metadata` becomes `__metadata__` (defaults to `{"format": "pt"}` like torch exports).
    """
    if tensors is not None and data_size is not None:
        raise ValueError("pass either tensors or data_size, not both")
    if tensors is None:
        if data_size is None:
            tensors = {"weight": ("F16", [16, 16]), "bias": ("F16", [16])}
        elif data_size % 2 == 0:
            tensors = {"weight": ("F16", [data_size // 2])}
        else:
            tensors = {"weight": ("U8", [data_size])}
    header: dict[str, Any] = {"__metadata__": dict(metadata if metadata is not None else {"format": "pt"})}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        if dtype not in DTYPE_SIZES:
            raise ValueError(f"unknown safetensors dtype {dtype!r}")
        if name == "__metadata__":
            raise ValueError("__metadata__ is reserved")
        count = 1
        for dim in shape:
            count *= dim
        nbytes = count * DTYPE_SIZES[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-(8 + len(raw)) % 8)  # the format pads the header so tensor data starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw + pseudo_random_bytes(offset, seed)


def parse_safetensors_header(data: bytes) -> tuple[dict[str, Any], int]:
    """Return (header JSON, data start offset) of a safetensors blob; used by tests to prove validity."""
    if len(data) < 8:
        raise ValueError("too short for a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if 8 + length > len(data):
        raise ValueError("header length runs past the end of the file")
    return json.loads(data[8 : 8 + length]), 8 + length


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _blob(name: str, magic: bytes, size: int) -> bytes:
    """Opaque weight file with a plausible magic prefix (zip for torch pickles, HDF5, msgpack map...)."""
    return magic + pseudo_random_bytes(max(size - len(magic), 0), _seed_of(name))


def _readme(repo_id: str, license_id: str) -> bytes:
    name = repo_id.rpartition("/")[2]
    return f"---\nlicense: {license_id}\n---\n\n# {name}\n\nFixture copy for tests.\n".encode()


def _tokenizer_json(vocab_size: int) -> bytes:
    vocab = {f"tok{i}": i for i in range(vocab_size)}
    return _json(
        {"version": "1.0", "added_tokens": [], "model": {"type": "BPE", "vocab": vocab, "merges": []}}
    )


def _wan_i2v(scale: int) -> dict[str, bytes]:
    """Three diffusion shards + a consistent index, plus the non-diffusers files a manifest must skip."""
    files: dict[str, bytes] = {}
    shard_names = [f"diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    weight_map: dict[str, str] = {}
    total_size = 0
    rows = 64 * scale  # BF16 [rows, 64] = 8 KiB * scale per tensor
    for index, shard in enumerate(shard_names):
        tensors: dict[str, TensorSpec] = {}
        for block in range(index * 2, index * 2 + 2):
            for part in ("self_attn.q.weight", "self_attn.k.weight"):
                tensors[f"blocks.{block}.{part}"] = ("BF16", [rows, 64])
            tensors[f"blocks.{block}.norm3.bias"] = ("F32", [64])
        if index == 0:
            tensors["patch_embedding.weight"] = ("BF16", [64, 36, 1, 2, 2])
        for name, (dtype, shape) in tensors.items():
            weight_map[name] = shard
            count = 1
            for dim in shape:
                count *= dim
            total_size += count * DTYPE_SIZES[dtype]
        files[shard] = safetensors_bytes(tensors, seed=_seed_of(shard))
    files["diffusion_pytorch_model.safetensors.index.json"] = _json(
        {"metadata": {"total_size": total_size}, "weight_map": weight_map}
    )
    files["config.json"] = _json(
        {
            "_class_name": "WanModel",
            "_diffusers_version": "0.33.0",
            "dim": 5120,
            "eps": 1e-06,
            "ffn_dim": 13824,
            "freq_dim": 256,
            "in_dim": 36,
            "model_type": "i2v",
            "num_heads": 40,
            "num_layers": 40,
            "out_dim": 16,
            "text_len": 512,
        }
    )
    kib = 1024 * scale
    files["models_t5_umt5-xxl-enc-bf16.pth"] = _blob("models_t5_umt5-xxl-enc-bf16.pth", _ZIP_MAGIC, 24 * kib)
    clip_pth = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
    files[clip_pth] = _blob(clip_pth, _ZIP_MAGIC, 16 * kib)
    files["Wan2.1_VAE.pth"] = _blob("Wan2.1_VAE.pth", _ZIP_MAGIC, 8 * kib)
    files["google/umt5-xxl/tokenizer.json"] = _tokenizer_json(64)
    files["xlm-roberta-large/tokenizer.json"] = _tokenizer_json(48)
    files["assets/logo.png"] = _blob("assets/logo.png", _PNG_MAGIC, 2048)
    files["examples/i2v_input.JPG"] = _blob("examples/i2v_input.JPG", _JPEG_MAGIC, 4096)
    files["README.md"] = _readme(WAN_I2V_REPO_ID, "apache-2.0")
    files[".gitattributes"] = _GITATTRIBUTES
    return files


def _tokenizer_files(prefix: str) -> dict[str, bytes]:
    vocab = {f"{prefix}{i}": i for i in range(32)}
    return {
        "tokenizer.json": _tokenizer_json(32),
        "vocab.json": _json(vocab),
        "merges.txt": b"#version: 0.2\n"
        + b"".join(f"{prefix}{i} {prefix}{i + 1}\n".encode() for i in range(16)),
        "special_tokens_map.json": _json({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"}),
        "tokenizer_config.json": _json({"model_max_length": 77, "do_lower_case": True}),
    }


def _clip(scale: int) -> dict[str, bytes]:
    kib = 1024 * scale
    rows = 32 * scale  # F32 [rows, 64] = 8 KiB * scale per tensor
    safetensors = {
        "text_model.embeddings.token_embedding.weight": ("F32", [rows, 64]),
        "vision_model.embeddings.patch_embedding.weight": ("F32", [rows, 64]),
        "logit_scale": ("F32", []),
    }
    files = {
        "config.json": _json({"model_type": "clip", "projection_dim": 768, "architectures": ["CLIPModel"]}),
        "pytorch_model.bin": _blob(f"{CLIP_REPO_ID}/pytorch_model.bin", _ZIP_MAGIC, 16 * kib),
        "model.safetensors": safetensors_bytes(
            safetensors, seed=_seed_of(f"{CLIP_REPO_ID}/model.safetensors")
        ),
        "tf_model.h5": _blob(f"{CLIP_REPO_ID}/tf_model.h5", _HDF5_MAGIC, 16 * kib),
        "flax_model.msgpack": _blob(f"{CLIP_REPO_ID}/flax_model.msgpack", _MSGPACK_MAGIC, 16 * kib),
        "preprocessor_config.json": _json(
            {"crop_size": 224, "do_normalize": True, "image_mean": [0.481, 0.457]}
        ),
        "README.md": _readme(CLIP_REPO_ID, "mit"),
        ".gitattributes": _GITATTRIBUTES,
    }
    files.update(_tokenizer_files("clip"))
    return files


def _vae(scale: int) -> dict[str, bytes]:
    kib = 1024 * scale
    rows = 64 * scale
    safetensors = {
        "decoder.conv_in.weight": ("F32", [rows, 16]),
        "encoder.conv_in.weight": ("F32", [rows, 16]),
    }
    return {
        "config.json": _json({"_class_name": "AutoencoderKL", "latent_channels": 4, "sample_size": 256}),
        "diffusion_pytorch_model.bin": _blob(
            f"{VAE_REPO_ID}/diffusion_pytorch_model.bin", _ZIP_MAGIC, 8 * kib
        ),
        "diffusion_pytorch_model.safetensors": safetensors_bytes(
            safetensors, seed=_seed_of(f"{VAE_REPO_ID}/diffusion_pytorch_model.safetensors")
        ),
        "README.md": _readme(VAE_REPO_ID, "mit"),
        ".gitattributes": _GITATTRIBUTES,
    }


def _t5(scale: int) -> dict[str, bytes]:
    kib = 1024 * scale
    return {
        "config.json": _json(
            {"model_type": "t5", "d_model": 768, "architectures": ["T5ForConditionalGeneration"]}
        ),
        "generation_config.json": _json({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}),
        "pytorch_model.bin": _blob(f"{T5_REPO_ID}/pytorch_model.bin", _ZIP_MAGIC, 16 * kib),
        "tf_model.h5": _blob(f"{T5_REPO_ID}/tf_model.h5", _HDF5_MAGIC, 12 * kib),
        "flax_model.msgpack": _blob(f"{T5_REPO_ID}/flax_model.msgpack", _MSGPACK_MAGIC, 12 * kib),
        "spiece.model": _blob(f"{T5_REPO_ID}/spiece.model", b"\n\x0e\n\x05<pad>", 2048),
        "special_tokens_map.json": _json({"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}),
        "tokenizer_config.json": _json({"model_max_length": 512, "extra_ids": 100}),
        "README.md": _readme(T5_REPO_ID, "apache-2.0"),
        ".gitattributes": _GITATTRIBUTES,
    }


def seed_repos(scale: int = 1) -> dict[str, dict[str, bytes]]:
    """The four upstream repos the Wan stack pulls from, keyed by repo id (~300 KiB total at scale 1).

    `scale` multiplies every weight file's size, so scale=1000 gives roughly 300 MB for benchmarks.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    return {
        WAN_I2V_REPO_ID: _wan_i2v(scale),
        CLIP_REPO_ID: _clip(scale),
        VAE_REPO_ID: _vae(scale),
        T5_REPO_ID: _t5(scale),
    }


def comfy_repo(scale: int = 1) -> dict[str, dict[str, bytes]]:
    """The ComfyUI repackaged Wan repo, keyed by repo id like `seed_repos`: many variants per model.

    Every file is a tiny valid safetensors with the dtype its name advertises, so a manifest that picks the
    wrong variant downloads different bytes and fails its hashes.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    variants = {"fp8_scaled": "F8_E4M3", "fp8_e4m3fn": "F8_E4M3", "fp16": "F16", "bf16": "BF16"}
    wanted: dict[str, str] = {}
    for resolution in ("480p", "720p"):
        for suffix, dtype in variants.items():
            wanted[f"split_files/diffusion_models/wan2.1_i2v_{resolution}_14B_{suffix}.safetensors"] = dtype
    wanted["split_files/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"] = "F8_E4M3"
    wanted["split_files/text_encoders/umt5_xxl_fp16.safetensors"] = "F16"
    wanted["split_files/clip_vision/clip_vision_h.safetensors"] = "F16"
    wanted["split_files/vae/wan_2.1_vae.safetensors"] = "F32"
    files: dict[str, bytes] = {}
    for path, dtype in wanted.items():
        elements = 1024 * scale // DTYPE_SIZES[dtype] * 4  # 4 KiB * scale per file
        files[path] = safetensors_bytes({"weight": (dtype, [elements])}, seed=_seed_of(path))
    files["README.md"] = _readme(COMFY_REPO_ID, "apache-2.0")
    return {COMFY_REPO_ID: files}


def comfy22_repo(scale: int = 1, *, own_vae_bytes: bool = False) -> dict[str, dict[str, bytes]]:
    """The Wan 2.2 repackaged repo, keyed by repo id: 2.2 I2V experts and LoRAs, and its copy of the 2.1 VAE.

    The 2.1 VAE (`split_files/vae/wan_2.1_vae.safetensors`) has the same bytes as in `comfy_repo`, as on the
    real Hub, unless `own_vae_bytes`, which makes the two repos disagree about one ComfyUI target.
    """
    if scale < 1:
        raise ValueError("scale must be >= 1")
    wanted = {
        "split_files/diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors": "F8_E4M3",
        "split_files/diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors": "F8_E4M3",
        "split_files/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors": "BF16",
        "split_files/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors": "BF16",
        "split_files/vae/wan2.2_vae.safetensors": "F32",
        "split_files/vae/wan_2.1_vae.safetensors": "F32",
    }
    files: dict[str, bytes] = {}
    for path, dtype in wanted.items():
        elements = 1024 * scale // DTYPE_SIZES[dtype] * 4
        seed = _seed_of(f"{COMFY22_REPO_ID}/{path}")
        if path.endswith("wan_2.1_vae.safetensors") and not own_vae_bytes:
            seed = _seed_of(path)  # what comfy_repo uses: the same bytes in both repos
        files[path] = safetensors_bytes({"weight": (dtype, [elements])}, seed=seed)
    files["README.md"] = _readme(COMFY22_REPO_ID, "apache-2.0")
    return {COMFY22_REPO_ID: files}


def add_repos(server: _RepoSink, repos: Mapping[str, Mapping[str, bytes]]) -> dict[str, str]:
    """Load fixture repos into a HubServer and return each repo's new `main` commit sha."""
    return {repo_id: server.add_repo(repo_id, dict(files)) for repo_id, files in repos.items()}
