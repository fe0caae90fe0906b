"""Run settings, resolved once: CLI flag > environment > manifest > built-in default.

Environment variables read here (and only here), at call time:
- `WANMODELS_MANIFEST`: manifest path or preset name when `-m` is not given.
- `WANMODELS_ROOT`: overrides the manifest's `root`.
- `WANMODELS_WORKERS`: the most connections shared by all transfers (default and ceiling 64);
  how many are open at a time is measured out (`wanmodels.adaptive`) unless `WANMODELS_ADAPT=0`.
- `WANMODELS_ADAPT`: `0` keeps exactly `WANMODELS_WORKERS` connections (also `--no-adapt`).
- `WANMODELS_MAX_RATE`: download rate limit for all connections together (`500K`, `12M`, `1G`).
- `WANMODELS_RETRY_WAIT`: longest wait between retries, seconds (default 8).
- `WANMODELS_RATE_LIMIT_WAIT`: longest wait for a rate limit (HTTP 429) to reset, seconds
  (default 300: the Hub counts requests in 5-minute windows).
- `WANMODELS_DEBUG`: show tracebacks for expected errors.
- `WANMODELS_LINK_MODE`: how files already on this machine are put in place (`auto`, `clone`,
  `hardlink`, `copy`; see `--link-mode`).
- `WANMODELS_PROGRESS_INTERVAL`: seconds between the plain progress lines printed when stderr is
  not a terminal (default 30), also `--progress-interval`.
- `WANMODELS_ALLOW_PRIVATE_REDIRECTS`: follow a public Hub's redirects to private, loopback and
  link-local addresses too (refused by default; a Hub endpoint that is itself private, a LAN
  mirror, may always redirect anywhere).
- `WANMODELS_REUSE_FROM`: folders to take already-downloaded files from (`os.pathsep`-separated),
  added to `--reuse-from`.
- `WANMODELS_FROM`: an object store holding the stack's blobs (`s3://bucket/prefix`, written by
  `wanmodels publish`), read before the Hub; `--from` overrides it.
- `WANMODELS_NO_FALLBACK`: with a store, never ask the Hub for a blob it lacks (air-gapped nodes).
- `AWS_*` and `~/.aws/config` are botocore's own (credentials, region, `AWS_ENDPOINT_URL`) and are
  read by it, never here.
- `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`: where huggingface_hub
  keeps its cache, resolved as huggingface_hub 2.4 does (`constants.py`), so files it already
  holds are placed instead of downloaded.
- `HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_HUB_DOWNLOAD_TIMEOUT`: the Hub's own settings, honoured.
  `HF_TOKEN` and the saved login are read by huggingface_hub itself and never touched here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final

from wanmodels.digests import Digest
from wanmodels.errors import UsageError

DEFAULT_WORKERS: Final = 64  # a ceiling: the count in use adapts (docs/cli.md, "--workers")
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_RETRIES: Final = 5
DEFAULT_RETRY_WAIT: Final = 8.0
DEFAULT_RATE_LIMIT_WAIT: Final = 300.0
MAX_WORKERS: Final = 64
MAX_SECONDS: Final = 86_400.0  # a day: the longest wait or timeout any setting accepts
DEFAULT_PROGRESS_INTERVAL: Final = 30.0  # a log line at least this often: CI kills a job silent for 10 min
LOCAL_MANIFEST: Final = "wanmodels.yaml"
DEFAULT_PRESET: Final = "wan2.1-i2v"  # what runs when no manifest is named or found
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


class LinkMode(str, Enum):
    """How bytes already on this machine are put in place (`--link-mode`, `WANMODELS_LINK_MODE`)."""

    AUTO = "auto"  # small files copied; large ones cloned, else hard-linked read-only, else copied
    CLONE = "clone"  # a reflink (copy on write) where the filesystem can, else a copy
    HARDLINK = "hardlink"  # a hard link, made read-only, else a copy
    COPY = "copy"  # always a copy of its own


@dataclass(frozen=True, slots=True)
class Settings:
    """How to talk to the Hub and how hard to try; passed explicitly to the library."""

    endpoint: str | None = None
    offline: bool = False
    workers: int = DEFAULT_WORKERS  # the most connections; exactly this many with adapt=False
    adapt: bool = True  # open as many of them as fill the link (wanmodels.adaptive)
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    retry_wait: float = DEFAULT_RETRY_WAIT
    rate_limit_wait: float = DEFAULT_RATE_LIMIT_WAIT  # longest wait for a 429's limit to reset
    wait_for_lock: bool = True
    max_rate: int | None = None  # bytes per second for all connections together
    reuse: bool = True  # place files already on this machine instead of fetching them
    hf_cache: Path | None = None  # huggingface_hub's cache to look in (resolve_settings finds it)
    reuse_from: tuple[Path, ...] = ()  # other wanmodels roots and model folders to look in
    link_mode: LinkMode = LinkMode.AUTO
    store: StoreLocation | None = None  # read blobs from here first (`--from`)
    hub_fallback: bool = True  # a blob the store lacks or holds wrong is read from the Hub
    allow_private_redirects: bool = False  # let a public Hub send requests into this network

    def __post_init__(self) -> None:
        # A library caller gets the CLI's bound too: with no connection, nothing would move.
        if not 1 <= self.workers <= MAX_WORKERS:
            msg = f"workers must be from 1 to {MAX_WORKERS}, got {self.workers}"
            raise UsageError(msg)


def parse_bool(name: str, value: str | None, default: bool = False) -> bool:
    """Parse a boolean env var; unknown values are an error, not a silent False.

    Raises:
        UsageError: the value is not one of 1/0, true/false, yes/no, on/off.
    """
    if value is None:
        return default
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    msg = f"{name}={value!r} is not a boolean"
    raise UsageError(msg, hint="Use 1/0, true/false, yes/no or on/off.")


def _number(
    name: str,
    value: str | None,
    default: float,
    *,
    minimum: float,
    maximum: float = MAX_SECONDS,
    whole: bool = False,
) -> float:
    """Parse a numeric env var within [minimum, maximum] (never NaN or infinite).

    Raises:
        UsageError: the value is not such a number.
    """
    if value is None or not value.strip():
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        number = float("nan")
    if not minimum <= number <= maximum:
        kind = "a whole number" if whole else "a number"
        msg = f"{name}={value!r} must be {kind} from {minimum:g} to {maximum:g}"
        raise UsageError(msg)
    return number


def check_timeout(timeout: float, flag: str = "--timeout") -> float:
    """Seconds a setting may take (a read timeout, the progress interval): finite, 0.1 s to a day.

    Raises:
        UsageError: NaN, infinite or out of range.
    """
    if not 0.1 <= timeout <= MAX_SECONDS:
        msg = f"{flag} must be from 0.1 to {MAX_SECONDS:g} seconds, got {timeout}"
        raise UsageError(msg)
    return timeout


def resolve_settings(
    *,
    workers: int | None = None,
    offline: bool | None = None,
    timeout: float | None = None,
    wait_for_lock: bool = True,
    max_rate: str | None = None,
    reuse: bool = True,
    reuse_from: tuple[str, ...] = (),
    link_mode: str | None = None,
    from_url: str | None = None,
    no_fallback: bool = False,
    adapt: bool | None = None,
) -> Settings:
    """Combine flags with the environment into `Settings`.

    With `reuse` (the default), files are looked for in huggingface_hub's cache and in the
    `reuse_from` folders (plus `$WANMODELS_REUSE_FROM`) before the network is asked. `from_url`
    (else `$WANMODELS_FROM`) names an object store to read blobs from before the Hub;
    `no_fallback` (or `$WANMODELS_NO_FALLBACK`) keeps the Hub out of such a run.

    Raises:
        UsageError: an environment variable holds a value that cannot be parsed, or a
            `reuse_from` folder does not exist, or the store URL is not one.
    """
    env = os.environ
    if workers is None:
        workers = int(
            _number(
                "WANMODELS_WORKERS",
                env.get("WANMODELS_WORKERS"),
                DEFAULT_WORKERS,
                minimum=1,
                maximum=MAX_WORKERS,
                whole=True,
            )
        )
    if not 1 <= workers <= MAX_WORKERS:
        msg = f"--workers must be from 1 to {MAX_WORKERS}, got {workers}"
        raise UsageError(msg)
    if adapt is None:
        adapt = parse_bool("WANMODELS_ADAPT", env.get("WANMODELS_ADAPT"), default=True)
    if offline is None:
        offline = parse_bool("HF_HUB_OFFLINE", env.get("HF_HUB_OFFLINE"))
    # huggingface_hub reads HF_HUB_DOWNLOAD_TIMEOUT with int() when imported: a fraction would
    # crash it, so it is refused here first, whether or not --timeout overrides it.
    env_timeout = _number(
        "HF_HUB_DOWNLOAD_TIMEOUT", env.get("HF_HUB_DOWNLOAD_TIMEOUT"), DEFAULT_TIMEOUT, minimum=1, whole=True
    )
    timeout = check_timeout(float(env_timeout) if timeout is None else timeout)
    retry_wait = _number(
        "WANMODELS_RETRY_WAIT", env.get("WANMODELS_RETRY_WAIT"), DEFAULT_RETRY_WAIT, minimum=0
    )
    rate_limit_wait = _number(
        "WANMODELS_RATE_LIMIT_WAIT", env.get("WANMODELS_RATE_LIMIT_WAIT"), DEFAULT_RATE_LIMIT_WAIT, minimum=0
    )
    endpoint = (env.get("HF_ENDPOINT") or "").rstrip("/") or None
    if max_rate:
        rate = _rate(max_rate, "--max-rate")
    else:
        rate = _rate(env.get("WANMODELS_MAX_RATE"), "WANMODELS_MAX_RATE")
    if not reuse and reuse_from:
        msg = "--no-reuse and --reuse-from contradict each other"
        raise UsageError(msg, hint="Drop one of them.")
    store = _store(from_url, "--from") if from_url else _store(env.get("WANMODELS_FROM"), "WANMODELS_FROM")
    if no_fallback and store is None:
        msg = "--no-fallback needs an object store to read from"
        raise UsageError(msg, hint="Add --from s3://bucket/prefix (or set WANMODELS_FROM).")
    fallback = not (no_fallback or parse_bool("WANMODELS_NO_FALLBACK", env.get("WANMODELS_NO_FALLBACK")))
    return Settings(
        store=store,
        hub_fallback=fallback,
        link_mode=_link_mode(link_mode, "--link-mode")
        if link_mode
        else _link_mode(env.get("WANMODELS_LINK_MODE"), "WANMODELS_LINK_MODE"),
        endpoint=endpoint,
        offline=offline,
        workers=workers,
        adapt=adapt,
        timeout=timeout,
        retry_wait=retry_wait,
        rate_limit_wait=rate_limit_wait,
        wait_for_lock=wait_for_lock,
        max_rate=rate,
        reuse=reuse,
        hf_cache=hf_hub_cache() if reuse else None,
        reuse_from=_reuse_dirs(reuse_from) if reuse else (),
        allow_private_redirects=parse_bool(
            "WANMODELS_ALLOW_PRIVATE_REDIRECTS", env.get("WANMODELS_ALLOW_PRIVATE_REDIRECTS")
        ),
    )


def hf_hub_cache() -> Path:
    """The cache huggingface_hub would use: `HF_HUB_CACHE`, else `HUGGINGFACE_HUB_CACHE`, else
    `$HF_HOME/hub`, where `HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`.
    """
    env = os.environ

    def expand(value: str) -> str:
        return os.path.expandvars(os.path.expanduser(value))

    default_home = os.path.join(os.path.expanduser("~"), ".cache")
    home = expand(
        env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or default_home, "huggingface")
    )
    legacy = env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(expand(env.get("HF_HUB_CACHE") or legacy))


def _reuse_dirs(flags: tuple[str, ...]) -> tuple[Path, ...]:
    """`--reuse-from` folders, then `$WANMODELS_REUSE_FROM`'s; each must be an existing folder."""
    from_env = [p for p in os.environ.get("WANMODELS_REUSE_FROM", "").split(os.pathsep) if p.strip()]
    dirs: list[Path] = []
    for value, name in [(f, "--reuse-from") for f in flags] + [(e, "WANMODELS_REUSE_FROM") for e in from_env]:
        path = Path(value).expanduser().resolve()
        if not path.is_dir():
            msg = f"{name} {value!r} is not a folder"
            raise UsageError(msg, hint="Give a wanmodels root or a folder of model files that exists.")
        if path not in dirs:
            dirs.append(path)
    return tuple(dirs)


