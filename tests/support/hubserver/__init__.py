"""Serve a fake Hugging Face Hub on 127.0.0.1 so tests and benchmarks can drive the real client offline.

The server speaks the subset of the Hub protocol that `huggingface_hub` 2.4 uses to download model
repos: repo info (`/api/models/{id}[/revision/{rev}]`), tree listings
(`/api/models/{id}/tree/{rev}[/{path}]`), paths-info (`POST /api/models/{id}/paths-info/{rev}`) and file
resolution (`HEAD`/`GET /{id}/resolve/{rev}/{path}`) with byte ranges. It never sends Xet headers, so the
client stays on plain HTTP.

It can take the real network's shape (per-connection and link rates, a round trip per request, a CDN
origin behind 302 redirects with expiring signed URLs, HTTPS on both origins), misbehave on purpose (see
`Fault`) and log every request, because the point is to prove that the downloader survives what real
networks and the real Hub do to it.

Modules: `model` (files, hashes, commits), `faults` (what a fault targets and when), `shaping` (rates
and round trips), `api` (JSON routes), `files` (resolve, ranges, bodies), `cdn` (signed URLs, the CDN
origin), `handler` (HTTP plumbing), `log` (request records), `server` (`HubServer`, `client_env`),
`tls` (a throwaway certificate, made with the `openssl` command). Stdlib only: benchmarks import it
too, outside pytest. Its own tests, beside it: `tests/support/test_hubserver*.py`.
"""

from __future__ import annotations

from tests.support.hubserver.faults import FAULT_KINDS, Fault, ratelimit_headers
from tests.support.hubserver.log import RequestRecord, peak_in_flight
from tests.support.hubserver.model import (
    LFS_SUFFIXES,
    LFS_THRESHOLD,
    FileEntry,
    git_blob_sha1,
    is_lfs,
    lfs_pointer,
)
from tests.support.hubserver.server import HubServer, client_env, run_client

__all__ = [
    "FAULT_KINDS",
    "LFS_SUFFIXES",
    "LFS_THRESHOLD",
    "Fault",
    "FileEntry",
    "HubServer",
    "RequestRecord",
    "client_env",
    "git_blob_sha1",
    "is_lfs",
    "lfs_pointer",
    "peak_in_flight",
    "ratelimit_headers",
    "run_client",
]
