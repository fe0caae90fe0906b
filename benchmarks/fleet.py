"""Benchmark a fleet: N nodes provisioning one locked stack at once, from an S3 store vs from the Hub.

    python -m benchmarks.fleet [--nodes 8] [--mib 128] [--workers 4]      (from the repository root)

Builds a one-entry stack (four weight shards sharing `--mib`, plus two small files) on the loopback
test Hub, downloads and locks it once, publishes it with `wanmodels publish` to moto's S3 server
(`tests.support.s3server`: a child process behind the logging proxy), then starts `--nodes` processes at
once, each `wanmodels download --frozen` into a root of its own with the project's manifest and
lockfile: first all with `--from s3://...`, then all from the Hub. Every node must exit 0 (each
file hashed against the lockfile before it is placed). `--direct` points the nodes at moto
itself instead of the proxy (its relaying then costs nothing, and store bytes are not counted).
Prints a markdown table: Hub requests, bytes the store (or the Hub) sent per node against the
stack's size, per-node times, aggregate throughput. Asserts nothing; needs the `s3` and `test` extras.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.hubserver import HubServer, client_env
from tests.support.s3server import S3Server

MIB = 1 << 20
REPO = "fleet/stack"
SHARDS = 4
MANIFEST = "version: 1\nroot: ./models\nmodels:\n  - name: stack\n    repo: fleet/stack\n"


def write_safetensors(path: Path, size: int, seed: int) -> None:
    """A valid one-tensor safetensors file of `size` bytes, random data written 8 MiB at a time."""
    n = max(size - 128, 1)
    raw = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    rng = random.Random(seed)
    with path.open("wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        left = n
        while left:
            step = min(left, 8 * MIB)
            f.write(rng.randbytes(step))
            left -= step


def stack_files(folder: Path, mib: int) -> dict[str, Path | bytes]:
    folder.mkdir(parents=True)
    files: dict[str, Path | bytes] = {"config.json": b'{"model_type": "fleet"}\n', "README.md": b"# fleet\n"}
    for i in range(SHARDS):
        path = folder / f"model-{i + 1:05d}-of-{SHARDS:05d}.safetensors"
        write_safetensors(path, mib * MIB // SHARDS, seed=i)
        files[path.name] = path
    return files


def wanmodels(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wanmodels", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def fleet(
    env: dict[str, str], project: Path, tmp: Path, label: str, nodes: int, args: list[str]
) -> dict[str, Any]:
    """Start `nodes` downloads at once; wait for all; per-node seconds and exit codes."""
    roots = []
    for i in range(nodes):
        box = tmp / f"{label}-{i}"
        box.mkdir()
        for name in ("wanmodels.yaml", "wanmodels.lock"):
            shutil.copy(project / name, box / name)
        roots.append(box)
    started = time.monotonic()
    procs = [
        (
            subprocess.Popen(
                [sys.executable, "-m", "wanmodels", "download", "--frozen", "--quiet", *args],
                cwd=box,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ),
            time.monotonic(),
        )
        for box in roots
    ]
    seconds, codes, errors = [], [], []
    for proc, t0 in procs:
        _, err = proc.communicate()
        seconds.append(time.monotonic() - t0)
        codes.append(proc.returncode)
        if proc.returncode:
            errors.append(err.strip()[:300])
    wall = time.monotonic() - started
    for box in roots:
        shutil.rmtree(box / "models", ignore_errors=True)
    return {"seconds": seconds, "wall": wall, "codes": codes, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--mib", type=int, default=128, help="size of the stack's weights in MiB")
    parser.add_argument("--workers", type=int, default=4, help="connections per node")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="nodes talk to moto itself, not through the proxy (no byte count)",
    )
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wanmodels-fleet-") as tmp_name:
        tmp = Path(tmp_name)
        files = stack_files(tmp / "fixtures", opts.mib)
        stack = sum(len(v) if isinstance(v, bytes) else v.stat().st_size for v in files.values())
        with HubServer() as hub, S3Server() as s3:
            hub.add_repo(REPO, files)
            env = client_env(hub, tmp, NO_COLOR="1", WANMODELS_WORKERS=str(opts.workers), **s3.env())
            project = tmp / "project"
            project.mkdir()
            (project / "wanmodels.yaml").write_text(MANIFEST)
            first = wanmodels(env, project, "download", "--quiet")
            assert first.returncode == 0, first.stderr
            bucket = s3.new_bucket("fleet")
            t0 = time.monotonic()
            pub = wanmodels(env, project, "publish", f"s3://{bucket}/stack", "--quiet")
            publish_s = time.monotonic() - t0
            assert pub.returncode == 0, pub.stderr
            results = {}
            for label, args in (("store", ["--from", f"s3://{bucket}/stack"]), ("hub", [])):
                hub.clear_log()
                s3.clear_log()
                node_env = dict(env, AWS_ENDPOINT_URL=s3.direct_url) if opts.direct else env
                run = fleet(node_env, project, tmp, label, opts.nodes, args)
                run["hub_requests"] = len(hub.requests)
                run["hub_bytes"] = hub.bytes_sent()
                run["store_bytes"] = s3.bytes_sent(bucket)
                run["store_requests"] = len(s3.gets(bucket))
                results[label] = run
    via = "straight to moto (store bytes not counted)" if opts.direct else "through the logging proxy"
    print(
        f"{opts.nodes} nodes, stack {stack / MIB:.1f} MiB ({SHARDS + 2} files), {opts.workers} connections "
        f"per node, store reads {via}; publish took {publish_s:.2f} s"
    )
    print()
    print("| | from the S3 store (`--from`) | from the Hub |")
    print("|---|---|---|")
    s, h = results["store"], results["hub"]
    n = opts.nodes

    def row(name: str, a: str, b: str) -> None:
        print(f"| {name} | {a} | {b} |")

    row("nodes that exited 0", f"{s['codes'].count(0)} of {n}", f"{h['codes'].count(0)} of {n}")
    row("Hub requests", str(s["hub_requests"]), str(h["hub_requests"]))
    store_bytes = "not counted" if opts.direct else f"{s['store_bytes'] / n / stack:.4f}"
    row("store GETs", "not counted" if opts.direct else str(s["store_requests"]), str(h["store_requests"]))
    row(
        "bytes sent per node / stack",
        f"{store_bytes} (store) + {s['hub_bytes'] / n / stack:.4f} (Hub)",
        f"{h['hub_bytes'] / n / stack:.4f} (Hub)",
    )
    for key, name in (("median", "per-node time, median"), ("max", "per-node time, slowest")):
        pick = statistics.median if key == "median" else max
        row(name, f"{pick(s['seconds']):.2f} s", f"{pick(h['seconds']):.2f} s")
    row(
        "aggregate throughput",
        f"{n * stack / s['wall'] / MIB:.0f} MiB/s ({s['wall']:.2f} s wall)",
        f"{n * stack / h['wall'] / MIB:.0f} MiB/s ({h['wall']:.2f} s wall)",
    )
    for label in ("store", "hub"):
        for err in results[label]["errors"][:3]:
            print(f"\n{label} node failed: {err}")


if __name__ == "__main__":
    main()