def _link_mode(value: str | None, name: str) -> LinkMode:
    if value is None or not value.strip():
        return LinkMode.AUTO
    try:
        return LinkMode(value.strip().lower())
    except ValueError:
        msg = f"{name} {value!r} is not a link mode"
        raise UsageError(msg, hint=f"Use one of: {', '.join(m.value for m in LinkMode)}.") from None


def _store(value: str | None, name: str) -> StoreLocation | None:
    if value is None or not value.strip():
        return None

    return parse_store_url(value, name=name)


def _rate(value: str | None, name: str) -> int | None:
    if value is None or not value.strip():
        return None

    try:
        return parse_rate(value)
    except ValueError as err:
        msg = f"{name}: {err}"
        raise UsageError(msg) from None


def progress_interval(flag: float | None) -> float:
    """Seconds between plain progress lines: `--progress-interval`, else
    `$WANMODELS_PROGRESS_INTERVAL`, else 30.

    Raises:
        UsageError: the value is not a number from 0.1 to 86400.
    """
    if flag is not None:
        return check_timeout(flag, "--progress-interval")
    env = os.environ.get("WANMODELS_PROGRESS_INTERVAL")
    return _number("WANMODELS_PROGRESS_INTERVAL", env, DEFAULT_PROGRESS_INTERVAL, minimum=0.1)


