"""`HubServer`: lifecycle of the Hub (and CDN) listeners, the knobs tests turn, and the request log."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.hubserver.cdn import Signer
from tests.support.hubserver.faults import Fault, FaultBook
from tests.support.hubserver.handler import HTTPServer
from tests.support.hubserver.log import RequestLog, RequestRecord
from tests.support.hubserver.model import FileEntry, FileSource, RepoStore
from tests.support.hubserver.shaping import Pacer


class HubServer:
    """A fake Hub on 127.0.0.1: add repos, start it, point `HF_ENDPOINT` at `url`, inspect `requests`.

    Network shape (all off by default; every knob but `cdn` may be changed while serving):
    `conn_rate` paces each TCP connection's bodies (files and JSON; not errors, redirects or injected
    statuses) to that many bytes/s; `link_rate` paces all connections of both origins together (the
    client's downlink; `throttle_bps` is an alias); `rtt` delays the start of every response (API,
    resolve and CDN alike) by that many seconds.

    `cdn=True` adds a second listener, advertised as `cdn_url` (`http://localhost:<port>`: another
    origin, and another host than `url`). A resolve GET/HEAD of an LFS file then answers 302 with the
    Hub's metadata headers and a signed `Location` on the CDN, valid for `cdn_url_ttl` seconds
    (None = forever); non-LFS files are still served by the Hub itself.

    `cdn_origin` (with `cdn=True`) makes the redirects point at another server instead of the CDN
    listener: `{cdn_origin}/{sha256}?sig=...`, for a static server (nginx) that serves each file
    under its sha256 and ignores the query, so a benchmark's bytes come from a server fast enough
    not to be what it measures. The Hub still answers every listing and resolve.

    `tls` (a server-side context, e.g. `tls.Certificate.server_context()` of this package) serves both
    origins over HTTPS, as the real Hub and its CDNs do: each connection then pays a handshake, and every byte
    is encrypted and decrypted. Clients must trust its certificate (`SSL_CERT_FILE`).

    `tree_page_size` paginates tree listings with a `Link: <...>; rel="next"` header (the real Hub
    uses 1000, or 50 with `expand=True`); `tree_next_base` makes that link point at another base URL,
    like a mirror that leaks its upstream. `tree_pages` makes the pagination hostile: `"cycle"` (every
    page's next link leads back to the first page, forever) or `"endless"` (past the last entry, empty
    pages follow, each with a next link of its own); without `tree_page_size`, the whole listing is one
    such page.

    The Hub also answers as an HTTP proxy would (`GET http://host/path`, the form a client sends to
    `HTTP_PROXY`), serving every such request itself: a test can then give the client an endpoint
    with a public-looking name. Each record's `host` says which host the request was meant for.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        cdn: bool = False,
        conn_rate: float | None = None,
        link_rate: float | None = None,
        rtt: float = 0.0,
        cdn_url_ttl: float | None = None,
        tree_page_size: int | None = None,
        tree_next_base: str | None = None,
        tree_pages: str | None = None,
        tls: ssl.SSLContext | None = None,
        cdn_origin: str | None = None,
    ) -> None:
        self._scheme = "http" if tls is None else "https"
        self._httpd = HTTPServer((host, port), self, "hub", tls)
        self._cdn_httpd = HTTPServer(("127.0.0.1", 0), self, "cdn", tls) if cdn else None
        self._cdn = Signer(cdn_origin or self.cdn_url) if self.cdn_url is not None else None
        self._threads: list[threading.Thread] = []
        self._stop_event = threading.Event()
        self._store = RepoStore()
        self._faults = FaultBook()
        self._log = RequestLog()
        self._link_pacer = Pacer()
        self._conns: set[socket.socket] = set()
        self._conns_cond = threading.Condition()
        self.settle_timeout = 2.0
        self.conn_rate = conn_rate
        self.link_rate = link_rate
        self.rtt = rtt
        self.cdn_url_ttl = cdn_url_ttl
        self.tree_page_size = tree_page_size
        self.tree_next_base = tree_next_base
        self.tree_pages = tree_pages

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Endpoint to put in `HF_ENDPOINT` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    @property
    def cdn_url(self) -> str | None:
        """Base URL of the CDN origin (`http[s]://localhost:<port>`), or None without `cdn=True`."""
        if self._cdn_httpd is None:
            return None
        return f"{self._scheme}://localhost:{self._cdn_httpd.server_address[1]}"

    @property
    def throttle_bps(self) -> float | None:
        """Alias of `link_rate`, the bandwidth shared by every connection."""
        return self.link_rate

    @throttle_bps.setter
    def throttle_bps(self, value: float | None) -> None:
        self.link_rate = value

    @property
    def errors(self) -> list[str]:
        """Tracebacks of server bugs seen while serving (tests assert it stays empty)."""
        return self._log.errors

    def start(self) -> HubServer:
        """Serve in background threads; returns self so `HubServer().start()` chains."""
        if self._threads:
            raise RuntimeError("HubServer already started")
        if self._stop_event.is_set():
            raise RuntimeError("HubServer cannot be restarted after stop()")
        for httpd in self._listeners():
            thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.01},
                name=f"hubserver-{httpd.origin}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and drop open connections so nothing lingers."""
        if self._stop_event.is_set():
            return
        self._stop_event.set()
        if self._threads:
            for httpd in self._listeners():
                httpd.shutdown()
            for thread in self._threads:
                thread.join(timeout=5)
        with self._conns_cond:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._conns_cond:
            self._conns_cond.wait_for(lambda: not self._conns, timeout=2)
        for httpd in self._listeners():
            httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _listeners(self) -> list[HTTPServer]:
        return [self._httpd] if self._cdn_httpd is None else [self._httpd, self._cdn_httpd]

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_cond:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)
                self._conns_cond.notify_all()

    # -- content --------------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, FileSource],
        branch: str = "main",
        *,
        hostile: bool = False,
        xet_only: Iterable[str] = (),
    ) -> str:
        """Commit exactly `files` on `branch` (creating repo/branch as needed) and return the new commit sha.

        Earlier commits stay resolvable by sha, which is how tests pin revisions and then move `main`.
        A `Path` value is hashed now and streamed from disk on each request, so huge files stay on disk.
        `hostile=True` accepts paths such as `../x` that a malicious server would list. Paths in
        `xet_only` are listed (tree, paths-info, siblings) with a `xetHash` and without an `lfs` block.
        """
        return self._store.add_repo(repo_id, files, branch, hostile=hostile, xet_only=xet_only)

    def set_branch(self, repo_id: str, name: str, commit: str) -> None:
        """Point a branch or tag at an existing commit (given by sha or by another ref name)."""
        self._store.set_branch(repo_id, name, commit)

    def require_token(self, repo_id: str, token: str | None, gated: bool = True) -> None:
        """Demand `Authorization: Bearer <token>`: gated repos answer GatedRepo, others look private (401).

        Pass `token=None` to make the repo public again. May be called before the repo is added.
        The CDN never asks for it, like the real one.
        """
        self._store.require_token(repo_id, token, gated)

    def disable_repo(self, repo_id: str, disabled: bool = True) -> None:
        """Make every API and resolve request for the repo answer 403 "Access to this resource is
        disabled." (`X-Error-Code: DisabledRepo`), which huggingface_hub raises as DisabledRepoError."""
        self._store.disable(repo_id, disabled)

    def resolve(self, repo_id: str, revision: str = "main") -> str:
        """Commit sha a revision currently points to, as the server would answer it."""
        return self._store.commit(repo_id, revision).sha

    def file_info(self, repo_id: str, path: str, revision: str = "main") -> FileEntry:
        """Sizes and hashes of one served file, so tests can state expectations without re-hashing."""
        return self._store.commit(repo_id, revision).files[path]

    def files(self, repo_id: str, revision: str = "main") -> dict[str, FileEntry]:
        """Every file of a revision, keyed by repo path."""
        return dict(self._store.commit(repo_id, revision).files)

    def expire_cdn_urls(self) -> None:
        """Make every CDN URL issued so far answer 403 (expired); later resolves issue fresh ones."""
        if self._cdn is None:
            raise RuntimeError("expire_cdn_urls needs HubServer(cdn=True)")
        self._cdn.expire_all()

    # -- faults ---------------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        """Arm a fault (a `for_seconds` window starts now); its `applied` counter tells how often it fired."""
        if fault.origin == "cdn" and self._cdn is None:
            raise ValueError("a CDN fault needs HubServer(cdn=True)")
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- log ------------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot of the request log (both origins) of finished requests, oldest (by start) first.

        Waits (up to `settle_timeout`) for requests still being answered, stalled ones excepted: a client can
        hold the last byte before the handler thread has logged it, and tests must not race that.
        """
        return self._log.snapshot(self.settle_timeout)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is in flight (stalled ones included); False on timeout."""
        return self._log.wait_idle(timeout)

    def clear_log(self) -> None:
        """Forget every request started so far, even one still being answered (a killed client's
        handlers can finish after the test moved on; their records must not leak into the next count)."""
        self._log.clear()

    def gets(self, file: str | None = None, *, origin: str | None = None) -> list[RequestRecord]:
        """GETs for a file's bytes (optionally one repo path, one origin), whichever origin served them.

        That is every resolve GET on the Hub except its 302 redirects to the CDN (see `redirects`), plus
        every GET on the CDN whose URL names a file (including those refused, e.g. 403 expired).
        """
        return [
            r
            for r in self.requests
            if r.method == "GET"
            and r.file is not None
            and r.status != 302
            and (file is None or r.file == file)
            and (origin is None or r.origin == origin)
        ]

    def redirects(self, file: str | None = None) -> list[RequestRecord]:
        """The Hub's 302 answers to resolve requests (GET and HEAD) that sent the client to the CDN."""
        return [
            r
            for r in self.requests
            if r.origin == "hub"
            and r.status == 302
            and r.file is not None
            and (file is None or r.file == file)
        ]

    def bytes_sent(self, file: str | None = None, *, origin: str | None = None) -> int:
        """Body bytes written for `gets(file)`: what the client really downloaded, over both origins
        (redirect and error bodies excluded, bytes of cut and faulty answers included)."""
        return sum(r.bytes_sent for r in self.gets(file, origin=origin) if r.status in (200, 206))


def client_env(srv: HubServer, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a real client process that can see only `srv`: no ambient token, proxy
    or wanmodels setting, a private `HF_HOME`, telemetry, update checks and Xet off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        and not k.startswith(("HF_", "HUGGINGFACE_", "WANMODELS_"))
    }
    env.update(
        HF_ENDPOINT=srv.url,
        HF_HOME=str(home / "hf"),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_UPDATE_CHECK="1",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


def run_client(
    srv: HubServer, home: Path, code: str, *, timeout: float = 60, **extra_env: str
) -> dict[str, Any]:
    """Run Python with the real client in `client_env`; the snippet reports back by printing one
    JSON object last."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=client_env(srv, home, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer
