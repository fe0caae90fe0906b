"""Guards at the edges: a short write never places a truncated file, a directory where a file
belongs is a finding, the work folder is reserved, a lockfile cannot stray from its entry, an
interrupt under --json still prints its document, a read-only root still verifies."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Cli, cli_env, read_stderr_until, spawn, write_manifest
from tests.support.hubserver import HubServer

ONE = "version: 1\nmodels:\n  - name: a\n    repo: test/a\n"


@pytest.fixture
def repo_a(hub: HubServer, workdir: Path) -> Path:
    hub.add_repo("test/a", {"config.json": b"{" + b" " * 998 + b"}", "w.bin": b"PK" + b"\1" * 4000})
    return write_manifest(workdir / "a.yaml", ONE)


def test_short_write_never_places_a_truncated_file(hub: HubServer, workdir: Path, repo_a: Path) -> None:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG / short writes instead of a kill

    proc = subprocess.run(
        [sys.executable, "-m", "wanmodels", "download", "-m", str(repo_a), "--json"],
        cwd=workdir,
        env=cli_env(hub),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )
    assert proc.returncode == 4, proc.stderr
    assert not (workdir / "models" / "a" / "w.bin").exists()
    doc = json.loads(proc.stdout)
    failed = [f for m in doc["models"] for f in m["files"] if f["status"] == "failed"]
    assert [f["path"] for f in failed] == ["a/w.bin"]


def test_directory_in_place_of_a_file_is_a_finding_not_a_traceback(
    cli: Cli, workdir: Path, repo_a: Path
) -> None:
    assert cli("download", "-m", str(repo_a)).returncode == 0
    target = workdir / "models" / "a" / "config.json"
    target.unlink()
    target.mkdir()
    run = cli("verify", "-m", str(repo_a), "--json")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    (finding,) = run.json()["models"][0]["findings"]
    assert finding["path"] == "a/config.json"
    assert finding["problem"] == "size"


@pytest.mark.parametrize(
    "entry",
    [
        "  - name: a\n    repo: test/a\n    folder: .wanmodels\n",
        "  - name: a\n    repo: test/a\n    folder: .wanmodels/x\n",
    ],
)
def test_the_work_folder_is_reserved(cli: Cli, workdir: Path, repo_a: Path, entry: str) -> None:
    manifest = write_manifest(workdir / "r.yaml", "version: 1\nmodels:\n" + entry)
    run = cli("download", "-m", str(manifest), "--dry-run")
    assert run.returncode == 2
    assert ".wanmodels" in run.stderr


def test_lockfile_cannot_send_an_entry_into_another_folder(cli: Cli, workdir: Path, hub: HubServer) -> None:
    hub.add_repo("test/a", {"config.json": b"{}"})
    hub.add_repo("test/b", {"config.json": b"[]"})
    manifest = write_manifest(
        workdir / "two.yaml",
        "version: 1\nmodels:\n  - name: a\n    repo: test/a\n  - name: b\n    repo: test/b\n",
    )
    assert cli("lock", "-m", str(manifest)).returncode == 0
    lock = workdir / "two.lock"
    lock.write_text(lock.read_text().replace('"local": "a/config.json"', '"local": "b/config.json"'))
    run = cli("download", "-m", str(manifest))
    assert run.returncode == 2
    assert "outside its folder" in run.stderr


def test_expect_is_enforced_with_a_lockfile(cli: Cli, workdir: Path, repo_a: Path) -> None:
    assert cli("download", "-m", str(repo_a)).returncode == 0
    write_manifest(repo_a, ONE + "    include: [config.json]\n")
    assert cli("download", "-m", str(repo_a)).returncode == 0  # re-resolved: the selection changed
    write_manifest(repo_a, ONE + "    include: [config.json]\n    expect: [w.bin]\n")
    run = cli("verify", "-m", str(repo_a))
    assert run.returncode == 2
    assert "'expect' names 'w.bin'" in run.stderr


def test_failed_download_writes_no_lockfile(cli: Cli, workdir: Path, repo_a: Path, hub: HubServer) -> None:
    from tests.support.hubserver import Fault

    hub.add_fault(Fault(path="w.bin", kind="corrupt", times=None))
    assert cli("download", "-m", str(repo_a)).returncode == 1
    assert not (workdir / "a.lock").exists()


def test_interrupt_while_waiting_for_the_root_lock_reports_json(
    hub: HubServer, workdir: Path, repo_a: Path
) -> None:
    from filelock import FileLock

    lock = FileLock(str(workdir / "models" / ".wanmodels" / "lock"))
    (workdir / "models" / ".wanmodels").mkdir(parents=True)
    with lock:
        proc = spawn(hub, workdir, "download", "-m", str(repo_a), "--json")
        waited = read_stderr_until(proc, "waiting for another wanmodels process")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    err = waited + err
    assert proc.returncode == 130, err
    assert json.loads(out)["error"]["exit_code"] == 130
    assert "run the same command again" in err.lower()


def test_verify_on_a_read_only_root_still_reports(cli: Cli, workdir: Path, repo_a: Path) -> None:
    assert cli("download", "-m", str(repo_a)).returncode == 0
    state = workdir / "models" / ".wanmodels" / "state.json"
    state.unlink()  # force a re-hash, which would want to save the cache
    models = workdir / "models"
    if subprocess.run(["chattr", "-R", "+i", str(models)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        run = cli("verify", "-m", str(repo_a), "--json")
    finally:
        subprocess.run(["chattr", "-R", "-i", str(models)], capture_output=True)
    assert run.returncode == 0, run.stderr
    assert run.json()["status"] == "ok"


def test_list_honours_the_root_override(cli: Cli, tmp_path: Path) -> None:
    run = cli("list", "--json", WANMODELS_ROOT=str(tmp_path / "elsewhere"))
    assert run.json()["root"] == str(tmp_path / "elsewhere")
