"""Prove the fake Hub speaks huggingface_hub 2.4's protocol by driving the real client against it.

The client runs in a subprocess because it reads `HF_ENDPOINT` and friends at import time; a few wire-level
details (keep-alive, 416, throttling, shutdown) are checked in-process with `http.client`, which is enough to
see exactly what went over the socket.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hubserver import Fault, HubServer, git_blob_sha1, is_lfs, run_client
from tests.support.hubserver import client_env as hub_client_env
from tests.support.repos import (
    CLIP_REPO_ID,
    COMFY_REPO_ID,
    DTYPE_SIZES,
    WAN_I2V_REPO_ID,
    add_repos,
    comfy_repo,
    parse_safetensors_header,
    pseudo_random_bytes,
    safetensors_bytes,
    seed_repos,
)

HF_CLI = Path(sys.executable).parent / "hf"
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy")
BIG_REPO = "test/big"
BIG_FILE = "big.safetensors"
BIG_SIZE = 12 << 20  # > the client's 10 MiB read chunk, so a cut after 11 MiB leaves bytes to resume from
SMALL_FILE = "small.safetensors"
HF_CHUNK = 10 << 20  # huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE


@pytest.fixture(scope="module")
def repos() -> dict[str, dict[str, bytes]]:
    """Fixture content is deterministic and read-only, so build it once per module."""
    data = {**seed_repos(), **comfy_repo()}
    data[BIG_REPO] = {
        BIG_FILE: safetensors_bytes(data_size=BIG_SIZE - 96, seed=7),
        SMALL_FILE: safetensors_bytes(data_size=300_000, seed=8),
        "config.json": b'{"big": true}\n',
    }
    return data


@pytest.fixture
def hub(repos: dict[str, dict[str, bytes]]) -> Iterator[HubServer]:
    with HubServer() as srv:
        add_repos(srv, repos)
        yield srv
    assert srv.errors == []


def client_env(srv: HubServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return hub_client_env(srv, tmp_path, **extra)


def run_hf(srv: HubServer, tmp_path: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(HF_CLI), *args],
        env=client_env(srv, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def local_files(root: Path) -> dict[str, bytes]:
    """Files of a download dir, ignoring the client's own `.cache/huggingface` bookkeeping."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != ".cache"
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- 1. downloads through the CLI and snapshot_download ---------------------------------------------------


