"""What the command line shows about itself: the options several commands share, the
examples under each command's help, and a help layout that names arguments by their metavar.
"""

from __future__ import annotations

from typing import Annotated, Final

import typer

from wanmodels.config import DEFAULT_PRESET, LOCAL_MANIFEST

# Each example fits on one line of an 80-column terminal (click indents the epilog by 2).
DOWNLOAD_EXAMPLES: Final = [
    "wanmodels download --dry-run        (files and bytes; nothing is fetched)",
    "wanmodels download                  (the default stack, about 79 GiB)",
    "wanmodels download -m wan2.1-comfyui --root ~/ComfyUI/models",
    "wanmodels download -m wan2.2-i2v-comfyui --with lora=on",
    "wanmodels download --max-rate 20M   (leave bandwidth for others)",
    "wanmodels download --reuse-from DIR (take files already in DIR)",
    "wanmodels download --frozen --json  (CI: exactly the lockfile)",
    "wanmodels download --frozen --from s3://models/wan21 (a fleet node)",
]
VERIFY_EXAMPLES: Final = [
    "wanmodels verify                    (sizes, cached hashes, formats)",
    "wanmodels verify --full             (re-hash every byte)",
    "wanmodels verify --repair           (re-fetch only what fails)",
    "wanmodels verify --prune --dry-run  (what --prune would delete)",
]
PRUNE_EXAMPLES: Final = [
    "wanmodels prune -m wan2.1-comfyui --root ~/ComfyUI/models --dry-run",
    "wanmodels prune -m old.yaml          (after moving a stack to another manifest)",
]
PUBLISH_EXAMPLES: Final = [
    "wanmodels publish s3://models/wan21 --dry-run   (what would be uploaded)",
    "wanmodels publish s3://models/wan21 -m wan2.1-comfyui --root ~/ComfyUI/models",
    "AWS_ENDPOINT_URL=http://minio:9000 wanmodels publish s3://models/wan21",
]
IMPORT_EXAMPLES: Final = [
    "wanmodels import image_to_video_wan.json   (writes ./wanmodels.yaml)",
    "wanmodels import a.json b.json --root ~/ComfyUI/models -o comfy.yaml",
]


def epilog(examples: list[str]) -> str:
    # "\b" tells click to keep the next paragraph's line breaks instead of re-wrapping it.
    return "Examples:\n\n\b\n" + "\n".join(examples)


ManifestOpt = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--manifest",
        metavar="PATH|PRESET",
        help=f"Manifest file or preset (default: $WANMODELS_MANIFEST, ./{LOCAL_MANIFEST}, {DEFAULT_PRESET}).",
    ),
]
WithOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--with",
        metavar="OPTION=VALUE",
        help="Choose a value of one of the manifest's options (repeatable), e.g. --with precision=fp16; "
        "`wanmodels list` shows each preset's options.",
        show_default=False,
    ),
]
RootOpt = Annotated[
    str | None,
    typer.Option(
        "--root", metavar="DIR", help="Put models here instead of the manifest's root ($WANMODELS_ROOT)."
    ),
]
CheckRootOpt = Annotated[
    str | None,
    typer.Option(
        "--root",
        metavar="DIR",
        help="The models folder to look at instead of the manifest's root ($WANMODELS_ROOT).",
    ),
]
LockRootOpt = Annotated[
    str | None,
    typer.Option(
        "--root",
        metavar="DIR",
        help="For a preset: the models folder whose lockfile (.wanmodels/locks/) to write; nothing "
        "is fetched ($WANMODELS_ROOT).",
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
NoColorOpt = Annotated[
    bool, typer.Option("--no-color", help="No colour (also NO_COLOR); progress is still shown.")
]
ProgressOpt = Annotated[
    float | None,
    typer.Option(
        "--progress-interval",
        metavar="S",
        help="When stderr is not a terminal: seconds between progress lines (default 30, "
        "$WANMODELS_PROGRESS_INTERVAL).",
        show_default=False,
    ),
]
NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Exit 4 at once if another process holds the root.")
]
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
ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Move files of yours that hold a target with other bytes aside under <root>/.wanmodels/"
        "replaced/, then place the manifest's (default: leave them and fail).",
    ),
]
LinkModeOpt = Annotated[
    str | None,
    typer.Option(
        "--link-mode",
        metavar="MODE",
        help="How files already on this machine are placed: auto (small files copied, large ones "
        "cloned, else hard-linked read-only), clone, hardlink or copy ($WANMODELS_LINK_MODE).",
        show_default=False,
    ),
]
