"""Benchmark `wanmodels` against `hf download`, `curl`, `aria2c` and `sha256sum` on loopback fake Hubs.

One command, from the repo root: `python -m benchmarks.run [--small | --tiny] [--repeat N] [--out PATH]`.

Every figure printed comes from a measurement made in this run; a case that cannot run says
"not run: <reason>". Fixture files are written to a temp dir on disk and served as `Path` values by
`tests.support.hubserver.HubServer`: cases 1-7 on a plain, unshaped Hub with the bundled `wan2.1-i2v`
preset's repos; cases 8-9 on a second Hub shaped like a CDN link with the ComfyUI fp16 stack; case 10
on a third, plain Hub with the bundled preset's repos at 1/8 of case 1's size.

Modules: `fixtures` (the repos), `harness` (running tools, rows), `partwatch` (kill at a point, read
journals and the server log), `tools` (finding aria2c), `cases/` (the cases), `report` (markdown),
`pagereport` (a VM's free page reporting, paused by `--hold-pages`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.hubserver import HubServer
from tests.support.hubserver.tls import make_certificate, openssl_missing

from benchmarks import fixtures, pagereport
from benchmarks.cases import cdn, cdn_stack, links, local, resume, stack
from benchmarks.harness import MIB, REPO_ROOT, Bench, Row, byte_compile, clean_env, not_run
from benchmarks.report import git, load_average, machine_lines, render
from benchmarks.tools import curl_version, find_aria2c, find_matplotlib, find_nginx

CASE_ROWS: tuple[str, ...] = tuple(
    sorted(
        (*local.ROWS, *resume.ROWS, *cdn.ROWS, *cdn.SCALED_ROWS, *cdn.TLS_ROWS, *stack.ROWS, *links.ROWS),
        key=lambda row: int(row.split(".", 1)[0]),
    )
)

Step = tuple[str, Callable[[], list[Row]], Sequence[str]]


def run_steps(steps: list[Step], rows: dict[str, Row]) -> None:
    """Run each step; a step that raises leaves "not run: <error>" in each of its rows."""
    for name, step, cases in steps:
        print(f"case {name} ...", file=sys.stderr, flush=True)
        try:
            produced = step()
        except Exception as exc:
            produced = [not_run(c, f"{type(exc).__name__}: {exc}"[:300]) for c in cases]
        for row in produced:
            rows[row.case] = row


@dataclass
class Results:
    """What the cases produced: rows by case, commands by label, a line per server on what it served."""

    rows: dict[str, Row] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    totals: list[str] = field(default_factory=list)


def plain_cases(tmp: Path, divisor: int, repeat: int, out: Results) -> None:
    """Cases 1-7 on an unshaped loopback Hub holding the bundled preset's repos."""
    repos = fixtures.build_repos(tmp / "fixtures", divisor)
    largest = Path(repos[fixtures.WAN][fixtures.LARGEST]).stat().st_size  # type: ignore[arg-type]
    out.totals.append(
        f"cases 1-7 (plain Hub): selected files {fixtures.selected_bytes(repos) / MIB:,.1f} MiB, "
        f"largest {largest / MIB:,.1f} MiB"
    )
    with HubServer() as srv:
        commits = {repo_id: srv.add_repo(repo_id, files) for repo_id, files in repos.items()}
        srv.add_repo(fixtures.MANY, fixtures.many_files_repo())
        b = Bench(srv, tmp, clean_env(srv, tmp))
        trees = local.Trees()

        def verify_and_rss() -> list[Row]:
            return local.case_verify(b, repeat, trees) + local.case_rss(trees)

        steps: list[Step] = [
            ("1 fresh download", lambda: local.case_fresh(b, repeat, commits, trees), local.ROWS[0:2]),
            ("3 no-op re-run", lambda: local.case_noop(b, repeat, trees), local.ROWS[2:4]),
            ("4 verify, 6 peak RSS", verify_and_rss, local.ROWS[4:6] + local.ROWS[8:10]),
            ("2 resume", lambda: resume.case_resume(b, repeat, largest), resume.ROWS),
            ("5 start-up", lambda: local.case_startup(b, repeat), local.ROWS[6:8]),
            ("7 plan", lambda: local.case_plan(b, repeat), local.ROWS[10:]),
        ]
        run_steps(steps, out.rows)
        out.commands.update(b.commands)


