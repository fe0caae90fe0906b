"""Fleets: `wanmodels publish` to an S3-compatible store and `download --from` it, end to end.

The store is moto's server in a child process behind the fault proxy of `tests.support.s3server` (a real
socket, real SigV4 checks); the Hub is the loopback test Hub, whose request log proves which runs
never asked it for anything.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import Cli, cli_env, write_manifest
from tests.support.files import partial_bytes
from tests.support.hubserver import Fault, HubServer
from tests.support.repos import safetensors_bytes
from tests.support.s3server import S3Server
from tests.support.waiting import wait_until


def project(workdir: Path, cli: Cli, env: dict[str, str]) -> Path:
    """A project with the default stack downloaded and locked: what a publisher has."""
    assert cli("init", **env).returncode == 0
    run = cli("download", **env)
    assert run.returncode == 0, run.stderr
    assert (workdir / "wanmodels.lock").is_file()
    return workdir


def node(tmp_path: Path, project_dir: Path, name: str = "node") -> Path:
    """A fresh machine's checkout of the project: its manifest and lockfile, no models."""
    folder = tmp_path / name
    folder.mkdir()
    for file in ("wanmodels.yaml", "wanmodels.lock"):
        shutil.copy(project_dir / file, folder / file)
    return folder


def files_of(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".wanmodels" not in p.parts
    }


def locked_digests(lock: Path) -> dict[str, str]:
    data = json.loads(lock.read_text())
    return {f["local"]: f["digest"] for m in data["models"] for f in m["files"]}


