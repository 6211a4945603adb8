"""Typed reads of YAML nodes that turn every mismatch into a positioned issue.

The schema walker calls these for each key it expects. They never raise: a
value that does not fit records an issue (what was expected, what was found,
where) and yields ``None``, so the walk goes on and every mistake of a file is
reported in one go.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ame.spec.source import (
    STANDARD_TAG_PREFIX,
    Source,
    flatten_merges,
    is_placeholder,
    key_path,
)

T = TypeVar("T")

_TAG = STANDARD_TAG_PREFIX
_constructor = SafeConstructor()
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# No setting in ame.yml needs more digits; Python refuses to convert more than
# 4300 anyway (with a ValueError that names an interpreter setting).
MAX_INT_DIGITS = 30


def yaml_int(node: ScalarNode) -> int:
    """The value of a YAML int scalar; ValueError, for a person, when it is absurdly long."""
    digits = sum(ch.isdigit() for ch in node.value)
    if digits > MAX_INT_DIGITS:
        shown = node.value if len(node.value) <= 20 else node.value[:12] + "..."
        raise ValueError(
            f"the number {shown} has {digits} digits; ame accepts at most {MAX_INT_DIGITS}"
        )
    return int(_constructor.construct_yaml_int(node))


def join(path: str, key: str | int) -> str:
    """Extend a field path: ``models[0]`` + ``deployment`` -> ``models[0].deployment``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return key_path(path, key)


