"""What each program that loads a preset opens, as data taken from its source, and the paths that
implies for a folder wanmodels built. The tests check those paths on disk without the runtime
installed (none of torch, transformers, diffusers or ComfyUI is a dependency).

Sources, each read at the commit given (file:line there):
- Wan2.1: github.com/Wan-Video/Wan2.1 @ 9737cba9c1c3c4d04b33fcad41c111989865d315
- Wan2.2: github.com/Wan-Video/Wan2.2 @ 42bf4cfaa384bc21833865abc2f9e6c0e67233dc
- Diffusers: github.com/huggingface/diffusers @ 58eb52c0803ea9af3abec60841c2a093bdf1f951
- transformers: the 4.57.6 wheel from the package registry
- ComfyUI: github.com/Comfy-Org/ComfyUI, folder_paths.py @ 1df2885ebd28b8510d3d40f6a96b68da1232adaa;
  nodes.py @ 5aabaf5171541aa26738d53f9d1f91c1b3e3497a read through a code index, without line
  numbers (cited by class)
- ComfyUI-GGUF: github.com/city96/ComfyUI-GGUF @ 795e45156ece99afbc3efef911e63fcb46e6a20d
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

# -- transformers 4.57.6 -------------------------------------------------------------------------------
# utils/__init__.py:288,295-297,299: the file names from_pretrained looks for.
TF_WEIGHTS_NAME: Final = "pytorch_model.bin"
TF_SAFE_WEIGHTS_NAME: Final = "model.safetensors"
TF_SAFE_WEIGHTS_INDEX_NAME: Final = "model.safetensors.index.json"
TF_CONFIG_NAME: Final = "config.json"
IMAGE_PROCESSOR_NAME: Final = "preprocessor_config.json"
# tokenization_utils_base.py:153,155,158 and 1979-1986: the files every tokenizer looks for
# (special tokens map, tokenizer config, the fast tokenizer's tokenizer.json) ...
TOKENIZER_FILES: Final = ("special_tokens_map.json", "tokenizer_config.json")
FAST_TOKENIZER_FILE: Final = "tokenizer.json"
# ... plus the vocabulary files of its class: models/t5/tokenization_t5_fast.py:35,
# models/t5/tokenization_t5.py:38, models/xlm_roberta/tokenization_xlm_roberta_fast.py:34.
TOKENIZER_VOCAB: Final = {
    "T5TokenizerFast": ("spiece.model", FAST_TOKENIZER_FILE),
    "T5Tokenizer": ("spiece.model",),
    "XLMRobertaTokenizerFast": ("sentencepiece.bpe.model", FAST_TOKENIZER_FILE),
}

# -- Diffusers @ 58eb52c0 --------------------------------------------------------------------------------
# src/diffusers/utils/constants.py:29,33,34; models/modeling_utils.py:251 (config_name = CONFIG_NAME).
DIFFUSERS_CONFIG_NAME: Final = "config.json"
DIFFUSERS_SAFE_WEIGHTS_NAME: Final = "diffusion_pytorch_model.safetensors"
DIFFUSERS_SAFE_WEIGHTS_INDEX_NAME: Final = "diffusion_pytorch_model.safetensors.index.json"
# pipelines/pipeline_utils.py:216 (config_name = "model_index.json") and :1827 (read first);
# pipelines/pipeline_loading_utils.py:903-904 (each component from its own subfolder).
MODEL_INDEX: Final = "model_index.json"
# schedulers/scheduling_utils.py:27,95.
SCHEDULER_CONFIG_NAME: Final = "scheduler_config.json"
# What each class a model_index.json names loads with: pipelines/wan/pipeline_wan_i2v.py:21,167-191
# and pipelines/wan/pipeline_wan.py:131-151 name the component classes.
DIFFUSERS_MODELS: Final = frozenset({"WanTransformer3DModel", "AutoencoderKLWan"})
TRANSFORMERS_MODELS: Final = frozenset({"UMT5EncoderModel", "CLIPVisionModel"})
SCHEDULERS: Final = frozenset({"UniPCMultistepScheduler", "FlowMatchEulerDiscreteScheduler"})
IMAGE_PROCESSORS: Final = frozenset({"CLIPImageProcessor"})


@dataclass(frozen=True)
class WanConfig:
    """One task of Wan's generate.py: the paths its config joins to --ckpt_dir."""

    t5_checkpoint: str
    t5_tokenizer: str
    vae_checkpoint: str
    dit_folders: tuple[str, ...]  # WanModel.from_pretrained(checkpoint_dir[, subfolder=...])
    clip_checkpoint: str | None = None
    clip_tokenizer: str | None = None


