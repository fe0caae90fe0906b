"""Reading the user docs as tests see them: a doc's text and its fenced code blocks."""

from __future__ import annotations

import re

from tests.support.paths import DOCS

__all__ = ["FENCE", "fences", "read_doc"]

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def read_doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def fences(text: str, *langs: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, optionally only those in `langs`."""
    return [(lang, body) for lang, body in FENCE.findall(text) if not langs or lang in langs]