def describe(node: Node) -> str:
    """What a node is, in words, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag or ""
    if tag == _TAG + "null":
        return "an empty value"
    if tag == _TAG + "bool":
        return f"the boolean {node.value}"
    if tag in (_TAG + "int", _TAG + "float"):
        return f"the number {node.value}"
    return f"the string {node.value!r}"


@dataclass
class Entry:
    """One key of a mapping: how it was spelled and its key and value nodes."""

    spelling: str
    key: ScalarNode
    value: Node


class Reader:
    """Reads nodes of one file, reporting into its ``Source``."""

    def __init__(self, source: Source) -> None:
        self.source = source

    def issue(self, node: Node | None, path: str, message: str) -> None:
        """Record an issue, unless ``node`` was already reported (an unknown tag, say)."""
        if node is not None and id(node) in self.source.reported:
            return
        self.source.add(node, path, message)

    def expected(self, node: Node, path: str, what: str) -> None:
        """Report a value of the wrong type, naming placeholders left from docs."""
        if is_placeholder(node):
            self.issue(
                node,
                path,
                f"unfinished fragment: placeholder {node.value!r} where {what} was expected",
            )
        else:
            self.issue(node, path, f"expected {what}, got {describe(node)}")

    # --- containers -------------------------------------------------------

    def mapping(
        self,
        node: Node,
        path: str,
        keys: Mapping[str, str],
        what: str = "a mapping",
        *,
        extensions: bool = False,
    ) -> dict[str, Entry] | None:
        """The entries of a mapping, keyed by canonical name.

        ``keys`` maps every accepted spelling (current and legacy) to its
        canonical name. Unknown keys, duplicate keys and two spellings of one
        key are reported; the closest valid spelling is suggested. With
        ``extensions``, keys starting with ``x-`` are skipped: a place for anchors.
        """
        if not isinstance(node, MappingNode):
            self.expected(node, path, what)
            return None
        flatten_merges(node, self.source)
        entries: dict[str, Entry] = {}
        seen: dict[str, ScalarNode] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.issue(key, path, f"a key must be a plain string, got {describe(key)}")
                continue
            name = key.value
            # At the top level there is no mapping to name: the key is the field.
            where = path or key_path("", str(name))
            if name in seen:
                line = seen[name].start_mark.line + 1
                self.issue(key, where, f"duplicate key '{name}' (first given on line {line})")
                continue
            seen[name] = key
            canonical = keys.get(name)
            if canonical is None and extensions and name.startswith("x-"):
                continue
            if canonical is None:
                self.issue(key, where, unknown_key(name, keys))
                continue
            if canonical in entries:
                other = entries[canonical]
                line = other.key.start_mark.line + 1
                self.issue(
                    key,
                    where,
                    f"'{name}' and '{other.spelling}' (line {line}) are two spellings of "
                    f"'{canonical}'; keep one",
                )
                continue
            entries[canonical] = Entry(name, key, value)
        return entries

    def sequence(self, node: Node, path: str, what: str) -> list[Node] | None:
        """The items of a list (``what`` says what the list holds, for messages)."""
        if not isinstance(node, SequenceNode):
            self.expected(node, path, f"a list of {what}")
            return None
        return list(node.value)

    def require(self, entries: dict[str, Entry], node: Node, path: str, key: str) -> bool:
        """Report a missing required key at the mapping; True when present."""
        if key in entries:
            return True
        self.issue(node, path or key, f"missing required key '{key}'")
        return False

    # --- scalars ----------------------------------------------------------

    def string(self, node: Node, path: str, what: str = "a string") -> str | None:
        """A scalar as the text written (so ``3.10`` stays ``"3.10"``, not 3.1)."""
        if (
            not isinstance(node, ScalarNode)
            or node.tag == _TAG + "null"
            or id(node) in self.source.reported
        ):
            self.expected(node, path, what)
            return None
        if is_placeholder(node):
            self.expected(node, path, what)
            return None
        return str(node.value)

    def name(self, node: Node, path: str, what: str = "a name") -> str | None:
        """A name: letters, digits, ``_``, ``-`` and ``.``; no spaces."""
        text = self.string(node, path, what)
        if text is None:
            return None
        if not NAME_RE.match(text):
            self.issue(
                node,
                path,
                f"{text!r} is not a valid name: use letters, digits, '_', '-' and '.', "
                "starting with a letter, digit or '_'",
            )
            return None
        return text

    def integer(
        self, node: Node, path: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        """An integer, optionally within bounds."""
        if not isinstance(node, ScalarNode) or node.tag != _TAG + "int":
            self.expected(node, path, "an integer")
            return None
        try:
            value = yaml_int(node)
        except ValueError as exc:
            self.issue(node, path, str(exc))
            return None
        return self._bounded(node, path, value, minimum, maximum)

    def number(self, node: Node, path: str, minimum: float | None = None) -> float | None:
        """An integer or a decimal number."""
        if not isinstance(node, ScalarNode) or node.tag not in (_TAG + "int", _TAG + "float"):
            self.expected(node, path, "a number")
            return None
        try:
            if node.tag == _TAG + "int":
                value = float(yaml_int(node))
            else:
                value = float(_constructor.construct_yaml_float(node))
        except (ValueError, OverflowError) as exc:
            self.issue(node, path, str(exc))
            return None
        return self._bounded(node, path, value, minimum, None)

    def _bounded(self, node: Node, path: str, value: T, minimum: Any, maximum: Any) -> T | None:
        if minimum is not None and value < minimum:
            self.issue(node, path, f"must be at least {minimum}, got {node.value}")
            return None
        if maximum is not None and value > maximum:
            self.issue(node, path, f"must be at most {maximum}, got {node.value}")
            return None
        return value

    def boolean(self, node: Node, path: str) -> bool | None:
        """``true`` or ``false``."""
        if not isinstance(node, ScalarNode) or node.tag != _TAG + "bool":
            self.expected(node, path, "true or false")
            return None
        return bool(_constructor.construct_yaml_bool(node))

    def converted(
        self, node: Node, path: str, convert: Callable[[object], T], what: str
    ) -> T | None:
        """A scalar passed through ``convert`` (a units parser), its ValueError as the issue."""
        if not isinstance(node, ScalarNode) or node.tag == _TAG + "null" or is_placeholder(node):
            self.expected(node, path, what)
            return None
        raw: object = node.value
        try:
            if node.tag == _TAG + "int":
                raw = yaml_int(node)
            elif node.tag == _TAG + "float":
                raw = float(_constructor.construct_yaml_float(node))
            elif node.tag == _TAG + "bool":
                raw = bool(_constructor.construct_yaml_bool(node))
            return convert(raw)
        except (ValueError, ArithmeticError, ConstructorError) as exc:
            # ArithmeticError: decimal overflow in a quantity such as 1e999999Gi
            self.issue(node, path, str(exc) or f"{node.value!r} is out of range")
            return None

    def string_list(self, node: Node, path: str, what: str) -> list[str] | None:
        """A list of strings (a single string is taken as a list of one)."""
        if isinstance(node, ScalarNode) and node.tag == _TAG + "str" and not is_placeholder(node):
            return [node.value]
        items = self.sequence(node, path, what)
        if items is None:
            return None
        out = []
        for i, item in enumerate(items):
            text = self.string(item, join(path, i))
            if text is not None:
                out.append(text)
        return out

    def string_map(
        self,
        node: Node,
        path: str,
        what: str,
        check_key: Callable[[Node, str], bool] | None = None,
    ) -> dict[str, str] | None:
        """A mapping of strings to strings (values kept as written).

        ``check_key`` may reject a key (reporting why), e.g. an invalid variable name.
        """
        if not isinstance(node, MappingNode):
            self.expected(node, path, what)
            return None
        flatten_merges(node, self.source)
        out: dict[str, str] = {}
        first: dict[str, Node] = {}
        for key, value in node.value:
            key_text = self.string(key, path, "a string key")
            if key_text is None:
                continue
            if key_text in first:
                line = first[key_text].start_mark.line + 1
                self.issue(key, path, f"duplicate key '{key_text}' (first given on line {line})")
                continue
            first[key_text] = key
            if check_key is not None and not check_key(key, key_text):
                continue
            text = self.string(value, join(path, key_text))
            if text is not None:
                out[key_text] = text
        return out


def unknown_key(name: str, keys: Mapping[str, str]) -> str:
    """The message for an unknown key, suggesting the closest accepted spelling.

    Current spellings are preferred over legacy ones, so a typo is steered
    towards the documented form.
    """
    canonical = [k for k, v in keys.items() if k == v]
    legacy = [k for k, v in keys.items() if k != v]
    squashed = name.lower().replace("_", "").replace("-", "")
    close = None
    for group in (canonical, legacy):
        for spelling in group:
            if spelling.lower().replace("_", "") == squashed:
                close = spelling
                break
        if close is not None:
            break
    if close is None:
        for group in (canonical, legacy):
            matches = difflib.get_close_matches(name, group, n=1, cutoff=0.6)
            if matches:
                close = matches[0]
                break
    if close is not None:
        return f"unknown key '{name}' (did you mean '{close}'?)"
    return f"unknown key '{name}' (valid keys: {', '.join(sorted(canonical))})"