# Wan2.1 wan/configs/wan_i2v_14B.py:13-14,19-20,23; wan/image2video.py:83-84 (T5 and its
# tokenizer), :91 (VAE), :97-99 (CLIP and its tokenizer), :102 (WanModel.from_pretrained(checkpoint_dir));
# generate.py:417-419 (WanI2V(config=cfg, checkpoint_dir=args.ckpt_dir)).
WAN21_I2V_14B: Final = WanConfig(
    t5_checkpoint="models_t5_umt5-xxl-enc-bf16.pth",
    t5_tokenizer="google/umt5-xxl",
    vae_checkpoint="Wan2.1_VAE.pth",
    dit_folders=("",),
    clip_checkpoint="models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
    clip_tokenizer="xlm-roberta-large",
)
# Wan2.2 wan/configs/wan_i2v_A14B.py:12-13,16,30-31; wan/image2video.py:92-93 (T5, tokenizer), :100
# (VAE), :104-105 and :113-114 (WanModel.from_pretrained(checkpoint_dir, subfolder=...) for each
# expert); generate.py:518-520. No CLIP encoder.
WAN22_I2V_A14B: Final = WanConfig(
    t5_checkpoint="models_t5_umt5-xxl-enc-bf16.pth",
    t5_tokenizer="google/umt5-xxl",
    vae_checkpoint="Wan2.1_VAE.pth",
    dit_folders=("low_noise_model", "high_noise_model"),
)
# Wan2.2 wan/configs/wan_ti2v_5B.py:12-13,16; wan/textimage2video.py:92-93, :99, :103;
# generate.py:430-432.
WAN22_TI2V_5B: Final = WanConfig(
    t5_checkpoint="models_t5_umt5-xxl-enc-bf16.pth",
    t5_tokenizer="google/umt5-xxl",
    vae_checkpoint="Wan2.2_VAE.pth",
    dit_folders=("",),
)
# The tokenizer class AutoTokenizer picks for each folder Wan's configs name (wan/modules/tokenizers.py:46
# calls AutoTokenizer.from_pretrained on the folder; T5EncoderModel and CLIPModel pass these folders).
WAN_TOKENIZERS: Final = {"google/umt5-xxl": "T5TokenizerFast", "xlm-roberta-large": "XLMRobertaTokenizerFast"}

