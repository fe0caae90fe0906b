"""The command line: the only users of typer and rich. `wanmodels.cli:main` is the entry point."""

from __future__ import annotations

from wanmodels.cli.app import main

__all__ = ["main"]