def resolve_manifest_arg(arg: str | None) -> str | None:
    """The manifest the user asked for: `-m`, else `$WANMODELS_MANIFEST`, else `./wanmodels.yaml`.

    Returns None when none is given, meaning the bundled default preset.
    """
    if arg:
        return arg
    from_env = os.environ.get("WANMODELS_MANIFEST")
    if from_env:
        return from_env
    if Path(LOCAL_MANIFEST).is_file():
        return LOCAL_MANIFEST
    return None


def root_override(flag: str | None) -> Path | None:
    """`--root`, else `$WANMODELS_ROOT`, as an absolute path; None keeps the manifest's root."""
    value = flag or os.environ.get("WANMODELS_ROOT")
    return Path(value).expanduser().resolve() if value else None


def debug_enabled() -> bool:
    """Whether `WANMODELS_DEBUG` asks for tracebacks (bad values count as off here)."""
    return os.environ.get("WANMODELS_DEBUG", "").strip().lower() in _TRUE


_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_RATE_RE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?(?:/S)?\s*$", re.IGNORECASE)


def parse_rate(text: str) -> int:
    """`"500K"` -> 512000 bytes/s; a bare number is bytes/s.

    Raises:
        ValueError: not a positive size.
    """
    match = _RATE_RE.match(text)
    if match is None:
        msg = f"{text!r} is not a rate; use bytes per second such as 500K, 12M or 1G"
        raise ValueError(msg)
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value < 1:
        msg = f"{text!r} must be at least 1 byte per second"
        raise ValueError(msg)
    return int(value)


