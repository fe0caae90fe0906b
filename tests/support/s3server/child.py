"""Run moto's S3 server on 127.0.0.1 in this process until stdin closes; print its port first.

Started by `S3Server` as a child: moto then has a core of its own instead of sharing the test
process's interpreter lock, and it dies with its parent (stdin is the parent's pipe).
"""

from __future__ import annotations

import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # returns when the parent closes the pipe or dies
    server.stop()


if __name__ == "__main__":
    main()
