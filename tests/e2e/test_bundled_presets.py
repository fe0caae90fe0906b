"""Every bundled preset downloads from the fixture Hub (repos of the same names, with the real file
lists) end to end, and its folder holds every path the program that loads it opens, and nothing
else: what each runtime opens is data taken from its source (tests/support/runtimes.py, file and line).

One server holds every repo for the whole module; each test downloads into its own folder."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import runtimes
from tests.support.cli import Cli, cli_env
from tests.support.clirun import CliRun, run_cli
from tests.support.hubserver import HubServer
from tests.support.repos import add_repos, family_repos, seed_repos
from wanmodels.inputs.lockfile import selection_fingerprint
from wanmodels.inputs.manifest import load_manifest
from wanmodels.inputs.presets import ALIASES, list_presets, open_manifest, preset_path

PRESETS = list_presets()
COMFY_ROOT = "ComfyUI/models"


@pytest.fixture(scope="module")
def family_hub() -> Iterator[HubServer]:
    with HubServer() as server:
        add_repos(server, seed_repos())
        add_repos(server, family_repos())
        yield server


@pytest.fixture
def run(family_hub: HubServer, workdir: Path) -> Cli:
    """`python -m wanmodels ARGS` in `workdir` against the module's Hub."""

    def call(*args: str) -> CliRun:
        return run_cli(args, cwd=workdir, env=cli_env(family_hub), changed_env={}, timeout=120)

    return call


# -- what each preset's runtime opens ----------------------------------------------------------------------

Opens = Callable[[Path], set[str]]  # the root a preset filled -> the paths (under it) its runtime opens


def _in(folder: str, opens: Callable[[Path], set[str]]) -> Opens:
    return lambda root: {f"{folder}/{path}" for path in opens(root / folder)}


def _wan(folder: str, config: runtimes.WanConfig) -> Opens:
    return _in(folder, lambda ckpt: runtimes.wan_generate(ckpt, config))


def _pipeline(folder: str) -> Opens:
    return _in(folder, runtimes.diffusers_pipeline)


def _comfy(*loads: tuple[str, str]) -> Opens:
    return lambda root: runtimes.comfy_opens(root, loads)


def _clip_vit_large(folder: Path) -> set[str]:
    # The original list's CLIP: transformers' CLIPModel and CLIPImageProcessor.from_pretrained.
    return {*runtimes.transformers_model(folder), runtimes.IMAGE_PROCESSOR_NAME}


def _t5_base(folder: Path) -> set[str]:
    # The original list's T5: T5EncoderModel (no safetensors in the repo) and the slow T5Tokenizer.
    return runtimes.transformers_model(folder) | runtimes.tokenizer("T5Tokenizer")


