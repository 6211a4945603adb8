"""Reading an ame.yml into a YAML node tree that remembers where everything is.

PyYAML's composer keeps a line and column on every node and leaves tags such
as ``!poetry`` untouched, which is exactly what the schema walker needs to
point at mistakes. Everything that can go wrong before the schema (bytes that
are not text, YAML syntax, an empty file, tags nobody knows) becomes a
``SpecIssue`` with a position here, never a traceback.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ame.errors import SpecIssue

# The executor tags AME files use; the value is the executor kind they mean.
EXECUTOR_TAGS: dict[str, str] = {
    "!poetry": "poetry",
    "!pip": "pip",
    "!pipEnv": "pipenv",
    "!pipenv": "pipenv",
    "!custom": "custom",
    "!mlflow": "mlflow",
    "!uv": "uv",
}
STANDARD_TAG_PREFIX = "tag:yaml.org,2002:"
_MERGE_TAG = STANDARD_TAG_PREFIX + "merge"
_NUL_MESSAGE = "not a text file: NUL byte (ame.yml must be UTF-8 YAML)"
# The largest ame.yml ame reads: real ones are a few KiB; this refuses a
# mistaken log file or device at once instead of composing gigabytes.
MAX_SPEC_BYTES = 4 << 20
# The path shown for an issue that belongs to no field (an empty file, a
# syntax error before the first key): every issue line has a path.
ROOT_PATH = "<root>"
# Deeper nesting is refused before composing (see ``shallow``).
MAX_DEPTH = 64
# What YAML accepts as text (YAML 1.1 "printable"); anything else is refused
# here, at its own line and column, instead of by PyYAML's reader with a
# character offset.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CONTROL_NAMES = {
    0x7F: "DEL",
    0x1B: "ESC",
    0x0C: "form feed",
    0x0B: "vertical tab",
    0x08: "backspace",
}

try:  # libyaml is much faster; fall back to the pure-Python loader when absent.
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader


@dataclass
class Source:
    """One ame.yml file being loaded: its name for messages and the issues found so far."""

    file: str
    issues: list[SpecIssue] = field(default_factory=list)
    # Nodes already reported (an unknown tag, say): the walker stays quiet about them.
    reported: set[int] = field(default_factory=set)
    # Nodes whose executor tag the schema consumed; any other executor tag is misplaced.
    tags_used: set[int] = field(default_factory=set)
    # Every node with an executor tag, in document order.
    tagged: list[Node] = field(default_factory=list)
    # The directory the file is in, for checks that look beside it (a !pip task's
    # requirements.txt); None for text loaded without a file.
    directory: Path | None = None

    def add(self, node: Node | None, path: str, message: str) -> None:
        """Record an issue at ``node`` (1-based line and column), or at 1:1 without one."""
        line, column = position(node)
        self.issues.append(SpecIssue(self.file, line, column, path or ROOT_PATH, message))

    def add_at(self, line: int, column: int, path: str, message: str) -> None:
        """Record an issue at an explicit 1-based position."""
        self.issues.append(SpecIssue(self.file, line, column, path or ROOT_PATH, message))


def position(node: Node | None) -> tuple[int, int]:
    """The 1-based (line, column) where ``node`` starts; (1, 1) for none."""
    if node is None:
        return 1, 1
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def decode(data: bytes, source: Source) -> str | None:
    """The file's text, or None (with an issue) when it is not UTF-8 text.

    Binary garbage gets a message at the first offending byte instead of a
    reader error without a line.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    nul = data.find(b"\x00")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if 0 <= nul < exc.start:
            _add_at_offset(source, data, nul, _NUL_MESSAGE)
        else:
            _add_at_offset(
                source,
                data,
                exc.start,
                f"not a text file: invalid UTF-8 byte 0x{data[exc.start]:02x} "
                "(ame.yml must be UTF-8 YAML)",
            )
        return None
    if nul >= 0:
        _add_at_offset(source, data, nul, _NUL_MESSAGE)
        return None
    return text


def printable(text: str, source: Source) -> bool:
    """Whether ``text`` holds only characters YAML accepts; else one issue at the first other.

    PyYAML's reader would refuse it too, but at ``1:1`` with a character offset
    on a second line; this names the line, column and field instead.
    """
    bad = _NOT_PRINTABLE.search(text)
    if bad is None:
        return True
    code = ord(bad.group())
    name = _CONTROL_NAMES.get(code)
    what = f"U+{code:04X}" + (f" ({name})" if name else "")
    line = text.count("\n", 0, bad.start()) + 1
    column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
    source.add_at(
        line,
        column,
        path_at(_NOT_PRINTABLE.sub(" ", text), bad.start()),
        f"control character {what} is not allowed (ame.yml must be printable UTF-8 text)",
    )
    return False


def shallow(text: str, source: Source) -> bool:
    """Whether ``text`` nests at most ``MAX_DEPTH`` levels; else one issue where it gets deeper.

    libyaml's composer recurses in C once per level, so a file of 100,000
    ``[`` crashes the interpreter outright; the parser's events come without
    recursion, and counting them first costs a tenth of a millisecond.
    """
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
                    source.add_at(
                        line,
                        column,
                        "",
                        f"nested more than {MAX_DEPTH} levels deep; ame.yml needs a handful",
                    )
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass  # compose reports it, with its position
    return True


def _add_at_offset(source: Source, data: bytes, offset: int, message: str) -> None:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    source.add_at(line, column, "", message)


# Below this many characters that can open a collection, a document cannot nest
# deeper than libyaml's composer can recurse, so it is composed straight away
# and its depth read from the tree; above it, the events are counted first.
_SAFE_INDICATORS = 20000


def compose(text: str, source: Source) -> Node | None:
    """The YAML node tree of ``text``, or None (with issues) if there is none to walk."""
    if not printable(text, source):
        return None
    indicators = sum(text.count(ch) for ch in "[{-:?")
    if indicators > _SAFE_INDICATORS and not shallow(text, source):
        return None
    try:
        node = yaml.compose(text, Loader=_BaseLoader)
    except yaml.MarkedYAMLError as exc:
        # A deep document that is also broken: the depth is what is reported.
        if indicators > _SAFE_INDICATORS or shallow(text, source):
            _syntax_issue(exc, text, source)
        return None
    except yaml.YAMLError as exc:  # reader errors carry no mark
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        source.add_at(1, 1, "", f"invalid YAML: {first}")
        return None
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        source.add_at(1, 1, "", "invalid YAML: the document is nested too deeply")
        return None
    if node is None:
        source.add_at(
            1, 1, "", "the file is empty: expected a mapping starting with 'project: <name>'"
        )
        return None
    if not _check_tree(node, source):
        return None
    return node


def _syntax_issue(exc: yaml.MarkedYAMLError, text: str, source: Source) -> None:
    """One issue for a YAML syntax error, at the line that is really at fault.

    For "could not find expected ':'" PyYAML marks the line *after* the bad
    one; the context mark is the line the user wrote without a colon (often a
    placeholder such as ``...`` or ``TODO`` in a copied documentation fragment).
    """
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or "syntax error").strip()
    if (
        exc.context_mark is not None
        and exc.context
        and "simple key" in exc.context
        and "expected ':'" in problem
    ):
        mark = exc.context_mark
        lines = text.splitlines()
        bad = lines[mark.line].strip() if mark.line < len(lines) else ""
        if _is_placeholder(bad):
            message = f"unfinished fragment: placeholder {bad!r} where 'key: value' was expected"
        else:
            message = f"invalid YAML: {bad!r} is not 'key: value' (missing ':'?)"
        source.add_at(mark.line + 1, mark.column + 1, path_at(text, mark.index), message)
        return
    context = f" ({exc.context.strip()})" if exc.context else ""
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    path = path_at(text, mark.index) if mark is not None else ""
    source.add_at(line, column, path, f"invalid YAML: {problem}{context}")


