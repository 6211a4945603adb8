"""Reading an ame.yml into a YAML node tree that remembers where everything is.

PyYAML's composer keeps a line and column on every node and leaves tags such
as ``!poetry`` untouched, which is exactly what the schema walker needs to
point at mistakes. Everything that can go wrong before the schema (bytes that
are not text, YAML syntax, an empty file, tags nobody knows) becomes a
``SpecIssue`` with a position here, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field

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

    def add(self, node: Node | None, path: str, message: str) -> None:
        """Record an issue at ``node`` (1-based line and column), or at 1:1 without one."""
        line, column = position(node)
        self.issues.append(SpecIssue(self.file, line, column, path, message))

    def add_at(self, line: int, column: int, path: str, message: str) -> None:
        """Record an issue at an explicit 1-based position."""
        self.issues.append(SpecIssue(self.file, line, column, path, message))


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


def _add_at_offset(source: Source, data: bytes, offset: int, message: str) -> None:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    source.add_at(line, column, "", message)


def compose(text: str, source: Source) -> Node | None:
    """The YAML node tree of ``text``, or None (with issues) if there is none to walk."""
    try:
        node = yaml.compose(text, Loader=_BaseLoader)
    except yaml.MarkedYAMLError as exc:
        _syntax_issue(exc, text, source)
        return None
    except yaml.YAMLError as exc:  # reader errors carry no mark
        source.add_at(1, 1, "", f"invalid YAML: {exc}")
        return None
    if node is None:
        source.add_at(
            1, 1, "", "the file is empty: expected a mapping starting with 'project: <name>'"
        )
        return None
    _check_tags(node, source)
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
        source.add_at(mark.line + 1, mark.column + 1, "", message)
        return
    context = f" ({exc.context.strip()})" if exc.context else ""
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    source.add_at(line, column, "", f"invalid YAML: {problem}{context}")


def _is_placeholder(text: str) -> bool:
    return text in ("...", "…") or text.upper().startswith("TODO")


def is_placeholder(node: Node) -> bool:
    """Whether ``node`` is a documentation placeholder (``...`` or ``TODO``) left in the file.

    Only a bare, unquoted ``...`` or ``TODO`` counts: a description that
    merely starts with "TODO" is the user's business.
    """
    if not isinstance(node, ScalarNode) or node.style:
        return False
    return node.value in ("...", "…") or node.value.upper() == "TODO"


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
                    inner = f"{where}.{key.value}" if where else str(key.value)
                stack.extend(((value, inner), (key, where)))


def _check_tags(root: Node, source: Source) -> None:
    """Report every tag that is neither standard YAML nor an executor tag."""
    valid = ", ".join(EXECUTOR_TAGS)
    for node, path in walk(root):
        tag = node.tag or ""
        if tag.startswith(STANDARD_TAG_PREFIX) or tag in EXECUTOR_TAGS:
            continue
        close = difflib.get_close_matches(tag, list(EXECUTOR_TAGS), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        source.add(node, path, f"unknown tag '{tag}'{hint}; valid tags: {valid}")
        source.reported.add(id(node))


def check_misplaced_tags(root: Node, source: Source) -> None:
    """Report executor tags written anywhere but on a task's ``executor``."""
    for node, path in walk(root):
        if node.tag in EXECUTOR_TAGS and id(node) not in source.tags_used:
            source.add(node, path, f"tag '{node.tag}' belongs on a task's executor, not here")


def flatten_merges(node: MappingNode, source: Source) -> None:
    """Apply YAML merge keys (``<<: *defaults``) in place; the mapping's own keys win.

    Merged keys keep the position of the anchor they came from, so an issue
    in a merged value points at the line that wrote it.
    """
    if not any(key.tag == _MERGE_TAG for key, _ in node.value):
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
