"""The shaped Hub of cases 8-9 and what runs on it: a CDN-like link, the ComfyUI fp16 stack, one download.

The server redirects every LFS resolve to a CDN origin (another host), caps each connection at
link / 8 and the whole link at `LINK`, and pays a 20 ms round trip before every response.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.hubserver import HubServer, RequestRecord
from tests.support.hubserver.tls import Certificate

from benchmarks.fixtures import COMFY, COMFY_FILES, COMFY_PRESET
from benchmarks.harness import MIB, Bench, Run, fresh_dir, wm

LINK = 64 * MIB  # B/s, the client's whole downlink
CONNS = 8  # one connection carries LINK / CONNS
RTT = 0.02


def shaped_server(cert: Certificate | None = None) -> HubServer:
    """The shaped Hub; over HTTPS with `cert` (clients must trust it: `trust`)."""
    tls = cert.server_context() if cert is not None else None
    return HubServer(cdn=True, conn_rate=LINK / CONNS, link_rate=LINK, rtt=RTT, tls=tls)


def trust(env: dict[str, str], cert: Certificate | None) -> dict[str, str]:
    """`env` for clients that read `SSL_CERT_FILE` (huggingface_hub's, so wanmodels and hf)."""
    return env if cert is None else {**env, "SSL_CERT_FILE": str(cert.bundle)}


@dataclass
class Stack:
    """The fixture repo on the server: repo path -> size, and where the preset places each file."""

    commit: str
    sizes: dict[str, int]
    targets: dict[str, str] = field(default_factory=lambda: {p: t for p, (_, t) in COMFY_FILES.items()})

    @property
    def total(self) -> int:
        return sum(self.sizes.values())

    @property
    def largest(self) -> str:
        return max(self.sizes, key=lambda p: self.sizes[p])

    @property
    def limit(self) -> float:
        """Seconds the link needs for every byte: no tool can be faster."""
        return self.total / LINK

    def url(self, srv: HubServer, path: str) -> str:
        return f"{srv.url}/{COMFY}/resolve/{self.commit}/{path}"

    def check(self, root: Path, tool: str) -> None:
        """Every file is at its target with its size (wanmodels checks sha256 itself)."""
        for path, target in self.targets.items():
            where = root / target
            if not where.is_file() or where.stat().st_size != self.sizes[path]:
                raise RuntimeError(f"{tool} did not leave {target} ({self.sizes[path]:,} B) in {root}")


def file_gets(records: list[RequestRecord], path: str | None = None) -> list[RequestRecord]:
    """Answered GETs of file bytes (either origin; 302s excluded)."""
    return [
        r
        for r in records
        if r.method == "GET" and r.file is not None and r.status in (200, 206) and path in (None, r.file)
    ]


@dataclass
class WmRun:
    run: Run
    root: Path
    records: list[RequestRecord]


def run_wanmodels(
    b: Bench,
    label: str,
    *extra: str,
    check: bool = True,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
    root: Path | None = None,
    wrap: Sequence[str] = (),
) -> WmRun:
    """`wanmodels download -m wan2.1-comfyui-fp16` into a fresh root; the server log of that run only.

    `wrap` goes before the command (e.g. a profiler that runs it).
    """
    root = root or fresh_dir(b.tmp, "cdn-wm")
    b.srv.wait_idle(10)
    b.srv.clear_log()
    argv = [*wrap, *wm("download", "--quiet", "-m", COMFY_PRESET, "--root", str(root), *extra)]
    r = b.run(label, argv, check=check, on_start=on_start)
    b.srv.wait_idle(10)
    return WmRun(r, root, b.srv.requests)


def aria2c_once(
    b: Bench,
    stack: Stack,
    aria2c: Path,
    cert: Certificate | None = None,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> WmRun:
    """`aria2c -x16 -s16 -k1M -j4` over an input file naming the four resolve URLs and their targets
    (trusting `cert` when the server speaks HTTPS; `on_start` as for `Bench.run`)."""
    root = fresh_dir(b.tmp, "cdn-aria2c")
    listing = root / "urls.txt"
    lines = []
    for path, target in stack.targets.items():
        where = root / target
        lines += [stack.url(b.srv, path), f"  dir={where.parent}", f"  out={where.name}"]
    listing.write_text("\n".join(lines) + "\n")
    b.srv.wait_idle(10)
    b.srv.clear_log()
    argv = [str(aria2c), "-x16", "-s16", "-k1M", "-j4", "-q", "-i", str(listing)]
    if cert is not None:
        argv.append(f"--ca-certificate={cert.cert}")
    r = b.run("aria2c (CDN link)", argv, root, on_start=on_start)
    b.srv.wait_idle(10)
    stack.check(root, "aria2c")
    return WmRun(r, root, b.srv.requests)


def stack_on(srv: HubServer, files: dict[str, Path | bytes]) -> Stack:
    """Add the fixture repo to `srv`; its commit and the selected files' sizes."""
    commit = srv.add_repo(COMFY, files)
    sizes = {}
    for path in COMFY_FILES:
        value = files[path]
        sizes[path] = os.path.getsize(value) if isinstance(value, Path) else len(value)
    return Stack(commit, sizes)
