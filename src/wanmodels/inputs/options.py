"""Manifest options: a manifest declares its choices, each with a default, and the chosen values
pick entries (`when:`) and fill `${name}` in its strings.

They are resolved on the YAML nodes before the manifest is validated, so every later layer (the
planner, the lockfile, verify) sees a plain manifest, and an error in a resolved string still
names the line it came from. One manifest covers what would otherwise be one copy per
resolution, precision or LoRA set; `wanmodels init --with ...` writes the resolved copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from wanmodels.errors import ManifestError, UsageError
from wanmodels.inputs._yaml import Node, check_keys, require, string, type_name

_OPTION_KEYS: Final = ("description", "default", "values")
_VALUE_KEYS: Final = ("description", "about", "set")
_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")
_VALUE_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_REFERENCE_RE: Final = re.compile(r"\$\{([^{}]*)\}")
WHEN_KEY: Final = "when"
OPTIONS_KEY: Final = "options"


@dataclass(frozen=True, slots=True)
class OptionValue:
    """One allowed value: what it means, the size it gives the stack, the variables it sets."""

    name: str
    description: str = ""
    about: str = ""
    sets: tuple[tuple[str, str], ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class Option:
    """A choice a manifest declares (resolution, precision, LoRAs...), with its default."""

    name: str
    default: str
    values: tuple[OptionValue, ...]
    description: str = ""
    line: int = 0

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.values)

    def value(self, name: str) -> OptionValue | None:
        return next((v for v in self.values if v.name == name), None)


def parse_choices(pairs: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`--with NAME=VALUE` arguments as (name, value) pairs, the last one winning.

    Raises:
        UsageError: an argument without `=`, or with an empty name or value.
    """
    chosen: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            msg = f"--with {pair!r} is not NAME=VALUE"
            raise UsageError(
                msg, hint="Write e.g. --with precision=fp16; `wanmodels list` shows each choice."
            )
        chosen[name.strip()] = value.strip()
    return tuple(chosen.items())


def parse_options(node: Node | None, source: str) -> tuple[Option, ...]:
    """The top-level `options:` mapping: name -> {description, default, values: {value: {...}}}.

    A value's mapping may be empty (`fp8: {}`) or hold `description`, `about` (the size of the
    stack with it) and `set` (variables for `${...}`). Every value of one option sets the same
    variables, so a string that uses one resolves whatever is chosen.

    Raises:
        ManifestError: naming the line of the broken rule.
    """
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, dict) or not node.value:
        msg = "must be a mapping of option name -> {default, values}"
        raise ManifestError(msg, file=source, line=node.line, key=OPTIONS_KEY)
    options: list[Option] = []
    variables: dict[str, str] = {}  # variable -> the option that sets it
    for name, body in node.value.items():
        key = f"{OPTIONS_KEY}.{name}"
        _check_name(name, source, body.key_line, key)
        if not isinstance(body.value, dict):
            msg = f"must be a mapping with 'default' and 'values', got {type_name(body.value)}"
            raise ManifestError(msg, file=source, line=body.line, key=key)
        check_keys(body.value, _OPTION_KEYS, source, where=f"option '{name}'")
        values_node = require(body.value, "values", source, body.line)
        values = _values(values_node, source, key)
        default_node = require(body.value, "default", source, body.line)
        default = _word(default_node, source, f"{key}.default")
        if default not in {v.name for v in values}:
            msg = f"default {default!r} is not one of its values"
            hint = f"Allowed values: {', '.join(v.name for v in values)}."
            raise ManifestError(msg, file=source, line=default_node.line, key=f"{key}.default", hint=hint)
        for var in {var for v in values for var, _ in v.sets}:
            if var in node.value or var in variables:
                msg = f"variable {var!r} is also set by option {variables.get(var, var)!r}"
                raise ManifestError(msg, file=source, line=values_node.line, key=f"{key}.values")
            variables[var] = name
        description = _text(body.value.get("description"), source, f"{key}.description")
        options.append(Option(name, default, values, description, body.key_line))
    return tuple(options)