def blob_key(prefix: str, digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{prefix}/blobs/{algorithm}/{hexdigest}"


@pytest.fixture
def published(cli: Cli, hub: HubServer, s3: S3Server, workdir: Path) -> tuple[Path, str, str]:
    """The default stack downloaded in `workdir` and published to a bucket of its own."""
    env = s3.env()
    project(workdir, cli, env)
    bucket = s3.new_bucket()
    run = cli("publish", f"s3://{bucket}/wan21", "--json", **env)
    assert run.returncode == 0, run.stderr
    hub.clear_log()
    s3.clear_log()
    return workdir, bucket, f"s3://{bucket}/wan21"


def test_publish_uploads_every_locked_file_once_by_digest_and_the_lockfile(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path
) -> None:
    env = s3.env()
    project(workdir, cli, env)
    bucket = s3.new_bucket()
    dry = cli("publish", f"s3://{bucket}/wan21", "--dry-run", "--json", **env)
    assert dry.returncode == 0, dry.stderr
    assert {b["action"] for b in dry.json()["blobs"]} == {"upload"}
    assert s3.objects(bucket) == {}  # a dry run uploads nothing
    hub.clear_log()
    run = cli("publish", f"s3://{bucket}/wan21", "--json", **env)
    assert run.returncode == 0, run.stderr
    assert hub.requests == []  # publishing reads the root and the lockfile, never the Hub
    doc = run.json()
    assert doc["command"] == "publish" and doc["status"] == "ok"
    digests = locked_digests(workdir / "wanmodels.lock")
    stored = s3.objects(bucket)
    local = files_of(workdir / "models")
    for path, digest in digests.items():
        assert stored[blob_key("wan21", digest)] == local[path], path
    assert stored["wan21/locks/wanmodels.lock"] == (workdir / "wanmodels.lock").read_bytes()
    assert len(stored) == len(set(digests.values())) + 1
    head = s3.client().head_object(Bucket=bucket, Key=blob_key("wan21", next(iter(digests.values()))))
    assert head["Metadata"]["wanmodels-digest"] == next(iter(digests.values()))
    # A second publish finds every blob there (size and recorded digest) and sends nothing.
    s3.clear_log()
    again = cli("publish", f"s3://{bucket}/wan21", "--json", **env)
    assert again.returncode == 0, again.stderr
    assert {b["action"] for b in again.json()["blobs"]} == {"present"}
    assert [r for r in s3.requests if r.method == "PUT" and "/blobs/" in r.path] == []


def test_a_node_with_the_lockfile_provisions_from_the_store_with_zero_hub_requests(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, bucket, url = published
    box = node(tmp_path, project_dir)
    run = cli("download", "--frozen", "--from", url, "--json", cwd=box, **s3.env())
    assert run.returncode == 0, run.stderr
    assert hub.requests == []
    assert files_of(box / "models") == files_of(project_dir / "models")
    stack = sum(len(b) for b in set(files_of(project_dir / "models").values()))
    assert s3.bytes_sent(bucket) == stack + 1  # every blob read once, and the first byte of one as a probe
    assert all(r.status in (200, 206) for r in s3.gets(bucket))
    # The same with $WANMODELS_FROM, on a second node.
    other = node(tmp_path, project_dir, "node2")
    env_run = cli("download", "--frozen", cwd=other, **s3.env(WANMODELS_FROM=url))
    assert env_run.returncode == 0, env_run.stderr
    assert hub.requests == []
    assert files_of(other / "models") == files_of(project_dir / "models")


def test_a_blob_missing_from_the_store_comes_from_the_hub_and_the_run_says_so(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, bucket, url = published
    digests = locked_digests(project_dir / "wanmodels.lock")
    gone = "sd-vae/diffusion_pytorch_model.safetensors"
    s3.client().delete_object(Bucket=bucket, Key=blob_key("wan21", digests[gone]))
    box = node(tmp_path, project_dir)
    run = cli("download", "--frozen", "--from", url, cwd=box, **s3.env())
    assert run.returncode == 0, run.stderr
    assert f"'{gone}'" in run.stderr and "is not in the store" in run.stderr
    assert "from the Hub" in run.stderr
    assert {r.file for r in hub.gets()} == {"diffusion_pytorch_model.safetensors"}
    assert files_of(box / "models") == files_of(project_dir / "models")


def test_no_fallback_fails_the_missing_blob_naming_it_and_asks_the_hub_nothing(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, bucket, url = published
    digests = locked_digests(project_dir / "wanmodels.lock")
    gone = "sd-vae/diffusion_pytorch_model.safetensors"
    key = blob_key("wan21", digests[gone])
    s3.client().delete_object(Bucket=bucket, Key=key)
    box = node(tmp_path, project_dir)
    run = cli("download", "--frozen", "--from", url, "--no-fallback", cwd=box, **s3.env())
    assert run.returncode == 3, run.stderr
    assert f"s3://{bucket}/{key}" in run.stderr
    assert "--no-fallback" in run.stderr
    assert hub.requests == []
    assert not (box / "models" / gone).exists()
    # Every other file was placed.
    expected = {p: b for p, b in files_of(project_dir / "models").items() if p != gone}
    assert files_of(box / "models") == expected
    # The same with the environment setting a fleet would use.
    other = node(tmp_path, project_dir, "node2")
    env_run = cli("download", "--frozen", cwd=other, **s3.env(WANMODELS_FROM=url, WANMODELS_NO_FALLBACK="1"))
    assert env_run.returncode == 3, env_run.stderr
    assert f"s3://{bucket}/{key}" in env_run.stderr
    assert hub.requests == []


@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "no-fallback"])
def test_a_tampered_blob_is_never_placed_and_the_run_names_the_object(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path, fallback: bool
) -> None:
    project_dir, bucket, url = published
    digests = locked_digests(project_dir / "wanmodels.lock")
    bad = "wan2.1-i2v/diffusion_pytorch_model-00001-of-00003.safetensors"
    good = (project_dir / "models" / bad).read_bytes()
    key = blob_key("wan21", digests[bad])
    tampered = bytes([good[0] ^ 0xFF]) + good[1:]  # same size: only the hash can tell
    s3.client().put_object(Bucket=bucket, Key=key, Body=tampered, Metadata={"wanmodels-digest": digests[bad]})
    box = node(tmp_path, project_dir)
    args = ["download", "--frozen", "--from", url, *([] if fallback else ["--no-fallback"])]
    run = cli(*args, cwd=box, **s3.env())
    assert f"s3://{bucket}/{key}" in run.stderr
    if fallback:
        assert run.returncode == 0, run.stderr
        assert (box / "models" / bad).read_bytes() == good
        assert {r.file for r in hub.gets()} == {bad.partition("/")[2]}
    else:
        assert run.returncode == 1, run.stderr
        assert not (box / "models" / bad).exists()
        assert hub.requests == []
    assert tampered not in [p.read_bytes() for p in (box / "models").rglob("*") if p.is_file()]


def test_a_blob_of_another_size_is_not_read_and_the_hub_serves_the_file(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, bucket, url = published
    digests = locked_digests(project_dir / "wanmodels.lock")
    bad = "t5-base/pytorch_model.bin"
    key = blob_key("wan21", digests[bad])
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"short")
    box = node(tmp_path, project_dir)
    run = cli("download", "--frozen", "--from", url, cwd=box, **s3.env())
    assert run.returncode == 0, run.stderr
    assert f"s3://{bucket}/{key} holds 5 bytes" in run.stderr
    assert (box / "models" / bad).read_bytes() == (project_dir / "models" / bad).read_bytes()


def test_wrong_credentials_fail_in_one_line_with_exit_3_and_no_secret(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, _, url = published
    box = node(tmp_path, project_dir)
    secret = "wJalrXUtnFEMI-not-the-secret-K7MDENG"
    for env in (
        s3.env(AWS_SECRET_ACCESS_KEY=secret),  # a known key, a wrong secret: SignatureDoesNotMatch
        s3.env(AWS_ACCESS_KEY_ID="AKIAWRONGWRONGWRONG0", AWS_SECRET_ACCESS_KEY=secret),
    ):
        run = cli("download", "--frozen", "--from", url, "--json", "--quiet", cwd=box, **env)
        assert run.returncode == 3, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # the error, nothing else
        assert "credentials" in run.stderr
        assert run.json()["error"]["exit_code"] == 3
        for text in (
            run.stdout,
            run.stderr,
            *(p.read_text("latin-1") for p in box.rglob("*") if p.is_file()),
        ):
            assert secret not in text
            assert s3.secret_key not in text
    assert hub.requests == []
    publish = cli("publish", url, "--json", cwd=project_dir, **s3.env(AWS_SECRET_ACCESS_KEY=secret))
    assert publish.returncode == 3
    assert secret not in publish.stdout + publish.stderr


def test_a_bucket_that_does_not_exist_is_one_line_and_exit_3(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, _, _ = published
    box = node(tmp_path, project_dir)
    run = cli("download", "--frozen", "--from", "s3://no-such-bucket-here/wan21", "-q", cwd=box, **s3.env())
    assert run.returncode == 3, run.stderr
    assert "bucket 'no-such-bucket-here' does not exist" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert hub.requests == []
    publish = cli("publish", "s3://no-such-bucket-here/wan21", cwd=project_dir, **s3.env())
    assert publish.returncode == 3
    assert "bucket 'no-such-bucket-here' does not exist" in publish.stderr


def test_slowdown_answers_are_retried_by_download_and_publish(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path, tmp_path: Path
) -> None:
    env = s3.env()
    project(workdir, cli, env)
    bucket = s3.new_bucket()
    slow_put = s3.add_fault(Fault(origin="s3", kind="status", status=503, methods=("PUT",), times=2))
    run = cli("publish", f"s3://{bucket}/wan21", **env)
    assert run.returncode == 0, run.stderr
    assert slow_put.applied == 2
    assert "SlowDown" in run.stderr and "retrying" in run.stderr
    box = node(tmp_path, workdir)
    hub.clear_log()
    slow_get = s3.add_fault(Fault(origin="s3", kind="status", status=503, path="wan21/blobs/*", times=3))
    got = cli("download", "--frozen", "--from", f"s3://{bucket}/wan21", cwd=box, **env)
    assert got.returncode == 0, got.stderr
    assert slow_get.applied == 3
    assert "503 SlowDown" in got.stderr
    assert hub.requests == []
    assert files_of(box / "models") == files_of(workdir / "models")


def test_a_cut_connection_to_the_store_resumes_where_the_bytes_stopped(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, bucket, url = published
    digests = locked_digests(project_dir / "wanmodels.lock")
    name = "wan2.1-i2v/diffusion_pytorch_model-00001-of-00003.safetensors"
    key = blob_key("wan21", digests[name]).partition("/")[2]
    cut = s3.add_fault(Fault(origin="s3", kind="cut", path=f"wan21/{key}", after_bytes=10_000))
    box = node(tmp_path, project_dir)
    run = cli("download", "--frozen", "--from", url, "--workers", "1", cwd=box, **s3.env())
    assert run.returncode == 0, run.stderr
    assert cut.applied == 1
    gets = s3.gets(bucket, f"wan21/{key}")
    assert [r.range for r in gets][1:] == ["bytes=10000-"]  # the retry asks only for the rest
    assert (box / "models" / name).read_bytes() == (project_dir / "models" / name).read_bytes()


def test_two_stacks_share_one_blob_in_the_store(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path, tmp_path: Path
) -> None:
    shared = safetensors_bytes(data_size=4096, seed=7)
    hub.add_repo("test/a", {"shared.safetensors": shared, "a.json": b'{"a": 1}'})
    hub.add_repo("test/b", {"weights/shared.safetensors": shared, "b.json": b'{"b": 2}'})
    for name, repo in (("a", "test/a"), ("b", "test/b")):
        write_manifest(
            workdir / f"{name}.yaml",
            f"version: 1\nroot: ./{name}\nmodels:\n  - name: {name}\n    repo: {repo}\n",
        )
        assert cli("download", "-m", f"{name}.yaml", **s3.env()).returncode == 0
    bucket = s3.new_bucket()
    first = cli("publish", f"s3://{bucket}/stacks", "-m", "a.yaml", "--json", **s3.env())
    assert first.returncode == 0, first.stderr
    second = cli("publish", f"s3://{bucket}/stacks", "-m", "b.yaml", "--json", **s3.env())
    assert second.returncode == 0, second.stderr
    actions = {b["local"]: b["action"] for b in second.json()["blobs"]}
    assert actions == {"b/weights/shared.safetensors": "present", "b/b.json": "upload"}
    stored = s3.objects(bucket)
    assert sorted(k for k in stored if "/blobs/" in k and stored[k] == shared) != []
    assert sum(1 for v in stored.values() if v == shared) == 1
    assert {"stacks/locks/a.lock", "stacks/locks/b.lock"} <= set(stored)
    # A node of stack b reads the shared blob stack a published.
    box = tmp_path / "node-b"
    box.mkdir()
    for file in ("b.yaml", "b.lock"):
        shutil.copy(workdir / file, box / file)
    hub.clear_log()
    run = cli("download", "-m", "b.yaml", "--frozen", "--from", f"s3://{bucket}/stacks", cwd=box, **s3.env())
    assert run.returncode == 0, run.stderr
    assert hub.requests == []
    assert (box / "b" / "b" / "weights" / "shared.safetensors").read_bytes() == shared


def test_publish_refuses_a_root_that_does_not_verify(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path
) -> None:
    env = s3.env()
    project(workdir, cli, env)
    victim = workdir / "models" / "sd-vae" / "config.json"
    victim.unlink()
    bucket = s3.new_bucket()
    run = cli("publish", f"s3://{bucket}/wan21", **env)
    assert run.returncode == 1
    assert "'sd-vae/config.json'" in run.stderr and "wanmodels download" in run.stderr
    assert s3.objects(bucket) == {}


def big_stack(hub: HubServer, workdir: Path, cli: Cli, s3: S3Server, size: int) -> tuple[bytes, str]:
    """A one-file stack of `size` bytes, downloaded and locked in `workdir` (big.yaml, big.lock)."""
    data = safetensors_bytes(data_size=size, seed=11)
    hub.add_repo("test/big", {"big.safetensors": data})
    write_manifest(
        workdir / "big.yaml", "version: 1\nroot: ./models\nmodels:\n  - name: big\n    repo: test/big\n"
    )
    run = cli("download", "-m", "big.yaml", **s3.env())
    assert run.returncode == 0, run.stderr
    return data, locked_digests(workdir / "big.lock")["big/big.safetensors"]


def start(hub: HubServer, s3: S3Server, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m wanmodels ARGS` in the background, seeing the test Hub and the S3 server."""
    return subprocess.Popen(
        [sys.executable, "-m", "wanmodels", *args],
        cwd=cwd,
        env=cli_env(hub, **s3.env()),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_node_killed_mid_transfer_resumes_from_the_store_with_little_resent(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path, tmp_path: Path
) -> None:
    data, digest = big_stack(hub, workdir, cli, s3, 4 << 20)
    bucket = s3.new_bucket()
    assert cli("publish", f"s3://{bucket}/p", "-m", "big.yaml", **s3.env()).returncode == 0
    box = tmp_path / "node"
    box.mkdir()
    for file in ("big.yaml", "big.lock"):
        shutil.copy(workdir / file, box / file)
    hub.clear_log()
    key = blob_key("p", digest)
    # The store sends 1 MiB and goes quiet: the kill lands mid-transfer however busy the machine is.
    s3.add_fault(Fault(origin="s3", kind="stall", path=key, after_bytes=1 << 20, seconds=120, times=None))
    args = ("download", "-m", "big.yaml", "--frozen", "--from", f"s3://{bucket}/p", "--workers", "1")
    proc = start(hub, s3, box, *args, "--timeout", "120")
    models = box / "models"
    wait_until(lambda: partial_bytes(models) == 1 << 20, "1 MiB from the store in the part")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert not (models / "big" / "big.safetensors").exists()
    s3.clear_faults()
    s3.clear_log()
    rerun = cli(*args, cwd=box, **s3.env())
    assert rerun.returncode == 0, rerun.stderr
    assert (models / "big" / "big.safetensors").read_bytes() == data
    gets = [g for g in s3.gets(bucket, key) if g.bytes_sent > 1]  # not the one-byte probe
    assert [g.range for g in gets] == [f"bytes={1 << 20}-"]
    assert s3.bytes_sent(bucket, key) == len(data) - (1 << 20) + 1
    assert hub.requests == []


def test_a_publish_killed_mid_upload_keeps_the_parts_the_store_holds(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path
) -> None:
    data, digest = big_stack(hub, workdir, cli, s3, 40 << 20)  # three parts of 16 MiB
    bucket = s3.new_bucket()
    key = blob_key("p", digest)
    # The first two part uploads hang; the third reaches the store. Then the publisher is killed.
    s3.add_fault(Fault(origin="s3", kind="hang", path=key, methods=("PUT",), seconds=120, times=2))
    proc = start(hub, s3, workdir, "publish", f"s3://{bucket}/p", "-m", "big.yaml")

    def stored_parts() -> list[str]:
        return [
            r.query for r in s3.requests if r.method == "PUT" and "partNumber" in r.query and r.status == 200
        ]

    wait_until(lambda: len(stored_parts()) == 1, "one part in the store", timeout=60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    (kept,) = stored_parts()
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # nothing complete yet
    s3.clear_faults()
    s3.clear_log()
    rerun = cli("publish", f"s3://{bucket}/p", "-m", "big.yaml", "--json", **s3.env())
    assert rerun.returncode == 0, rerun.stderr
    (blob,) = [b for b in rerun.json()["blobs"] if b["key"] == key]
    assert blob["action"] == "resume"
    assert blob["bytes_reused"] > 0 and blob["bytes_sent"] == len(data) - blob["bytes_reused"]
    resent = [r.query for r in s3.requests if r.method == "PUT" and "partNumber" in r.query]
    assert kept not in resent and len(resent) == 2
    assert s3.objects(bucket, key)[key] == data


def run_child(code: str, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`wanmodels ARGS` in a fresh interpreter, after `code` (which runs first), then a report of
    whether botocore was imported."""
    script = (
        "import sys, runpy\n"
        f"{code}\n"
        f"sys.argv = ['wanmodels', *{list(args)!r}]\n"
        "try:\n    runpy.run_module('wanmodels', run_name='__main__')\n"
        "except SystemExit as exit_:\n    code = exit_.code\n"
        "print('BOTOCORE', 'botocore' in sys.modules and sys.modules['botocore'] is not None)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_help_and_a_download_with_nothing_to_fetch_never_import_botocore(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str]
) -> None:
    project_dir, _, url = published
    env = cli_env(hub, **s3.env(WANMODELS_FROM=url))
    for args in (("--help",), ("download", "--help"), ("download", "--frozen"), ("publish", "--help")):
        run = run_child("", project_dir, env, *args)
        assert run.returncode == 0, run.stderr
        assert "BOTOCORE False" in run.stdout, (args, run.stdout)
    assert hub.requests == []


def test_without_the_s3_extra_a_store_url_is_one_line_naming_the_extra(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, _, url = published
    box = node(tmp_path, project_dir)
    block = "sys.modules['botocore'] = None  # as if the extra were not installed"
    run = run_child(block, box, cli_env(hub, **s3.env()), "download", "--frozen", "--from", url, "-q")
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "pip install 'wanmodels[s3]'" in run.stderr
    assert "Traceback" not in run.stderr
    publish = run_child(block, project_dir, cli_env(hub, **s3.env()), "publish", url)
    assert publish.returncode == 2 and "pip install 'wanmodels[s3]'" in publish.stderr


def test_eight_nodes_at_once_provision_from_the_store_with_zero_hub_requests(
    cli: Cli, hub: HubServer, s3: S3Server, published: tuple[Path, str, str], tmp_path: Path
) -> None:
    project_dir, bucket, url = published
    boxes = [node(tmp_path, project_dir, f"node{i}") for i in range(8)]
    procs = [start(hub, s3, box, "download", "--frozen", "--from", url, "--quiet") for box in boxes]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert hub.requests == []
    expected = files_of(project_dir / "models")
    stack = sum(len(b) for b in set(expected.values()))
    assert s3.bytes_sent(bucket) == 8 * (stack + 1)  # each node read the stack once (+ its probe byte)
    for box in boxes:
        assert files_of(box / "models") == expected
        check = cli("verify", "--full", cwd=box)
        assert check.returncode == 0, check.stderr
    assert hub.requests == []


def test_a_file_changed_behind_the_state_cache_is_not_published_under_its_digest(
    cli: Cli, hub: HubServer, s3: S3Server, workdir: Path
) -> None:
    env = s3.env()
    project(workdir, cli, env)
    victim = workdir / "models" / "sd-vae" / "diffusion_pytorch_model.safetensors"
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    with victim.open("r+b") as f:  # same inode, same size, same mtime: the state cache vouches for it
        f.write(data)
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    bucket = s3.new_bucket()
    run = cli("publish", f"s3://{bucket}/wan21", **env)
    assert run.returncode == 1, run.stderr
    assert "'sd-vae/diffusion_pytorch_model.safetensors' changed since it was verified" in run.stderr
    digest = locked_digests(workdir / "wanmodels.lock")["sd-vae/diffusion_pytorch_model.safetensors"]
    assert blob_key("wan21", digest) not in s3.objects(bucket)
