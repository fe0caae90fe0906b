"""How one command runs at the CLI's edge: open what `-m` names, pick the console and the
progress sink, print the `--json` document, and turn a result or an error into an exit code.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import typer
from typer.exceptions import TyperException

from wanmodels.config import resolve_manifest_arg, root_override
from wanmodels.errors import EXIT_USAGE, Interrupted, WanmodelsError

if TYPE_CHECKING:
    from wanmodels.cli.render import Console
    from wanmodels.inputs.manifest import Manifest

INTERRUPTED_MESSAGE: Final = "interrupted; partial downloads are kept. Run the same command again to resume."


def dry_run_command(path: Path) -> str:
    """`wanmodels download --dry-run` for a manifest just written: `-m` unless it is what the
    default lookup finds (`$WANMODELS_MANIFEST` may point elsewhere)."""
    found = resolve_manifest_arg(None)
    default = found is not None and Path(found).resolve() == path.resolve()
    return shlex.join(["wanmodels", "download", *(() if default else ("-m", str(path))), "--dry-run"])


def open_manifest_arg(manifest: str | None, root: str | None, with_: list[str] | None = None) -> Manifest:
    from wanmodels.inputs.options import parse_choices
    from wanmodels.inputs.presets import open_manifest

    choices = parse_choices(with_ or ())
    return open_manifest(resolve_manifest_arg(manifest), root=root_override(root), choices=choices)


def stderr_console(no_color: bool) -> Console:
    from wanmodels.cli.render import make_console

    return make_console(sys.stderr, no_color=no_color)


def result_console(as_json: bool) -> Console:
    """Where a listing command's result goes: stdout (for `| grep`), unless `--json` has it."""
    from wanmodels.cli.render import make_console

    return make_console(sys.stderr if as_json else sys.stdout)


class PipeGuard:
    """A standard stream that goes quiet once its reader has gone (`| head` exited): the rest of
    the output is dropped, the command finishes its work and exits with its own code, with no
    BrokenPipeError anywhere (not from a worker thread, not at exit)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _silence(self) -> None:
        """Point the descriptor at /dev/null, so buffered bytes and later writes (the
        interpreter's own flush at exit included) go nowhere instead of failing again."""
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError, AttributeError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def guard_std_streams() -> None:
    """Wrap stdout and stderr in `PipeGuard`s (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, PipeGuard):
            setattr(sys, name, PipeGuard(stream))


def verbose_logging() -> None:
    """Send the request logs to stderr: wanmodels' line per response (status, range) and
    huggingface_hub's own line per request, both without query strings (signed CDN links)."""
    import logging

    # huggingface_hub prints its own request lines, on its own handler, once this asks for them.
    os.environ["HF_HUB_VERBOSITY"] = "debug"
    # Signed CDN links carry capabilities in their query strings: never log those.
    logging.getLogger("huggingface_hub.utils._http").addFilter(strip_queries)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("wanmodels")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)


def strip_queries(record: Any) -> bool:
    """A logging filter: cut `?...` off every URL among a record's arguments."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            str(a).split("?", 1)[0] if "://" in str(a) and "?" in str(a) else a for a in record.args
        )
    return True


def progress_sink(console: Console, interval: float | None) -> Any:
    """Bars on a terminal (without colour under NO_COLOR: colour is all it turns off); in a
    log, a plain line with bytes, rate and time left every `interval` seconds
    (`--progress-interval`, `$WANMODELS_PROGRESS_INTERVAL`, default 30)."""
    from wanmodels.cli.render import LineProgress, RichProgress
    from wanmodels.config import progress_interval

    if console.is_terminal:
        return RichProgress(console)
    return LineProgress(console, every=progress_interval(interval))


def line_sink(console: Console) -> Any:
    from wanmodels.cli.render import LineProgress

    return LineProgress(console)


def print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def finish(command: str, as_json: bool, verbose: bool, run: Callable[[], int]) -> NoReturn:
    """Run a command body; turn its result or expected error into output and an exit code."""
    if verbose:
        verbose_logging()
    try:
        try:
            code = run()
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED_MESSAGE) from None
    except WanmodelsError as err:
        if as_json:
            from wanmodels.cli.documents import error_json

            print_json(error_json(command, err))
        raise
    raise typer.Exit(code)


def on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops the run as Ctrl-C does. The next one is ignored: `timeout` signals the child
    and then its group, and a second KeyboardInterrupt inside an exit hook prints a traceback."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def usage_json(err: TyperException, commands: Iterable[str]) -> None:
    """`--json` promises one document even when the command line itself is wrong."""
    if "--json" not in sys.argv[1:]:
        return
    from wanmodels.cli.documents import error_json

    known = set(commands)
    command = next((a for a in sys.argv[1:] if a in known), "wanmodels")
    message = err.format_message() if hasattr(err, "format_message") else str(err)
    print_json(error_json(command, None, message=message, code=getattr(err, "exit_code", EXIT_USAGE)))
