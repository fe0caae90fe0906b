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
    "family_repos",
    "parse_safetensors_header",
    "pseudo_random_bytes",
    "safetensors_bytes",
    "seed_repos",
    "tiny_repo",
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
_SPM_MAGIC = b"\n\x0e\n\x05<unk>"  # a SentencePiece model is a protobuf
_GGUF_MAGIC = b"GGUF\x03\x00\x00\x00"
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


def _wan_i2v(scale: int, repo_id: str = "Wan-AI/Wan2.1-I2V-14B-480P") -> dict[str, bytes]:
    """Three diffusion shards + a consistent index, the encoders, VAE and tokenizer folders Wan's
    generate.py opens (the real repo's names; it has seven shards), and the files it never opens."""
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
    files.update(_umt5_tokenizer())
    files["xlm-roberta-large/tokenizer.json"] = _tokenizer_json(48)
    files["xlm-roberta-large/sentencepiece.bpe.model"] = _blob("xlm-roberta-large/spm", _SPM_MAGIC, 1024)
    files["xlm-roberta-large/special_tokens_map.json"] = _json({"bos_token": "<s>", "eos_token": "</s>"})
    files["xlm-roberta-large/tokenizer_config.json"] = _json(
        {"model_max_length": 512, "tokenizer_class": "XLMRobertaTokenizer"}
    )
    files["assets/logo.png"] = _blob("assets/logo.png", _PNG_MAGIC, 2048)
    files["examples/i2v_input.JPG"] = _blob("examples/i2v_input.JPG", _JPEG_MAGIC, 4096)
    files["README.md"] = _readme(repo_id, "apache-2.0")
    files["LICENSE.txt"] = b"Apache License, Version 2.0 (fixture)\n"
    files[".gitattributes"] = _GITATTRIBUTES
    return files


