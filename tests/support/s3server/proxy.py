"""A fault-injecting, logging HTTP proxy in front of moto: every S3 request of a test goes through it.

It forwards each request as received (the Host header too, so SigV4 signatures still verify) and
streams the answer back, counting body bytes per object. `Fault(origin="s3", ...)` from
`tests.support.hubserver` targets requests: `path` matches the object key, `repo_id` the bucket. Kinds:
`status` (answer `status` with an S3 error body whose code is `headers["x-error-code"]`, default
`SlowDown`, without asking moto), `cut` (send the headers and `after_bytes` of the body, then
close), `stall` (the same, but first go quiet for `seconds` or until the proxy stops: a kill then
lands mid-transfer), `corrupt` (flip every byte of the body), `hang` (wait `seconds`, or until the
proxy stops, before forwarding: an upload or read that stays in flight).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.hubserver.faults import Fault, FaultBook, Target
from tests.support.hubserver.log import Ctx, RequestLog

_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"})
CHUNK = 256 << 10


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], faults: FaultBook, log: RequestLog) -> None:
        self.upstream = upstream
        self.faults = faults
        self.log = log
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        import traceback

        if isinstance(sys.exc_info()[1], OSError):
            return
        self.log.note_error(traceback.format_exc())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: ProxyServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if self._upstream is not None:
            self._upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `S3Server.requests`."""

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _forward(self) -> None:
        split = urlsplit(self.path)
        bucket, _, key = unquote(split.path).lstrip("/").partition("/")
        ctx = Ctx(
            method=self.command,
            path=unquote(split.path),
            query=split.query,
            range=self.headers.get("Range"),
            authorized=self.headers.get("Authorization") is not None,
            started=time.monotonic(),
            origin="s3",
            repo_id=bucket or None,
            file=key or None,
        )
        log = self.server.log
        log.begin()
        try:
            body = self._body()
            target = Target(api=False, path=key, repo_id=bucket, method=self.command, origin="s3")
            hang = self.server.faults.take(target, frozenset({"hang"}))
            if hang is not None:
                ctx.fault = "hang"
                log.park(True)
                try:
                    self.server.stopping.wait(hang.seconds)
                finally:
                    log.park(False)
            fault = self.server.faults.take(target, frozenset({"status", "cut", "stall", "corrupt"}))
            if fault is not None:
                ctx.fault = fault.kind
            if fault is not None and fault.kind == "status":
                self._answer_fault(ctx, fault)
                return
            self._relay(ctx, body, fault)
        except OSError:
            self.close_connection = True
        finally:
            log.end(ctx)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is not None:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            raw = b""
            while True:  # kept as sent: moto decodes the chunked (and aws-chunked) framing itself
                line = self.rfile.readline()
                raw += line
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline()
                        raw += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return raw
                raw += self.rfile.read(size + 2)
        return b""

    def _answer_fault(self, ctx: Ctx, fault: Fault) -> None:
        code = fault.headers.get("x-error-code", "SlowDown")
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>injected {fault.status}</Message><RequestId>fault</RequestId></Error>"
        ).encode()
        ctx.status = fault.status
        self.send_response(fault.status)
        for name, value in fault.headers.items():
            if name != "x-error-code":
                self.send_header(name, value)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _relay(self, ctx: Ctx, body: bytes, fault: Fault | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(*self.server.upstream, timeout=120)
            try:
                self._upstream.request(self.command, self.path, body=body or None, headers=headers)
                answer = self._upstream.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._upstream.close()
                self._upstream = None  # moto closed an idle keep-alive connection: open another
                if attempt == 2:
                    raise
        ctx.status = answer.status
        self.send_response(answer.status)
        length = answer.getheader("Content-Length")
        for name, value in answer.getheaders():
            if name.lower() not in _HOP and name.lower() not in ("transfer-encoding", "content-length"):
                self.send_header(name, value)
        data = b"" if self.command == "HEAD" else None
        if length is None and self.command != "HEAD":
            data = answer.read()
            length = str(len(data))
        self.send_header("Content-Length", length or "0")
        self.end_headers()
        ctx.headers_sent = True
        if self.command == "HEAD":
            answer.read()
            return
        sent = 0
        limit = fault.after_bytes if fault is not None and fault.kind in ("cut", "stall") else None
        pending = [data] if data is not None else None
        while True:
            chunk = pending.pop() if pending else (b"" if pending is not None else answer.read(CHUNK))
            if not chunk:
                break
            if fault is not None and fault.kind == "corrupt":
                chunk = bytes(b ^ 0xFF for b in chunk)
            if limit is not None and sent + len(chunk) >= limit:
                self.wfile.write(chunk[: limit - sent])
                ctx.bytes_sent = limit
                self.wfile.flush()
                if fault is not None and fault.kind == "stall":
                    self.server.log.park(True)
                    try:
                        self.server.stopping.wait(fault.seconds)
                    finally:
                        self.server.log.park(False)
                if self._upstream is not None:
                    self._upstream.close()
                self._upstream = None
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(chunk)
            sent += len(chunk)
            ctx.bytes_sent = sent
