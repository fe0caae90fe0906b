"""The `wanmodels` command: parse flags, call one library function, render, map errors to exit codes.

Only typer, `wanmodels.errors`, `wanmodels.config` and the CLI's own `cli_help` (options,
examples, help layout) and `cli_run` (output and exit codes) are imported at start-up; everything
heavy (huggingface_hub, rich, yaml) loads inside the command that needs it, so `--help`
and `--version` stay instant.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from typer.exceptions import TyperException

from wanmodels import __version__
from wanmodels.cli.options import (
    DOWNLOAD_EXAMPLES,
    IMPORT_EXAMPLES,
    PRUNE_EXAMPLES,
    PUBLISH_EXAMPLES,
    VERIFY_EXAMPLES,
    CheckRootOpt,
    JsonOpt,
    LinkModeOpt,
    LockRootOpt,
    ManifestOpt,
    NamesArg,
    NoColorOpt,
    NoWaitOpt,
    OfflineOpt,
    ProgressOpt,
    PruneOpt,
    QuietOpt,
    ReplaceOpt,
    RootOpt,
    VerboseOpt,
    WithOpt,
    epilog,
)
from wanmodels.cli.run import (
    INTERRUPTED_MESSAGE,
    dry_run_command,
    finish,
    guard_std_streams,
    line_sink,
    on_sigterm,
    open_manifest_arg,
    print_json,
    progress_sink,
    result_console,
    stderr_console,
    usage_json,
)
from wanmodels.config import DEFAULT_PRESET, LOCAL_MANIFEST, debug_enabled, resolve_settings
from wanmodels.errors import EXIT_INTERRUPTED, EXIT_USAGE, WanmodelsError

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
    epilog=epilog(DOWNLOAD_EXAMPLES),
    short_help="Fetch the files, resumably; place each once its hash matches.",
)
def download(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    with_: WithOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            metavar="N",
            help="Most connections shared by all files, 1 to 64 (default 64, $WANMODELS_WORKERS); "
            "as many as fill the link are opened.",
        ),
    ] = None,
    no_adapt: Annotated[
        bool,
        typer.Option(
            "--no-adapt",
            help="Keep exactly --workers connections instead of measuring how many fill the link.",
        ),
    ] = False,
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
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    progress_every: ProgressOpt = None,
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
    link_mode: LinkModeOpt = None,
    replace: ReplaceOpt = False,
    skip_missing: Annotated[
        bool,
        typer.Option(
            "--skip-missing",
            help="Fetch the entries the Hub has; list those whose repo, revision or files it lacks (exit 1).",
        ),
    ] = False,
    from_url: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="URL",
            help="Read each file by its digest from this object store first (s3://bucket/prefix, "
            "written by `wanmodels publish`; $WANMODELS_FROM). Needs wanmodels[s3].",
            show_default=False,
        ),
    ] = None,
    no_fallback: Annotated[
        bool,
        typer.Option(
            "--no-fallback",
            help="With --from: fail a file the store lacks or holds wrong instead of fetching it from "
            "the Hub ($WANMODELS_NO_FALLBACK).",
        ),
    ] = False,
) -> None:
    """Fetch every selected file, resumably, and place it only once its hash matches.

    Files already on this machine (the Hugging Face cache, --reuse-from folders, this root,
    the same file selected twice) are cloned, hard-linked read-only or copied instead, after a
    hash check. A file of yours at a target path is never replaced without --replace.
    """

    def run() -> int:
        from wanmodels.cli.documents import download_json
        from wanmodels.ops.download import download as run_download

        settings = resolve_settings(
            workers=workers,
            offline=offline,
            timeout=timeout,
            wait_for_lock=not no_wait,
            max_rate=max_rate,
            reuse=not no_reuse,
            reuse_from=tuple(reuse_from or ()),
            link_mode=link_mode,
            from_url=from_url,
            no_fallback=no_fallback,
            adapt=False if no_adapt else None,
        )
        loaded = open_manifest_arg(manifest, root, with_)
        # rich (~30 ms to import) loads only when something will be printed.
        console = None if quiet else stderr_console(no_color)
        # A dry run draws no bars, but still says why it waits (a rate limit, a locked root).
        if console is None:
            sink = None
        else:
            sink = line_sink(console) if dry_run else progress_sink(console, progress_every)
        try:
            result = run_download(
                loaded,
                tuple(names or ()),
                settings=settings,
                dry_run=dry_run,
                frozen=frozen,
                repair=repair,
                prune=prune,
                replace=replace,
                skip_missing=skip_missing,
                sink=sink,
            )
        finally:
            if sink is not None:
                sink.close()
        if console is not None or result.failed or result.skipped:  # quiet: only failures are printed
            from wanmodels.cli.render import render_download

            render_download(result, console or stderr_console(no_color), quiet=quiet)
        if as_json:
            print_json(download_json(result))
        return result.exit_code

    finish("download", as_json, verbose, run)


@app.command(
    epilog=epilog(VERIFY_EXAMPLES),
    short_help="Check every file: present, right size and hash, well-formed.",
)
def verify(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: CheckRootOpt = None,
    with_: WithOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Re-hash every file, even unchanged ones.")] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Re-fetch the files that fail, keep the rest, verify again.")
    ] = False,
    prune: PruneOpt = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="With --prune: list what would be deleted, delete nothing.")
    ] = False,
    offline: OfflineOpt = None,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    no_color: NoColorOpt = False,
    progress_every: ProgressOpt = None,
    verbose: VerboseOpt = False,
    replace: ReplaceOpt = False,
    link_mode: LinkModeOpt = None,
) -> None:
    """Check that every selected file is present, the right size and hash, and well-formed."""

    def run() -> int:
        from wanmodels.cli.documents import verify_json
        from wanmodels.cli.render import render_repair, render_verify
        from wanmodels.ops.verify import repair as run_repair
        from wanmodels.ops.verify import verify as run_verify

        settings = resolve_settings(offline=offline, link_mode=link_mode, wait_for_lock=not no_wait)
        loaded = open_manifest_arg(manifest, root, with_)
        console = stderr_console(no_color)
        selected = tuple(names or ())
        if repair and not dry_run:
            sink = None if quiet else progress_sink(console, progress_every)
            try:
                repaired = run_repair(
                    loaded, selected, settings=settings, full=full, prune=prune, replace=replace, sink=sink
                )
            finally:
                if sink is not None:
                    sink.close()
            render_repair(repaired, console, quiet=quiet)
            if as_json:
                print_json(verify_json(repaired.after, repaired))
            return repaired.exit_code
        report = run_verify(loaded, selected, settings=settings, full=full, prune=prune, dry_run=dry_run)
        render_verify(report, console, quiet=quiet, repair=loaded.command("verify", "--repair"))
        if as_json:
            print_json(verify_json(report))
        return report.exit_code

    finish("verify", as_json, verbose, run)


@app.command("lock", short_help="Pin every entry to a commit and file list; fetch no bytes.")
def lock_command(
    manifest: ManifestOpt = None,
    root: LockRootOpt = None,
    with_: WithOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Only compare: exit 1 if the lock is missing or out of date.")
    ] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Resolve every entry on the Hub and write the lockfile (no file bytes are fetched)."""

    def run() -> int:
        from wanmodels.cli.documents import lock_json
        from wanmodels.cli.render import render_lock
        from wanmodels.ops.lock import lock

        loaded = open_manifest_arg(manifest, root, with_)
        console = stderr_console(False)
        result = lock(loaded, settings=resolve_settings(), check=check, sink=line_sink(console))
        render_lock(result, loaded, console)
        if as_json:
            print_json(lock_json(result, loaded))
        return result.exit_code

    finish("lock", as_json, verbose, run)