def test_hf_cli_download_matches_fixture(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    files = repos[CLIP_REPO_ID]
    run_hf(hub, tmp_path, "download", CLIP_REPO_ID, "--local-dir", str(tmp_path / "all"))
    assert local_files(tmp_path / "all") == files

    run_hf(
        hub, tmp_path, "download", CLIP_REPO_ID, "--include", "*.json", "--local-dir", str(tmp_path / "js")
    )
    expected = {p: b for p, b in files.items() if fnmatch.fnmatch(p, "*.json")}
    assert expected
    assert local_files(tmp_path / "js") == expected


def test_snapshot_download_matches_fixture(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    result = run_client(
        hub,
        tmp_path,
        f"""
        import json, os
        from huggingface_hub import snapshot_download
        snapshot_download({CLIP_REPO_ID!r}, local_dir={str(tmp_path / "all")!r})
        snapshot_download({CLIP_REPO_ID!r}, local_dir={str(tmp_path / "js")!r}, allow_patterns="*.json")
        cached = snapshot_download({WAN_I2V_REPO_ID!r})
        blobs = os.listdir(os.path.join(cached, "..", "..", "blobs"))
        print(json.dumps({{"cached": cached, "blobs": blobs}}))
        """,
    )
    files = repos[CLIP_REPO_ID]
    assert local_files(tmp_path / "all") == files
    assert local_files(tmp_path / "js") == {p: b for p, b in files.items() if p.endswith(".json")}

    # Cache mode: snapshot follows the repo layout (nested dirs too) and blobs are named by the ETag we sent.
    wan = repos[WAN_I2V_REPO_ID]
    assert local_files(Path(result["cached"])) == wan
    expected_blobs = {sha256(b) if is_lfs(p, len(b)) else git_blob_sha1(b) for p, b in wan.items()}
    assert set(result["blobs"]) == expected_blobs
    assert Path(result["cached"]).name == hub.resolve(WAN_I2V_REPO_ID)


# -- 2. API: tree, repo_info, moving branches --------------------------------------------------------------


def test_api_tree_info_and_moving_main(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    wan = repos[WAN_I2V_REPO_ID]
    old_sha = hub.resolve(WAN_I2V_REPO_ID)
    new_files = {**wan, "config.json": b'{"moved": true}\n'}
    new_sha = hub.add_repo(WAN_I2V_REPO_ID, new_files)
    hub.set_branch(WAN_I2V_REPO_ID, "v1.0", old_sha)
    assert new_sha != old_sha
    assert len(new_sha) == 40

    result = run_client(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import HfApi, RepoFile, hf_hub_download
        api = HfApi()
        rid = {WAN_I2V_REPO_ID!r}
        tree = [
            {{"path": f.path, "file": isinstance(f, RepoFile), "size": getattr(f, "size", None),
              "blob_id": getattr(f, "blob_id", None),
              "sha256": f.lfs.sha256 if getattr(f, "lfs", None) else None}}
            for f in api.list_repo_tree(rid, recursive=True, revision={old_sha!r})
        ]
        top = sorted(f.path for f in api.list_repo_tree(rid))
        sub = sorted(f.path for f in api.list_repo_tree(rid, path_in_repo="google"))
        info = api.model_info(rid, files_metadata=True)
        sib = {{s.rfilename: [s.size, s.blob_id, s.lfs.sha256 if s.lfs else None] for s in info.siblings}}
        paths = [p.path for p in api.get_paths_info(rid, ["config.json", "assets", "nope.txt"])]
        print(json.dumps({{
            "tree": tree, "top": top, "sub": sub, "siblings": sib, "paths": paths,
            "main": api.repo_info(rid, revision="main").sha,
            "default": api.repo_info(rid).sha,
            "tag": api.repo_info(rid, revision="v1.0").sha,
            "old": api.repo_info(rid, revision={old_sha!r}).sha,
            "old_config": open(hf_hub_download(rid, "config.json", revision={old_sha!r})).read(),
            "new_config": open(hf_hub_download(rid, "config.json")).read(),
        }}))
        """,
    )
    files = {e["path"]: e for e in result["tree"] if e["file"]}
    dirs = {e["path"] for e in result["tree"] if not e["file"]}
    assert set(files) == set(wan)
    assert dirs == {"google", "google/umt5-xxl", "xlm-roberta-large", "assets", "examples"}
    for path, data in wan.items():
        entry = hub.file_info(WAN_I2V_REPO_ID, path, revision=old_sha)
        assert files[path]["size"] == len(data) == entry.size
        assert files[path]["blob_id"] == entry.blob_id
        if is_lfs(path, len(data)):
            assert files[path]["sha256"] == sha256(data)
            assert result["siblings"][path] == [len(data), entry.blob_id, sha256(data)]
        else:
            assert files[path]["blob_id"] == git_blob_sha1(data)
            assert files[path]["sha256"] is None

    assert {"google", "README.md"} <= set(result["top"])
    assert "google/umt5-xxl" not in result["top"]
    assert result["sub"] == ["google/umt5-xxl"]
    assert sorted(result["paths"]) == ["assets", "config.json"]
    assert result["main"] == result["default"] == new_sha
    assert result["old"] == result["tag"] == old_sha
    assert result["old_config"].encode() == wan["config.json"]
    assert result["new_config"] == '{"moved": true}\n'


# -- 3. ranges ----------------------------------------------------------------------------------------------

HTTP_GET = """
import hashlib, io, json
from huggingface_hub import hf_hub_url
from huggingface_hub.file_download import http_get
buf = io.BytesIO()
http_get(hf_hub_url({repo!r}, {file!r}), buf, resume_size={resume})
data = buf.getvalue()
print(json.dumps({{"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}}))
"""


def http_get_client(srv: HubServer, tmp_path: Path, file: str, resume: int = 0, **env: str) -> dict[str, Any]:
    """Fetch one file of the big repo with the client's own `http_get`: the code path with resume logic."""
    return run_client(srv, tmp_path, HTTP_GET.format(repo=BIG_REPO, file=file, resume=resume), **env)


def test_range_resume_with_real_http_get(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    data = repos[BIG_REPO][SMALL_FILE]
    result = http_get_client(hub, tmp_path, SMALL_FILE, resume=1000)
    assert result == {"size": len(data) - 1000, "sha256": sha256(data[1000:])}
    [get] = hub.gets(SMALL_FILE)
    assert (get.range, get.status, get.bytes_sent) == ("bytes=1000-", 206, len(data) - 1000)


def test_range_and_headers_on_the_wire(hub: HubServer, repos: dict) -> None:
    data = repos[BIG_REPO][SMALL_FILE]
    assert hub.file_info(BIG_REPO, SMALL_FILE).etag == sha256(data)
    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), timeout=5)
    url = f"/{BIG_REPO}/resolve/main/{SMALL_FILE}"

    def ask(method: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn.request(method, path, headers=headers or {})
        return conn.getresponse()

    head = ask("HEAD", url)
    head.read()
    first_socket = conn.sock
    assert head.status == 200
    assert head.headers["X-Repo-Commit"] == hub.resolve(BIG_REPO)
    assert head.headers["ETag"] == head.headers["X-Linked-Etag"] == f'"{sha256(data)}"'
    assert head.headers["X-Linked-Size"] == head.headers["Content-Length"] == str(len(data))
    assert head.headers["Accept-Ranges"] == "bytes"
    assert not [h for h in head.headers if h.lower().startswith("x-xet")]

    part = ask("GET", url, {"Range": "bytes=10-19"})
    assert (part.status, part.headers["Content-Range"], part.read()) == (
        206,
        f"bytes 10-19/{len(data)}",
        data[10:20],
    )
    suffix = ask("GET", url, {"Range": "bytes=-5"})
    assert (suffix.status, suffix.read()) == (206, data[-5:])
    bad = ask("GET", url, {"Range": f"bytes={len(data)}-"})
    assert (bad.status, bad.headers["Content-Range"], bad.read()) == (416, f"bytes */{len(data)}", b"")

    config = ask("GET", f"/{BIG_REPO}/resolve/main/config.json")
    assert config.read() == repos[BIG_REPO]["config.json"]
    assert config.headers["ETag"] == f'"{git_blob_sha1(repos[BIG_REPO]["config.json"])}"'
    assert "X-Linked-Etag" not in config.headers

    missing = ask("GET", "/nowhere")
    assert missing.status == 404
    missing.read()
    # Everything above went over one keep-alive connection (http.client would silently reconnect otherwise).
    assert conn.sock is first_socket
    assert len(hub.requests) == 6
    conn.close()


# -- 4. errors ----------------------------------------------------------------------------------------------


def test_errors_map_to_client_exceptions(hub: HubServer, tmp_path: Path) -> None:
    result = run_client(
        hub,
        tmp_path,
        f"""
        import json
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
        def name(fn):
            try:
                fn()
            except Exception as e:
                return [type(e).__name__, isinstance(e, EntryNotFoundError)]
            return None
        api = HfApi()
        print(json.dumps({{
            "repo": name(lambda: hf_hub_download("nobody/nothing", "config.json")),
            "revision": name(lambda: hf_hub_download({CLIP_REPO_ID!r}, "config.json", revision="nope")),
            "file": name(lambda: hf_hub_download({CLIP_REPO_ID!r}, "nope.json")),
            "api_repo": name(lambda: api.repo_info("nobody/nothing")),
            "api_revision": name(lambda: api.repo_info({CLIP_REPO_ID!r}, revision="nope")),
            "tree_path": name(lambda: list(api.list_repo_tree({CLIP_REPO_ID!r}, path_in_repo="nope"))),
        }}))
        """,
    )
    assert result["repo"][0] == "RepositoryNotFoundError"
    assert result["revision"][0] == "RevisionNotFoundError"
    assert result["file"][1] is True  # RemoteEntryNotFoundError, a subclass of EntryNotFoundError
    assert result["api_repo"][0] == "RepositoryNotFoundError"
    assert result["api_revision"][0] == "RevisionNotFoundError"
    assert result["tree_path"][1] is True
    statuses = {(r.repo_id, r.file, r.status) for r in hub.requests}
    assert ("nobody/nothing", "config.json", 404) in statuses
    assert (CLIP_REPO_ID, "nope.json", 404) in statuses


# -- 5. faults ----------------------------------------------------------------------------------------------


def test_cut_then_client_resumes_with_range(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    data = repos[BIG_REPO][BIG_FILE]
    fault = hub.add_fault(Fault(path=BIG_FILE, kind="cut", after_bytes=11 << 20, times=1))
    assert http_get_client(hub, tmp_path, BIG_FILE) == {"size": len(data), "sha256": sha256(data)}
    first, second = hub.gets(BIG_FILE)
    assert (first.status, first.fault, first.bytes_sent, first.range) == (200, "cut", 11 << 20, None)
    # The client only keeps whole 10 MiB read chunks, so it resumes from there.
    assert (second.status, second.range, second.fault) == (206, f"bytes={HF_CHUNK}-", None)
    assert second.bytes_sent == len(data) - HF_CHUNK
    assert fault.applied == 1
    assert fault.spent


def test_status_503_is_retried_by_backoff(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    hub.add_fault(Fault(path=SMALL_FILE, kind="status", status=503, times=2))
    result = run_client(
        hub,
        tmp_path,
        f"""
        import hashlib, json
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import http_backoff
        url = hf_hub_url({BIG_REPO!r}, {SMALL_FILE!r})
        r = http_backoff("GET", url, base_wait_time=0.05, max_wait_time=0.1)
        print(json.dumps({{"status": r.status_code, "sha256": hashlib.sha256(r.content).hexdigest()}}))
        """,
    )
    assert result == {"status": 200, "sha256": sha256(repos[BIG_REPO][SMALL_FILE])}
    assert [(r.status, r.fault) for r in hub.gets(SMALL_FILE)] == [
        (503, "status"),
        (503, "status"),
        (200, None),
    ]


def test_corrupt_keeps_length_changes_bytes(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    data = repos[BIG_REPO][SMALL_FILE]
    hub.add_fault(Fault(path="*.safetensors", kind="corrupt", times=1))
    result = http_get_client(hub, tmp_path, SMALL_FILE)
    assert result["size"] == len(data)
    assert result["sha256"] != sha256(data)
    [get] = hub.gets(SMALL_FILE)
    assert (get.status, get.fault, get.bytes_sent) == (200, "corrupt", len(data))


def test_stall_trips_client_read_timeout(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    data = repos[BIG_REPO][SMALL_FILE]
    hub.add_fault(Fault(path=SMALL_FILE, kind="stall", after_bytes=1000, seconds=120, times=1))
    started = time.monotonic()
    result = http_get_client(hub, tmp_path, SMALL_FILE, HF_HUB_DOWNLOAD_TIMEOUT="1")
    # Timed out after ~1 s and retried (2.3 s in all, client start-up included, on an idle machine),
    # nowhere near the 120 s stall; the bounds leave room for a busy machine.
    assert time.monotonic() - started < 60
    assert result == {"size": len(data), "sha256": sha256(data)}
    first, second = hub.gets(SMALL_FILE)
    assert (first.fault, first.bytes_sent) == ("stall", 1000)
    assert 0.9 < first.elapsed < 30
    assert (second.status, second.bytes_sent) == (200, len(data))  # < 10 MiB kept: restarted from 0


def test_gated_and_private_repos(hub: HubServer, repos: dict, tmp_path: Path) -> None:
    files = repos[CLIP_REPO_ID]
    hub.add_repo("acme/gated", files)
    hub.add_repo("acme/private", files)
    hub.require_token("acme/gated", "hf_secret", gated=True)
    hub.require_token("acme/private", "hf_secret", gated=False)
    code = f"""
        import json
        from huggingface_hub import hf_hub_download, snapshot_download
        def name(fn):
            try:
                fn()
            except Exception as e:
                return type(e).__name__
            return "ok"
        print(json.dumps({{
            "file": name(lambda: hf_hub_download("acme/gated", "config.json")),
            "snapshot": name(lambda: snapshot_download("acme/gated", local_dir={str(tmp_path / "g")!r})),
            "private": name(lambda: hf_hub_download("acme/private", "config.json")),
        }}))
    """
    assert run_client(hub, tmp_path, code) == {
        "file": "GatedRepoError",
        "snapshot": "GatedRepoError",
        "private": "RepositoryNotFoundError",
    }
    denied = [r for r in hub.requests if r.repo_id == "acme/gated"]
    assert denied
    assert all(not r.authorized and r.status in (401, 403) for r in denied)
    assert {r.status for r in denied if r.file} == {403}

    hub.clear_log()
    assert run_client(hub, tmp_path / "t", code, HF_TOKEN="hf_secret") == {
        "file": "ok",
        "snapshot": "ok",
        "private": "ok",
    }
    assert local_files(tmp_path / "g") == files
    granted = hub.requests
    assert granted
    assert all(r.authorized and r.status == 200 for r in granted)


# -- 6. fixtures --------------------------------------------------------------------------------------------


def assert_valid_safetensors(data: bytes) -> dict[str, Any]:
    """Check what a safetensors loader checks: header bounds, alignment, dtypes, contiguous offsets."""
    header, start = parse_safetensors_header(data)
    assert start % 8 == 0
    assert data[8:start].decode().rstrip(" ") == json.dumps(header, separators=(",", ":"))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    spans = sorted(v["data_offsets"] for v in tensors.values())
    cursor = 0
    for begin, end in spans:
        assert begin == cursor
        cursor = end
    assert start + cursor == len(data)
    for info in tensors.values():
        count = 1
        for dim in info["shape"]:
            count *= dim
        assert info["data_offsets"][1] - info["data_offsets"][0] == count * DTYPE_SIZES[info["dtype"]]
    return tensors


def test_safetensors_bytes_is_valid() -> None:
    tensors = assert_valid_safetensors(safetensors_bytes())
    assert set(tensors) == {"weight", "bias"}
    big = safetensors_bytes(data_size=(3 << 20) + 1, seed=3)
    assert assert_valid_safetensors(big)["weight"]["dtype"] == "U8"
    assert big == safetensors_bytes(data_size=(3 << 20) + 1, seed=3)
    assert big != safetensors_bytes(data_size=(3 << 20) + 1, seed=4)
    custom = safetensors_bytes({"a": ("BF16", [3, 5]), "b": ("F8_E4M3", [7])}, metadata={"k": "v"})
    assert parse_safetensors_header(custom)[0]["__metadata__"] == {"k": "v"}
    assert_valid_safetensors(custom)
    with pytest.raises(ValueError, match="either"):
        safetensors_bytes({"a": ("F16", [1])}, data_size=2)


def test_seed_repos_shapes(repos: dict) -> None:
    wan = repos[WAN_I2V_REPO_ID]
    shards = [f"diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    index = json.loads(wan["diffusion_pytorch_model.safetensors.index.json"])
    shard_tensors = {s: assert_valid_safetensors(wan[s]) for s in shards}
    assert index["weight_map"] == {t: s for s, ts in shard_tensors.items() for t in ts}
    total = sum(
        i["data_offsets"][1] - i["data_offsets"][0] for ts in shard_tensors.values() for i in ts.values()
    )
    assert index["metadata"]["total_size"] == total
    for name in ("models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth", "google/umt5-xxl/tokenizer.json"):
        assert name in wan
    for repo_files in repos.values():
        for path, data in repo_files.items():
            if path.endswith(".json"):
                json.loads(data)
            if path.endswith(".safetensors"):
                assert_valid_safetensors(data)
    assert len(repos[COMFY_REPO_ID]) == 13
    assert sum(len(b) for r in seed_repos().values() for b in r.values()) < 1 << 20
    assert seed_repos(scale=3)[CLIP_REPO_ID]["pytorch_model.bin"][:4] == b"PK\x03\x04"


# -- server mechanics ---------------------------------------------------------------------------------------


def test_disk_file_throttle_and_quiet_disconnects(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    blob = safetensors_bytes(data_size=2 << 20, seed=11)
    path = tmp_path / "w.safetensors"
    path.write_bytes(blob)
    huge = pseudo_random_bytes(48 << 20, seed=12)  # far more than socket buffers can absorb
    with HubServer() as srv:
        srv.add_repo("disk/repo", {"w.safetensors": path, "huge.bin": huge})
        assert srv.file_info("disk/repo", "w.safetensors").sha256 == sha256(blob)
        port = int(srv.url.rsplit(":", 1)[1])

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/disk/repo/resolve/main/w.safetensors", headers={"Range": "bytes=100-"})
        assert conn.getresponse().read() == blob[100:]

        srv.throttle_bps = 1 << 20
        started = time.monotonic()
        conn.request("GET", "/disk/repo/resolve/main/w.safetensors", headers={"Range": "bytes=0-524287"})
        assert conn.getresponse().read() == blob[: 512 << 10]
        assert 0.35 < time.monotonic() - started < 15  # 0.5 s of paced bytes; generous for a busy machine
        srv.throttle_bps = None
        conn.close()

        # A client vanishing mid-body is logged with what was really sent, and prints nothing.
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /disk/repo/resolve/main/huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(1000)
        assert srv.wait_idle(30)
        last = srv.gets()[-1]
        assert last.status == 200
        assert 0 < last.bytes_sent < len(huge)
    assert srv.errors == []
    assert capfd.readouterr().err == ""


def test_stop_wakes_stalled_handler(hub: HubServer) -> None:
    hub.add_fault(Fault(path=SMALL_FILE, kind="stall", after_bytes=10, seconds=30, times=None))
    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), timeout=5)
    conn.request("GET", f"/{BIG_REPO}/resolve/main/{SMALL_FILE}")
    assert len(conn.getresponse().read(10)) == 10
    assert hub.requests == []  # a stalled request does not hold up the log
    started = time.monotonic()
    hub.stop()
    assert time.monotonic() - started < 15  # woken, not left to its 30 s stall
    assert hub.wait_idle(30)
    assert hub.gets(SMALL_FILE)[0].fault == "stall"
    conn.close()


def test_ignore_range_reset_and_api_faults(hub: HubServer, repos: dict) -> None:
    data = repos[BIG_REPO][SMALL_FILE]
    port = int(hub.url.rsplit(":", 1)[1])
    url = f"/{BIG_REPO}/resolve/main/{SMALL_FILE}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    hub.add_fault(Fault(path=SMALL_FILE, kind="ignore_range"))
    conn.request("GET", url)  # no Range: the fault must not be spent on this one
    assert conn.getresponse().read() == data
    conn.request("GET", url, headers={"Range": "bytes=100-"})
    answer = conn.getresponse()
    assert (answer.status, answer.read()) == (200, data)
    assert [r.fault for r in hub.gets(SMALL_FILE)] == [None, "ignore_range"]

    hub.add_fault(Fault(path=SMALL_FILE, kind="reset", after_bytes=5000))
    conn.request("GET", url)
    with pytest.raises((ConnectionError, http.client.IncompleteRead)):
        conn.getresponse().read()
    conn.close()

    hub.add_fault(
        Fault(path="/api/models/*", kind="status", status=429, headers={"Retry-After": "7"}, api=True)
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", f"/api/models/{CLIP_REPO_ID}")
    limited = conn.getresponse()
    limited.read()
    assert (limited.status, limited.headers["Retry-After"]) == (429, "7")
    conn.request("GET", f"/api/models/{CLIP_REPO_ID}")
    assert json.loads(conn.getresponse().read())["sha"] == hub.resolve(CLIP_REPO_ID)
    conn.close()
    assert [(r.status, r.fault) for r in hub.requests[-2:]] == [(429, "status"), (200, None)]
    assert hub.gets(SMALL_FILE)[-1].bytes_sent == 5000