def _values(node: Node, source: str, key: str) -> tuple[OptionValue, ...]:
    if not isinstance(node.value, dict) or not node.value:
        msg = "must be a mapping of value -> {description, about, set} (each may be {})"
        raise ManifestError(msg, file=source, line=node.line, key=f"{key}.values")
    values: list[OptionValue] = []
    first_sets: tuple[str, ...] | None = None
    for name, body in node.value.items():
        where = f"{key}.values.{name}"
        if name in ("True", "False"):
            msg = "is read as a boolean; quote it ('on', 'off')"
            raise ManifestError(msg, file=source, line=body.key_line, key=where)
        if not _VALUE_RE.match(name):
            msg = f"{name!r} is not a valid value (letters, digits, '.', '_', '-')"
            raise ManifestError(msg, file=source, line=body.key_line, key=where)
        fields: dict[str, Node] = body.value if isinstance(body.value, dict) else {}
        if body.value is not None and not isinstance(body.value, dict):
            msg = f"must be a mapping (or {{}}), got {type_name(body.value)}"
            raise ManifestError(msg, file=source, line=body.line, key=where)
        check_keys(fields, _VALUE_KEYS, source, where=f"value '{name}'")
        sets = _sets(fields.get("set"), source, f"{where}.set")
        names = tuple(sorted(var for var, _ in sets))
        if first_sets is None:
            first_sets = names
        elif names != first_sets:
            msg = f"sets {list(names)}, but the first value sets {list(first_sets)}"
            raise ManifestError(
                msg, file=source, line=body.key_line, key=where, hint="Every value sets the same variables."
            )
        values.append(
            OptionValue(
                name=name,
                description=_text(fields.get("description"), source, f"{where}.description"),
                about=_text(fields.get("about"), source, f"{where}.about"),
                sets=sets,
                line=body.key_line,
            )
        )
    return tuple(values)


def _sets(node: Node | None, source: str, key: str) -> tuple[tuple[str, str], ...]:
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, dict):
        msg = f"must be a mapping of variable -> text, got {type_name(node.value)}"
        raise ManifestError(msg, file=source, line=node.line, key=key)
    pairs = []
    for var, value in node.value.items():
        _check_name(var, source, value.key_line, f"{key}.{var}")
        if not isinstance(value.value, str):
            msg = f"must be text, got {type_name(value.value)}"
            raise ManifestError(msg, file=source, line=value.line, key=f"{key}.{var}")
        pairs.append((var, value.value))
    return tuple(pairs)


def _check_name(name: str, source: str, line: int, key: str) -> None:
    if not _NAME_RE.match(name):
        msg = f"{name!r} is not a valid name (a letter or '_', then letters, digits, '_')"
        raise ManifestError(msg, file=source, line=line, key=key)


def _word(node: Node, source: str, key: str) -> str:
    if isinstance(node.value, bool):
        msg = "is read as a boolean; quote it ('on', 'off')"
        raise ManifestError(msg, file=source, line=node.line, key=key)
    return string(node, key, source) if not isinstance(node.value, (int, float)) else str(node.value)


def _text(node: Node | None, source: str, key: str) -> str:
    return "" if node is None or node.value is None else string(node, key, source)


def choose(
    options: tuple[Option, ...], choices: Sequence[tuple[str, str]], source: str, line: int
) -> dict[str, str]:
    """Every option's value (a choice, else the default), checked against the declared values.

    Raises:
        ManifestError: an option the manifest does not declare, or a value it does not allow,
            naming the line where the option (or its values) is declared and what is allowed.
    """
    by_name = {o.name: o for o in options}
    chosen = {o.name: o.default for o in options}
    for name, value in choices:
        option = by_name.get(name)
        if option is None:
            declared = ", ".join(by_name) or "none"
            msg = f"--with {name}={value}: no option {name!r}"
            raise ManifestError(msg, file=source, line=line, key=OPTIONS_KEY, hint=f"Options: {declared}.")
        if option.value(value) is None:
            msg = f"--with {name}={value}: {value!r} is not a value of option {name!r}"
            hint = f"Allowed values: {', '.join(option.allowed)} (default {option.default})."
            raise ManifestError(msg, file=source, line=option.line, key=f"{OPTIONS_KEY}.{name}", hint=hint)
        chosen[name] = value
    return chosen


