"""An S3-compatible server on 127.0.0.1 for tests and benchmarks: moto's server mode, behind a proxy.

`S3Server` starts moto in a child process (`child`) with request signing checked for real
(credentials of an IAM user it creates, so wrong keys get moto's own 403), and puts a proxy
(`proxy`) in front of it on another port: clients talk to `url`, the proxy logs every request
(`requests`, `gets`, `bytes_sent`) and applies `Fault(origin="s3", ...)` knobs. Setup and
tampering go straight to moto through `client()`. One server serves a whole test session; each
test takes a bucket of its own (`new_bucket`). Its own tests, beside it: `tests/support/test_s3server.py`.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.hubserver.faults import Fault, FaultBook
from tests.support.hubserver.log import RequestLog, RequestRecord
from tests.support.s3server.proxy import ProxyServer

__all__ = ["REGION", "S3Server"]

REGION = "us-east-1"
_ROOT = Path(__file__).resolve().parents[3]
# moto lets this many requests through unsigned, enough to create the user and its key: after them
# every request must carry a valid signature of a key moto knows.
_SETUP_ACTIONS = 3


class S3Server:
    """moto on 127.0.0.1 behind a logging, fault-injecting proxy; see the module docstring."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self._proxy: ProxyServer | None = None
        self._thread: threading.Thread | None = None
        self._faults = FaultBook()
        self._log = RequestLog()
        self._names = itertools.count()
        self.access_key = ""
        self.secret_key = ""
        self.direct_url = ""
        self.settle_timeout = 2.0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> S3Server:
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS), "PYTHONPATH": str(_ROOT)}
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.support.s3server.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=_ROOT,
        )
        assert self._child.stdout is not None
        port = int(self._child.stdout.readline())
        self.direct_url = f"http://127.0.0.1:{port}"
        self._make_user()
        self._proxy = ProxyServer(("127.0.0.1", port), self._faults, self._log)
        self._thread = threading.Thread(
            target=self._proxy.serve_forever, kwargs={"poll_interval": 0.05}, name="s3-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stopping.set()
            self._proxy.shutdown()
            self._proxy.server_close()
            self._proxy = None
        if self._child is not None:
            assert self._child.stdin is not None
            self._child.stdin.close()
            try:
                self._child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _make_user(self) -> None:
        iam = _client("iam", self.direct_url, "setup", "setup")
        iam.create_user(UserName="wanmodels-tests")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="wanmodels-tests", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="wanmodels-tests")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    # -- what clients use -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy: what `AWS_ENDPOINT_URL` points at."""
        assert self._proxy is not None, "start() first"
        return f"http://127.0.0.1:{self._proxy.server_address[1]}"

    def env(self, **extra: str) -> dict[str, str]:
        """Variables for a client that sees only this server: its endpoint, keys and region, no
        shared config or credentials file, no instance metadata lookups."""
        values = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        values.update(extra)
        return values

    def client(self) -> Any:
        """A botocore S3 client with this server's keys, straight to moto (no proxy, no log)."""
        return _client("s3", self.direct_url, self.access_key, self.secret_key)

    def new_bucket(self, stem: str = "bucket") -> str:
        name = f"{stem}-{os.getpid()}-{next(self._names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        s3 = self.client()
        found = {}
        for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents") or ():
            found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return found

    # -- knobs and log --------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        if fault.origin != "s3":
            raise ValueError("an S3Server fault needs origin='s3'")
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def errors(self) -> list[str]:
        return self._log.errors

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.snapshot(self.settle_timeout)

    def clear_log(self) -> None:
        self._log.clear()

    def gets(self, bucket: str, key: str | None = None) -> list[RequestRecord]:
        """GETs of objects of `bucket` (one key, or all), answered by moto or by a fault."""
        return [
            r
            for r in self.requests
            if r.method == "GET" and r.repo_id == bucket and r.file and (key is None or r.file == key)
        ]

    def bytes_sent(self, bucket: str, key: str | None = None) -> int:
        """Object bytes the proxy sent for `gets(bucket, key)` (ranged and whole reads)."""
        return sum(r.bytes_sent for r in self.gets(bucket, key) if r.status in (200, 206))


def _client(service: str, url: str, key: str, secret: str) -> Any:
    import botocore.session  # type: ignore[import-untyped, unused-ignore]
    from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]

    return botocore.session.Session().create_client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )
