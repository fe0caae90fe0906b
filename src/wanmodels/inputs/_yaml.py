"""YAML text to `Node`s (value + line), with the safe loader only, and the checks that walk them.

The YAML is composed with the safe loader (nothing is ever constructed from a tag, so a
manifest can never execute code) and walked by hand, which is what lets every error name
the line and key, and catch duplicate keys that PyYAML would silently merge. A document is
bounded before it costs much: at most `MAX_BYTES` of text, and composition stops at the
`_MAX_NODES`th node rather than building the whole document first (libyaml's parser does
the reading where PyYAML has it, three times faster than PyYAML's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import yaml

# PyYAML's parts (it ships no type hints, so mypy sees them as Any).
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from wanmodels.errors import ManifestError

_MAX_NODES: Final = 100_000
_MAX_DEPTH: Final = 32
MAX_BYTES: Final = 8 << 20  # a manifest of 15,000 entries (past _MAX_NODES) is about 3 MiB


class _TooLarge(Exception):
    """Raised while composing, at the node past `_MAX_NODES` (with its line)."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _CountingComposer(yaml.composer.Composer):
    """PyYAML's composer, counting nodes as it makes them (aliases count once, where anchored)."""

    nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            # The parser mixed in beside this composer (PyYAML's or libyaml's) gives the events.
            event = self.peek_event()  # type: ignore[attr-defined]
            raise _TooLarge(event.start_mark.line + 1)
        return super().compose_node(parent, index)


class _PyLoader(Reader, Scanner, Parser, _CountingComposer, Resolver):
    """PyYAML's safe loader without its constructor: composes (counting) and resolves tags."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _CountingComposer.__init__(self)
        Resolver.__init__(self)


_Loader: Any = _PyLoader
if yaml.__with_libyaml__:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]  # the stubs omit the C parser

    class _CLoader(_CountingComposer, CParser, Resolver):
        """libyaml parses; PyYAML composes (counting) and resolves tags: nothing is constructed."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _CountingComposer.__init__(self)
            Resolver.__init__(self)

    _Loader = _CLoader


def read_nodes(text: str, source: str) -> Node:
    """Compose `text` into `Node`s; `source` names the file in errors.

    Raises:
        ManifestError: bad YAML, a tag, a duplicate or complex key, or a runaway document.
    """
    return _Reader(source).read(text)


def too_large(source: str) -> ManifestError:
    """The refusal of a manifest longer than `MAX_BYTES`, before it is parsed."""
    msg = f"the manifest is larger than {MAX_BYTES >> 20} MiB; not reading it"
    hint = "A manifest lists entries, not data: check that this is the right file."
    return ManifestError(msg, file=source, hint=hint)


