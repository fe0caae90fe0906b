"""The one exception hierarchy of wanmodels, each class carrying its CLI exit code.

```
WanmodelsError
├── UsageError                 exit 2   bad manifest, lockfile or plan; drift under --frozen
│   ├── ManifestError                   (carries file + line)
│   ├── LockError
│   └── SelectionError                  a file selection matches nothing / names a missing file
├── HubError                   exit 3   network or remote trouble (carries repo_id, revision)
│   ├── RepoNotFoundError
│   ├── RevisionNotFoundError
│   ├── RemoteFileNotFoundError
│   ├── AccessDeniedError               gated or needs a token
│   ├── OfflineError                    files are missing and the network is off
│   └── TransientHubError               5xx, 429, timeout, dropped connection: worth retrying
├── LocalIOError               exit 4   disk full, permission, root locked (--no-wait)
│   └── DiskFullError
├── IntegrityError             exit 1   bytes do not match their digest
├── ConflictError              exit 1   a file wanmodels did not place holds a target (left alone)
└── Interrupted                exit 130 Ctrl-C or SIGTERM; partial downloads are kept
```
The library raises these; only `wanmodels.cli.app` turns them into messages and exit codes.
"""

from __future__ import annotations

from typing import ClassVar, Final

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_HUB: Final = 3
EXIT_LOCAL_IO: Final = 4
EXIT_INTERRUPTED: Final = 130


class WanmodelsError(Exception):
    """Raised for every expected failure; `hint` is the command or action that fixes it."""

    exit_code: ClassVar[int] = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return with_hint(self.message, self.hint)


def on_behalf(entry: str | None) -> str:
    """How a message about one manifest entry opens ("entry 'NAME': "; nothing without one). One
    copy of it, so a message that names several entries at once can take it off (`without_entry`)."""
    return f"entry '{entry}': " if entry else ""


def without_entry(message: str, entry: str) -> str:
    """`message` without the opening that `on_behalf(entry)` gave it."""
    return message.removeprefix(on_behalf(entry))


def with_hint(message: str, hint: str | None) -> str:
    """A message and the fix that follows it, as two sentences: one rule for every place that
    prints both (the human line, `--json`, a failed file's error)."""
    text = message.rstrip()
    if not hint:
        return text
    return f"{text if text.endswith(('.', '!', '?')) else text + '.'} {hint}"


class UsageError(WanmodelsError, ValueError):
    """Raised when the user's input (flags, manifest, lockfile) cannot be used."""

    exit_code = EXIT_USAGE


class ManifestError(UsageError):
    """Raised when a manifest cannot be read or breaks a rule; names file, line and key."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = file or "<manifest>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: " if key is None else f"{where}: '{key}': "
        super().__init__(prefix + message, hint=hint)
        self.file = file
        self.line = line
        self.key = key
        self.detail = message  # the message without its file:line: 'key': prefix


class LockError(UsageError):
    """Raised when a lockfile is unreadable or does not match its manifest."""


class SelectionError(UsageError):
    """Raised when an entry's file selection matches nothing or names a file the repo lacks."""


class HubError(WanmodelsError, OSError):
    """Raised for network or remote trouble that retries did not cure."""

    exit_code = EXIT_HUB

    def __init__(
        self,
        message: str,
        *,
        repo_id: str | None = None,
        revision: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.repo_id = repo_id
        self.revision = revision
        self.status = status


class RepoNotFoundError(HubError):
    """Raised when the repo does not exist (or is private and no token grants access)."""


class RevisionNotFoundError(HubError):
    """Raised when the branch, tag or commit does not exist in the repo."""


class RemoteFileNotFoundError(HubError):
    """Raised when a file is not in the repo at the resolved commit."""


class AccessDeniedError(HubError):
    """Raised when the repo is gated or needs a token the user has not given."""


class OfflineError(HubError):
    """Raised when work needs the network but offline mode is on."""


class TransientHubError(HubError):
    """Raised for a failure that may pass: 5xx, 429/408, timeouts, dropped connections."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class LocalIOError(WanmodelsError, OSError):
    """Raised for local disk trouble: no space, no permission, root locked by another process."""

    exit_code = EXIT_LOCAL_IO


class DiskFullError(LocalIOError):
    """Raised when the plan needs more bytes than the disk has free."""


class IntegrityError(WanmodelsError):
    """Raised when downloaded or on-disk bytes do not match their expected digest."""

    exit_code = EXIT_FAILED

    def __init__(
        self, message: str, *, path: str, expected: str, actual: str, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.expected = expected
        self.actual = actual


class ConflictError(WanmodelsError):
    """Raised when a file wanmodels did not place holds a target path with other bytes."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, path: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class Interrupted(WanmodelsError):
    """Raised when the user or the system stopped the run; partial downloads are kept."""

    exit_code = EXIT_INTERRUPTED
