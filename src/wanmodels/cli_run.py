"""How one command runs at the CLI's edge: open what `-m` names, pick the console and the
progress sink, print the `--json` document, and turn a result or an error into an exit code.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import typer
from typer.exceptions import TyperException

from wanmodels.config import resolve_manifest_arg, root_override
from wanmodels.errors import EXIT_USAGE, Interrupted, WanmodelsError

if TYPE_CHECKING:
    from wanmodels.manifest import Manifest
    from wanmodels.report import Console

INTERRUPTED_MESSAGE: Final = "interrupted; partial downloads are kept. Run the same command again to resume."
COMMANDS: Final = ("download", "verify", "lock", "status", "list", "init", "import")


def dry_run_command(path: Path) -> str:
    """`wanmodels download --dry-run` for a manifest just written: `-m` unless it is what the
    default lookup finds (`$WANMODELS_MANIFEST` may point elsewhere)."""
    found = resolve_manifest_arg(None)
    default = found is not None and Path(found).resolve() == path.resolve()
    return shlex.join(["wanmodels", "download", *(() if default else ("-m", str(path))), "--dry-run"])


def open_manifest_arg(manifest: str | None, root: str | None) -> Manifest:
    from wanmodels.presets import open_manifest

    return open_manifest(resolve_manifest_arg(manifest), root=root_override(root))


def stderr_console(no_color: bool) -> Console:
    from wanmodels.report import make_console

    return make_console(sys.stderr, no_color=no_color)


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


def progress_sink(console: Console) -> Any:
    from wanmodels.report import LineProgress, RichProgress

    return RichProgress(console) if console.is_terminal and not console.no_color else LineProgress(console)


def line_sink(console: Console) -> Any:
    from wanmodels.report import LineProgress

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
            from wanmodels.documents import error_json

            print_json(error_json(command, err))
        raise
    raise typer.Exit(code)


def on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM stops the run as Ctrl-C does. The next one is ignored: `timeout` signals the child
    and then its group, and a second KeyboardInterrupt inside an exit hook prints a traceback."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def usage_json(err: TyperException) -> None:
    """`--json` promises one document even when the command line itself is wrong."""
    if "--json" not in sys.argv[1:]:
        return
    from wanmodels.documents import error_json

    command = next((a for a in sys.argv[1:] if a in COMMANDS), "wanmodels")
    message = err.format_message() if hasattr(err, "format_message") else str(err)
    print_json(error_json(command, None, message=message, code=getattr(err, "exit_code", EXIT_USAGE)))