@app.command(
    "publish",
    epilog=epilog(PUBLISH_EXAMPLES),
    short_help="Upload a verified stack to an object store by digest, for fleets.",
)
def publish_command(
    url: Annotated[
        str,
        typer.Argument(metavar="URL", help="Where to publish: s3://bucket/prefix.", show_default=False),
    ],
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, max=64, metavar="N", help="Uploads at once (default 16)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be uploaded; upload nothing.")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Upload every file of a verified root once, named by its digest, plus the lockfile.

    Nodes then run `wanmodels download --frozen --from URL`. Blobs already in the store with the
    right size and recorded digest are skipped; a stopped upload is continued.
    """

    def run() -> int:
        from wanmodels.cli.documents import publish_json
        from wanmodels.cli.render import render_publish
        from wanmodels.config import parse_store_url
        from wanmodels.ops.publish import publish

        location = parse_store_url(url, name="URL")
        settings = resolve_settings(workers=workers)
        loaded = open_manifest_arg(manifest, root)
        console = stderr_console(False)
        notify = None if quiet else line_sink(console).message
        selected = tuple(names or ())
        result = publish(loaded, location, selected, settings=settings, dry_run=dry_run, notify=notify)
        if not quiet:
            render_publish(result, console)
        if as_json:
            print_json(publish_json(result))
        return result.exit_code

    finish("publish", as_json, verbose, run)


@app.command(
    "prune",
    epilog=epilog(PRUNE_EXAMPLES),
    short_help="Release a manifest's claim on a root: delete what only it placed.",
)
def prune_command(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: CheckRootOpt = None,
    with_: WithOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted, delete nothing.")
    ] = False,
    no_wait: NoWaitOpt = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Delete the files wanmodels placed for this manifest that no other manifest uses.

    What you run after switching a root to another preset: the old preset's files go, files
    the new one shares stay, files you changed or placed yourself are never touched.
    """

    def run() -> int:
        from wanmodels.cli.documents import prune_json
        from wanmodels.cli.render import render_pruned
        from wanmodels.ops.prune import prune

        loaded = open_manifest_arg(manifest, root, with_)
        settings = resolve_settings(wait_for_lock=not no_wait)
        result = prune(loaded, tuple(names or ()), settings=settings, dry_run=dry_run, release=True)
        render_pruned(result, stderr_console(False))
        if as_json:
            print_json(prune_json(result))
        return result.exit_code

    finish("prune", as_json, verbose, run)


