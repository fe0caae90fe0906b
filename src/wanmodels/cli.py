"""The `wanmodels` command: parse flags, call one library function, render, map errors to exit codes.

Only typer, `wanmodels.errors` and `wanmodels.config` are imported at start-up; everything
heavy (huggingface_hub, rich, yaml) loads inside the command that needs it, so `--help`
and `--version` stay instant.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand
from typer.exceptions import TyperException

from wanmodels import __version__
from wanmodels.config import (
    LOCAL_MANIFEST,
    debug_enabled,
    resolve_manifest_arg,
    resolve_settings,
    root_override,
)
from wanmodels.errors import EXIT_INTERRUPTED, EXIT_USAGE, Interrupted, WanmodelsError

if TYPE_CHECKING:
    from wanmodels.manifest import Manifest
    from wanmodels.report import Console

# Each example fits on one line of an 80-column terminal (click indents the epilog by 2).
DOWNLOAD_EXAMPLES: Final = [
    "wanmodels download --dry-run        (files and bytes; nothing is fetched)",
    "wanmodels download                  (the default stack, about 64 GiB)",
    "wanmodels download -m wan2.1-comfyui --root ~/ComfyUI/models",
    "wanmodels download --max-rate 20M   (leave bandwidth for others)",
    "wanmodels download --reuse-from DIR (take files already in DIR)",
    "wanmodels download --frozen --json  (CI: exactly the lockfile)",
]
VERIFY_EXAMPLES: Final = [
    "wanmodels verify                    (sizes, cached hashes, formats)",
    "wanmodels verify --full             (re-hash every byte)",
    "wanmodels verify --repair           (re-fetch only what fails)",
    "wanmodels verify --prune --dry-run  (what --prune would delete)",
]
INTERRUPTED_MESSAGE: Final = "interrupted; partial downloads are kept. Run the same command again to resume."
COMMANDS: Final = ("download", "verify", "lock", "status", "list", "init", "import")


def _epilog(examples: list[str]) -> str:
    # "\b" tells click to keep the next paragraph's line breaks instead of re-wrapping it.
    return "Examples:\n\n\b\n" + "\n".join(examples)


class _Command(TyperCommand):
    """typer's command, with arguments shown by their metavar alone: typer 0.29 adds type
    names (`NAMES <list[str]>`) and doubles brackets in the usage line (`[[NAMES]...]...`)."""

    # `ctx` and `formatter` are click's Context and HelpFormatter (vendored inside typer).
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                arguments.append((param.metavar or record[0], record[1]))
            else:
                options.append(record)
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


app = typer.Typer(
    name="wanmodels",
    help=(
        "Download and verify the Wan 2.1 image-to-video model stack from a pinned manifest.\n\n"
        "\b\nStart with:\n"
        "  wanmodels list                 (the presets and their sizes)\n"
        "  wanmodels download --dry-run   (what would be fetched, and how much)"
    ),
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ManifestOpt = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--manifest",
        metavar="PATH|PRESET",
        help="Manifest file or preset (default: $WANMODELS_MANIFEST, ./wanmodels.yaml, wan2.1-i2v).",
    ),
]
RootOpt = Annotated[
    str | None,
    typer.Option(
        "--root", metavar="DIR", help="Put models here instead of the manifest's root ($WANMODELS_ROOT)."
    ),
]
NamesArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="NAMES", help="Entries to act on (default: all).", show_default=False),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout; text goes to stderr.")
]
OfflineOpt = Annotated[
    bool | None,
    typer.Option("--offline", help="Never touch the network (also HF_HUB_OFFLINE=1).", show_default=False),
]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print only what went wrong.")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="No colour or bars (also NO_COLOR).")]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "-v", "--verbose", help="Log every HTTP request and its status to stderr (never the token)."
    ),
]
PruneOpt = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Delete files wanmodels placed earlier that the manifest no longer selects (nothing else).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wanmodels {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Download and verify the Wan 2.1 image-to-video model stack."""