def _deep_line(text: str) -> int | None:
    """The line where flow brackets first nest deeper than `_MAX_DEPTH` (a best guess for messages)."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for char in line:
            depth += (char in "[{") - (char in "]}")
            if depth > _MAX_DEPTH:
                return number
    return None


def _hint(err: yaml.MarkedYAMLError) -> str | None:
    """The likely fix for a known YAML trap: an unquoted `*.ext` glob reads as an alias."""
    if err.context == "while scanning an alias" or (err.problem or "").startswith("found undefined alias"):
        return "Quote patterns that start with '*' (YAML reads *name as an alias): include: [\"*.ckpt\"]."
    return None


@dataclass(slots=True)
class Node:
    """A YAML value with the line it starts on (and its key's line inside a mapping)."""

    value: Any
    line: int
    key_line: int = 0


class _Reader:
    """Turns YAML text into `Node`s, rejecting tags, duplicate keys and runaway aliases."""

    _SCALAR_TAGS: Final = {
        "tag:yaml.org,2002:str",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:float",
    }

    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0
        self._constructor = yaml.SafeLoader("")

    def read(self, text: str) -> Node:
        if len(text) > MAX_BYTES:
            raise too_large(self.source)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        except _TooLarge as err:
            msg = "too deeply nested or too large (aliases?)"
            raise ManifestError(msg, file=self.source, line=err.line) from None
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = (err.problem or err.context or "invalid YAML").strip()
            if "nesting depth" in problem:  # libyaml's own bound on flow nesting
                msg = "too deeply nested"
                raise ManifestError(msg, file=self.source, line=line) from None
            msg = f"invalid YAML: {problem}"
            raise ManifestError(msg, file=self.source, line=line, hint=_hint(err)) from None
        except yaml.YAMLError as err:
            msg = f"invalid YAML: {err}"
            raise ManifestError(msg, file=self.source) from None
        except RecursionError:
            msg = "too deeply nested"
            raise ManifestError(msg, file=self.source, line=_deep_line(text)) from None
        finally:
            loader.dispose()
        if root is None:
            msg = "the manifest is empty"
            raise ManifestError(msg, file=self.source, line=1)
        return self._node(root, 0)

    def _node(self, node: yaml.Node, depth: int) -> Node:
        self.count += 1
        line = node.start_mark.line + 1
        if depth > _MAX_DEPTH or self.count > _MAX_NODES:
            msg = "too deeply nested or too large (aliases?)"
            raise ManifestError(msg, file=self.source, line=line)
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self._bad_tag(node)
            result: dict[str, Node] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    msg = "keys must be plain strings (no merge keys or complex keys)"
                    raise ManifestError(msg, file=self.source, line=key_line)
                key = self._scalar(key_node)
                if not isinstance(key, str):
                    key = str(key)
                if key in result:
                    msg = f"duplicate key (first at line {result[key].key_line})"
                    raise ManifestError(msg, file=self.source, line=key_line, key=key)
                child = self._node(value_node, depth + 1)
                child.key_line = key_line
                result[key] = child
            return Node(result, line)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self._bad_tag(node)
            return Node([self._node(item, depth + 1) for item in node.value], line)
        return Node(self._scalar(node), line)

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == "tag:yaml.org,2002:timestamp" and isinstance(node.value, str):
            return node.value  # an unquoted date (e.g. a tag name) is just text here
        if node.tag not in self._SCALAR_TAGS:
            self._bad_tag(node)
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, KeyError, IndexError, OverflowError) as err:
            msg = f"bad value: {err}"
            raise ManifestError(msg, file=self.source, line=node.start_mark.line + 1) from None

    def _bad_tag(self, node: yaml.Node) -> None:
        msg = f"tag {node.tag!r} is not allowed (manifests are data, never code)"
        raise ManifestError(msg, file=self.source, line=node.start_mark.line + 1)


def dump(data: Any) -> str:
    """`data` (plain dicts, lists and scalars) as block-style YAML that `read_nodes` reads back:
    keys in their given order, lists indented under their key, quoting where YAML needs it."""
    return str(yaml.dump(data, Dumper=_IndentedDumper, sort_keys=False, allow_unicode=True, width=1000))


class _IndentedDumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# -- walking the nodes: each error names the file, the line and the key -------------------------


def check_keys(mapping: dict[str, Node], allowed: tuple[str, ...], source: str, *, where: str) -> None:
    for key, node in mapping.items():
        if key not in allowed:
            msg = f"unknown key in {where}"
            hint = f"Allowed keys: {', '.join(allowed)}."
            raise ManifestError(msg, file=source, line=node.key_line, key=key, hint=hint)


def require(mapping: dict[str, Node], key: str, source: str, line: int) -> Node:
    if key not in mapping:
        msg = "missing required key"
        raise ManifestError(msg, file=source, line=line, key=key)
    return mapping[key]


def string(node: Node, key: str, source: str) -> str:
    if not isinstance(node.value, str) or not node.value:
        msg = f"must be a non-empty string, got {type_name(node.value)}"
        raise ManifestError(msg, file=source, line=node.line, key=key)
    return node.value


def opt_string(mapping: dict[str, Node], key: str, source: str) -> str | None:
    node = mapping.get(key)
    if node is None or node.value is None:
        return None
    return string(node, key, source)


def string_list(node: Node | None, key: str, source: str) -> tuple[tuple[str, int], ...]:
    """A list of non-empty strings, each with its own line (so errors point at the item)."""
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, list):
        msg = f"must be a list of strings, got {type_name(node.value)}"
        raise ManifestError(msg, file=source, line=node.line, key=key)
    return tuple((string(item, key, source), item.line) for item in node.value)


def type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"
