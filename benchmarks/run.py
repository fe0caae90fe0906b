"""Benchmark `wanmodels` against `hf download`, `curl` and `sha256sum` on the loopback fake Hub.

One command, from the repo root: `python -m benchmarks.run [--small | --tiny] [--repeat N] [--out PATH]`.

Every figure printed comes from a measurement made in this run; a case that cannot run says
"not run: <reason>". Fixture files are written to a temp dir on disk and served as `Path` values by
`tests.hubserver.HubServer`, shaped like the repos the bundled `wan2.1-i2v` manifest selects from.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import random
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tests.hubserver import HubServer, client_env

REPO_ROOT = Path(__file__).resolve().parent.parent

MIB = 1 << 20
BLOCK = 8 * MIB
WAN = "Wan-AI/Wan2.1-I2V-14B-480P"
CLIP = "openai/clip-vit-large-patch14"
VAE = "stabilityai/sd-vae-ft-mse"
T5 = "google/t5-v1_1-base"
MANY = "bench/many-small-files"
LARGEST = "diffusion_pytorch_model-00001-of-00003.safetensors"
BIN_DIR = Path(sys.executable).parent

# Full-scale sizes in MiB of the files the bundled manifest selects (~2 GiB in all, the largest 1 GiB).
# `--small` divides by 40 (~51 MiB), `--tiny` by 512 (~4 MiB).
WEIGHTS_MIB: dict[str, dict[str, float]] = {
    WAN: {
        LARGEST: 1024,
        "diffusion_pytorch_model-00002-of-00003.safetensors": 384,
        "diffusion_pytorch_model-00003-of-00003.safetensors": 384,
    },
    CLIP: {"pytorch_model.bin": 128},
    VAE: {"diffusion_pytorch_model.safetensors": 64},
    T5: {"pytorch_model.bin": 64},
}
# Files the manifest does not select: present on the Hub, never fetched by wanmodels (kept small).
UNSELECTED_KIB: dict[str, dict[str, int]] = {
    WAN: {"models_t5_umt5-xxl-enc-bf16.pth": 256, "Wan2.1_VAE.pth": 128},
    CLIP: {"tf_model.h5": 256, "flax_model.msgpack": 256, "model.safetensors": 256},
    VAE: {"diffusion_pytorch_model.bin": 128},
    T5: {"tf_model.h5": 128, "flax_model.msgpack": 128},
}
SCALES = {"full": 1, "small": 40, "tiny": 512}

CASE_ROWS = (
    "1. fresh download: wanmodels / hf",
    "1. fresh download: wanmodels / curl",
    "2. resume after SIGKILL: wanmodels",
    "2. resume after SIGKILL: hf (peer figure)",
    "3. no-op re-run: requests",
    "3. no-op re-run: wall time",
    "4. verify --full / sha256sum -P1",
    "4. verify --full / sha256sum -P2",
    "5. start-up: --help / hf --help",
    "5. start-up: --version / hf --help",
    "6. peak RSS: download",
    "6. peak RSS: verify --full",
    "7. plan of 1,000 files",
)


# -- fixtures ---------------------------------------------------------------------------------------------


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


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def build_repos(base: Path, divisor: int) -> dict[str, dict[str, Path | bytes]]:
    """Write fixture files under `base` and return repo id -> {repo path: Path or bytes}."""
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
        files["config.json"] = _json_bytes({"model_type": repo_id.rpartition("/")[2]})
        files["README.md"] = f"# {repo_id}\n\nBenchmark fixture.\n".encode()
        repos[repo_id] = files
    wan = repos[WAN]
    shards = [n for n in WEIGHTS_MIB[WAN]]
    wan["diffusion_pytorch_model.safetensors.index.json"] = _json_bytes(
        {
            "metadata": {"total_size": sum(Path(wan[s]).stat().st_size for s in shards)},  # type: ignore[arg-type]
            "weight_map": {f"blocks.{i}.w": s for i, s in enumerate(shards)},
        }
    )
    repos[CLIP]["preprocessor_config.json"] = _json_bytes({"crop_size": 224})
    repos[CLIP]["tokenizer.json"] = _json_bytes({"version": "1.0"})
    repos[T5]["spiece.model"] = b"\n\x0e\n\x05<pad>" + bytes(range(256)) * 8
    repos[T5]["special_tokens_map.json"] = _json_bytes({"eos_token": "</s>"})
    repos[T5]["tokenizer_config.json"] = _json_bytes({"model_max_length": 512})
    repos[T5]["generation_config.json"] = _json_bytes({"eos_token_id": 1})
    return repos


def bundled_selection() -> dict[str, tuple[str, list[str]]]:
    """Entry name -> (repo, selected files) of the bundled preset, as the fixture repos resolve it."""
    return {
        "wan2.1-i2v": (
            WAN,
            ["config.json", *WEIGHTS_MIB[WAN], "diffusion_pytorch_model.safetensors.index.json"],
        ),
        "clip-vit-large": (CLIP, ["config.json", "preprocessor_config.json", "pytorch_model.bin"]),
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


# -- running things ---------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rc: int
    maxrss_kib: int
    stdout: str
    stderr: str


@dataclass
class Bench:
    srv: HubServer
    tmp: Path
    env: dict[str, str]
    commands: dict[str, str] = field(default_factory=dict)  # template label -> command as run

    def record(self, label: str, argv: Sequence[str], cwd: Path | None) -> None:
        if label not in self.commands:
            text = shlex.join(str(a) for a in argv)
            if cwd is not None:
                text = f"(cd {cwd} && {text})"
            self.commands[label] = text.replace(str(self.tmp), "$TMP").replace(str(BIN_DIR) + "/", "")

    def run(
        self,
        label: str,
        argv: Sequence[str],
        cwd: Path | None = None,
        *,
        check: bool = True,
        on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    ) -> Run:
        """Run one subprocess; wall time and that child's own peak RSS (wait4)."""
        self.record(label, argv, cwd)
        out_path, err_path = self.tmp / "stdout.log", self.tmp / "stderr.log"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen([str(a) for a in argv], cwd=cwd, env=self.env, stdout=out, stderr=err)
            if on_start is not None:
                on_start(proc)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        result = Run(
            seconds,
            proc.returncode,
            usage.ru_maxrss,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
        )
        if check and result.rc != 0:
            raise RuntimeError(f"{label} exited {result.rc}: {result.stderr[-2000:]}")
        return result