@app.command(
    cls=_Command,
    epilog=_epilog(DOWNLOAD_EXAMPLES),
    short_help="Fetch the files, resumably; place each once its hash matches.",
)
def download(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            metavar="N",
            help="Connections shared by all files (default 8, $WANMODELS_WORKERS).",
        ),
    ] = None,
    max_rate: Annotated[
        str | None,
        typer.Option(
            "--max-rate",
            metavar="RATE",
            help="Limit the download rate of all connections together: 500K, 12M, 1G per second "
            "(1024 multiples; $WANMODELS_MAX_RATE).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan (files, bytes); fetch nothing.")
    ] = False,
    frozen: Annotated[
        bool, typer.Option("--frozen", help="Fail (exit 2) unless the lockfile matches the manifest.")
    ] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Re-hash every file on disk and re-fetch only the bad ones.")
    ] = False,
    offline: OfflineOpt = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0.1, metavar="S", help="Seconds a read may stall (HF_HUB_DOWNLOAD_TIMEOUT)."
        ),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Exit 4 at once if another process holds the root.")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    verbose: VerboseOpt = False,
    prune: PruneOpt = False,
    reuse_from: Annotated[
        list[str] | None,
        typer.Option(
            "--reuse-from",
            metavar="DIR",
            help="Take files already in this wanmodels root or model folder instead of fetching them "
            "(repeatable; also $WANMODELS_REUSE_FROM). The Hugging Face cache is always looked in.",
            show_default=False,
        ),
    ] = None,
    no_reuse: Annotated[
        bool,
        typer.Option(
            "--no-reuse", help="Fetch every byte from the network: use no file already on this machine."
        ),
    ] = False,
) -> None:
    """Fetch every selected file, resumably, and place it only once its hash matches.

    Files already on this machine (the Hugging Face cache, --reuse-from folders, this root,
    the same file selected twice) are hard-linked or copied instead, after a hash check.
    """

    def run() -> int:
        from wanmodels.documents import download_json
        from wanmodels.downloader import download as run_download
        from wanmodels.report import render_download

        settings = resolve_settings(
            workers=workers,
            offline=offline,
            timeout=timeout,
            wait_for_lock=not no_wait,
            max_rate=max_rate,
            reuse=not no_reuse,
            reuse_from=tuple(reuse_from or ()),
        )
        loaded = _open(manifest, root)
        console = _console(no_color)
        # A dry run draws no bars, but still says why it waits (a rate limit, a locked root).
        sink = None if quiet else _lines(console) if dry_run else _sink(console)
        try:
            result = run_download(
                loaded,
                tuple(names or ()),
                settings=settings,
                dry_run=dry_run,
                frozen=frozen,
                repair=repair,
                prune=prune,
                sink=sink,
            )
        finally:
            if sink is not None:
                sink.close()
        render_download(result, console, quiet=quiet)
        if as_json:
            _print_json(download_json(result))
        return result.exit_code

    _finish("download", as_json, verbose, run)


@app.command(
    cls=_Command,
    epilog=_epilog(VERIFY_EXAMPLES),
    short_help="Check every file: present, right size and hash, well-formed.",
)
def verify(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Re-hash every file, even unchanged ones.")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Re-fetch the files that fail, keep the rest, verify again.")
    ] = False,
    prune: PruneOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --prune: list what would be deleted, delete nothing.")
    ] = False,
    offline: OfflineOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check that every selected file is present, the right size and hash, and well-formed."""

    def run() -> int:
        from wanmodels.documents import verify_json
        from wanmodels.report import render_repair, render_verify
        from wanmodels.verifier import repair as run_repair
        from wanmodels.verifier import verify as run_verify

        settings = resolve_settings(offline=offline)
        loaded = _open(manifest, root)
        console = _console(no_color)
        selected = tuple(names or ())
        if repair and not dry_run:
            sink = None if quiet else _sink(console)
            try:
                repaired = run_repair(loaded, selected, settings=settings, full=full, prune=prune, sink=sink)
            finally:
                if sink is not None:
                    sink.close()
            render_repair(repaired, console, quiet=quiet)
            if as_json:
                _print_json(verify_json(repaired.after, repaired))
            return repaired.exit_code
        report = run_verify(loaded, selected, settings=settings, full=full, prune=prune, dry_run=dry_run)
        render_verify(report, console, quiet=quiet)
        if as_json:
            _print_json(verify_json(report))
        return report.exit_code

    _finish("verify", as_json, verbose, run)


@app.command("lock", cls=_Command, short_help="Pin every entry to a commit and file list; fetch no bytes.")
def lock_command(
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only compare: exit 1 if the lock is missing or out of date.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resolve every entry on the Hub and write the lockfile (no file bytes are fetched)."""

    def run() -> int:
        from wanmodels.documents import lock_json
        from wanmodels.report import render_lock
        from wanmodels.resolve import lock

        loaded = _open(manifest, root)
        console = _console(False)
        result = lock(loaded, settings=resolve_settings(), check=check, sink=_lines(console))
        render_lock(result, loaded, console)
        if as_json:
            _print_json(lock_json(result, loaded))
        return result.exit_code

    _finish("lock", as_json, verbose, run)


