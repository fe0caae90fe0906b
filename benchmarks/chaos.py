"""A bounded chaos run: downloads of one stack into one root, killed at random moments and (with
libfiu) hit by random I/O failures, then one clean run and `verify --full`, which must pass with no
wrong byte ever placed.

    python -m benchmarks.chaos [--kills 30] [--faults 24] [--seed 1] [--mib 48] [--out PATH]

Every round first deletes a few placed files (so it has work), then starts `wanmodels download` on a
paced link (8 MiB/s, 2 MiB/s a connection) and either SIGKILLs it after a random delay, or runs it under
`fiu-run -x` and, after a random delay, turns on random failures of POSIX I/O calls (`posix/io/*`, with
a random probability) through `fiu-ctrl`: opens, reads, writes, closes, socket calls fail with the
errnos each call may return. After every round each file present at a target is hashed; a wrong
byte placed is recorded (and fails the run). A fault round's output is classified: exit code, a
traceback (and whether it came from wanmodels or from CPython importing a module under faults),
an "unexpected" error (an OSError wanmodels did not map).

Exit 0 only if no wrong file was ever placed, the clean run exits 0, `verify --full` exits 0, the tree
is the fixture's byte for byte, and no partial file is left. libfiu comes from Debian's `fiu-utils`
and `libfiu0` packages; without `fiu-run` the fault rounds are skipped and the report says so.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.hubserver import HubServer, client_env
from tests.support.repos import safetensors_bytes

REPO = "chaos/stack"
MIB = 1 << 20
ROUND_TIMEOUT = 120.0  # a round still running after this is killed and counted as hung
PROBABILITIES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)


@dataclass
class Tally:
    """What the rounds did, for the report."""

    kills: int = 0
    kills_with_work_left: int = 0
    faults: int = 0
    fault_codes: collections.Counter[int] = field(default_factory=collections.Counter)
    hung: int = 0
    tracebacks_wanmodels: list[str] = field(default_factory=list)
    tracebacks_import: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lost_stderr: int = 0  # the fault hit the process's own writes to stderr: nothing can be said
    wrong_placed: list[str] = field(default_factory=list)
    checks: int = 0


def stack(mib: int) -> dict[str, bytes]:
    """Files in the proportions of a model stack: a few large shards, mid-size files, small configs."""
    shares = (0.34, 0.25, 0.16, 0.12, 0.06, 0.04, 0.02, 0.01)
    files = {
        f"model-{i:05d}-of-{len(shares):05d}.safetensors": safetensors_bytes(
            data_size=max(4096, int(mib * MIB * share)) & ~1, seed=i
        )
        for i, share in enumerate(shares)
    }
    files["config.json"] = b'{"chaos": true}\n'
    files["tokenizer/vocab.json"] = ("{" + ", ".join(f'"t{i}": {i}' for i in range(4000)) + "}\n").encode()
    files["model.safetensors.index.json"] = b'{"weight_map": {}}\n'
    return files


class Chaos:
    def __init__(self, work: Path, srv: HubServer, files: dict[str, bytes], rng: random.Random) -> None:
        self.work = work
        self.srv = srv
        self.rng = rng
        self.root = work / "models"
        self.expected = {f"stack/{p}": hashlib.sha256(d).hexdigest() for p, d in files.items()}
        self.env = client_env(srv, work, WANMODELS_RETRY_WAIT="0.05")
        self.manifest = work / "chaos.yaml"
        self.manifest.write_text(
            f"version: 1\nmodels:\n  - name: stack\n    repo: {REPO}\n", encoding="utf-8"
        )
        self.tally = Tally()

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "wanmodels", *args, "-m", str(self.manifest), "--no-color"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), cwd=self.work, env=self.env, capture_output=True, text=True, timeout=600
        )

    # -- between rounds ------------------------------------------------------------------------------------

    def check_tree(self, after: str) -> None:
        """Hash every file present at a target: each must be the fixture's, or absent."""
        self.tally.checks += 1
        for local, sha in self.expected.items():
            path = self.root / local
            if not path.exists():
                continue
            if hashlib.sha256(path.read_bytes()).hexdigest() != sha:
                self.tally.wrong_placed.append(f"{local} after {after}")

    def make_work(self) -> None:
        """Delete some placed files, the large ones among them, so the next round has work."""
        present = [p for p in self.expected if (self.root / p).exists()]
        chosen = set(self.rng.sample(present, k=min(len(present), self.rng.randint(2, 6))))
        chosen.update(p for p in present[:2] if self.rng.random() < 0.5)  # the two largest shards
        for local in chosen:
            (self.root / local).unlink()

    def work_left(self) -> bool:
        return any(not (self.root / p).exists() for p in self.expected)

    # -- rounds --------------------------------------------------------------------------------------------

    def kill_round(self, number: int) -> None:
        self.make_work()
        proc = subprocess.Popen(
            self.command("download"),
            cwd=self.work,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(self.rng.uniform(0.05, 2.5))  # planning, streaming, or placing
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.tally.kills += 1
        self.tally.kills_with_work_left += self.work_left()
        self.check_tree(f"kill {number}")

    def fault_round(self, number: int, fiu_run: str, fiu_ctrl: str) -> None:
        self.make_work()
        control = str(self.work / "fiu-ctrl")
        proc = subprocess.Popen(
            [fiu_run, "-x", "-f", control, *self.command("download")],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        probability = self.rng.choice(PROBABILITIES)
        time.sleep(self.rng.uniform(0.3, 1.2))  # after start-up: the imports are done by then
        subprocess.run(
            [
                fiu_ctrl,
                "-f",
                control,
                "-c",
                f"enable_random name=posix/io/*,probability={probability}",
                str(proc.pid),
            ],
            capture_output=True,
            check=False,
        )
        try:
            _, err = proc.communicate(timeout=ROUND_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            self.tally.hung += 1
        self.tally.faults += 1
        self.tally.fault_codes[proc.returncode] += 1
        self.classify(err, f"fault {number} (p={probability})", proc.returncode)
        self.check_tree(f"fault {number}")

    def classify(self, err: str, label: str, code: int) -> None:
        if "lost sys.stderr" in err:
            self.tally.lost_stderr += 1
        elif "Traceback" in err:
            frames = re.findall(r'File "([^"]+)", line \d+', err)
            importing = any("importlib" in f for f in frames)  # CPython loading a module under faults
            tail = " / ".join(line.strip() for line in err.strip().splitlines()[-4:])
            (self.tally.tracebacks_import if importing else self.tally.tracebacks_wanmodels).append(
                f"{label}, exit {code}: {tail[:600]}"
            )
        for line in err.splitlines():
            if "unexpected" in line:
                self.tally.unexpected.append(f"{label}: {line.strip()[:300]}")

    # -- the end ---------------------------------------------------------------------------------------------

    def finish(self) -> dict[str, object]:
        clean = self.run("download")
        verify = self.run("verify", "--full")
        if verify.returncode:
            sys.stderr.write(verify.stderr)
        self.check_tree("the clean run")
        partial = self.root / ".wanmodels" / "partial"
        leftovers = sorted(p.name for p in partial.glob("*")) if partial.exists() else []
        complete = not self.work_left()
        return {
            "clean_rc": clean.returncode,
            "clean_err": clean.stderr.strip().splitlines()[-1:] if clean.returncode else [],
            "verify_rc": verify.returncode,
            "complete": complete,
            "leftovers": leftovers,
        }


def report(
    args: argparse.Namespace,
    tally: Tally,
    end: dict[str, object],
    fiu: bool,
    seconds: float,
    sent: int,
    size: int,
) -> str:
    ok = not tally.wrong_placed and end["clean_rc"] == 0 and end["verify_rc"] == 0 and end["complete"]
    ok = ok and not end["leftovers"]
    codes = ", ".join(f"{code} ×{n}" for code, n in sorted(tally.fault_codes.items())) or "none"
    lines = [
        f"# chaos run: {'PASS' if ok else 'FAIL'}",
        "",
        f"seed {args.seed}, stack {size / MIB:.1f} MiB in {len(stack(args.mib))} files, "
        f"link 8 MiB/s (2 MiB/s a connection), {seconds:.0f} s in all",
        "",
        "| what | figure |",
        "|---|---|",
        f"| SIGKILL rounds (work left when killed) | {tally.kills} ({tally.kills_with_work_left}) |",
        f"| I/O-fault rounds (libfiu `posix/io/*`) | {tally.faults if fiu else 'not run: no fiu-run'} |",
        f"| fault rounds' exit codes | {codes} |",
        f"| rounds hung (killed after {ROUND_TIMEOUT:g} s) | {tally.hung} |",
        f"| tracebacks (outside an import) | {len(tally.tracebacks_wanmodels)} |",
        f"| tracebacks from CPython importing under faults | {len(tally.tracebacks_import)} |",
        f"| 'unexpected' errors (an OSError not mapped) | {len(tally.unexpected)} |",
        f"| runs whose own writes to stderr failed ('lost sys.stderr') | {tally.lost_stderr} |",
        f"| tree checks / wrong files placed | {tally.checks} / {len(tally.wrong_placed)} |",
        f"| clean run exit / `verify --full` exit | {end['clean_rc']} / {end['verify_rc']} |",
        f"| tree complete and identical after the clean run | {end['complete']} |",
        f"| partial files left | {len(end['leftovers'])} |",  # type: ignore[arg-type]
        f"| bytes the Hub sent in all rounds | {sent / MIB:.0f} MiB ({sent / size:.1f} stacks) |",
    ]
    for title, items in (
        ("wrong files placed", tally.wrong_placed),
        ("tracebacks outside an import", tally.tracebacks_wanmodels),
        ("tracebacks from imports", tally.tracebacks_import),
        ("unexpected errors", tally.unexpected),
        ("the clean run's error", end["clean_err"]),
        ("partial files left", end["leftovers"]),
    ):
        if items:
            lines += ["", f"{title}:", *(f"- {item}" for item in items)]  # type: ignore[attr-defined]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILL rounds (default 30)")
    parser.add_argument("--faults", type=int, default=24, help="libfiu I/O-fault rounds (default 24)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mib", type=int, default=48, help="size of the stack (default 48 MiB)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/chaos.md"))
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    fiu_run, fiu_ctrl = shutil.which("fiu-run") or "", shutil.which("fiu-ctrl") or ""
    fiu = bool(fiu_run and fiu_ctrl)
    files = stack(args.mib)
    size = sum(len(d) for d in files.values())
    work = Path(tempfile.mkdtemp(prefix="wanmodels-chaos-"))
    started = time.monotonic()
    try:
        with HubServer(link_rate=8 * MIB, conn_rate=2 * MIB) as srv:
            srv.add_repo(REPO, files)
            chaos = Chaos(work, srv, files, rng)
            first = chaos.run("download")  # a complete tree to take apart, round by round
            if first.returncode != 0:
                print(first.stderr, file=sys.stderr)
                return 1
            for number in range(1, args.kills + 1):
                chaos.kill_round(number)
            if fiu:
                for number in range(1, args.faults + 1):
                    chaos.fault_round(number, fiu_run, fiu_ctrl)
            end = chaos.finish()
            sent = srv.bytes_sent()
        text = report(args, chaos.tally, end, fiu, time.monotonic() - started, sent, size)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0 if text.startswith("# chaos run: PASS") else 1


if __name__ == "__main__":
    raise SystemExit(main())