def fresh_dir(tmp: Path, name: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))


def wm(*args: str) -> list[str]:
    return [str(BIN_DIR / "wanmodels"), *args]


def hf(*args: str) -> list[str]:
    return [str(BIN_DIR / "hf"), *args]


@dataclass
class Row:
    case: str
    wanmodels: str
    peer: str
    ratio: str
    target: str
    met: str


def fmt_s(values: Sequence[float]) -> str:
    return f"min {min(values):.3f} s, median {statistics.median(values):.3f} s"


def ratio_row(case: str, mine: list[float], peer: list[float], peer_name: str, limit: float) -> Row:
    ratio = min(mine) / min(peer)
    return Row(
        case,
        fmt_s(mine),
        f"{peer_name}: {fmt_s(peer)}",
        f"{ratio:.2f}× (min/min)",
        f"≤ {limit}×",
        "yes" if ratio <= limit else "NO",
    )


def not_run(case: str, reason: str) -> Row:
    reason = " ".join(reason.split()).replace("|", "/")
    return Row(case, f"not run: {reason}", "", "", "", "")


# -- cases ------------------------------------------------------------------------------------------------


@dataclass
class Trees:
    """The last complete trees of case 1, reused by cases 3, 4 and 6."""

    wm_cwd: Path | None = None
    hf_dirs: dict[str, Path] = field(default_factory=dict)
    download_rss_kib: list[int] = field(default_factory=list)
    hf_rss_kib: list[int] = field(default_factory=list)