# The object stores, by URL scheme: the module that implements one (in sources/), its class, and
# the extra that installs its client. A new store is one module and one line here.
STORES: Final = {"s3": ("wanmodels.sources.s3", "S3Store", "s3")}


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A bucket and a key prefix (empty, or ending in `/`), as `s3://bucket/prefix` names them."""

    scheme: str
    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")

    def blob_key(self, digest: Digest) -> str:
        return f"{self.prefix}blobs/{digest.algorithm}/{digest.hexdigest}"

    def lock_key(self, name: str) -> str:
        return f"{self.prefix}locks/{name}"


def parse_store_url(text: str, *, name: str = "--from") -> StoreLocation:
    """Parse `s3://bucket[/prefix]` (or another scheme of `STORES`).

    Raises:
        UsageError: another scheme, no bucket, or a prefix with empty or `..` segments.
    """
    scheme, sep, rest = text.strip().partition("://")
    if not sep or scheme.lower() not in STORES:
        msg = f"{name} {text!r} is not an object-store URL"
        hint = "Give s3://bucket/prefix (S3, or MinIO, Ceph, R2... through AWS_ENDPOINT_URL)."
        raise UsageError(msg, hint=hint)
    bucket, _, prefix = rest.partition("/")
    parts = prefix.split("/") if prefix.strip("/") else []
    if parts and parts[-1] == "":
        parts.pop()
    if not bucket or any(p in ("", ".", "..") for p in parts):
        msg = f"{name} {text!r} needs a bucket and a prefix without empty, '.' or '..' parts"
        raise UsageError(msg, hint="For example: s3://models-cache/wan21")
    return StoreLocation(scheme.lower(), bucket, "".join(f"{p}/" for p in parts))