_PLAIN_KEY = re.compile(r"^[^\s\[\].\"':]+$")


def key_path(path: str, key: str) -> str:
    """``path`` extended by ``key``: ``a.b``, or ``a["odd key"]`` for keys with spaces or dots.

    A path is one word in ``FILE:L:C path: message``, so a key that is not a
    plain word (a typo with a space, a colon) is quoted, its whitespace written
    as ``%20`` and the like, rather than splitting the line's path in two.
    """
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    quoted = re.sub(r"\s", lambda m: f"%{ord(m.group()):02X}", json.dumps(key))
    return f"{path}[{quoted}]"


@dataclass
class _Frame:
    """One open mapping or sequence while replaying parser events (see ``path_at``)."""

    mapping: bool
    key: str | None = None  # a mapping's current key
    index: int = -1  # a sequence's current item
    expecting_key: bool = True


def path_at(text: str, index: int) -> str:
    """The field path of the place at character ``index``, from the events before it.

    A syntax error has no node, but the parser got as far as the error: its
    events (mapping and sequence starts, keys, values) say which field the
    error is in, so even ``invalid YAML`` lines name a path. Parsing stops at
    ``index`` or at the first error, whichever comes first.
    """
    frames: list[_Frame] = []
    try:
        for event in yaml.parse(text, Loader=_BaseLoader):
            start = event.start_mark.index if event.start_mark is not None else 0
            if start >= index:
                break
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                if frames:
                    frames.pop()
                if frames and frames[-1].mapping:
                    frames[-1].expecting_key = True
                continue
            if not isinstance(event, yaml.NodeEvent):
                continue
            top = frames[-1] if frames else None
            if top is not None and top.mapping and top.expecting_key:
                if event.end_mark is not None and event.end_mark.index > index:
                    top.key = None  # the place is inside this key: the mapping is the field
                    break
                top.key = event.value if isinstance(event, yaml.ScalarEvent) else None
                top.expecting_key = False
                continue  # (a complex key's own events are rare enough to ignore)
            if top is not None and not top.mapping:
                top.index += 1
            if isinstance(event, yaml.MappingStartEvent):
                frames.append(_Frame(mapping=True))
            elif isinstance(event, yaml.SequenceStartEvent):
                frames.append(_Frame(mapping=False, expecting_key=False))
            elif top is not None and top.mapping:
                top.expecting_key = True
    except (yaml.YAMLError, RecursionError):
        pass
    path = ""
    for depth, frame in enumerate(frames, 1):
        # In the innermost mapping the error follows its last key (in or just
        # after that entry's value): naming it helps more than naming the mapping.
        inside = not frame.expecting_key or depth == len(frames)
        if frame.mapping and inside and frame.key is not None:
            path = key_path(path, frame.key)
        elif not frame.mapping and frame.index >= 0:
            path = f"{path}[{frame.index}]"
    return path


def _is_placeholder(text: str) -> bool:
    return text in ("...", "…") or text.upper().startswith("TODO")


def is_placeholder(node: Node) -> bool:
    """Whether ``node`` is a documentation placeholder (``...`` or ``TODO``) left in the file.

    Only a bare, unquoted ``...`` or ``TODO`` counts: a description that
    merely starts with "TODO" is the user's business.
    """
    if not isinstance(node, ScalarNode) or node.style:
        return False
    text = node.value  # the length first: this runs on every string of the file
    return text in ("...", "…") or (len(text) == 4 and text.upper() == "TODO")


def walk(node: Node, path: str = "") -> Iterator[tuple[Node, str]]:
    """Every node of the tree once, with its field path (aliases are visited once)."""
    seen: set[int] = set()
    stack = [(node, path)]
    while stack:
        current, where = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current, where
        if isinstance(current, SequenceNode):
            stack.extend(reversed([(v, f"{where}[{i}]") for i, v in enumerate(current.value)]))
        elif isinstance(current, MappingNode):
            for key, value in reversed(current.value):
                inner = where
                if isinstance(key, ScalarNode):
                    inner = key_path(where, str(key.value))
                stack.extend(((value, inner), (key, where)))


