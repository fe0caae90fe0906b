"""Measure how closely the test Hub's pacing holds its rates: N connections each pull one range of a
file with `conn_rate = L / N` and `link_rate = L`, directly from the Hub and through its CDN.
Prints achieved rate, % of the target and the server's CPU use; asserts nothing.

    python -m benchmarks.pacing [--link-mib 32] [--seconds 3]    # from the repo root
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

from tests.support.hubserver import HubServer

MIB = 1 << 20

# The client runs in its own process so its CPU is not counted as the server's.
CLIENT = r"""
import http.client, json, sys, threading, time
host, port, path, size, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
got = [0] * n
def pull(i):
    part = size // n
    start, end = i * part, (size if i == n - 1 else (i + 1) * part) - 1
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request("GET", path, headers={"Range": f"bytes={start}-{end}"})
    answer = conn.getresponse()
    while chunk := answer.read(1 << 16):
        got[i] += len(chunk)
started = time.monotonic()
threads = [threading.Thread(target=pull, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"seconds": time.monotonic() - started, "bytes": sum(got)}))
"""


def measure(link: float, seconds: float, n: int, *, cdn: bool, per_conn: bool = True) -> str:
    size = int(link * seconds)
    conn_rate = link / n if per_conn else None
    with HubServer(cdn=cdn, conn_rate=conn_rate, link_rate=link) as srv:
        srv.add_repo("pace/r", {"w.safetensors": os.urandom(size)})
        resolve = "/pace/r/resolve/main/w.safetensors"
        if cdn:
            hub = http.client.HTTPConnection("127.0.0.1", urlsplit(srv.url).port, timeout=10)
            hub.request("HEAD", resolve)
            target = urlsplit(hub.getresponse().headers["Location"])
            hub.close()
            host, port, path = target.hostname or "", target.port, f"{target.path}?{target.query}"
        else:
            host, port, path = "127.0.0.1", urlsplit(srv.url).port, resolve
        before = os.times()
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, host, str(port), path, str(size), str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        after = os.times()
    result = json.loads(out)
    cpu = (after.user - before.user) + (after.system - before.system)
    rate = result["bytes"] / result["seconds"]
    limit = min(link, n * conn_rate) if conn_rate else link
    conn_text = f"conn_rate {conn_rate / MIB:.2f} MiB/s" if conn_rate else "no conn_rate"
    return (
        f"{'cdn' if cdn else 'hub'} n={n:2d} {conn_text}, link_rate {link / MIB:.0f} MiB/s, "
        f"{size / MIB:.0f} MiB: {rate / MIB:.2f} MiB/s = {100 * rate / limit:.1f}% of {limit / MIB:.2f}; "
        f"server CPU {100 * cpu / result['seconds']:.0f}% of a core"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--link-mib", type=float, default=32.0, help="link rate L in MiB/s")
    parser.add_argument("--seconds", type=float, default=3.0, help="ideal transfer time at L")
    args = parser.parse_args(argv)
    link = args.link_mib * MIB
    for n, cdn, per_conn in (
        (8, False, True),
        (16, False, True),
        (4, False, True),
        (8, True, True),
        (8, False, False),
    ):
        print(measure(link, args.seconds, n, cdn=cdn, per_conn=per_conn), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