def stack_case(tmp: Path, divisor: int, repeat: int, out: Results) -> None:
    """Case 10 on a plain Hub of its own: the default stack at test scale vs snapshot_download."""

    def step() -> list[Row]:
        rows, commands, line = stack.case_stack(tmp, divisor, repeat)
        out.commands.update(commands)
        out.totals.append(line)
        return rows

    run_steps([("10 default stack at test scale", step, stack.ROWS)], out.rows)


def cdn_cases(tmp: Path, divisor: int, repeat: int, aria2c: tuple[Path | None, str], out: Results) -> None:
    """Cases 8-9 on a Hub shaped like a CDN link, holding the ComfyUI fp16 stack."""
    comfy = fixtures.build_comfy(tmp / "fixtures", divisor)
    with cdn_stack.shaped_server() as srv:
        stack = cdn_stack.stack_on(srv, comfy)
        out.totals.append(
            f"cases 8-9 (CDN link): {stack.total / MIB:,.1f} MiB in 4 files, largest "
            f"{stack.sizes[stack.largest] / MIB:,.1f} MiB; link {cdn_stack.LINK / MIB:.0f} MiB/s, "
            f"{cdn_stack.CONNS} connections fill it, {cdn_stack.RTT * 1000:.0f} ms round trip, "
            "LFS behind a 302 to a CDN"
        )
        b = Bench(srv, tmp, clean_env(srv, tmp))
        run_steps([("8-9 CDN link", lambda: cdn.case_cdn(b, stack, repeat, *aria2c), cdn.ROWS)], out.rows)
        # The same repo grows to SCALE_UP times the bytes (a new commit on `main`).
        shutil.rmtree(tmp / "fixtures" / fixtures.COMFY)
        scaled_files = fixtures.build_comfy(tmp / "fixtures-scaled", divisor / cdn.SCALE_UP)
        bigger = cdn_stack.stack_on(srv, scaled_files)
        out.totals.append(
            f"case 8, {cdn.SCALE_UP}× the bytes: {bigger.total / MIB:,.1f} MiB in 4 files, the same link"
        )
        step = functools.partial(cdn.case_scaled, b, bigger, repeat, *aria2c)
        run_steps([("8 CDN link, scaled up", step, cdn.SCALED_ROWS)], out.rows)
        out.commands.update(b.commands)
    shutil.rmtree(tmp / "fixtures-scaled")
    tls_case(tmp, divisor, repeat, aria2c, out)


def link_cases(
    tmp: Path,
    divisor: int,
    repeat: int,
    aria2c: tuple[Path | None, str],
    out: Results,
    pictures: Path | None,
    install: bool,
) -> None:
    """Cases 11-15 on the shaped Hub of case 8 (its cap per connection changed per case), case 16 on nginx."""
    comfy = fixtures.build_comfy(tmp / "fixtures-links", divisor)
    with cdn_stack.shaped_server() as srv:
        stack = cdn_stack.stack_on(srv, comfy)
        out.totals.append(
            f"cases 11-15 (link shapes): {stack.total / MIB:,.1f} MiB in 4 files; link "
            f"{cdn_stack.LINK / MIB:.0f} MiB/s, {cdn_stack.RTT * 1000:.0f} ms round trip, LFS behind a 302 "
            "to a CDN; cap per connection per case"
        )
        b = Bench(srv, tmp, clean_env(srv, tmp))
        step = functools.partial(links.case_links, b, stack, repeat, *aria2c, pictures)
        run_steps([("11-15 link shapes", step, links.ROWS[:5])], out.rows)
        out.commands.update(b.commands)
    shutil.rmtree(tmp / "fixtures-links")
    nginx = find_nginx(install)

    def cpu() -> list[Row]:
        rows, commands, line = links.case_cpu(tmp, divisor, repeat, *aria2c, *nginx)
        out.commands.update(commands)
        out.totals.append(line)
        return rows

    run_steps([("16 CPU per GiB on nginx", cpu, links.CPU_ROWS)], out.rows)
    if nginx[0]:
        out.totals.append(f"static server: {nginx[1]}")