def nodes(root: Node) -> Iterator[tuple[Node, int]]:
    """Every node of the tree once (aliases are visited once) and its collection depth.

    In document order and without paths: the checks below look at every node of
    every file loaded, and a path is only worth its string for a node that has
    an issue (``path_of``).
    """
    seen: set[int] = set()
    stack = [(root, 0)]
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, SequenceNode):
            depth += 1
            stack.extend((item, depth) for item in reversed(current.value))
        elif isinstance(current, MappingNode):
            depth += 1
            for key, value in reversed(current.value):
                stack.extend(((value, depth), (key, depth)))
        yield current, depth


def path_of(root: Node, target: Node) -> str:
    """The field path of ``target`` in the tree under ``root`` (as ``walk`` gives it)."""
    for node, path in walk(root):
        if node is target:
            return path
    return ""


def _check_tree(root: Node, source: Source) -> bool:
    """Check the depth and the tags of every node, apply merge keys; False when too deep.

    Every tag must be standard YAML or an executor tag; nodes with an executor
    tag are kept for ``check_misplaced_tags``.
    """
    valid = ", ".join(EXECUTOR_TAGS)
    unknown: list[Node] = []
    mappings: list[MappingNode] = []
    for node, depth in nodes(root):
        if depth > MAX_DEPTH:
            line, column = position(node)
            message = f"nested more than {MAX_DEPTH} levels deep; ame.yml needs a handful"
            source.add_at(line, column, "", message)
            return False
        if isinstance(node, MappingNode):
            mappings.append(node)
        tag = node.tag or ""
        if tag.startswith(STANDARD_TAG_PREFIX):
            continue
        if tag in EXECUTOR_TAGS:
            source.tagged.append(node)
        else:
            unknown.append(node)
    for node in unknown:
        tag = node.tag or ""
        close = difflib.get_close_matches(tag, list(EXECUTOR_TAGS), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        source.add(node, path_of(root, node), f"unknown tag '{tag}'{hint}; valid tags: {valid}")
        source.reported.add(id(node))
    # Merge keys (``<<: *defaults``) are applied here, once, so that whoever
    # reads the tree (more than once, see the loader) sees plain mappings.
    for mapping in mappings:
        flatten_merges(mapping, source)
    return True


def check_misplaced_tags(root: Node, source: Source) -> None:
    """Report executor tags written anywhere but on a task's ``executor``."""
    for node in source.tagged:
        if id(node) not in source.tags_used:
            message = f"tag '{node.tag}' belongs on a task's executor, not here"
            source.add(node, path_of(root, node), message)


def flatten_merges(node: MappingNode, source: Source) -> None:
    """Apply YAML merge keys (``<<: *defaults``) in place; the mapping's own keys win.

    Merged keys keep the position of the anchor they came from, so an issue
    in a merged value points at the line that wrote it.
    """
    for key, _ in node.value:
        if key.tag == _MERGE_TAG:
            break
    else:
        return
    own: list[tuple[Node, Node]] = []
    merged: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if key.tag != _MERGE_TAG:
            own.append((key, value))
            continue
        sources = value.value if isinstance(value, SequenceNode) else [value]
        for item in sources:
            if not isinstance(item, MappingNode):
                source.add(item, "", "a merge key (<<) takes a mapping or a list of mappings")
                continue
            flatten_merges(item, source)
            merged.extend(item.value)
    seen = {key.value for key, _ in own if isinstance(key, ScalarNode)}
    kept: list[tuple[Node, Node]] = []
    for key, value in merged:
        name = key.value if isinstance(key, ScalarNode) else None
        if name in seen:
            continue
        seen.add(name)
        kept.append((key, value))
    node.value = kept + own
