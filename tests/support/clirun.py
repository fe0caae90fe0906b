"""Run `python -m wanmodels ARGS` for a test: in this process when that is the same thing, else in a child.

A child costs 0.2-0.4 s of interpreter start-up and imports per call, and the suite makes hundreds
of calls, so most run in this process: `runpy` executes `wanmodels.__main__` as `python -m` does
(`sys.argv`, `__main__`), with the call's environment, working directory and an empty stdin, and
stdout and stderr captured apart as UTF-8 bytes, read back as a pipe in text mode reads them. What
a fresh interpreter would show is shown: warnings and unhandled log records go to that stderr, an
uncaught exception prints its traceback and exits 1, and the call ends only when the threads it
started (other than daemons) have and huggingface_hub's connections are closed, as at exit.

A call runs in a child when this process cannot stand in for one: its environment changes a
variable huggingface_hub reads once, at import (any `HF_*` but `HF_TOKEN`, which it reads per
request), it asks for `-v` (which sets `HF_HUB_VERBOSITY` before that import), it is made off the
main thread (the CLI installs a SIGTERM handler), or the test asks for one (`process=True`).
Signals, kills and races use `tests.support.cli.spawn`, always a child.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["CliRun", "needs_process", "run_cli"]

_VERBOSE = frozenset({"-v", "--verbose"})


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def needs_process(args: Sequence[str], changed_env: Mapping[str, str]) -> bool:
    """Whether only a fresh interpreter gives this call's behaviour (see the module docstring)."""
    import_time = [k for k in changed_env if k.startswith(("HF_", "HUGGINGFACE_")) and k != "HF_TOKEN"]
    return (
        bool(import_time)
        or bool(_VERBOSE & set(args))
        or threading.current_thread() is not threading.main_thread()
    )


def run_cli(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    changed_env: Mapping[str, str],
    timeout: float = 60,
    process: bool = False,
) -> CliRun:
    """`python -m wanmodels ARGS` in `cwd` with exactly `env`; `changed_env` is what the test set on top."""
    if process or needs_process(args, changed_env):
        return run_in_child(args, cwd=cwd, env=env, timeout=timeout)
    return run_in_process(args, cwd=cwd, env=env, timeout=timeout)


def run_in_child(args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 60) -> CliRun:
    proc = subprocess.run(
        [sys.executable, "-m", "wanmodels", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


class _TimedOut(BaseException):
    """Raised in the main thread when an in-process call outlives its timeout (a child would be killed)."""


def run_in_process(args: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float = 60) -> CliRun:
    out, err = _pipe("strict"), _pipe("backslashreplace")
    before = set(threading.enumerate())
    deadline = time.monotonic() + timeout
    code: int
    with (
        _environment(env),
        _chdir(cwd),
        _std_streams(args, out, err),
        _fresh_logging(err),
        _fresh_warnings(err),
    ):
        try:
            with _alarm(timeout):
                runpy.run_module("wanmodels", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = _exit_status(exit_.code, err)
        except _TimedOut:
            raise AssertionError(f"`wanmodels {' '.join(args)}` still running after {timeout:g} s") from None
        except Exception:
            traceback.print_exc(file=err)
            code = 1
        _join_new_threads(before, deadline, args)
        _at_exit()
    return CliRun(code, _text(out), _text(err))


def _pipe(errors: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors=errors, write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    raw = stream.buffer.getvalue()  # type: ignore[attr-defined]
    # A pipe read in text mode translates "\r\n" and "\r" to "\n"; so does this.
    return io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8").read()


def _exit_status(code: object, err: io.TextIOWrapper) -> int:
    """What the interpreter makes of `sys.exit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err.write(f"{code}\n")
    return 1


def _join_new_threads(before: set[threading.Thread], deadline: float, args: Sequence[str]) -> None:
    """An interpreter exits only once its non-daemon threads have ended: wait for those this call started."""
    for thread in set(threading.enumerate()) - before:
        if thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise AssertionError(
                f"`wanmodels {' '.join(args)}` returned but its thread {thread.name} runs on"
            )


def _at_exit() -> None:
    """What a child's exit does that matters here: huggingface_hub's atexit hook closes its shared client,
    so no connection outlives the call and the next call opens its own, as a new process would."""
    from huggingface_hub import close_session

    close_session()


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


@contextlib.contextmanager
def _std_streams(args: Sequence[str], out: io.TextIOWrapper, err: io.TextIOWrapper) -> Iterator[None]:
    saved = sys.argv, sys.stdin, sys.stdout, sys.stderr, signal.getsignal(signal.SIGTERM)
    sys.argv = ["wanmodels", *args]  # runpy sets argv[0] as `python -m` does
    sys.stdin = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # stdin=DEVNULL
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved[:4]
        signal.signal(signal.SIGTERM, saved[4])  # the CLI installs its own


@contextlib.contextmanager
def _fresh_logging(err: io.TextIOWrapper) -> Iterator[None]:
    """Log records reach `err` as in a new interpreter: pytest's root handlers set aside, so records
    nobody handles fall to `logging.lastResort` (stderr, WARNING and up), and huggingface_hub's own
    handler, bound to the stderr of the test that first imported it, writes to `err`."""
    root = logging.getLogger()
    saved_root = root.handlers[:], root.level
    streams = [
        h for h in logging.getLogger("huggingface_hub").handlers if isinstance(h, logging.StreamHandler)
    ]
    saved_streams = [h.stream for h in streams]
    root.handlers[:] = []
    root.setLevel(logging.WARNING)
    for handler in streams:
        handler.setStream(err)
    try:
        yield
    finally:
        root.handlers[:], _ = saved_root
        root.setLevel(saved_root[1])
        for handler, stream in zip(streams, saved_streams, strict=True):
            handler.setStream(stream)


@contextlib.contextmanager
def _fresh_warnings(err: io.TextIOWrapper) -> Iterator[None]:
    """The interpreter's default warning filters, printed to `err` (pytest would record them instead)."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)

        def show(
            message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: Any
        ) -> None:
            err.write(warnings.formatwarning(message, category, filename, lineno))

        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