def case_fresh(b: Bench, repeat: int, commits: dict[str, str], trees: Trees) -> list[Row]:
    selection = bundled_selection()
    wm_t: list[float] = []
    hf_t: list[float] = []
    curl_t: list[float] = []
    for i in range(repeat):
        last = i == repeat - 1
        # wanmodels: the bundled preset, cwd = a fresh dir so ./models and the lockfile land there.
        cwd = fresh_dir(b.tmp, "wm")
        r = b.run("wanmodels download", wm("download", "--quiet"), cwd)
        wm_t.append(r.seconds)
        got = {str(p.relative_to(cwd / "models")) for p in (cwd / "models").rglob("*") if p.is_file()}
        got = {p for p in got if not p.startswith(".wanmodels")}
        want = {f"{name}/{f}" for name, (_, files) in selection.items() for f in files}
        if got != want:
            raise RuntimeError(f"the bundled preset no longer selects what the peers fetch: {got ^ want}")
        trees.download_rss_kib.append(r.maxrss_kib)
        # hf download: one call per repo, the same files, into the same folders.
        hf_root = fresh_dir(b.tmp, "hf")
        total = 0.0
        dirs: dict[str, Path] = {}
        for name, (repo, files) in selection.items():
            dest = hf_root / name
            r = b.run(f"hf download {name}", hf("download", repo, *files, "--local-dir", str(dest)))
            total += r.seconds
            trees.hf_rss_kib.append(r.maxrss_kib)
            dirs[name] = dest
        hf_t.append(total)
        # curl: the same resolve URLs, one after another (the transfer limit).
        curl_root = fresh_dir(b.tmp, "curl")
        total = 0.0
        for name, (repo, files) in selection.items():
            for path in files:
                dest = curl_root / name / path
                dest.parent.mkdir(parents=True, exist_ok=True)
                url = f"{b.srv.url}/{repo}/resolve/{commits[repo]}/{path}"
                r = b.run("curl", ["curl", "-sS", "-o", str(dest), url])
                total += r.seconds
        curl_t.append(total)
        shutil.rmtree(curl_root)
        if last:
            trees.wm_cwd, trees.hf_dirs = cwd, dirs
        else:
            shutil.rmtree(cwd)
            shutil.rmtree(hf_root)
    return [
        ratio_row(CASE_ROWS[0], wm_t, hf_t, "hf download ×4", 0.8),
        ratio_row(CASE_ROWS[1], wm_t, curl_t, "curl sequential", 1.3),
    ]