# -- ComfyUI ---------------------------------------------------------------------------------------------
# folder_paths.py:10: the extensions every model folder lists.
SUPPORTED_PT_EXTENSIONS: Final = frozenset(
    {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
)
# folder_paths.py:28-32: each category and the folders under models/ it reads, in order
# (diffusion_models also reads the older unet/, text_encoders the older clip/).
COMFY_FOLDERS: Final = {
    "loras": (("loras",), SUPPORTED_PT_EXTENSIONS),
    "vae": (("vae",), SUPPORTED_PT_EXTENSIONS),
    "text_encoders": (("text_encoders", "clip"), SUPPORTED_PT_EXTENSIONS),
    "diffusion_models": (("unet", "diffusion_models"), SUPPORTED_PT_EXTENSIONS),
    "clip_vision": (("clip_vision",), SUPPORTED_PT_EXTENSIONS),
    # ComfyUI-GGUF nodes.py:19-31: "unet_gguf" is diffusion_models' folder list with {".gguf"} only.
    "unet_gguf": (("unet", "diffusion_models"), frozenset({".gguf"})),
}
# Which category each loader node lists its choices from: nodes.py classes UNETLoader
# ("diffusion_models"), CLIPLoader ("text_encoders"), CLIPVisionLoader ("clip_vision"), VAELoader
# ("vae"), LoraLoaderModelOnly ("loras"); ComfyUI-GGUF nodes.py:134-137 UnetLoaderGGUF ("unet_gguf").
COMFY_NODES: Final = {
    "UNETLoader": "diffusion_models",
    "CLIPLoader": "text_encoders",
    "CLIPVisionLoader": "clip_vision",
    "VAELoader": "vae",
    "LoraLoaderModelOnly": "loras",
    "UnetLoaderGGUF": "unet_gguf",
}


def comfy_filename_list(root: Path, category: str) -> dict[str, Path]:
    """What a loader of `category` offers under the models folder `root`, as folder_paths.py's
    get_filename_list_ builds it (recursive_search of each folder, then filter_files_extensions):
    name (relative to its folder) -> the file, the first folder winning (get_full_path)."""
    folders, extensions = COMFY_FOLDERS[category]
    found: dict[str, Path] = {}
    for folder in folders:
        base = root / folder
        for dirpath, subdirs, filenames in os.walk(base, followlinks=True):
            subdirs[:] = [d for d in subdirs if d != ".git"]
            for name in filenames:
                path = Path(dirpath) / name
                if path.suffix.lower() in extensions:
                    found.setdefault(path.relative_to(base).as_posix(), path)
    return found


def comfy_opens(root: Path, loads: tuple[tuple[str, str], ...]) -> set[str]:
    """The files a workflow's loader nodes open, as paths under `root`; each (node, file name)
    must be offered by that node's list, else AssertionError names what the node lists."""
    opened = set()
    for node, name in loads:
        offered = comfy_filename_list(root, COMFY_NODES[node])
        assert name in offered, f"{node} does not list {name!r}; it lists {sorted(offered)}"
        opened.add(offered[name].relative_to(root).as_posix())
    return opened


# -- folders -------------------------------------------------------------------------------------------


def _index_shards(folder: Path, index: str) -> set[str]:
    doc = json.loads((folder / index).read_text(encoding="utf-8"))
    return {str(v) for v in doc["weight_map"].values()}


def diffusers_model(folder: Path) -> set[str]:
    """ModelMixin.from_pretrained(folder): its config, then the safetensors weights or the index and
    every shard it names (paths relative to `folder`)."""
    opened = {DIFFUSERS_CONFIG_NAME}
    if (folder / DIFFUSERS_SAFE_WEIGHTS_INDEX_NAME).is_file():
        opened |= {
            DIFFUSERS_SAFE_WEIGHTS_INDEX_NAME,
            *_index_shards(folder, DIFFUSERS_SAFE_WEIGHTS_INDEX_NAME),
        }
    else:
        opened.add(DIFFUSERS_SAFE_WEIGHTS_NAME)
    return opened


def transformers_model(folder: Path) -> set[str]:
    """PreTrainedModel.from_pretrained(folder): its config, then model.safetensors, or the index and
    every shard it names, or (a repo without safetensors) pytorch_model.bin."""
    opened = {TF_CONFIG_NAME}
    if (folder / TF_SAFE_WEIGHTS_INDEX_NAME).is_file():
        opened |= {TF_SAFE_WEIGHTS_INDEX_NAME, *_index_shards(folder, TF_SAFE_WEIGHTS_INDEX_NAME)}
    elif (folder / TF_SAFE_WEIGHTS_NAME).is_file():
        opened.add(TF_SAFE_WEIGHTS_NAME)
    else:
        opened.add(TF_WEIGHTS_NAME)
    return opened


def tokenizer(tokenizer_class: str) -> set[str]:
    """The files a tokenizer of `tokenizer_class` reads from its folder."""
    return {*TOKENIZER_FILES, *TOKENIZER_VOCAB[tokenizer_class]}


def _under(prefix: str, names: set[str]) -> set[str]:
    return {f"{prefix}/{n}" if prefix else n for n in names}


def wan_generate(ckpt_dir: Path, config: WanConfig) -> set[str]:
    """What Wan's generate.py opens under --ckpt_dir (paths relative to it)."""
    opened = {config.t5_checkpoint, config.vae_checkpoint}
    opened |= _under(config.t5_tokenizer, tokenizer(WAN_TOKENIZERS[config.t5_tokenizer]))
    if config.clip_checkpoint and config.clip_tokenizer:
        opened.add(config.clip_checkpoint)
        opened |= _under(config.clip_tokenizer, tokenizer(WAN_TOKENIZERS[config.clip_tokenizer]))
    for sub in config.dit_folders:
        opened |= _under(sub, diffusers_model(ckpt_dir / sub))
    return opened


def diffusers_pipeline(folder: Path) -> set[str]:
    """DiffusionPipeline.from_pretrained(folder): model_index.json, then each component it names
    (a [library, class] pair; [null, null] for an unused one) from its subfolder."""
    opened = {MODEL_INDEX}
    index = json.loads((folder / MODEL_INDEX).read_text(encoding="utf-8"))
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or value[1] is None:
            continue
        cls = value[1]
        if cls in DIFFUSERS_MODELS:
            files = diffusers_model(folder / name)
        elif cls in TRANSFORMERS_MODELS:
            files = transformers_model(folder / name)
        elif cls in SCHEDULERS:
            files = {SCHEDULER_CONFIG_NAME}
        elif cls in IMAGE_PROCESSORS:
            files = {IMAGE_PROCESSOR_NAME}
        elif cls in TOKENIZER_VOCAB:
            files = tokenizer(cls)
        else:
            raise AssertionError(f"{folder.name}/{MODEL_INDEX}: no loader known for {name}: {cls}")
        opened |= _under(name, files)
    return opened
