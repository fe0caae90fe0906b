"""The `wanmodels` command: parse flags, call one library function, render, map errors to exit codes.

Only typer, `wanmodels.errors` and `wanmodels.config` are imported at start-up; everything
heavy (huggingface_hub, rich, yaml) loads inside the command that needs it, so `--help`
and `--version` stay instant.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn

import typer
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

DOWNLOAD_EXAMPLES: Final = [
    "wanmodels download                      # the bundled Wan 2.1 I2V stack into ./models",
    "wanmodels download --dry-run            # show files and bytes, fetch nothing",
    "wanmodels download sd-vae -m my.yaml    # one entry of your own manifest",
    "wanmodels download --frozen --json      # CI: exactly the lockfile, machine-readable",
]
INTERRUPTED_MESSAGE: Final = "interrupted; partial downloads are kept. Run the same command again to resume."
VERIFY_EXAMPLES: Final = [
    "wanmodels verify                        # sizes, cached hashes, formats",
    "wanmodels verify --full                 # re-hash every byte",
]

app = typer.Typer(
    name="wanmodels",
    help=(
        "Download and verify the Wan 2.1 image-to-video model stack from a pinned manifest.\n\n"
        "Example: wanmodels download && wanmodels verify"
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
        help="Manifest file or preset name (default: $WANMODELS_MANIFEST, ./wanmodels.yaml, wan2.1-i2v).",
    ),
]
RootOpt = Annotated[
    str | None,
    typer.Option("--root", help="Put models here instead of the manifest's root ($WANMODELS_ROOT)."),
]
NamesArg = Annotated[
    list[str] | None, typer.Argument(help="Entries to act on (default: all).", show_default=False)
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout; text goes to stderr.")
]
OfflineOpt = Annotated[
    bool | None,
    typer.Option("--offline", help="Never touch the network (also HF_HUB_OFFLINE=1).", show_default=False),
]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="No colour or bars (also NO_COLOR).")]
VerboseOpt = Annotated[
    bool, typer.Option("-v", "--verbose", help="Log every HTTP request to stderr (never the token).")
]
PruneOpt = Annotated[
    bool,
    typer.Option("--prune", help="Delete files in the entries' folders that the manifest does not select."),
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


@app.command(epilog="Examples:\n\n" + "\n\n".join(DOWNLOAD_EXAMPLES))
def download(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Parallel transfers (default 8, $WANMODELS_WORKERS)."),
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
        typer.Option("--timeout", min=0.1, help="Seconds a read may stall (HF_HUB_DOWNLOAD_TIMEOUT)."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Exit 4 at once if another process holds the root.")
    ] = False,
    as_json: JsonOpt = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No progress or summary; errors only.")
    ] = False,
    no_color: NoColorOpt = False,
    verbose: VerboseOpt = False,
    prune: PruneOpt = False,
) -> None:
    """Fetch every selected file, resumably, and place it only once its hash matches."""
    _logging(verbose)

    def run() -> int:
        from wanmodels.downloader import download as run_download
        from wanmodels.manifest import open_manifest
        from wanmodels.report import download_json, make_console, render_download

        settings = resolve_settings(
            workers=workers, offline=offline, timeout=timeout, wait_for_lock=not no_wait
        )
        loaded = open_manifest(resolve_manifest_arg(manifest), root=root_override(root))
        console = make_console(sys.stderr, no_color=no_color)
        sink = None if quiet or dry_run else _sink(console)
        try:
            result = run_download(
                loaded,
                tuple(names or ()),
                settings=settings,
                dry_run=dry_run,
                frozen=frozen,
                repair=repair,
                sink=sink,
            )
        finally:
            if sink is not None:
                sink.close()
        if not quiet:
            render_download(result, console)
        if prune and not dry_run and result.status == "ok":
            _prune(loaded, tuple(names or ()), settings, console)
        if as_json:
            _print_json(download_json(result))
        return result.exit_code

    _finish("download", as_json, run)


@app.command(epilog="Examples:\n\n" + "\n\n".join(VERIFY_EXAMPLES))
def verify(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Re-hash every file, even unchanged ones.")] = False,
    offline: OfflineOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print nothing but errors.")] = False,
    no_color: NoColorOpt = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Re-fetch the files that fail, keep the rest, verify again.")
    ] = False,
    prune: PruneOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check that every selected file is present, the right size and hash, and well-formed."""
    _logging(verbose)

    def run() -> int:
        from wanmodels.downloader import download as run_download
        from wanmodels.manifest import open_manifest
        from wanmodels.report import make_console, render_verify, verify_json
        from wanmodels.verifier import prune as run_prune
        from wanmodels.verifier import verify as run_verify

        settings = resolve_settings(offline=offline)
        loaded = open_manifest(resolve_manifest_arg(manifest), root=root_override(root))
        console = make_console(sys.stderr, no_color=no_color)
        selected = tuple(names or ())
        report = run_verify(loaded, selected, settings=settings, full=full)
        if repair and not report.ok:
            if not quiet:
                render_verify(report, console)
                console.print("repairing: re-fetching the files that failed", markup=False)
            run_download(
                loaded, selected, settings=settings, repair=True, sink=None if quiet else _sink(console)
            )
            report = run_verify(loaded, selected, settings=settings, full=full)
        pruned = run_prune(loaded, report) if prune else ()
        if not quiet:
            render_verify(report, console)
            for path in pruned:
                console.print(f"removed {path}", markup=False)
        if as_json:
            _print_json(verify_json(report, pruned=pruned))
        return report.exit_code

    _finish("verify", as_json, run)


