"""Cases 1 and 3-7 on the plain loopback Hub: fresh download, no-op re-run, verify, start-up, RSS, plan.

Cases 3, 4 and 6 reuse the last complete trees case 1 downloaded (`Trees`).
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.fixtures import MANY, bundled_selection
from benchmarks.harness import MIB, Bench, Row, fmt_s, fresh_dir, hf, not_run, ratio_row, wm, yes_no

ROWS = (
    "1. fresh download: wanmodels / hf",
    "1. fresh download: wanmodels / curl",
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


@dataclass
class Trees:
    """The last complete trees of case 1, reused by cases 3, 4 and 6."""

    wm_cwd: Path | None = None
    hf_dirs: dict[str, Path] = field(default_factory=dict)
    download_rss_kib: list[int] = field(default_factory=list)
    hf_rss_kib: list[int] = field(default_factory=list)
    verify_rss_kib: list[int] = field(default_factory=list)


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
        ratio_row(ROWS[0], wm_t, hf_t, "hf download ×4", 0.8),
        ratio_row(ROWS[1], wm_t, curl_t, "curl sequential", 1.3),
    ]


def case_noop(b: Bench, repeat: int, trees: Trees) -> list[Row]:
    if trees.wm_cwd is None:
        return [not_run(ROWS[2], "no tree from case 1"), not_run(ROWS[3], "no tree from case 1")]
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
            ROWS[2],
            f"{max(wm_req)} requests (max of {repeat})",
            f"hf download ×4: {max(hf_req)} requests",
            "—",
            "0 requests",
            yes_no(req_ok),
        ),
        Row(
            ROWS[3],
            fmt_s(wm_t),
            f"hf download ×4: {fmt_s(hf_t)}",
            f"{min(wm_t) / min(hf_t):.2f}× (min/min)",
            "≤ 0.3 s",
            yes_no(t_ok),
        ),
    ]


def case_verify(b: Bench, repeat: int, trees: Trees) -> list[Row]:
    if trees.wm_cwd is None:
        reason = "no tree from case 1"
        return [not_run(ROWS[4], reason), not_run(ROWS[5], reason)]
    models = trees.wm_cwd / "models"
    files = sorted(
        str(p.relative_to(models)) for p in models.rglob("*") if p.is_file() and ".wanmodels" not in p.parts
    )
    listing = b.tmp / "files.list"
    listing.write_bytes(b"\0".join(f.encode() for f in files) + b"\0")
    vt: list[float] = []
    s1: list[float] = []
    s2: list[float] = []
    for _ in range(repeat):
        r = b.run("wanmodels verify --full", wm("verify", "--full", "--quiet"), trees.wm_cwd)
        vt.append(r.seconds)
        trees.verify_rss_kib.append(r.maxrss_kib)
        s1.append(b.run("sha256sum -P1", ["sha256sum", *files], models).seconds)
        cmd = f"xargs -0 -P2 -n1 sha256sum < {shlex.quote(str(listing))} > /dev/null"
        s2.append(b.run("sha256sum -P2", ["sh", "-c", cmd], models).seconds)
    return [
        ratio_row(ROWS[4], vt, s1, "sha256sum", 1.1),
        ratio_row(ROWS[5], vt, s2, "xargs -P2 -n1 sha256sum", 1.1),
    ]


def case_startup(b: Bench, repeat: int) -> list[Row]:
    n = max(repeat, 5)
    times: dict[str, list[float]] = {"help": [], "version": [], "hf": []}
    for _ in range(n):
        times["help"].append(b.run("wanmodels --help", wm("--help")).seconds)
        times["version"].append(b.run("wanmodels --version", wm("--version")).seconds)
        times["hf"].append(b.run("hf --help", hf("--help")).seconds)
    rows = []
    for key, case in (("help", ROWS[6]), ("version", ROWS[7])):
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
                yes_no(ok),
            )
        )
    return rows


def case_rss(trees: Trees) -> list[Row]:
    """Case 6, from the runs of cases 1 and 4."""
    verify_rss = trees.verify_rss_kib
    rows = []
    if trees.download_rss_kib:
        mib = max(trees.download_rss_kib) / 1024
        peer = max(trees.hf_rss_kib) / 1024 if trees.hf_rss_kib else float("nan")
        rows.append(
            Row(
                ROWS[8],
                f"{mib:.1f} MiB (max of {len(trees.download_rss_kib)} runs)",
                f"hf download: {peer:.1f} MiB",
                f"{mib / peer:.2f}×",
                "≤ 100 MB",
                yes_no(mib * MIB <= 100e6),
            )
        )
    else:
        rows.append(not_run(ROWS[8], "case 1 did not run"))
    if verify_rss:
        mib = max(verify_rss) / 1024
        rows.append(
            Row(
                ROWS[9],
                f"{mib:.1f} MiB (max of {len(verify_rss)} runs)",
                "sha256sum streams; not a peer figure",
                "—",
                "≤ 100 MB",
                yes_no(mib * MIB <= 100e6),
            )
        )
    else:
        rows.append(not_run(ROWS[9], "case 4 did not run"))
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
    row = ratio_row(ROWS[10], wm_t, hf_t, "hf download --dry-run", 1.0)
    row.wanmodels += f"; {max(wm_req)} requests"
    row.peer += f"; {max(hf_req)} requests"
    return [row]