@app.command("status", short_help="Per entry: complete, missing or partial (no network).")
def status_command(
    names: NamesArg = None,
    manifest: ManifestOpt = None,
    root: CheckRootOpt = None,
    with_: WithOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per entry: complete, missing files or partial (no network, no hashing)."""

    def run() -> int:
        from wanmodels.cli.documents import status_json
        from wanmodels.cli.render import render_status
        from wanmodels.ops.status import status

        loaded = open_manifest_arg(manifest, root, with_)
        report = status(loaded, tuple(names or ()))
        render_status(report, loaded, result_console(as_json))
        if as_json:
            print_json(status_json(report))
        return report.exit_code

    finish("status", as_json, False, run)


@app.command("list", short_help="The presets with their sizes, and the entries of the manifest.")
def list_command(
    manifest: ManifestOpt = None, root: CheckRootOpt = None, with_: WithOpt = None, as_json: JsonOpt = False
) -> None:
    """The bundled presets by model and runtime, with their options and sizes, and the entries of
    the current manifest."""

    def run() -> int:
        from wanmodels.cli.documents import list_json
        from wanmodels.cli.render import render_list
        from wanmodels.inputs.presets import describe_presets
        from wanmodels.sources.pins import read_pins

        loaded = open_manifest_arg(manifest, root, with_)
        lock = read_pins(loaded)
        presets = describe_presets()
        render_list(presets, loaded, lock, result_console(as_json))
        if as_json:
            print_json(list_json(presets, loaded, lock))
        return 0

    finish("list", as_json, False, run)


@app.command("init", short_help="Write an editable ./wanmodels.yaml from a preset.")
def init_command(
    preset: Annotated[
        str, typer.Option("--preset", metavar="NAME", help="Preset to start from (see `wanmodels list`).")
    ] = DEFAULT_PRESET,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing wanmodels.yaml.")] = False,
    with_: WithOpt = None,
) -> None:
    """Write an editable ./wanmodels.yaml from a preset, with its options resolved for the
    --with choices (never overwrites without --force)."""

    def run() -> int:
        from wanmodels.inputs.options import parse_choices
        from wanmodels.inputs.presets import init_manifest

        choices = parse_choices(with_ or ())
        path = init_manifest(preset, Path.cwd() / LOCAL_MANIFEST, force=force, choices=choices)
        nxt = dry_run_command(Path(LOCAL_MANIFEST))
        sys.stderr.write(f"wrote {path} from preset '{preset}'; edit it, then run `{nxt}`\n")
        return 0

    finish("init", False, False, run)


@app.command(
    "import",
    epilog=epilog(IMPORT_EXAMPLES),
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
        from wanmodels.inputs.comfyui import import_workflows

        result = import_workflows(workflows, output, force=force, root=root)
        for warning in result.warnings:
            sys.stderr.write(f"warning: {warning}\n")
        models = f"{len(result.models)} model{'s' if len(result.models) != 1 else ''}"
        flows = f"{len(result.workflows)} workflow{'s' if len(result.workflows) != 1 else ''}"
        nxt = dry_run_command(output)
        sys.stderr.write(f"wrote {result.path}: {models} from {flows} into {result.root}; next: {nxt}\n")
        return 0

    finish("import", False, False, run)


def _traceback_helps(err: WanmodelsError) -> bool:
    """Whether to offer WANMODELS_DEBUG: for a surprise, not for an interrupt or a refusal whose
    message already says what to do (a fix, or a cause such as not found, gated, offline, no space)."""
    from wanmodels.errors import (
        AccessDeniedError,
        DiskFullError,
        OfflineError,
        RemoteFileNotFoundError,
        RepoNotFoundError,
        RevisionNotFoundError,
    )

    understood = (
        AccessDeniedError,
        DiskFullError,
        OfflineError,
        RemoteFileNotFoundError,
        RepoNotFoundError,
        RevisionNotFoundError,
    )
    if err.exit_code in (EXIT_INTERRUPTED, EXIT_USAGE) or isinstance(err, understood):
        return False
    return not err.hint


def _command_names() -> list[str]:
    """The subcommands, as the app registered them (a command's name defaults to its function's)."""
    return [c.name or str(getattr(c.callback, "__name__", "")) for c in app.registered_commands]


def main() -> NoReturn:
    """Console entry point: the single place where errors become messages and exit codes."""
    signal.signal(signal.SIGTERM, on_sigterm)
    guard_std_streams()  # `wanmodels list | head` ends quietly, with the command's own exit code
    # huggingface_hub's telemetry (torch's version and an "agent" guess in the user agent) asks
    # {HF_ENDPOINT}/api/agent-harnesses on every run it cannot cache: a request the download does
    # not need, 3 s on a mirror that stalls it. Off unless the user says otherwise; read at import.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # At exit the interpreter's garbage collector walks every object of ~400 modules: 30 ms
    # after the work is done. Frozen objects are skipped; the OS reclaims the memory anyway.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    try:
        code = app(standalone_mode=False)
    except WanmodelsError as err:
        if debug_enabled():
            raise
        from wanmodels.cli.render import DEBUG_HINT, format_error

        hint = f" {DEBUG_HINT}" if _traceback_helps(err) else ""
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
        usage_json(err, _command_names())
        show = getattr(err, "show", None)
        if callable(show):
            show()
        sys.exit(getattr(err, "exit_code", EXIT_USAGE))
    sys.exit(code if isinstance(code, int) else 0)
