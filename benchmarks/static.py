"""nginx on 127.0.0.1 serving files under their sha256: a static server fast enough (sendfile, no
Python) that what a CPU measurement sees is the client, not the server. The test Hub lists and
resolves as usual and points its redirects at it (`HubServer(cdn_origin=...)`)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from benchmarks.harness import MIB

CONFIG = """\
user root;
worker_processes 2;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location / {{ }}
  }}
}}
"""


def by_sha256(files: dict[str, Path | bytes], folder: Path) -> None:
    """Hard-link (or write) each file as `folder/<sha256>`, the name the Hub's signed URLs use."""
    folder.mkdir(parents=True, exist_ok=True)
    for value in files.values():
        digest = hashlib.sha256()
        if isinstance(value, Path):
            with value.open("rb") as f:
                while block := f.read(8 * MIB):
                    digest.update(block)
        else:
            digest.update(value)
        target = folder / digest.hexdigest()
        if target.exists():
            continue
        if isinstance(value, Path):
            os.link(value, target)
        else:
            target.write_bytes(value)


class Nginx:
    """`nginx -c` a config of its own in `tmp`, serving `root` on a free loopback port."""

    def __init__(self, binary: str, root: Path, tmp: Path) -> None:
        self.binary, self.root, self.tmp = binary, root, tmp
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Nginx:
        self.tmp.mkdir(parents=True, exist_ok=True)
        conf = self.tmp / "nginx.conf"
        conf.write_text(CONFIG.format(tmp=self.tmp, port=self.port, root=self.root))
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        self.__exit__(None, None, None)
        raise RuntimeError(
            f"nginx did not start: {(self.tmp / 'error.log').read_text(errors='replace')[-300:]}"
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