def _umt5_tokenizer() -> dict[str, bytes]:
    """`google/umt5-xxl/` as Wan-AI's repos carry it (what AutoTokenizer reads for umT5)."""
    return {
        "google/umt5-xxl/tokenizer.json": _tokenizer_json(64),
        "google/umt5-xxl/spiece.model": _blob("google/umt5-xxl/spiece.model", _SPM_MAGIC, 1024),
        "google/umt5-xxl/special_tokens_map.json": _json({"eos_token": "</s>", "pad_token": "<pad>"}),
        "google/umt5-xxl/tokenizer_config.json": _json(
            {"model_max_length": 512, "tokenizer_class": "T5Tokenizer"}
        ),
    }


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
        f"split_files/diffusion_models/wan2.2_{task}_{expert}_noise_14B_{suffix}.safetensors": dtype
        for task in ("i2v", "t2v")
        for expert in ("high", "low")
        for suffix, dtype in (("fp8_scaled", "F8_E4M3"), ("fp16", "F16"))
    }
    wanted |= {
        "split_files/diffusion_models/wan2.2_ti2v_5B_fp16.safetensors": "F16",
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


# -- the rest of the Wan family the presets name: each repo's real file list, tiny contents -----------------

WAN21_DIFFUSERS_FILES = (
    "image_encoder/config.json",
    "image_encoder/model.safetensors",
    "image_processor/preprocessor_config.json",
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    *(f"text_encoder/model-{i:05d}-of-00005.safetensors" for i in range(1, 6)),
    "text_encoder/model.safetensors.index.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/spiece.model",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "transformer/config.json",
    *(f"transformer/diffusion_pytorch_model-{i:05d}-of-00014.safetensors" for i in range(1, 15)),
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "README.md",
    ".gitattributes",
)
_DIFFUSERS22_COMMON = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    *(f"text_encoder/model-{i:05d}-of-00003.safetensors" for i in range(1, 4)),
    "text_encoder/model.safetensors.index.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/spiece.model",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "README.md",
    ".gitattributes",
)
WAN22_I2V_DIFFUSERS_FILES = (
    *_DIFFUSERS22_COMMON,
    *(
        f"{folder}/{name}"
        for folder in ("transformer", "transformer_2")
        for name in (
            "config.json",
            *(f"diffusion_pytorch_model-{i:05d}-of-00012.safetensors" for i in range(1, 13)),
            "diffusion_pytorch_model.safetensors.index.json",
        )
    ),
)
WAN22_TI2V_DIFFUSERS_FILES = (
    *_DIFFUSERS22_COMMON,
    "transformer/config.json",
    *(f"transformer/diffusion_pytorch_model-{i:05d}-of-00005.safetensors" for i in range(1, 6)),
    "transformer/diffusion_pytorch_model.safetensors.index.json",
)
_UMT5_FILES = tuple(
    f"google/umt5-xxl/{n}"
    for n in ("special_tokens_map.json", "spiece.model", "tokenizer.json", "tokenizer_config.json")
)
_README_FILES = ("README.md", ".gitattributes", "assets/logo.png", "examples/i2v_input.JPG")
WAN22_I2V_FILES = (
    *(
        f"{expert}_noise_model/{name}"
        for expert in ("high", "low")
        for name in (
            "config.json",
            *(f"diffusion_pytorch_model-{i:05d}-of-00006.safetensors" for i in range(1, 7)),
            "diffusion_pytorch_model.safetensors.index.json",
        )
    ),
    "models_t5_umt5-xxl-enc-bf16.pth",
    "Wan2.1_VAE.pth",
    *_UMT5_FILES,
    "configuration.json",
    *_README_FILES,
)
WAN22_TI2V_FILES = (
    "config.json",
    *(f"diffusion_pytorch_model-{i:05d}-of-00003.safetensors" for i in range(1, 4)),
    "diffusion_pytorch_model.safetensors.index.json",
    "models_t5_umt5-xxl-enc-bf16.pth",
    "Wan2.2_VAE.pth",
    *_UMT5_FILES,
    "configuration.json",
    *_README_FILES,
)
CITY96_QUANTS = (
    "Q3_K_S",
    "Q3_K_M",
    "Q4_0",
    "Q4_1",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_0",
    "Q5_1",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "Q8_0",
    "F16",
    "BF16",
)
QUANTSTACK_I2V_QUANTS = (
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_0",
    "Q5_1",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "Q8_0",
)
QUANTSTACK_TI2V_QUANTS = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0")
# What each Diffusers repo's model_index.json lists: component -> (library, class), null when unused.
_WAN21_I2V_INDEX = {
    "_class_name": "WanImageToVideoPipeline",
    "image_encoder": ["transformers", "CLIPVisionModel"],
    "image_processor": ["transformers", "CLIPImageProcessor"],
    "scheduler": ["diffusers", "UniPCMultistepScheduler"],
    "text_encoder": ["transformers", "UMT5EncoderModel"],
    "tokenizer": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "WanTransformer3DModel"],
    "vae": ["diffusers", "AutoencoderKLWan"],
}
_WAN22_I2V_INDEX = {
    **_WAN21_I2V_INDEX,
    "boundary_ratio": 0.9,
    "image_encoder": [None, None],
    "image_processor": [None, None],
    "transformer_2": ["diffusers", "WanTransformer3DModel"],
}
_WAN22_TI2V_INDEX = {
    "_class_name": "WanPipeline",
    "expand_timesteps": True,
    "scheduler": ["diffusers", "UniPCMultistepScheduler"],
    "text_encoder": ["transformers", "UMT5EncoderModel"],
    "tokenizer": ["transformers", "T5TokenizerFast"],
    "transformer": ["diffusers", "WanTransformer3DModel"],
    "transformer_2": [None, None],
    "vae": ["diffusers", "AutoencoderKLWan"],
}