@app.command("status", cls=_Command, short_help="Per entry: complete, missing or partial (no network).")
def status_command(
    names: NamesArg = None, manifest: ManifestOpt = None, root: RootOpt = None, as_json: JsonOpt = False
) -> None:
    """Per entry: complete, missing files or partial (no network, no hashing)."""

    def run() -> int:
        from wanmodels.documents import status_json
        from wanmodels.report import render_status
        from wanmodels.status import status

        loaded = _open(manifest, root)
        report = status(loaded, tuple(names or ()))
        render_status(report, loaded, _console(False))
        if as_json:
            _print_json(status_json(report))
        return report.exit_code

    _finish("status", as_json, False, run)


@app.command(
    "list", cls=_Command, short_help="The presets with their sizes, and the entries of the manifest."
)
def list_command(manifest: ManifestOpt = None, root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """The bundled presets with their sizes, and the entries of the current manifest."""

    def run() -> int:
        from wanmodels.documents import list_json
        from wanmodels.presets import describe_presets
        from wanmodels.report import render_list
        from wanmodels.resolve import read_pins

        loaded = _open(manifest, root)
        lock = read_pins(loaded)
        presets = describe_presets()
        render_list(presets, loaded, lock, _console(False))
        if as_json:
            _print_json(list_json(presets, loaded, lock))
        return 0

    _finish("list", as_json, False, run)


@app.command("init", cls=_Command, short_help="Write an editable ./wanmodels.yaml from a preset.")
def init_command(
    preset: Annotated[
        str, typer.Option("--preset", metavar="NAME", help="Preset to start from (see `wanmodels list`).")
    ] = "wan2.1-i2v",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing wanmodels.yaml.")] = False,
) -> None:
    """Write an editable ./wanmodels.yaml from a preset (never overwrites without --force)."""

    def run() -> int:
        from wanmodels.presets import init_manifest

        path = init_manifest(preset, Path.cwd() / LOCAL_MANIFEST, force=force)
        nxt = _dry_run_command(Path(LOCAL_MANIFEST))
        sys.stderr.write(f"wrote {path} from preset '{preset}'; edit it, then run `{nxt}`\n")
        return 0

    _finish("init", False, False, run)


IMPORT_EXAMPLES: Final = [
    "wanmodels import image_to_video_wan.json   (writes ./wanmodels.yaml)",
    "wanmodels import a.json b.json --root ~/ComfyUI/models -o comfy.yaml",
]


@app.command(
    "import",
    cls=_Command,
    epilog=_epilog(IMPORT_EXAMPLES),
    short_help="Write a manifest from the models that ComfyUI workflows name.",
)
def import_command(
    workflows: Annotated[
        list[Path],
        typer.Argument(metavar="WORKFLOW.json", help="Workflow files saved by ComfyUI.", show_default=False),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="PATH", help="Manifest to write.")] = Path(
        LOCAL_MANIFEST
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing manifest.")] = False,
    root: Annotated[
        str | None,
        typer.Option(
            "--root", metavar="DIR", help="Models folder the manifest points at (default ./ComfyUI/models)."
        ),
    ] = None,
) -> None:
    """Write a manifest holding every model the ComfyUI workflows name (never overwrites without --force)."""

    def run() -> int:
        from wanmodels.workflow import import_workflows

        result = import_workflows(workflows, output, force=force, root=root)
        models = f"{len(result.models)} model{'s' if len(result.models) != 1 else ''}"
        flows = f"{len(result.workflows)} workflow{'s' if len(result.workflows) != 1 else ''}"
        nxt = _dry_run_command(output)
        sys.stderr.write(f"wrote {result.path}: {models} from {flows} into {result.root}; next: {nxt}\n")
        return 0

    _finish("import", False, False, run)


def _dry_run_command(path: Path) -> str:
    """`wanmodels download --dry-run` for a manifest just written: `-m` unless it is what the
    default lookup finds (`$WANMODELS_MANIFEST` may point elsewhere)."""
    found = resolve_manifest_arg(None)
    default = found is not None and Path(found).resolve() == path.resolve()
    return shlex.join(["wanmodels", "download", *(() if default else ("-m", str(path))), "--dry-run"])


def _open(manifest: str | None, root: str | None) -> Manifest:
    from wanmodels.presets import open_manifest

    return open_manifest(resolve_manifest_arg(manifest), root=root_override(root))


def _console(no_color: bool) -> Console:
    from wanmodels.report import make_console

    return make_console(sys.stderr, no_color=no_color)


def _verbose() -> None:
    """Send the request logs to stderr: wanmodels' line per response (status, range) and
    huggingface_hub's own line per request, both without query strings (signed CDN links)."""
    import logging

    # huggingface_hub prints its own request lines, on its own handler, once this asks for them.
    os.environ["HF_HUB_VERBOSITY"] = "debug"
    # Signed CDN links carry capabilities in their query strings: never log those.
    logging.getLogger("huggingface_hub.utils._http").addFilter(_strip_queries)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("wanmodels")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)


