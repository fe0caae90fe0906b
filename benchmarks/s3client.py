"""Measure the S3 client candidates: import cost, client set-up, ranged-read throughput and CPU.

    python -m benchmarks.s3client [--mib 256] [--repeat 3]      (from the repository root)

Import and set-up are timed in fresh interpreters (median of `--repeat`), against the CLI's own
start-up (`python -m wanmodels --help`). Throughput reads one `--mib` object from moto's server
(`tests.support.s3server`, straight to moto: no proxy) in 16 MiB ranges over 1 and 4 threads, with
botocore (what `wanmodels[s3]` uses) and with obstore when it is installed; "CPU" is this
process's CPU seconds per GiB read (the server runs in another process). Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from tests.support.s3server import REGION, S3Server

MIB = 1 << 20
PART = 16 * MIB

SNIPPETS = {
    "python -m wanmodels --help (whole run)": None,
    "import botocore.session": "import botocore.session",
    "import boto3": "import boto3",
    "import obstore": "import obstore, obstore.store",
    "botocore: import + S3 client": (
        "import botocore.session\n"
        "botocore.session.get_session().create_client('s3', region_name='us-east-1',"
        " endpoint_url='http://127.0.0.1:9', aws_access_key_id='a', aws_secret_access_key='b')"
    ),
    "obstore: import + S3Store": (
        "from obstore.store import S3Store\n"
        "S3Store('b', endpoint='http://127.0.0.1:9', region='us-east-1', access_key_id='a',"
        " secret_access_key='b', client_options={'allow_http': True})"
    ),
}


def timed(snippet: str | None, repeat: int) -> str:
    times = []
    for _ in range(repeat):
        if snippet is None:
            args = [sys.executable, "-m", "wanmodels", "--help"]
            t0 = time.perf_counter()
            subprocess.run(args, capture_output=True, check=False)
            times.append(time.perf_counter() - t0)
        else:
            code = f"import time\nt0 = time.perf_counter()\n{snippet}\nprint(time.perf_counter() - t0)"
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if proc.returncode:
                return "not installed"
            times.append(float(proc.stdout.split()[-1]))
    return f"{statistics.median(times) * 1000:.0f} ms"


def throughput(read: Callable[[int, int], int], size: int, threads: int) -> str:
    ranges = iter([(a, min(a + PART, size)) for a in range(0, size, PART)])
    lock = threading.Lock()
    total = [0]

    def work() -> None:
        while True:
            with lock:
                span = next(ranges, None)
            if span is None:
                return
            n = read(*span)
            with lock:
                total[0] += n

    cpu, t0 = time.process_time(), time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    assert total[0] == size
    return f"{size / wall / MIB:.0f} MiB/s, CPU {cpu / (size / (1 << 30)):.2f} s/GiB"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    print("| start-up cost (median) | |\n|---|---|")
    for name, snippet in SNIPPETS.items():
        print(f"| {name} | {timed(snippet, opts.repeat)} |")
    size = opts.mib * MIB
    with S3Server() as s3:
        bucket = s3.new_bucket("bench")
        s3.client().put_object(Bucket=bucket, Key="blob", Body=os.urandom(MIB) * opts.mib)
        client = s3.client()

        def boto_read(a: int, b: int) -> int:
            body = client.get_object(Bucket=bucket, Key="blob", Range=f"bytes={a}-{b - 1}")["Body"]
            return sum(len(c) for c in iter(lambda: body.read(256 << 10), b""))

        readers: dict[str, Callable[[int, int], int]] = {"botocore": boto_read}
        try:
            import obstore  # type: ignore[import-not-found, unused-ignore]
            from obstore.store import S3Store  # type: ignore[import-not-found, unused-ignore]

            store = S3Store(
                bucket,
                endpoint=s3.direct_url,
                region=REGION,
                access_key_id=s3.access_key,
                secret_access_key=s3.secret_key,
                client_options={"allow_http": True},
            )

            def obstore_read(a: int, b: int) -> int:
                got = obstore.get(store, "blob", options={"range": (a, b)})
                return sum(len(c) for c in got.stream(min_chunk_size=256 << 10))

            readers["obstore"] = obstore_read
        except ImportError:
            pass
        print(f"\n| ranged reads of {opts.mib} MiB from moto, 16 MiB ranges | 1 thread | 4 threads |")
        print("|---|---|---|")
        for name, read in readers.items():
            print(f"| {name} | {throughput(read, size, 1)} | {throughput(read, size, 4)} |")


if __name__ == "__main__":
    main()
