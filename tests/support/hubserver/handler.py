"""HTTP plumbing shared by the Hub and CDN listeners: dispatch, routing, lookups and raw writes."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import sys
import time
import traceback
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from tests.support.hubserver import api, cdn, files, shaping
from tests.support.hubserver.faults import ANSWER_FAULTS, BODY_FAULTS, PAYLOAD_FAULTS, Fault, Target
from tests.support.hubserver.log import Ctx
from tests.support.hubserver.model import Commit

if TYPE_CHECKING:
    from tests.support.hubserver.server import HubServer

DISABLED_MESSAGE = "Access to this resource is disabled."  # what huggingface_hub maps to DisabledRepoError


class AbortConnection(Exception):
    """Raised after a deliberate cut so the handler drops the connection without answering further."""


class HTTPServer(ThreadingHTTPServer):
    """One listener of a `HubServer`: `origin` says whether it plays the Hub or the CDN."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], hub: HubServer, origin: str, tls: ssl.SSLContext | None = None
    ) -> None:
        self.hub = hub
        self.origin = origin
        self.tls = tls
        super().__init__(address, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept; with TLS, the handshake happens on the connection's own thread at its first read
        (done here, it would make every other client wait on the accepting thread)."""
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients going away; keep (and still print) real bugs."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.hub._log.note_error(traceback.format_exc())
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """One TCP connection (keep-alive: many requests); owns that connection's pacing slot book."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive sockets must not pin threads forever
    server: HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without NODELAY, Nagle + delayed ACK cost ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn_pacer = shaping.Pacer()
        self.server.hub._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.hub._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request access log: tests read `HubServer.requests` instead."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    # -- dispatch and routing -------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        ctx = Ctx(
            method=self.command,
            path=unquote(split.path),
            query=split.query,
            range=self.headers.get("Range"),
            authorized=self.headers.get("Authorization") is not None,
            started=time.monotonic(),
            origin=self.server.origin,
            host=split.netloc or self.headers.get("Host"),
        )
        log = self.hub._log
        log.begin()
        try:
            body = self._read_request_body()
            shaping.round_trip(self.hub.rtt, self.hub._stop_event)
            if ctx.origin == "cdn":
                cdn.serve(self, ctx)
            else:
                self._route(ctx, split.path, body)
        except (AbortConnection, OSError):
            # A deliberate cut, or the client hung up (BrokenPipe, ConnectionReset, timeout): just drop it.
            self.close_connection = True
        except Exception:
            log.note_error(traceback.format_exc())
            if ctx.headers_sent:
                self.close_connection = True
            else:
                with contextlib.suppress(OSError):
                    self.send_error_json(ctx, 500, None, "internal fake-hub error")
        finally:
            log.end(ctx)

    def _read_request_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True  # cannot stay in sync on a body we do not parse
            return b""
        return self.rfile.read(int(length))

    def _route(self, ctx: Ctx, raw_path: str, body: bytes) -> None:
        segments = raw_path.split("/")[1:]
        if len(segments) >= 3 and segments[0] == "api" and segments[1] == "models":
            api.route(self, ctx, segments[2:], body)
            return
        store = self.hub._store
        for idx in (2, 1):
            if len(segments) > idx + 2 and segments[idx] == "resolve" and "" not in segments[:idx]:
                repo_id = "/".join(unquote(s) for s in segments[:idx])
                if idx == 1 or store.has_repo(repo_id) or not store.has_repo(unquote(segments[0])):
                    files.serve_resolve(self, ctx, repo_id, unquote(segments[idx + 1]), segments[idx + 2 :])
                    return
        self.send_error_json(ctx, 404, None, "Not Found")

    # -- lookups and fault gates ----------------------------------------------------------------------------

    def lookup(self, ctx: Ctx, repo_id: str, revision: str, *, api: bool) -> Commit | None:
        """Find the commit or answer with the error the Hub would give; None means an error was sent."""
        ctx.repo_id, ctx.revision = repo_id, revision
        view = self.hub._store.view(repo_id)
        if view.repo is None:
            self.send_error_json(ctx, 404, "RepoNotFound", "Repository not found")
            return None
        if view.disabled:
            self.send_error_json(ctx, 403, "DisabledRepo", DISABLED_MESSAGE)
            return None
        access = view.access
        if access is not None and self.headers.get("Authorization") != f"Bearer {access.token}":
            has_auth = self.headers.get("Authorization") is not None
            if access.gated:
                message = f"Access to model {repo_id} is restricted. You must be authenticated to access it."
                status = 401 if api and not has_auth else 403
                self.send_error_json(ctx, status, "GatedRepo", message)
            else:
                self.send_error_json(ctx, 401, "RepoNotFound", "Repository not found")
            return None
        sha = view.repo.refs.get(revision, revision)
        commit = view.repo.commits.get(sha)
        if commit is None:
            self.send_error_json(ctx, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def take_fault(self, ctx: Ctx, target: Target, kinds: frozenset[str]) -> Fault | None:
        fault = self.hub._faults.take(target, kinds)
        if fault is not None:
            ctx.fault = fault.kind
        return fault

    def answered_by_fault(self, ctx: Ctx, target: Target) -> bool:
        """Apply a `hang` (wait, then go on) and a `status` or `redirect` fault (answer it); True if
        answered."""
        hang = self.take_fault(ctx, target, frozenset({"hang"}))
        if hang is not None:
            self.stall(hang.seconds)
        fault = self.take_fault(ctx, target, ANSWER_FAULTS)
        if fault is None:
            return False
        if fault.kind == "redirect":
            text = f"Found. Redirecting to {fault.location}".encode()
            self.send_raw(ctx, 302, {"Location": fault.location, "Content-Type": "text/plain"}, text)
            return True
        headers = {"Content-Type": "application/json; charset=utf-8", **fault.response_headers()}
        self.send_raw(ctx, fault.status, headers, json.dumps({"error": f"injected {fault.status}"}).encode())
        return True

    # -- writing --------------------------------------------------------------------------------------------

    def start(self, ctx: Ctx, status: int, headers: Mapping[str, str], length: int) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        ctx.status = status
        ctx.headers_sent = True

    def send_raw(self, ctx: Ctx, status: int, headers: Mapping[str, str], data: bytes) -> None:
        """A small answer sent as is: errors, redirects, injected statuses (no pacing, no body faults)."""
        self.start(ctx, status, headers, len(data))
        if self.command != "HEAD":
            self.write(ctx, memoryview(data))

    def send_json(
        self, ctx: Ctx, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        """An API answer: paced like any body, and API body faults (cut, stall, ...) apply to it, as
        do the faults that replace (`body`) or change (`edit`) what it says."""
        fault = None
        if not ctx.is_resolve and self.command != "HEAD":
            target = Target(True, ctx.path, ctx.repo_id, self.command, "hub")
            fault = self.take_fault(ctx, target, BODY_FAULTS | PAYLOAD_FAULTS)
        if fault is not None and fault.kind == "edit":
            assert fault.edit is not None
            payload = fault.edit(payload)
        data = fault.body if fault is not None and fault.kind == "body" else json.dumps(payload).encode()
        if fault is not None and fault.kind in PAYLOAD_FAULTS:
            fault = None  # what is sent instead is sent as is
        self.start(
            ctx, status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, len(data)
        )
        if self.command != "HEAD" and data:
            files.send_body(self, ctx, data, 0, len(data), fault)

    def send_error_json(
        self, ctx: Ctx, status: int, code: str | None, message: str, extra: Mapping[str, str] | None = None
    ) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Error-Message": message}
        if code is not None:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        self.send_raw(ctx, status, headers, json.dumps({"error": message}).encode())

    def write(self, ctx: Ctx, piece: memoryview) -> None:
        """Send everything, counting bytes as they leave so a disconnect records the true amount."""
        sock = self.connection
        while piece:
            # Before the write, not after: the client may read these bytes and send its next
            # request before this thread runs again (see `RequestRecord.sending_until`).
            ctx.last_send = time.monotonic()
            sent = sock.send(piece)
            ctx.bytes_sent += sent
            piece = piece[sent:]

    def paced_write(self, ctx: Ctx, piece: memoryview) -> None:
        if not piece:
            return
        hub = self.hub
        shaping.pace(
            len(piece),
            conn=self.conn_pacer,
            conn_rate=hub.conn_rate,
            link=hub._link_pacer,
            link_rate=hub.link_rate,
            stop=hub._stop_event,
        )
        self.write(ctx, piece)

    def trickle(self, ctx: Ctx, pieces: Iterable[memoryview], rate: float) -> None:
        """Send `pieces` at `rate` bytes/s in small writes (ten a second, or one byte at a time below
        10 B/s), the first at once; give up when the client has gone (a write fails) or on stop()."""
        hub = self.hub
        step = max(1, int(rate / 10))
        first = True
        hub._log.park(True)
        try:
            for piece in pieces:
                for at in range(0, len(piece), step):
                    bit = piece[at : at + step]
                    if not first and hub._stop_event.wait(len(bit) / rate):
                        self.abort(reset=False)
                    first = False
                    self.write(ctx, bit)
        finally:
            hub._log.park(False)

    def stall(self, seconds: float) -> None:
        """Go quiet without closing; give up early if the client hangs up (its timeout fired) or on stop()."""
        hub = self.hub
        deadline = time.monotonic() + seconds
        hub._log.park(True)
        try:
            while (left := deadline - time.monotonic()) > 0:
                if hub._stop_event.wait(min(0.05, left)):
                    self.abort(reset=False)
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable:
                    try:
                        peek = self.connection.recv(1, socket.MSG_PEEK)
                    except OSError:
                        peek = b""
                    if not peek:
                        self.abort(reset=False)
        finally:
            hub._log.park(False)

    def abort(self, *, reset: bool) -> None:
        """Drop the connection mid-body: FIN for `cut` (client sees a short body), RST for `reset`."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            if reset:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        raise AbortConnection