def _strip_queries(record: Any) -> bool:
    """A logging filter: cut `?...` off every URL among a record's arguments."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            str(a).split("?", 1)[0] if "://" in str(a) and "?" in str(a) else a for a in record.args
        )
    return True


def _sink(console: Console) -> Any:
    from wanmodels.report import LineProgress, RichProgress

    return RichProgress(console) if console.is_terminal and not console.no_color else LineProgress(console)


def _lines(console: Console) -> Any:
    from wanmodels.report import LineProgress

    return LineProgress(console)


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def _finish(command: str, as_json: bool, verbose: bool, run: Callable[[], int]) -> NoReturn:
    """Run a command body; turn its result or expected error into output and an exit code."""
    if verbose:
        _verbose()
    try:
        try:
            code = run()
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED_MESSAGE) from None
    except WanmodelsError as err:
        if as_json:
            from wanmodels.documents import error_json

            _print_json(error_json(command, err))
        raise
    raise typer.Exit(code)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _usage_json(err: TyperException) -> None:
    """`--json` promises one document even when the command line itself is wrong."""
    if "--json" not in sys.argv[1:]:
        return
    from wanmodels.documents import error_json

    command = next((a for a in sys.argv[1:] if a in COMMANDS), "wanmodels")
    message = err.format_message() if hasattr(err, "format_message") else str(err)
    _print_json(error_json(command, None, message=message, code=getattr(err, "exit_code", EXIT_USAGE)))


def main() -> NoReturn:
    """Console entry point: the single place where errors become messages and exit codes."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)
    except WanmodelsError as err:
        if debug_enabled():
            raise
        from wanmodels.errors import DiskFullError, OfflineError
        from wanmodels.report import DEBUG_HINT, format_error

        # The traceback hint is for surprises; an interrupt or a refusal the user can act on needs none.
        refusal = err.exit_code in (EXIT_INTERRUPTED, EXIT_USAGE) or isinstance(
            err, (DiskFullError, OfflineError)
        )
        hint = "" if refusal else f" {DEBUG_HINT}"
        sys.stderr.write(f"{format_error(err)}{hint}\n")
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write(f"{INTERRUPTED_MESSAGE}\n")
        sys.exit(EXIT_INTERRUPTED)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        sys.stderr.write(f"{INTERRUPTED_MESSAGE}\n")
        sys.exit(EXIT_INTERRUPTED)
    except TyperException as err:
        # Usage errors (unknown option, bad value): typer's own message, exit 2 as documented.
        _usage_json(err)
        show = getattr(err, "show", None)
        if callable(show):
            show()
        sys.exit(getattr(err, "exit_code", EXIT_USAGE))
    sys.exit(code if isinstance(code, int) else 0)
