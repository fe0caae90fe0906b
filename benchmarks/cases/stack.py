"""Case 10 (issue 12.6): a fresh download of the default stack at test scale vs `snapshot_download` per repo.

The bundled preset's four repos with every weight divided by `DIVISOR` more than the run's scale (256 MiB
selected at full scale, the issue's "~265 MB"), on an unshaped loopback Hub of their own. The peer is
what a Python user would write: one process calling `huggingface_hub.snapshot_download` once per repo
with `allow_patterns` naming the same files, into the same folders. Target: wanmodels <= 0.8x.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.support.hubserver import HubServer

from benchmarks import fixtures
from benchmarks.harness import MIB, Bench, Row, clean_env, fresh_dir, ratio_row, wm

ROWS = ("10. default stack at test scale: wanmodels / snapshot_download",)
DIVISOR = 8  # on top of the run's own scale: 2 GiB / 8 = 256 MiB at full scale

_PEER = """
import sys
from huggingface_hub import snapshot_download
dest = sys.argv[1]
for spec in sys.argv[2:]:
    name, repo, *files = spec.split(",")
    snapshot_download(repo, allow_patterns=files, local_dir=f"{dest}/{name}")
"""


def case_stack(tmp: Path, divisor: int, repeat: int) -> tuple[list[Row], dict[str, str], str]:
    """The row, the commands run, and a line on the fixture's size."""
    repos = fixtures.build_repos(tmp / "fixtures-stack", divisor * DIVISOR)
    total = fixtures.selected_bytes(repos)
    selection = fixtures.bundled_selection()
    specs = [",".join((name, repo, *files)) for name, (repo, files) in selection.items()]
    wm_t: list[float] = []
    peer_t: list[float] = []
    with HubServer() as srv:
        for repo_id, files in repos.items():
            srv.add_repo(repo_id, files)
        b = Bench(srv, tmp, clean_env(srv, tmp))
        for _ in range(repeat):
            cwd = fresh_dir(tmp, "stack-wm")
            wm_t.append(b.run("wanmodels download (stack)", wm("download", "--quiet"), cwd).seconds)
            shutil.rmtree(cwd)
            dest = fresh_dir(tmp, "stack-hf")
            argv = [sys.executable, "-c", _PEER, str(dest), *specs]
            peer_t.append(b.run("snapshot_download per repo (one process)", argv).seconds)
            shutil.rmtree(dest)
        commands = dict(b.commands)
    line = f"case 10 (plain Hub): the bundled preset's files at 1/{DIVISOR} of case 1, {total / MIB:,.1f} MiB"
    row = ratio_row(ROWS[0], wm_t, peer_t, "snapshot_download ×4, one process", 0.8)
    return [row], commands, line
