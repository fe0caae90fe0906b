"""Benchmark reuse: the Diffusers preset when huggingface_hub's cache already holds the repo.

    python -m benchmarks.reuse [--mib 1024] [--repeat 3]      (from the repository root)

Builds a fake `Wan-AI/Wan2.1-I2V-14B-480P-Diffusers` (the preset's layout, weights scaled to
`--mib` in all), fills a real huggingface_hub cache from the loopback Hub with
`snapshot_download`, then times `wanmodels download -m wan2.1-i2v-480p-diffusers` into a fresh
root three ways: from the network (`--no-reuse`), reusing the cache, and reusing the cache with
the preset's lockfile already in the root. Prints markdown rows (medians); asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.hubserver import HubServer, client_env

REPO = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
PRESET = "wan2.1-i2v-480p-diffusers"
MIB = 1 << 20
# Shares of the real repo's ~92 GB that each weight group takes (transformer 14 shards, umt5 5).
WEIGHTS = {
    **{f"transformer/diffusion_pytorch_model-{i:05d}-of-00014.safetensors": 0.70 / 14 for i in range(1, 15)},
    **{f"text_encoder/model-{i:05d}-of-00005.safetensors": 0.24 / 5 for i in range(1, 6)},
    "image_encoder/model.safetensors": 0.04,
    "vae/diffusion_pytorch_model.safetensors": 0.02,
}
CONFIGS = (
    "model_index.json",
    "transformer/config.json",
    "text_encoder/config.json",
    "image_encoder/config.json",
    "vae/config.json",
    "scheduler/scheduler_config.json",
    "image_processor/preprocessor_config.json",
    "tokenizer/tokenizer_config.json",
    "tokenizer/special_tokens_map.json",
    "README.md",
    ".gitattributes",
    "examples/i2v_input.JPG",  # excluded by the preset
)


def write_safetensors(path: Path, size: int, seed: int) -> None:
    """A valid one-tensor safetensors file of `size` bytes, random data written 8 MiB at a time."""
    n = max(size - 128, 1)
    raw = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        left = n
        while left:
            chunk = min(left, 8 * MIB)
            f.write(rng.randbytes(chunk))
            left -= chunk


def build_repo(base: Path, total_mib: int) -> dict[str, Path | bytes]:
    files: dict[str, Path | bytes] = {}
    for seed, (name, share) in enumerate(WEIGHTS.items()):
        write_safetensors(base / name, int(total_mib * MIB * share), seed)
        files[name] = base / name
    for prefix, shards in (("transformer/diffusion_pytorch_model", 14), ("text_encoder/model", 5)):
        stem = prefix.rpartition("/")[2]
        weight_map = {f"w{i}": f"{stem}-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)}
        files[f"{prefix}.safetensors.index.json"] = json.dumps(
            {"metadata": {}, "weight_map": weight_map}
        ).encode()
    for name in CONFIGS:
        files[name] = json.dumps({"name": name}).encode()
    # the tokenizer's vocabulary files (a SentencePiece model and the fast tokenizer's JSON)
    files["tokenizer/spiece.model"] = b"\n\x0e\n\x05<unk>" * 64
    files["tokenizer/tokenizer.json"] = json.dumps({"version": "1.0"}).encode()
    return files


def wanmodels(env: dict[str, str], cwd: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "wanmodels", *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"wanmodels {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return seconds, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of the preset's files in all (MiB)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wanmodels-reuse-bench-"))
    try:
        with HubServer() as hub:
            hub.add_repo(REPO, build_repo(work / "fixture", args.mib))
            env = client_env(hub, work)  # HF_HOME = work/hf
            code = f"from huggingface_hub import snapshot_download; snapshot_download({REPO!r})"
            started = time.monotonic()
            subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
            filled = time.monotonic() - started
            rows: dict[str, list[tuple[float, int, int]]] = {
                "network": [],
                "hf-cache": [],
                "hf-cache+lock": [],
            }
            size = 0
            for i in range(args.repeat):
                for case, extra in (("network", ["--no-reuse"]), ("hf-cache", []), ("hf-cache+lock", [])):
                    root = work / f"{case}-{i}"
                    if case == "hf-cache+lock":
                        locks = root / ".wanmodels" / "locks"
                        locks.mkdir(parents=True)
                        shutil.copy(work / "network-0" / ".wanmodels" / "locks" / f"{PRESET}.lock", locks)
                    hub.clear_log()
                    seconds, proc = wanmodels(
                        env, work, "download", "-m", PRESET, "--root", str(root), "--json", *extra
                    )
                    doc = json.loads(proc.stdout)
                    size = doc["bytes"]["total"]
                    rows[case].append((seconds, hub.bytes_sent(), len(hub.requests)))
                    wanmodels(env, work, "verify", "-m", PRESET, "--root", str(root), "--full")
                    if case != "network" or i:  # network-0 keeps the lockfile the third case copies
                        shutil.rmtree(root)
        fresh = statistics.median(s for s, _, _ in rows["network"])
        print(
            f"{PRESET}: {size / MIB:,.0f} MiB, cache filled by snapshot_download in {filled:.1f}s; "
            f"median of {args.repeat}\n"
        )
        print("| case | bytes from the network | requests | time | vs fresh download |")
        print("|---|---|---|---|---|")
        names = {
            "network": "fresh download (`--no-reuse`)",
            "hf-cache": "repo in the HF cache, no lockfile",
            "hf-cache+lock": "repo in the HF cache, lockfile in the root",
        }
        for case, runs in rows.items():
            seconds = statistics.median(s for s, _, _ in runs)
            sent = statistics.median(b for _, b, _ in runs)
            requests = statistics.median(r for _, _, r in runs)
            ratio = seconds / fresh
            print(f"| {names[case]} | {sent:,.0f} B | {requests:.0f} | {seconds:.2f}s | {ratio:.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