def tls_case(tmp: Path, divisor: int, repeat: int, aria2c: tuple[Path | None, str], out: Results) -> None:
    """Case 8 once more with both origins on HTTPS (a self-signed certificate made by `openssl`)."""
    why = openssl_missing()
    if why is not None:
        out.rows.update((case, not_run(case, why)) for case in cdn.TLS_ROWS)
        return
    cert = make_certificate(tmp / "tls")
    comfy = fixtures.build_comfy(tmp / "fixtures-tls", divisor)
    with cdn_stack.shaped_server(cert) as srv:
        stack = cdn_stack.stack_on(srv, comfy)
        out.totals.append("case 8 over HTTPS: the same stack and link, both origins serving TLS")
        b = Bench(srv, tmp, cdn_stack.trust(clean_env(srv, tmp), cert))
        step = functools.partial(cdn.case_tls, b, stack, repeat, *aria2c, cert)
        run_steps([("8 CDN link over HTTPS", step, cdn.TLS_ROWS)], out.rows)
        out.commands.update(b.commands)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="~50 MB total instead of ~2 GB")
    parser.add_argument("--tiny", action="store_true", help="~4 MB total, for the smoke test (beats --small)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per case (default 3; 1 if small)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "out" / "results.md")
    parser.add_argument(
        "--only",
        choices=("plain", "cdn", "links"),
        help="run only cases 1-7 and 10 (plain Hubs), only cases 8-9 (the CDN link) or only 11-16 "
        "(link shapes, CPU per GiB)",
    )
    parser.add_argument(
        "--no-install", action="store_true", help="do not pip-install aria2c into benchmarks/.tools"
    )
    parser.add_argument(
        "--hold-pages",
        action="store_true",
        help="on a VM with free page reporting (root only): pause it for the run, so CPU figures "
        "leave out the host's faults on freed pages (benchmarks/pagereport.py)",
    )
    args = parser.parse_args(argv)
    scale = "tiny" if args.tiny else "small" if args.small else "full"
    divisor = fixtures.SCALES[scale]
    repeat = args.repeat or (3 if scale == "full" else 1)
    started = dt.datetime.now(dt.timezone.utc)
    start_head = git("rev-parse", "--short", "HEAD")
    loads = [f"{load_average()} at start"]
    out = Results()
    out.commands["byte-compile wanmodels first"] = byte_compile()
    peers: list[str] = []
    with (
        pagereport.held(args.hold_pages) as pages,
        tempfile.TemporaryDirectory(prefix="wanmodels-bench-") as tmp_name,
    ):
        tmp = Path(tmp_name)
        print(f"{scale} scale, fixtures in {tmp} ...", file=sys.stderr, flush=True)
        if args.only in (None, "plain"):
            plain_cases(tmp, divisor, repeat, out)
            stack_case(tmp, divisor, repeat, out)
        if args.only != "plain":
            aria2c = find_aria2c(install=not args.no_install)
            peers = [aria2c[1] if aria2c[0] else f"aria2c: {aria2c[1]}", curl_version() or "curl: not found"]
            if args.only != "links":
                cdn_cases(tmp, divisor, repeat, aria2c, out)
            if args.only != "cdn":
                drawing = find_matplotlib(install=not args.no_install)
                pictures = args.out.parent / "pictures" if drawing is None else None
                if drawing is not None:
                    print(f"no pictures: {drawing}", file=sys.stderr)
                link_cases(tmp, divisor, repeat, aria2c, out, pictures, not args.no_install)
    loads.append(f"{load_average()} at the end")

    groups = {"cdn": ("8.", "9."), "links": tuple(f"{n}." for n in range(11, 17))}

    def chosen(case: str) -> bool:
        number = case.split(" ", 1)[0]
        if args.only is None:
            return True
        if args.only == "plain":
            return not any(number in g for g in groups.values())
        return number in groups[args.only]

    selected = [c for c in CASE_ROWS if chosen(c)]
    table = [out.rows.get(case, not_run(case, "case did not produce a row")) for case in selected]
    text = render(
        table,
        out.commands,
        scale=scale,
        repeat=repeat,
        totals=out.totals,
        started=started,
        machine=[*machine_lines(start_head, loads, peers), *(f"- {line}" for line in pages)],
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