def variables(options: tuple[Option, ...], chosen: Mapping[str, str]) -> dict[str, str]:
    """What `${...}` may name: each option (its chosen value) and each variable its value sets."""
    found = dict(chosen)
    for option in options:
        value = option.value(chosen[option.name])
        assert value is not None  # `choose` checked it
        found.update(value.sets)
    return found


def resolve_models(node: Node, options: tuple[Option, ...], chosen: Mapping[str, str], source: str) -> Node:
    """The `models:` list with each entry whose `when:` the choices miss left out, `when:`
    dropped, and `${...}` filled everywhere (mapping keys too: `files:` repo paths)."""
    if not isinstance(node.value, list):
        return node
    known = variables(options, chosen)
    kept = []
    for entry in node.value:
        if isinstance(entry.value, dict) and WHEN_KEY in entry.value:
            if not _matches(entry.value[WHEN_KEY], options, chosen, source):
                continue
            rest = {key: child for key, child in entry.value.items() if key != WHEN_KEY}
            entry = Node(rest, entry.line, entry.key_line)
        kept.append(fill(entry, known, source))
    return Node(kept, node.line, node.key_line)


def _matches(when: Node, options: tuple[Option, ...], chosen: Mapping[str, str], source: str) -> bool:
    """Whether the choices have, for every option `when:` names, one of the values it lists.

    Raises:
        ManifestError: an option or value the manifest does not declare, at its line.
    """
    if not isinstance(when.value, dict) or not when.value:
        msg = "must be a mapping of option -> value (or list of values)"
        raise ManifestError(msg, file=source, line=when.line, key=WHEN_KEY)
    by_name = {o.name: o for o in options}
    matched = True
    for name, node in when.value.items():
        key = f"{WHEN_KEY}.{name}"
        option = by_name.get(name)
        if option is None:
            msg = f"no option {name!r}"
            hint = f"Options: {', '.join(by_name) or 'none (declare them under options:)'}."
            raise ManifestError(msg, file=source, line=node.key_line, key=key, hint=hint)
        values: set[str] = set()
        for item in node.value if isinstance(node.value, list) else [node]:
            value = _word(item, source, key)
            if option.value(value) is None:
                msg = f"{value!r} is not a value of option {name!r}"
                hint = f"Allowed values: {', '.join(option.allowed)}."
                raise ManifestError(msg, file=source, line=item.line, key=key, hint=hint)
            values.add(value)
        matched = matched and chosen[name] in values
    return matched


def fill(node: Node, known: Mapping[str, str], source: str) -> Node:
    """A copy of `node` with every `${name}` in its strings (and mapping keys) replaced.

    Raises:
        ManifestError: a `${...}` that names no option or variable, at its line.
    """
    value = node.value
    if isinstance(value, str):
        return Node(_fill_text(value, known, source, node.line), node.line, node.key_line)
    if isinstance(value, list):
        return Node([fill(item, known, source) for item in value], node.line, node.key_line)
    if isinstance(value, dict):
        result: dict[str, Node] = {}
        for key, child in value.items():
            new_key = _fill_text(key, known, source, child.key_line)
            if new_key in result:
                msg = f"{key!r} and another key both become {new_key!r}"
                raise ManifestError(msg, file=source, line=child.key_line, key=new_key)
            result[new_key] = fill(child, known, source)
        return Node(result, node.line, node.key_line)
    return node


def _fill_text(text: str, known: Mapping[str, str], source: str, line: int) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in known:
            defined = ", ".join(sorted(known)) or "none (declare options: first)"
            msg = f"${{{name}}} names no option or variable"
            raise ManifestError(msg, file=source, line=line, hint=f"Defined: {defined}.")
        return known[name]

    return _REFERENCE_RE.sub(replace, text) if "${" in text else text


def plain(node: Node) -> Any:
    """The Python data a node holds (for writing a resolved manifest back as YAML)."""
    if isinstance(node.value, dict):
        return {key: plain(child) for key, child in node.value.items()}
    if isinstance(node.value, list):
        return [plain(item) for item in node.value]
    return node.value