def _wait_half(b: Bench, proc: subprocess.Popen[bytes], pattern: str, size: int) -> int:
    """Poll for the partial file; SIGKILL `proc` once it holds >= 50% of `size`. Returns bytes on disk."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and _alive(proc.pid):
        for part in glob.glob(pattern, recursive=True):
            try:
                if os.path.getsize(part) >= size // 2:
                    proc.send_signal(signal.SIGKILL)
                    return 0
            except OSError:
                continue
        time.sleep(0.005)
    return -1


def _alive(pid: int) -> bool:
    """Whether the child still runs, without reaping it (the caller's wait4 must get its rusage)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is None


def _part_size(pattern: str) -> int:
    sizes = [os.path.getsize(p) for p in glob.glob(pattern, recursive=True)]
    return max(sizes, default=0)


def case_resume(b: Bench, repeat: int, commits: dict[str, str], size: int) -> list[Row]:
    # Throttle so the largest file takes ~4 s: enough for a 5 ms poll to catch it near 50%.
    bps = max(size // 4, 256 * 1024)
    rows: list[Row] = []
    for tool in ("wanmodels", "hf"):
        ratios: list[float] = []
        details: list[str] = []
        for _ in range(repeat):
            cwd = fresh_dir(b.tmp, f"resume-{tool}")
            if tool == "wanmodels":
                manifest = cwd / "one.yaml"
                manifest.write_text(
                    "version: 1\nroot: ./models\nmodels:\n"
                    f"  - name: wan\n    repo: {WAN}\n    revision: main\n    include: [{LARGEST}]\n"
                )
                argv = wm("download", "--quiet", "-m", str(manifest))
                pattern = str(cwd / "models" / ".wanmodels" / "partial" / "*.part")
            else:
                argv = hf("download", WAN, LARGEST, "--local-dir", str(cwd / "d"))
                pattern = str(cwd / "d" / ".cache" / "huggingface" / "download" / "**" / "*.incomplete")
            b.srv.throttle_bps = bps
            caught: list[int] = []
            try:
                first = b.run(
                    f"{tool} resume (1st run, killed)",
                    argv,
                    cwd,
                    check=False,
                    on_start=lambda p, pat=pattern, out=caught: out.append(_wait_half(b, p, pat, size)),
                )
            finally:
                b.srv.throttle_bps = None
            if first.rc != -signal.SIGKILL or caught != [0]:
                why = f"could not kill at ~50% (exit {first.rc}: {first.stderr[-300:]})"
                if tool == "hf" and first.rc == 0:
                    why += "; hf writes its .incomplete file in 10 MiB chunks, too coarse at this scale"
                rows.append(not_run(CASE_ROWS[2 if tool == "wanmodels" else 3], why))
                break
            on_disk = _part_size(pattern)
            left = size - on_disk
            b.srv.wait_idle(5)
            b.srv.clear_log()
            b.run(f"{tool} resume (2nd run)", argv, cwd)
            sent = b.srv.bytes_sent(LARGEST)
            ratios.append(sent / left)
            details.append(f"killed at {on_disk / size:.0%}, left {left:,} B, re-sent {sent:,} B")
            shutil.rmtree(cwd)
        else:
            worst = max(ratios)
            cell = f"{worst:.4f} (worst of {len(ratios)}; {details[ratios.index(worst)]})"
            if tool == "wanmodels":
                rows.append(
                    Row(CASE_ROWS[2], cell, "", "sent / left", "≤ 1.01", "yes" if worst <= 1.01 else "NO")
                )
            else:
                rows.append(Row(CASE_ROWS[3], "", f"hf download: {cell}", "sent / left", "(report)", "—"))
    return rows


def case_noop(b: Bench, repeat: int, trees: Trees) -> list[Row]:
    if trees.wm_cwd is None:
        return [not_run(CASE_ROWS[4], "no tree from case 1"), not_run(CASE_ROWS[5], "no tree from case 1")]
    wm_t: list[float] = []
    wm_req: list[int] = []
    hf_t: list[float] = []
    hf_req: list[int] = []
    selection = bundled_selection()
    for _ in range(repeat):
        b.srv.wait_idle(5)
        b.srv.clear_log()
        r = b.run("wanmodels download (no-op)", wm("download", "--quiet"), trees.wm_cwd)
        wm_t.append(r.seconds)
        wm_req.append(len(b.srv.requests))
        b.srv.clear_log()
        total = 0.0
        for name, (repo, files) in selection.items():
            dest = trees.hf_dirs[name]
            r = b.run(f"hf download {name} (no-op)", hf("download", repo, *files, "--local-dir", str(dest)))
            total += r.seconds
        hf_t.append(total)
        hf_req.append(len(b.srv.requests))
    req_ok = max(wm_req) == 0
    t_ok = min(wm_t) <= 0.3
    return [
        Row(
            CASE_ROWS[4],
            f"{max(wm_req)} requests (max of {repeat})",
            f"hf download ×4: {max(hf_req)} requests",
            "—",
            "0 requests",
            "yes" if req_ok else "NO",
        ),
        Row(
            CASE_ROWS[5],
            fmt_s(wm_t),
            f"hf download ×4: {fmt_s(hf_t)}",
            f"{min(wm_t) / min(hf_t):.2f}× (min/min)",
            "≤ 0.3 s",
            "yes" if t_ok else "NO",
        ),
    ]


def case_verify(b: Bench, repeat: int, trees: Trees) -> tuple[list[Row], list[int]]:
    if trees.wm_cwd is None:
        reason = "no tree from case 1"
        return [not_run(CASE_ROWS[6], reason), not_run(CASE_ROWS[7], reason)], []
    models = trees.wm_cwd / "models"
    files = sorted(
        str(p.relative_to(models)) for p in models.rglob("*") if p.is_file() and ".wanmodels" not in p.parts
    )
    listing = b.tmp / "files.list"
    listing.write_bytes(b"\0".join(f.encode() for f in files) + b"\0")
    vt: list[float] = []
    s1: list[float] = []
    s2: list[float] = []
    rss: list[int] = []
    for _ in range(repeat):
        r = b.run("wanmodels verify --full", wm("verify", "--full", "--quiet"), trees.wm_cwd)
        vt.append(r.seconds)
        rss.append(r.maxrss_kib)
        s1.append(b.run("sha256sum -P1", ["sha256sum", *files], models).seconds)
        cmd = f"xargs -0 -P2 -n1 sha256sum < {shlex.quote(str(listing))} > /dev/null"
        s2.append(b.run("sha256sum -P2", ["sh", "-c", cmd], models).seconds)
    return [
        ratio_row(CASE_ROWS[6], vt, s1, "sha256sum", 1.1),
        ratio_row(CASE_ROWS[7], vt, s2, "xargs -P2 -n1 sha256sum", 1.1),
    ], rss


def case_startup(b: Bench, repeat: int) -> list[Row]:
    n = max(repeat, 5)
    times: dict[str, list[float]] = {"help": [], "version": [], "hf": []}
    for _ in range(n):
        times["help"].append(b.run("wanmodels --help", wm("--help")).seconds)
        times["version"].append(b.run("wanmodels --version", wm("--version")).seconds)
        times["hf"].append(b.run("hf --help", hf("--help")).seconds)
    rows = []
    for key, case in (("help", CASE_ROWS[8]), ("version", CASE_ROWS[9])):
        mine, peer = min(times[key]), min(times["hf"])
        ratio = mine / peer
        ok = ratio <= 0.35 and mine <= 0.25
        rows.append(
            Row(
                case,
                f"min {mine:.3f} s of {n}",
                f"hf --help: min {peer:.3f} s of {n}",
                f"{ratio:.2f}×",
                "≤ 0.35× and ≤ 0.25 s",
                "yes" if ok else "NO",
            )
        )
    return rows


def case_rss(trees: Trees, verify_rss: list[int], sha_note: str) -> list[Row]:
    rows = []
    if trees.download_rss_kib:
        mib = max(trees.download_rss_kib) / 1024
        peer = max(trees.hf_rss_kib) / 1024 if trees.hf_rss_kib else float("nan")
        rows.append(
            Row(
                CASE_ROWS[10],
                f"{mib:.1f} MiB (max of {len(trees.download_rss_kib)} runs)",
                f"hf download: {peer:.1f} MiB",
                f"{mib / peer:.2f}×",
                "≤ 100 MB",
                "yes" if mib * MIB <= 100e6 else "NO",
            )
        )
    else:
        rows.append(not_run(CASE_ROWS[10], "case 1 did not run"))
    if verify_rss:
        mib = max(verify_rss) / 1024
        rows.append(
            Row(
                CASE_ROWS[11],
                f"{mib:.1f} MiB (max of {len(verify_rss)} runs)",
                sha_note,
                "—",
                "≤ 100 MB",
                "yes" if mib * MIB <= 100e6 else "NO",
            )
        )
    else:
        rows.append(not_run(CASE_ROWS[11], "case 4 did not run"))
    return rows


def case_plan(b: Bench, repeat: int) -> list[Row]:
    cwd = fresh_dir(b.tmp, "plan")
    manifest = cwd / "many.yaml"
    manifest.write_text(f"version: 1\nroot: ./models\nmodels:\n  - name: many\n    repo: {MANY}\n")
    wm_t: list[float] = []
    hf_t: list[float] = []
    wm_req: list[int] = []
    hf_req: list[int] = []
    for _ in range(repeat):
        b.srv.wait_idle(5)
        b.srv.clear_log()
        r = b.run("wanmodels download --dry-run", wm("download", "--dry-run", "-m", str(manifest)), cwd)
        wm_t.append(r.seconds)
        wm_req.append(len(b.srv.requests))
        b.srv.clear_log()
        d = fresh_dir(b.tmp, "plan-hf")
        r = b.run("hf download --dry-run", hf("download", MANY, "--dry-run", "--local-dir", str(d)))
        hf_t.append(r.seconds)
        hf_req.append(len(b.srv.requests))
        shutil.rmtree(d)
    shutil.rmtree(cwd)
    row = ratio_row(CASE_ROWS[12], wm_t, hf_t, "hf download --dry-run", 1.0)
    row.wanmodels += f"; {max(wm_req)} requests"
    row.peer += f"; {max(hf_req)} requests"
    return [row]


# -- report -----------------------------------------------------------------------------------------------


START_HEAD = ""


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def machine_lines() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    if START_HEAD and head != START_HEAD:
        head = f"{START_HEAD} at start, {head} at the end (src changed during the run)"
    dirty = len(git("status", "--porcelain", "--", "src").splitlines())
    return [
        f"- source: git {head}" + (f" + {dirty} uncommitted change(s) under src/" if dirty else ""),
        f"- cores: {os.cpu_count()}; CPU: {cpu}",
        f"- Python {platform.python_version()} ({platform.system()} {platform.release()})",
        f"- huggingface_hub {version('huggingface_hub')}; wanmodels {version('wanmodels')}",
    ]


def render(rows: list[Row], b: Bench, scale: str, repeat: int, totals: str, started: dt.datetime) -> str:
    lines = [
        f"# wanmodels benchmarks ({scale} scale)",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; repeat: {repeat}; {totals}",
        *machine_lines(),
        "",
        "| case | wanmodels | peer | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.case} | {r.wanmodels} | {r.peer} | {r.ratio} | {r.target} | {r.met} |" for r in rows]
    lines += [
        "",
        "Environment of every subprocess: HF_ENDPOINT=<loopback HubServer>, HF_HOME=$TMP/hf,",
        "HF_HUB_DISABLE_TELEMETRY=1, HF_HUB_DISABLE_UPDATE_CHECK=1, HF_HUB_DISABLE_XET=1,",
        "HF_HUB_DISABLE_PROGRESS_BARS=1, NO_PROXY=127.0.0.1,localhost, NO_COLOR=1, proxy variables removed.",
        "Case 2 throttles the server to (largest file size / 4) B/s during the killed run only.",
        "curl runs once per selected file (one example shown); each label shows its first invocation.",
        "",
        "Commands ($TMP = the run's temp dir; each case in fresh dirs under it):",
        "",
        "```",
    ]
    lines += [f"{label}: {cmd}" for label, cmd in b.commands.items()]
    lines += ["```", ""]
    return "\n".join(lines)


def clean_env(srv: HubServer, tmp: Path) -> dict[str, str]:
    """The client environment of `tests.hubserver`, plus no colour and this venv's tools first."""
    env = client_env(srv, tmp, NO_COLOR="1")
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="~50 MB total instead of ~2 GB")
    parser.add_argument("--tiny", action="store_true", help="~4 MB total, for the smoke test (beats --small)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per case (default 3; 1 if small)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "results.md")
    args = parser.parse_args(argv)
    scale = "tiny" if args.tiny else "small" if args.small else "full"
    repeat = args.repeat or (3 if scale == "full" else 1)
    started = dt.datetime.now(dt.timezone.utc)
    global START_HEAD
    START_HEAD = _git_head()

    with tempfile.TemporaryDirectory(prefix="wanmodels-bench-") as tmp_name, HubServer() as srv:
        tmp = Path(tmp_name)
        print(f"building {scale}-scale fixtures in {tmp} ...", file=sys.stderr)
        repos = build_repos(tmp / "fixtures", SCALES[scale])
        commits = {repo_id: srv.add_repo(repo_id, files) for repo_id, files in repos.items()}
        srv.add_repo(MANY, {f"dir{i // 100}/file{i:04d}.json": _json_bytes({"i": i}) for i in range(1000)})
        sel_bytes = sum(
            Path(repos[repo][f]).stat().st_size if isinstance(repos[repo][f], Path) else len(repos[repo][f])  # type: ignore[arg-type]
            for repo, files in bundled_selection().values()
            for f in files
        )
        largest = Path(repos[WAN][LARGEST]).stat().st_size  # type: ignore[arg-type]
        totals = f"selected files: {sel_bytes / MIB:,.1f} MiB, largest {largest / MIB:,.1f} MiB"
        b = Bench(srv, tmp, clean_env(srv, tmp))
        rows: list[Row] = []
        trees = Trees()
        steps: list[tuple[str, Callable[[], list[Row]], tuple[int, ...]]] = [
            ("1 fresh download", lambda: case_fresh(b, repeat, commits, trees), (0, 1)),
            ("3 no-op re-run", lambda: case_noop(b, repeat, trees), (4, 5)),
        ]
        verify_rss: list[int] = []

        def verify_step() -> list[Row]:
            result, rss = case_verify(b, repeat, trees)
            verify_rss.extend(rss)
            return result

        steps += [
            ("4 verify", verify_step, (6, 7)),
            ("2 resume", lambda: case_resume(b, repeat, commits, largest), (2, 3)),
            ("5 start-up", lambda: case_startup(b, repeat), (8, 9)),
            ("7 plan", lambda: case_plan(b, repeat), (12,)),
        ]
        by_index: dict[int, Row] = {}
        for name, step, indexes in steps:
            print(f"case {name} ...", file=sys.stderr)
            try:
                produced = step()
            except Exception as exc:
                produced = [not_run(CASE_ROWS[i], f"{type(exc).__name__}: {exc}"[:300]) for i in indexes]
            for row in produced:
                by_index[CASE_ROWS.index(row.case)] = row
            if name.startswith("4"):
                for row in case_rss(trees, verify_rss, "sha256sum streams; not a peer figure"):
                    by_index[CASE_ROWS.index(row.case)] = row
        rows = [by_index.get(i, not_run(c, "case did not produce a row")) for i, c in enumerate(CASE_ROWS)]
        text = render(rows, b, scale, repeat, totals, started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