def tiny_repo(
    repo_id: str, paths: tuple[str, ...], *, model_index: Mapping[str, Any] | None = None
) -> dict[str, bytes]:
    """A repo with exactly `paths`, each a small file of its kind: safetensors that parse, a shard index
    naming the shards beside it, JSON, or an opaque blob with its format's magic (.pth, .gguf, ...)."""
    files: dict[str, bytes] = {}
    for path in paths:
        seed = _seed_of(f"{repo_id}/{path}")
        name = path.rpartition("/")[2]
        if name.endswith(".safetensors.index.json"):
            folder, _, _ = path.rpartition("/")
            stem = name.removesuffix(".safetensors.index.json")
            shards = sorted(
                p.rpartition("/")[2]
                for p in paths
                if p.rpartition("/")[0] == folder and p.rpartition("/")[2].startswith(f"{stem}-")
            )
            files[path] = _json(
                {
                    "metadata": {"total_size": 256 * len(shards)},
                    "weight_map": {f"w{i}": s for i, s in enumerate(shards)},
                }
            )
        elif name.endswith(".safetensors"):
            files[path] = safetensors_bytes({"weight": ("F16", [128])}, seed=seed)
        elif name == "model_index.json" and model_index is not None:
            files[path] = _json(dict(model_index))
        elif name.endswith(".json"):
            files[path] = _json({"_fixture": path})
        elif name.endswith(".gguf"):
            files[path] = _blob(f"{repo_id}/{path}", _GGUF_MAGIC, 512)
        elif name.endswith(".pth"):
            files[path] = _blob(f"{repo_id}/{path}", _ZIP_MAGIC, 512)
        elif name.endswith(".model"):
            files[path] = _blob(f"{repo_id}/{path}", _SPM_MAGIC, 256)
        elif name == ".gitattributes":
            files[path] = _GITATTRIBUTES
        elif name == "README.md":
            files[path] = _readme(repo_id, "apache-2.0")
        elif name.endswith(".png"):
            files[path] = _blob(f"{repo_id}/{path}", _PNG_MAGIC, 256)
        elif name.lower().endswith(".jpg"):
            files[path] = _blob(f"{repo_id}/{path}", _JPEG_MAGIC, 256)
        else:
            raise ValueError(f"no fixture content for {path!r}")
    return files


def family_repos() -> dict[str, dict[str, bytes]]:
    """Every repo a bundled preset names besides the four seed repos, keyed by repo id: the real
    repos' file lists (as listed on the Hub; ../shared/wan-repos.md), tiny contents."""
    gguf_readme = ("README.md", ".gitattributes")
    repos: dict[str, dict[str, bytes]] = {
        "Wan-AI/Wan2.1-I2V-14B-720P": _wan_i2v(1, "Wan-AI/Wan2.1-I2V-14B-720P"),
        **comfy_repo(),
        **comfy22_repo(),
    }
    for res in ("480P", "720P"):
        repo = f"Wan-AI/Wan2.1-I2V-14B-{res}-Diffusers"
        repos[repo] = tiny_repo(repo, WAN21_DIFFUSERS_FILES, model_index=_WAN21_I2V_INDEX)
        repo = f"city96/Wan2.1-I2V-14B-{res}-gguf"
        names = tuple(f"wan2.1-i2v-14b-{res.lower()}-{q}.gguf" for q in CITY96_QUANTS)
        repos[repo] = tiny_repo(repo, (*names, *gguf_readme))
    specs: dict[str, tuple[tuple[str, ...], Mapping[str, Any] | None]] = {
        "Wan-AI/Wan2.2-I2V-A14B": (WAN22_I2V_FILES, None),
        "Wan-AI/Wan2.2-I2V-A14B-Diffusers": (WAN22_I2V_DIFFUSERS_FILES, _WAN22_I2V_INDEX),
        "Wan-AI/Wan2.2-TI2V-5B": (WAN22_TI2V_FILES, None),
        "Wan-AI/Wan2.2-TI2V-5B-Diffusers": (WAN22_TI2V_DIFFUSERS_FILES, _WAN22_TI2V_INDEX),
        "QuantStack/Wan2.2-I2V-A14B-GGUF": (
            (
                *(
                    f"{e}Noise/Wan2.2-I2V-A14B-{e}Noise-{q}.gguf"
                    for e in ("High", "Low")
                    for q in QUANTSTACK_I2V_QUANTS
                ),
                "VAE/Wan2.1_VAE.safetensors",
                *gguf_readme,
            ),
            None,
        ),
        "QuantStack/Wan2.2-TI2V-5B-GGUF": (
            (
                *(f"Wan2.2-TI2V-5B-{q}.gguf" for q in QUANTSTACK_TI2V_QUANTS),
                "VAE/Wan2.2_VAE.safetensors",
                *gguf_readme,
            ),
            None,
        ),
    }
    for repo, (paths, index) in specs.items():
        repos[repo] = tiny_repo(repo, paths, model_index=index)
    return repos


def add_repos(server: _RepoSink, repos: Mapping[str, Mapping[str, bytes]]) -> dict[str, str]:
    """Load fixture repos into a HubServer and return each repo's new `main` commit sha."""
    return {repo_id: server.add_repo(repo_id, dict(files)) for repo_id, files in repos.items()}