@app.command("lock")
def lock_command(
    manifest: ManifestOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only compare: exit 1 if the lock is missing or out of date.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resolve every entry on the Hub and write the lockfile (no file bytes are fetched)."""
    _logging(verbose)

    def run() -> int:
        from wanmodels.manifest import open_manifest
        from wanmodels.report import lock_json, make_console, render_lock
        from wanmodels.resolve import lock

        loaded = open_manifest(resolve_manifest_arg(manifest))
        result = lock(loaded, settings=resolve_settings(), check=check)
        render_lock(result, make_console(sys.stderr), check=check)
        if as_json:
            _print_json(lock_json(result, check=check))
        return 1 if check and not result.up_to_date else 0

    _finish("lock", as_json, run)


@app.command("status")
def status_command(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per entry: complete, missing files, or partial, from the lockfile (no network, no hashing)."""

    def run() -> int:
        from wanmodels.manifest import open_manifest
        from wanmodels.report import make_console, render_status, status_json
        from wanmodels.status import status

        loaded = open_manifest(resolve_manifest_arg(manifest), root=root_override(root))
        report = status(loaded, tuple(names or ()))
        render_status(report, make_console(sys.stderr))
        if as_json:
            _print_json(status_json(report))
        return 0 if report.complete else 1

    _finish("status", as_json, run)


@app.command("list")
def list_command(manifest: ManifestOpt = None, as_json: JsonOpt = False) -> None:
    """The bundled presets, and the entries of the current manifest (sizes from its lockfile)."""

    def run() -> int:
        from wanmodels.lockfile import read_lock
        from wanmodels.manifest import open_manifest
        from wanmodels.presets import list_presets
        from wanmodels.report import list_json, make_console, render_list

        loaded = open_manifest(resolve_manifest_arg(manifest), root=root_override(None))
        lock = read_lock(loaded.lock_path)
        render_list(list_presets(), loaded, lock, make_console(sys.stderr))
        if as_json:
            _print_json(list_json(list_presets(), loaded, lock))
        return 0

    _finish("list", as_json, run)


@app.command("init")
def init_command(
    preset: Annotated[
        str, typer.Option("--preset", help="Preset to start from (see `wanmodels list`).")
    ] = "wan2.1-i2v",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing wanmodels.yaml.")] = False,
) -> None:
    """Write an editable ./wanmodels.yaml from a preset (never overwrites without --force)."""

    def run() -> int:
        from wanmodels.manifest import init_manifest

        path = init_manifest(preset, Path.cwd() / LOCAL_MANIFEST, force=force)
        sys.stderr.write(f"wrote {path} from preset '{preset}'; edit it, then run `wanmodels download`\n")
        return 0

    _finish("init", False, run)


IMPORT_EXAMPLES: Final = [
    "wanmodels import image_to_video_wan.json       # ./wanmodels.yaml, models in ./ComfyUI/models",
    "wanmodels import a.json b.json --root ~/ComfyUI/models -o comfy.yaml",
]


@app.command("import", epilog="Examples:\n\n" + "\n\n".join(IMPORT_EXAMPLES))
def import_command(
    workflows: Annotated[
        list[Path], typer.Argument(help="Workflow .json files saved by ComfyUI.", show_default=False)
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Manifest to write.")] = Path(LOCAL_MANIFEST),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing manifest.")] = False,
    root: Annotated[
        str | None,
        typer.Option("--root", help="Models folder the manifest points at (default ./ComfyUI/models)."),
    ] = None,
) -> None:
    """Write a manifest holding every model the ComfyUI workflows name (never overwrites without --force)."""

    def run() -> int:
        from wanmodels.workflow import import_workflows

        result = import_workflows(workflows, output, force=force, root=root)
        use = "" if output == Path(LOCAL_MANIFEST) else f" -m {output}"
        sys.stderr.write(
            f"wrote {result.path}: {len(result.models)} model(s) from {len(result.workflows)} workflow(s) "
            f"into {result.root}; next: wanmodels download{use} --dry-run\n"
        )
        return 0

    _finish("import", False, run)


def _logging(verbose: bool) -> None:
    """With -v, send wanmodels' and huggingface_hub's request logs to stderr (they never carry tokens)."""
    if not verbose:
        return
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for name in ("wanmodels", "huggingface_hub"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def _prune(manifest: Any, names: tuple[str, ...], settings: Any, console: Any) -> None:
    from wanmodels.verifier import prune, verify

    for path in prune(manifest, verify(manifest, names, settings=settings)):
        console.print(f"removed {path}", markup=False)


def _sink(console: Any) -> Any:
    from wanmodels.report import LineProgress, RichProgress

    return RichProgress(console) if console.is_terminal and not console.no_color else LineProgress(console)


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


def _finish(command: str, as_json: bool, run: Callable[[], int]) -> NoReturn:
    """Run a command body; turn its result or expected error into output and an exit code."""
    try:
        try:
            code = run()
        except KeyboardInterrupt:
            raise Interrupted(INTERRUPTED_MESSAGE) from None
    except WanmodelsError as err:
        if as_json:
            from wanmodels.report import error_json

            _print_json(error_json(command, err))
        raise
    raise typer.Exit(code)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> NoReturn:
    """Console entry point: the single place where errors become messages and exit codes."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = app(standalone_mode=False)
    except WanmodelsError as err:
        if debug_enabled():
            raise
        from wanmodels.report import format_error

        hint = "" if err.exit_code == EXIT_INTERRUPTED else f" {_debug_hint()}"
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
        show = getattr(err, "show", None)
        if callable(show):
            show()
        sys.exit(getattr(err, "exit_code", EXIT_USAGE))
    sys.exit(code if isinstance(code, int) else 0)


def _debug_hint() -> str:
    from wanmodels.report import DEBUG_HINT

    return DEBUG_HINT