UMT5_FP8 = ("CLIPLoader", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
CLIP_VISION_H = ("CLIPVisionLoader", "clip_vision_h.safetensors")
WAN21_VAE = ("VAELoader", "wan_2.1_vae.safetensors")
WAN22_VAE = ("VAELoader", "wan2.2_vae.safetensors")
# The node -> file choices of ComfyUI's own templates (image_to_video_wan, video_wan2_2_14B_i2v,
# video_wan2_2_5B_ti2v) at each preset's default options.
RUNTIMES: dict[str, tuple[Opens, ...]] = {
    "wan2.1-i2v": (
        _wan("wan2.1-i2v", runtimes.WAN21_I2V_14B),
        _in("clip-vit-large", _clip_vit_large),
        _in("sd-vae", runtimes.diffusers_model),  # diffusers' AutoencoderKL
        _in("t5-base", _t5_base),
    ),
    "wan2.1-i2v-native": (_wan("Wan2.1-I2V-14B-480P", runtimes.WAN21_I2V_14B),),
    "wan2.1-i2v-480p": (_wan("Wan2.1-I2V-14B-480P", runtimes.WAN21_I2V_14B),),
    "wan2.1-i2v-720p": (_wan("Wan2.1-I2V-14B-720P", runtimes.WAN21_I2V_14B),),
    "wan2.1-i2v-diffusers": (_pipeline("Wan2.1-I2V-14B-480P-Diffusers"),),
    "wan2.1-i2v-480p-diffusers": (_pipeline("Wan2.1-I2V-14B-480P-Diffusers"),),
    "wan2.1-comfyui": (
        _comfy(
            ("UNETLoader", "wan2.1_i2v_480p_14B_fp8_scaled.safetensors"), UMT5_FP8, CLIP_VISION_H, WAN21_VAE
        ),
    ),
    "wan2.1-comfyui-fp16": (
        _comfy(
            ("UNETLoader", "wan2.1_i2v_480p_14B_fp16.safetensors"),
            ("CLIPLoader", "umt5_xxl_fp16.safetensors"),
            CLIP_VISION_H,
            WAN21_VAE,
        ),
    ),
    "wan2.1-i2v-gguf": (
        _comfy(("UnetLoaderGGUF", "wan2.1-i2v-14b-480p-Q4_K_M.gguf"), UMT5_FP8, CLIP_VISION_H, WAN21_VAE),
    ),
    "wan2.2-i2v": (_wan("Wan2.2-I2V-A14B", runtimes.WAN22_I2V_A14B),),
    "wan2.2-i2v-diffusers": (_pipeline("Wan2.2-I2V-A14B-Diffusers"),),
    "wan2.2-i2v-comfyui": (
        _comfy(
            ("UNETLoader", "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"),
            ("UNETLoader", "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors"),
            UMT5_FP8,
            WAN21_VAE,
        ),
    ),
    "wan2.2-i2v-gguf": (
        _comfy(
            ("UnetLoaderGGUF", "Wan2.2-I2V-A14B-HighNoise-Q4_K_M.gguf"),
            ("UnetLoaderGGUF", "Wan2.2-I2V-A14B-LowNoise-Q4_K_M.gguf"),
            UMT5_FP8,
            WAN21_VAE,
        ),
    ),
    "wan2.2-ti2v-5b": (_wan("Wan2.2-TI2V-5B", runtimes.WAN22_TI2V_5B),),
    "wan2.2-ti2v-5b-diffusers": (_pipeline("Wan2.2-TI2V-5B-Diffusers"),),
    "wan2.2-ti2v-5b-comfyui": (
        _comfy(("UNETLoader", "wan2.2_ti2v_5B_fp16.safetensors"), UMT5_FP8, WAN22_VAE),
    ),
    "wan2.2-ti2v-5b-gguf": (_comfy(("UnetLoaderGGUF", "Wan2.2-TI2V-5B-Q8_0.gguf"), UMT5_FP8, WAN22_VAE),),
}
# Files a preset places that its runtime never opens: the old names' selections (everything but
# assets/, examples/ and .gitattributes), kept as they were so their lockfiles stay valid.
_NATIVE21_EXTRA = {"README.md", "LICENSE.txt"}
EXTRA: dict[str, set[str]] = {
    "wan2.1-i2v-native": {f"Wan2.1-I2V-14B-480P/{n}" for n in _NATIVE21_EXTRA},
    "wan2.1-i2v-480p": {f"Wan2.1-I2V-14B-480P/{n}" for n in _NATIVE21_EXTRA},
    "wan2.1-i2v-720p": {f"Wan2.1-I2V-14B-720P/{n}" for n in _NATIVE21_EXTRA},
    "wan2.1-i2v-diffusers": {"Wan2.1-I2V-14B-480P-Diffusers/README.md"},
    "wan2.1-i2v-480p-diffusers": {"Wan2.1-I2V-14B-480P-Diffusers/README.md"},
}


_SHARD = re.compile(r"-\d{5}-of-\d{5}\.safetensors$")


def _is_comfy(preset: str) -> bool:
    path = preset_path(preset)
    assert path is not None
    return str(yaml.safe_load(path.read_text(encoding="utf-8"))["root"]).startswith("./ComfyUI")


def _placed(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and ".wanmodels" not in p.relative_to(root).parts
    }


def test_every_preset_has_its_runtime_layout() -> None:
    assert set(RUNTIMES) == set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_downloads_what_its_runtime_opens(preset: str, run: Cli, workdir: Path) -> None:
    """At every option's default: downloaded end to end, then every path the runtime opens is a file
    and the preset placed nothing else (but the old names' documented extras)."""
    args = ("--root", str(workdir / COMFY_ROOT)) if _is_comfy(preset) else ()
    done = run("download", "-m", preset, *args)
    assert done.returncode == 0, done.stderr
    root = workdir / (COMFY_ROOT if _is_comfy(preset) else "models")
    opened = set().union(*(opens(root) for opens in RUNTIMES[preset]))
    missing = sorted(p for p in opened if not (root / p).is_file())
    assert not missing, f"{preset}: its runtime opens paths it did not place: {missing}"
    assert _placed(root) - opened == EXTRA.get(preset, set())
    # `expect` names each of them (but the shards an expected index names: the plan insists on those),
    # so a repo that lost one fails the plan, not the runtime.
    manifest = open_manifest(preset)
    expected = {f"{m.folder}/{e}" for m in manifest.models for e in m.expect}
    unguarded = sorted(p for p in opened - expected if not _SHARD.search(p))
    assert not unguarded, f"{preset}: expect does not name {unguarded}"


def test_the_lora_option_adds_the_loras_comfyui_lists(run: Cli, workdir: Path) -> None:
    root = workdir / COMFY_ROOT
    plan = run("download", "-m", "wan2.2-i2v-comfyui", "--with", "lora=on", "--root", str(root), "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors" in plan.stderr
    done = run("download", "-m", "wan2.2-i2v-comfyui", "--with", "lora=on", "--root", str(root))
    assert done.returncode == 0, done.stderr
    loras = (
        ("LoraLoaderModelOnly", "wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors"),
        ("LoraLoaderModelOnly", "wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors"),
    )
    opened = RUNTIMES["wan2.2-i2v-comfyui"][0](root) | runtimes.comfy_opens(root, loras)
    assert _placed(root) == opened
    # The same choice again: the lockfile in the root pins it, and verify checks it.
    assert run("verify", "-m", "wan2.2-i2v-comfyui", "--with", "lora=on", "--root", str(root)).returncode == 0


@pytest.mark.parametrize(
    ("preset", "choices", "expected"),
    [
        (
            "wan2.1-comfyui",
            ("resolution=720p", "precision=fp16"),
            "diffusion_models/wan2.1_i2v_720p_14B_fp16.safetensors",
        ),
        ("wan2.1-i2v-native", ("resolution=720p",), "Wan2.1-I2V-14B-720P/Wan2.1_VAE.pth"),
        ("wan2.1-i2v-diffusers", ("resolution=720p",), "Wan2.1-I2V-14B-720P-Diffusers/model_index.json"),
        ("wan2.1-i2v-gguf", ("resolution=720p", "quant=Q8_0"), "unet/wan2.1-i2v-14b-720p-Q8_0.gguf"),
        (
            "wan2.2-i2v-comfyui",
            ("precision=fp16",),
            "diffusion_models/wan2.2_i2v_low_noise_14B_fp16.safetensors",
        ),
        ("wan2.2-i2v-gguf", ("quant=Q3_K_S", "lora=on"), "unet/Wan2.2-I2V-A14B-LowNoise-Q3_K_S.gguf"),
        ("wan2.2-ti2v-5b-gguf", ("quant=Q2_K",), "unet/Wan2.2-TI2V-5B-Q2_K.gguf"),
    ],
)
def test_other_choices_plan_cleanly(preset: str, choices: tuple[str, ...], expected: str, run: Cli) -> None:
    words = [w for c in choices for w in ("--with", c)]
    plan = run("download", "-m", preset, *words, "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    assert expected in [f["path"] for m in plan.json()["models"] for f in m["files"]]


@pytest.mark.parametrize("preset", sorted(name for name in PRESETS if name not in ALIASES))
def test_every_value_of_every_option_resolves(preset: str) -> None:
    manifest = open_manifest(preset)
    for option in manifest.options:
        for value in option.values:
            resolved = open_manifest(preset, choices=[(option.name, value.name)])
            assert (option.name, value.name) in resolved.chosen
            assert "${" not in repr(resolved.models)


# -- the old names keep their files, so their lockfiles stay valid -------------------------------------------

# selection_fingerprint of each entry as the presets were before options (computed at 1552d35).
OLD_FINGERPRINTS = {
    "wan2.1-i2v-480p": [("wan2.1-i2v-14b-480p", "ae790e9f4c069146")],
    "wan2.1-i2v-720p": [("wan2.1-i2v-14b-720p", "5ab64fb195a4545a")],
    "wan2.1-i2v-480p-diffusers": [("wan2.1-i2v-14b-480p-diffusers", "c77dafc8265c24c9")],
    "wan2.1-comfyui": [
        ("wan2.1-i2v-480p-fp8", "7959a68731e20737"),
        ("umt5-xxl-fp8", "fc87bc23cf575020"),
        ("clip-vision-h", "567ab35a261c369f"),
        ("wan2.1-vae", "22c5da293534e0e1"),
    ],
    "wan2.1-comfyui-fp16": [
        ("wan2.1-i2v-480p-fp16", "d42e14c66e2b7a40"),
        ("umt5-xxl-fp16", "2231e396806ffca0"),
        ("clip-vision-h", "567ab35a261c369f"),
        ("wan2.1-vae", "22c5da293534e0e1"),
    ],
}


@pytest.mark.parametrize("preset", sorted(OLD_FINGERPRINTS))
def test_old_preset_names_select_what_they_did(preset: str) -> None:
    manifest = open_manifest(preset)
    assert [(m.name, selection_fingerprint(m)) for m in manifest.models] == OLD_FINGERPRINTS[preset]
    assert manifest.lock_path.name == f"{preset}.lock"


def test_the_default_keeps_the_original_lists_entries_and_folders() -> None:
    manifest = open_manifest(None)
    assert [(m.name, m.folder) for m in manifest.models] == [
        ("wan2.1-i2v", "wan2.1-i2v"),
        ("clip-vit-large", "clip-vit-large"),
        ("sd-vae", "sd-vae"),
        ("t5-base", "t5-base"),
    ]
    assert "model.safetensors" in manifest.models[1].include
    assert "pytorch_model.bin" not in manifest.models[1].include
    assert "not Wan's" in manifest.runtime


# -- planning, ComfyUI folders, init ----------------------------------------------------------------------


def test_all_expected_presets_are_bundled() -> None:
    assert set(PRESETS) >= {
        "wan2.1-i2v",
        "wan2.1-i2v-480p",
        "wan2.1-i2v-720p",
        "wan2.1-i2v-480p-diffusers",
        "wan2.1-comfyui",
        "wan2.1-comfyui-fp16",
        "wan2.2-i2v",
        "wan2.2-i2v-diffusers",
        "wan2.2-i2v-comfyui",
        "wan2.2-i2v-gguf",
        "wan2.2-ti2v-5b",
        "wan2.2-ti2v-5b-diffusers",
        "wan2.2-ti2v-5b-comfyui",
        "wan2.2-ti2v-5b-gguf",
        "wan2.1-i2v-gguf",
    }


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_plans_cleanly(preset: str, run: Cli) -> None:
    plan = run("download", "-m", preset, "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    doc = plan.json()
    assert doc["bytes"]["to_fetch"] > 0
    paths = [f["path"] for m in doc["models"] for f in m["files"]]
    assert not any("/assets/" in p or "/examples/" in p or p.endswith(".gitattributes") for p in paths)


def test_comfyui_preset_lists_its_repo_once(cli: Cli, hub: HubServer, workdir: Path) -> None:
    add_repos(hub, {repo: files for repo, files in family_repos().items() if repo.startswith("Comfy-Org/")})
    root = workdir / "ComfyUI" / "models"
    done = cli("download", "-m", "wan2.1-comfyui", "--root", str(root))
    assert done.returncode == 0, done.stderr
    listings = [r for r in hub.requests if "/tree/" in r.path]
    assert len(listings) == 1  # four entries, one repo: listed once
    assert cli("verify", "-m", "wan2.1-comfyui", "--root", str(root)).returncode == 0


def test_init_writes_an_editable_manifest_and_never_overwrites(cli: Cli, workdir: Path) -> None:
    made = cli("init", "--preset", "wan2.1-comfyui")
    assert made.returncode == 0, made.stderr
    written = workdir / "wanmodels.yaml"
    assert "Comfy-Org/Wan_2.1_ComfyUI_repackaged" in written.read_text()
    written.write_text(written.read_text() + "# my edit\n")
    again = cli("init")
    assert again.returncode == 2
    assert "--force" in again.stderr
    assert written.read_text().endswith("# my edit\n")
    forced = cli("init", "--force")
    assert forced.returncode == 0
    assert "Wan-AI/Wan2.1-I2V-14B-480P" in written.read_text()
    listed = cli("list", "--json")  # ./wanmodels.yaml is now the default manifest
    assert listed.json()["manifest"] == "wanmodels.yaml"


@pytest.mark.parametrize(
    ("preset", "choices"),
    [
        ("wan2.2-i2v-comfyui", ("precision=fp16", "lora=on")),
        ("wan2.1-comfyui-fp16", ("resolution=720p",)),
        ("wan2.1-i2v-gguf", ()),
    ],
)
def test_init_writes_the_resolved_manifest(
    preset: str, choices: tuple[str, ...], run: Cli, workdir: Path
) -> None:
    words = [w for c in choices for w in ("--with", c)]
    made = run("init", "--preset", preset, *words)
    assert made.returncode == 0, made.stderr
    written = workdir / "wanmodels.yaml"
    text = written.read_text(encoding="utf-8")
    assert "options:" not in text and "${" not in text and "when:" not in text
    mine = load_manifest(written)
    chosen = dict(p.partition("=")[::2] for p in choices)
    same = open_manifest(preset, choices=tuple(chosen.items()))
    assert [(m.name, m.folder, selection_fingerprint(m), m.expect) for m in mine.models] == [
        (m.name, m.folder, selection_fingerprint(m), m.expect) for m in same.models
    ]
    assert mine.description == same.description and mine.runtime == same.runtime
    # ... and it plans, as the manifest the next command picks up by itself.
    assert run("download", "--dry-run").returncode == 0


def test_init_unknown_preset_exits_2(cli: Cli) -> None:
    failed = cli("init", "--preset", "nope")
    assert failed.returncode == 2
    assert "wan2.1-comfyui" in failed.stderr


def test_shell_completion_script_is_generated(cli: Cli) -> None:
    done = cli("--show-completion", "bash")
    assert done.returncode == 0
    assert "complete" in done.stdout and "wanmodels" in done.stdout
