"""From the YAML node tree to validated plain data: legacy spellings out, positions kept.

The schema is the pydantic classes of ``ame.spec.model``; this module does the
two things they cannot:

1. **Normalise.** Walk the node tree into plain data keyed by the current
   spelling of every key, mapping the legacy ones each class lists
   (``deploy`` -> ``autoDeploy``) and folding AME's older shapes into the
   current one (``runcommand``/``taskType`` into the executor, ``env: [{key,
   val}]`` into a mapping, ``validationTask`` into ``validation.task``). YAML
   questions are answered here: duplicate keys, two spellings of one key,
   merge keys, executor tags. A scalar becomes the Python value its YAML tag
   says, except under a text field, where it stays the text written (so
   ``pythonVersion: 3.10`` is ``"3.10"``). Every value's node is kept in a
   table, by its path in the data.
2. **Place pydantic's errors.** The whole file is validated by ``Project`` in
   one strict call; each error's ``loc`` is looked up in the table to give
   ``file:line:col``, the path as written, the message in words (``What``),
   and for an unknown key the closest valid spelling.

References (``fromTemplate``, ``taskRef``, ``dataSets``, a model's inline
tasks) are then lifted out of the validated data as ``RefAt`` and ``RawTask``
for ``ame.spec.resolve`` to follow.
"""

from __future__ import annotations

import copy
import difflib
import functools
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, TypeAdapter, ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ame.spec.model import (
    EXECUTOR_CLASSES,
    EXECUTOR_KINDS,
    CustomExecutor,
    DataSet,
    EnvItem,
    Executor,
    Model,
    ModelTask,
    PayloadLog,
    Project,
    Ref,
    Task,
)
from ame.spec.raw import RawDataSet, RawModel, RawProject, RawTask, RefAt
from ame.spec.source import (
    EXECUTOR_TAGS,
    STANDARD_TAG_PREFIX,
    Source,
    flatten_merges,
    is_placeholder,
    key_path,
)
from ame.spec.types import EMPTY, NAME_RE, PATTERN_MESSAGES, What

Where = tuple[Any, ...]  # a place in the data: keys and list indices


@functools.cache
def _env_pairs() -> TypeAdapter[list[EnvItem]]:
    """Built on first use: its schema costs milliseconds, and most files have no env list."""
    return TypeAdapter(list[EnvItem])


_ROOT, _FILE = Path("."), Path("ame.yml")  # stand-ins: the loader sets the real ones
_NULL = STANDARD_TAG_PREFIX + "null"
_INT = STANDARD_TAG_PREFIX + "int"
_FLOAT = STANDARD_TAG_PREFIX + "float"
_BOOL = STANDARD_TAG_PREFIX + "bool"
_STR = STANDARD_TAG_PREFIX + "str"
_MERGE = STANDARD_TAG_PREFIX + "merge"
_constructor = SafeConstructor()
_KIND_WORDS = {tag[1:].lower(): tag for tag in EXECUTOR_TAGS if tag != "!pipEnv"}
_SLOTS = ("training", "validation")
_SCHEDULED = ("monitoring", "batchInference")
_SECTIONS: dict[str, type[BaseModel]] = {
    "tasks": Task,
    "templates": Task,
    "models": Model,
    "dataSets": DataSet,
}
# No setting in ame.yml needs more digits; Python refuses to convert more than
# 4300 anyway (with a ValueError that names an interpreter setting).
MAX_INT_DIGITS = 30
# What a type error says was expected, when the field does not say (``What``).
_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def join(path: str, key: str | int) -> str:
    """Extend a field path: ``models[0]`` + ``deployment`` -> ``models[0].deployment``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():  # the common case, without key_path's pattern
        return f"{path}.{key}" if path else key
    return key_path(path, key)


def describe(node: Node) -> str:
    """What a node is, in words, for "expected X, got Y" messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    tag = node.tag or ""
    if tag == _NULL:
        return "an empty value"
    if tag == _BOOL:
        return f"the boolean {node.value}"
    if tag in (_INT, _FLOAT):
        return f"the number {node.value}"
    return f"the string {node.value!r}"


def expected(node: Node, what: str) -> str:
    """``expected WHAT, got ...``, naming placeholders left from the docs."""
    if is_placeholder(node):
        return f"unfinished fragment: placeholder {node.value!r} where {what} was expected"
    return f"expected {what}, got {describe(node)}"


@functools.cache
def spellings(cls: type[BaseModel]) -> dict[str, str]:
    """Every key ``cls`` accepts in a file -> its current spelling (legacy ones included)."""
    renamed: dict[str, str] = getattr(cls, "written", {})
    hidden: tuple[str, ...] = getattr(cls, "internal", ())
    out: dict[str, str] = {}
    for name, field in cls.model_fields.items():
        if name in hidden:
            continue
        alias = field.alias or name
        spelled = renamed.get(alias, alias)
        out[spelled] = spelled
    for key in getattr(cls, "file_only", ()):
        out[key] = key
    out.update(getattr(cls, "legacy", {}))
    return out


def _alias(cls: type[BaseModel], spelled: str) -> str:
    """The data key of a file key: the field's alias (``project`` -> ``name`` for a project)."""
    return _aliases(cls).get(spelled, spelled)


@functools.cache
def _aliases(cls: type[BaseModel]) -> dict[str, str]:
    return {spelling: alias for alias, spelling in getattr(cls, "written", {}).items()}


def unknown_key(name: str, cls: type[BaseModel] | None) -> str:
    """The message for an unknown key, suggesting the closest accepted spelling.

    Current spellings are preferred over legacy ones, so a typo is steered
    towards the documented form. A key that another executor kind takes says so.
    """
    keys = spellings(cls) if cls is not None else {}
    if cls is not None and issubclass(cls, Executor) and cls is not Executor:
        owners = [k for k, other in EXECUTOR_CLASSES.items() if name in spellings(other)]
        if owners:
            kind = cls.model_fields["kind"].default
            takers = ", ".join(f"!{k}" for k in owners)
            return f"unknown key '{name}' for a !{kind} executor (only {takers} takes it)"
    canonical = [k for k, v in keys.items() if k == v]
    legacy = [k for k, v in keys.items() if k != v]
    squashed = name.lower().replace("_", "").replace("-", "")
    for group in (canonical, legacy):
        for spelling in group:
            if spelling.lower().replace("_", "") == squashed:
                return f"unknown key '{name}' (did you mean '{spelling}'?)"
    for group in (canonical, legacy):
        matches = difflib.get_close_matches(name, group, n=1, cutoff=0.6)
        if matches:
            return f"unknown key '{name}' (did you mean '{matches[0]}'?)"
    return f"unknown key '{name}' (valid keys: {', '.join(sorted(canonical))})"


@dataclass(frozen=True)
class FieldSpec:
    """What the normaliser needs of a field: its model class, whether it is text, its words."""

    child: Optional[type[BaseModel]]
    text: bool
    what: Optional[What]
    # A list: one scalar given instead is taken as a list of one only when it is
    # a string (``packages: numpy``), never a number.
    listy: bool = False


def _spec(annotation: Any, metadata: list[Any]) -> FieldSpec:
    models: list[type[BaseModel]] = []
    text = False
    what = next((m for m in metadata if isinstance(m, What)), None)

    def visit(tp: Any) -> None:
        nonlocal text, what
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            models.append(tp)
            return
        if tp is str:
            text = True
            return
        if typing.get_origin(tp) is Literal:
            text = True
            return
        for arg in typing.get_args(tp):
            if isinstance(arg, What) and what is None:
                what = arg
            visit(arg)

    visit(annotation)
    return FieldSpec(models[0] if len(models) == 1 else None, text, what, _is_list(annotation))


def _is_list(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is list:
        return True
    if origin is typing.Annotated:
        return _is_list(typing.get_args(tp)[0])
    if origin is typing.Union:
        return any(_is_list(arg) for arg in typing.get_args(tp))
    return False


@functools.cache
def fields(cls: type[BaseModel]) -> dict[str, FieldSpec]:
    """Each field's alias -> its ``FieldSpec``."""
    return {
        (info.alias or name): _spec(info.annotation, info.metadata)
        for name, info in cls.model_fields.items()
    }


_PLAIN = FieldSpec(None, False, None)
_TEXT = FieldSpec(None, True, None)


@dataclass(slots=True)
class Spot:
    """Where a value of the data was written: its node, its key's node, its path."""

    node: Node
    key: Optional[Node]
    path: str
    # The path for an issue about the key itself (unknown, invalid): the mapping's.
    key_path: str
    cls: Optional[type[BaseModel]] = None  # the class the value is read as
    what: Optional[What] = None

    def astuple(self) -> tuple[Any, ...]:
        """The fields in order, as the normaliser's table keeps them."""
        return (self.node, self.key, self.path, self.key_path, self.cls, self.what)


@dataclass
class Entry:
    """One key of a mapping: how it was spelled and its key and value nodes."""

    spelling: str
    key: ScalarNode
    value: Node


# Fills a raw object from its validated data; False when it turned out to be unusable.
Fill = Callable[[dict[str, Any]], bool]


class Normaliser:
    """Turns one file's node tree into a ``RawProject``, reporting into its ``Source``."""

    def __init__(self, source: Source, *, check: bool = True) -> None:
        """``check=False`` builds the data without validating it (the loader validates
        the resolved project instead); ``unsure`` then says when that cannot do.
        """
        self.source = source
        self.check = check
        self.unsure = False
        # Plain tuples (a ``Spot``'s fields) rather than objects: one is kept for
        # every value of every file loaded, and only a few are ever read.
        self.where: dict[Where, tuple[Any, ...]] = {}

    # --- issues --------------------------------------------------------------

    def spot(self, at: Where) -> Spot:
        """Where the value at ``at`` was written."""
        return Spot(*self.where[at])

    def spot_or(self, at: Where, default: Spot | None = None) -> Spot | None:
        """``spot``, or ``default`` when nothing was written at ``at``."""
        found = self.where.get(at)
        return default if found is None else Spot(*found)

    def _update(self, at: Where, **changes: Any) -> None:
        fields_ = self.spot(at)
        for name, value in changes.items():
            setattr(fields_, name, value)
        self.where[at] = fields_.astuple()

    def issue(self, node: Node | None, path: str, message: str) -> None:
        """Record an issue, unless ``node`` was already reported (an unknown tag, say)."""
        if node is not None and id(node) in self.source.reported:
            return
        self.source.add(node, path, message)

    def validate(
        self, cls: type[BaseModel], data: Any, at: Where, *, report: bool = True
    ) -> tuple[Any, list[tuple[Any, ...]]]:
        """``data`` checked by ``cls``: (the values as plain data, or None; the error locations).

        Every error is reported at the place the table gives for its ``loc``.
        """
        try:
            value = cls.model_validate(data, strict=True)
        except ValidationError as exc:
            locs = []
            for error in exc.errors():
                if report:
                    self._report(error, data, at)
                locs.append(tuple(error["loc"]))
            return None, locs
        return value.model_dump(by_alias=True, exclude_unset=True), []

    def quietly(self, cls: type[BaseModel], data: Any, at: Where) -> Any:
        """What passes of a broken piece: ``data`` without the values at fault, validated.

        So that a piece with one typo still has its name and references, and
        the typo does not turn into a list of dangling references. Its issues
        were reported already.
        """
        data = copy.deepcopy(data)
        for _ in range(8):
            value, locs = self.validate(cls, data, at, report=False)
            if value is not None:
                return value
            if not any(_prune(data, loc) for loc in locs):
                break
        return data

    def _report(self, error: Any, data: Any, at: Where) -> None:
        loc = tuple(error["loc"])
        kind = error["type"]
        current, here = data, at
        spot = parent = self.spot(at)
        on_key = False
        for part in loc:
            if part == "[key]":
                on_key = True
                continue
            inner = (*here, part)
            if _holds(current, part):
                current = current[part]
            elif inner in self.where:
                current = None
            else:
                continue  # a union's tag (``pip``, ``settings``), or a missing key
            here = inner
            parent, spot = spot, self.spot_or(here, spot)  # type: ignore[assignment]
        ctx = error.get("ctx") or {}
        node, path = (spot.key, spot.key_path) if on_key and spot.key else (spot.node, spot.path)
        what = spot.what.what if spot.what is not None else None
        name = str(loc[-1]) if loc else ""
        if kind == "missing":
            spelled = getattr(spot.cls, "written", {}).get(name, name)
            self.issue(spot.node, spot.path or spelled, f"missing required key '{spelled}'")
            return
        if kind == "extra_forbidden":
            self.issue(spot.key or spot.node, spot.key_path, unknown_key(name, parent.cls))
            return
        if kind == "ame":
            target = ctx.get("at")
            if target is not None and (*here, target) in self.where:
                below = self.spot((*here, target))
                node, path = below.node, below.path
                if ctx.get("on_key") and below.key is not None:
                    node = below.key
            message = str(ctx.get("message", error["msg"]))
        elif kind == "ame_expected":
            message = expected(node, str(ctx.get("what")))
        elif kind in ("model_type", "model_attributes_type"):
            message = expected(node, getattr(spot.cls, "what", "a mapping"))
        elif kind in _EXPECTED:
            message = expected(node, what or _EXPECTED[kind])
        elif kind == "string_pattern_mismatch":
            template = PATTERN_MESSAGES.get(str(ctx.get("pattern")), "{text} is not valid")
            message = template.format(text=repr(str(getattr(node, "value", ""))))
        elif kind == "literal_error" and spot.what is not None and spot.what.unknown:
            message = spot.what.unknown.format(text=repr(str(getattr(node, "value", ""))))
        elif kind == "union_tag_invalid":
            kind_at = self.spot_or((*here, "kind"))
            if kind_at is not None:
                node, path = kind_at.node, kind_at.path
            text = str(getattr(node, "value", ctx.get("tag", "")))
            close = difflib.get_close_matches(text.lower(), EXECUTOR_KINDS, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            message = f"unknown executor kind {text!r}{hint}; valid: {', '.join(EXECUTOR_KINDS)}"
        elif kind == "greater_than_equal":
            message = f"must be at least {ctx['ge']}, got {getattr(node, 'value', '?')}"
        elif kind == "less_than_equal":
            message = f"must be at most {ctx['le']}, got {getattr(node, 'value', '?')}"
        elif kind == "greater_than":
            message = f"must be more than {ctx['gt']}"
        elif kind == "value_error":
            message = str(ctx.get("error", error["msg"]))
        else:  # a check the words above do not cover: pydantic's own words
            message = f"{error['msg'][0].lower()}{error['msg'][1:]}"
        self.issue(node, path, message)

    # --- plain data ------------------------------------------------------------

    def entries(
        self,
        node: MappingNode,
        path: str,
        cls: type[BaseModel] | None,
        *,
        extensions: bool = False,
    ) -> dict[str, Entry]:
        """The entries of a mapping, keyed by current spelling (unknown keys as written).

        Duplicate keys and two spellings of one key are reported here. With
        ``extensions``, keys starting with ``x-`` are skipped: a place for anchors.
        """
        flatten_merges(node, self.source)
        keys = spellings(cls) if cls is not None else {}
        out: dict[str, Entry] = {}
        seen: dict[str, ScalarNode] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.issue(key, path, f"a key must be a plain string, got {describe(key)}")
                continue
            name = str(key.value)
            # At the top level there is no mapping to name: the key is the field.
            where = path or key_path("", name)
            if name in seen:
                line = seen[name].start_mark.line + 1
                self.issue(key, where, f"duplicate key '{name}' (first given on line {line})")
                continue
            seen[name] = key
            if extensions and name.startswith("x-") and name not in keys:
                continue
            canonical = keys.get(name, name)
            if canonical in out:
                other = out[canonical]
                line = other.key.start_mark.line + 1
                self.issue(
                    key,
                    where,
                    f"'{name}' and '{other.spelling}' (line {line}) are two spellings of "
                    f"'{canonical}'; keep one",
                )
                continue
            out[canonical] = Entry(name, key, value)
        return out

    def mark(
        self,
        at: Where,
        node: Node,
        path: str,
        key: Node | None = None,
        key_at: str | None = None,
        cls: type[BaseModel] | None = None,
        what: What | None = None,
    ) -> None:
        """Remember where the value at ``at`` was written."""
        self.where[at] = (node, key, path, path if key_at is None else key_at, cls, what)

    def scalar(self, node: ScalarNode, text: bool, path: str) -> Any:
        """A scalar as Python data: the text written for a text field, else its YAML value."""
        tag = node.tag
        if tag == _NULL or is_placeholder(node):
            return EMPTY
        if text:
            return node.value
        try:
            if tag == _INT:
                return _yaml_int(node)
            if tag == _FLOAT:
                return float(_constructor.construct_yaml_float(node))
            if tag == _BOOL:
                return bool(_constructor.construct_yaml_bool(node))
        except (ValueError, OverflowError) as exc:
            if "digits" not in str(exc):
                return node.value  # ``!!int x``: the field's type check words it
            self.issue(node, path, str(exc))
            self.source.reported.add(id(node))  # pydantic's word on EMPTY would be a second
            return EMPTY
        return node.value

    def plain(
        self,
        node: Node,
        at: Where,
        path: str,
        spec: FieldSpec,
        skip: tuple[str, ...] = (),
    ) -> Any:
        """``node`` as plain data, read as ``spec`` says; every value's place kept.

        Keys in ``skip`` are placed but not read (the caller reads them, such as
        a model's inline task) and come out as ``{}``.
        """
        # The hottest loop of loading a file: the table and the plain strings are
        # handled inline, the rest goes through ``scalar``.
        cls = spec.child
        table = self.where
        if isinstance(node, MappingNode):
            out: dict[Any, Any] = {}
            known = fields(cls) if cls is not None else None
            renamed = _aliases(cls) if cls is not None else {}
            item_spec = _spec_of_item(spec)
            pairs = _plain_pairs(node, cls)
            if pairs is None:  # a merge key, a duplicate, an odd key: the careful way
                entries = self.entries(node, path, cls)
                pairs = [(n, e.spelling, e.key, e.value) for n, e in entries.items()]
            for name, spelling, key, value in pairs:
                field = renamed.get(name, name)
                if path and spelling.isidentifier():
                    where = f"{path}.{spelling}"
                else:
                    where = join(path, spelling)
                inner_spec = item_spec if known is None else known.get(field, _PLAIN)
                inner = (*at, field)
                table[inner] = (value, key, where, path or where, inner_spec.child, inner_spec.what)
                if field in skip:
                    out[field] = {}
                elif known is not None and field not in known:
                    out[field] = EMPTY  # an unknown key: reported by the class, not read
                elif inner_spec.text and type(value) is ScalarNode and value.tag == _STR:
                    out[field] = EMPTY if is_placeholder(value) else value.value
                else:
                    out[field] = self.plain(value, inner, where, inner_spec)
            return out
        if isinstance(node, SequenceNode):
            if cls is not None and cls.short == "paths":  # type: ignore[attr-defined]
                inner_spec = fields(cls)["paths"]
                table[(*at, "paths")] = (node, None, path, path, None, inner_spec.what)
                return {"paths": self.plain(node, (*at, "paths"), path, inner_spec)}
            item_spec = _spec_of_item(spec)
            items = []
            for i, item in enumerate(node.value):
                where = f"{path}[{i}]"
                table[(*at, i)] = (item, None, where, where, item_spec.child, None)
                if item_spec.text and type(item) is ScalarNode and item.tag == _STR:
                    items.append(EMPTY if is_placeholder(item) else item.value)
                else:
                    items.append(self.plain(item, (*at, i), where, item_spec))
            return items
        assert isinstance(node, ScalarNode)
        if cls is not None and node.tag != _NULL:
            short = cls.short  # type: ignore[attr-defined]
            if short is not None and (node.tag == _STR or short == "cron"):
                # The short form, spelt out: placed where it was written.
                inner_spec = fields(cls)[short]
                table[(*at, short)] = (node, None, path, path, inner_spec.child, inner_spec.what)
                return {short: self.plain(node, (*at, short), path, inner_spec)}
        if cls is PayloadLog and node.tag == _NULL:
            return {}  # ``log:`` alone: payload logging on, with its defaults
        return self.scalar(node, spec.text and not (spec.listy and node.tag != _STR), path)

    def _section(self, entries: dict[str, Entry], name: str, at: Where, path: str) -> Entry:
        entry = entries[name]
        self.mark((*at, name), entry.value, join(path, entry.spelling), entry.key, path)
        return entry

    # --- the project -------------------------------------------------------------

    def project(self, root: Node) -> RawProject:
        """The whole file: its own keys, then each task, template, model and dataset."""
        raw = RawProject()
        self.mark((), root, "", cls=Project)
        if not isinstance(root, MappingNode):
            self.issue(root, "", expected(root, Project.what))
            raw.broken.update(_SECTIONS)
            return raw
        entries = self.entries(root, "", Project, extensions=True)
        data: dict[str, Any] = {"root": _ROOT, "file": _FILE}
        pending: list[tuple[str, int, Fill]] = []
        known = fields(Project)
        for name, entry in entries.items():
            field = _alias(Project, name)
            spec = known.get(field, _PLAIN)
            key_at = key_path("", entry.spelling)
            self.mark(
                (field,), entry.value, entry.spelling, entry.key, key_at, spec.child, spec.what
            )
            if field in _SECTIONS and isinstance(entry.value, SequenceNode):
                items = []
                for i, item in enumerate(entry.value.value):
                    at, where = (field, i), join(entry.spelling, i)
                    self.mark(at, item, where, cls=_SECTIONS[field])
                    item_data, fill = self._item(raw, field, item, at, where)
                    items.append(item_data)
                    if fill is not None:
                        pending.append((field, i, fill))
                data[field] = items
            elif field in _SECTIONS:  # not a list: reported as such, not read further
                raw.broken.add(field)
                shallow = entry.value if isinstance(entry.value, ScalarNode) else None
                data[field] = self.scalar(shallow, False, name) if shallow else {}
            elif field in known:
                data[field] = self.plain(entry.value, (field,), entry.spelling, spec)
            else:
                data[field] = EMPTY  # an unknown key: reported by the class, not read
        value: Any
        locs: list[tuple[Any, ...]]
        if not self.check:
            value, locs = data, []
            # What the resolved project leaves out, only a check of the file sees.
            if raw.broken or any(v is EMPTY for v in data.values()):
                self.unsure = True
            sources, backend = data.get("templateSources", []), data.get("backend", {})
            if not isinstance(sources, list) or not all(isinstance(d, str) for d in sources):
                self.unsure = True
            if not isinstance(backend, dict):
                self.unsure = True
        else:
            value, locs = self.validate(Project, data, ())
        if value is None:
            # Each piece on its own: the clean ones as validated, the broken ones
            # as far as they go (their issues are reported already).
            bad = {loc[0] for loc in locs if loc}
            broken = {loc[:2] for loc in locs if loc and loc[0] in _SECTIONS}
            value = {k: v for k, v in data.items() if k not in bad or k in _SECTIONS}
            for field, i, _ in pending:
                cls, item = _SECTIONS[field], data[field][i]
                if (field, i) in broken:
                    item = self.quietly(cls, item, (field, i))
                else:
                    item, _ = self.validate(cls, item, (field, i), report=False)
                value[field] = [*value[field][:i], item, *value[field][i + 1 :]]
        for field, i, fill in pending:
            item = value[field][i]
            if isinstance(item, dict):
                fill(item)
        if isinstance(value.get("name"), str):
            raw.name = value["name"]
            raw.name_node = self.spot(("name",)).node
        sources = value.get("templateSources")
        raw.template_sources = sources if isinstance(sources, list) else []
        if isinstance(value.get("backend"), dict):
            raw.backend = value["backend"]
        return raw

    def _item(
        self, raw: RawProject, section: str, node: Node, at: Where, path: str
    ) -> tuple[Any, Optional[Fill]]:
        if section in ("tasks", "templates"):
            what = "a task (a mapping)" if section == "tasks" else "a template (a mapping)"
            task, data, fill = self.task(node, at, path, what=what)
            target = raw.tasks if section == "tasks" else raw.templates
            if task is not None:
                target.append(task)
            return data, fill
        if section == "models":
            model, data, fill = self.model(node, at, path)
            if model is not None:
                raw.models.append(model)
            return data, fill
        ds, data, fill = self.data_set(node, at, path)
        if ds is not None:
            raw.data_sets.append(ds)
        return data, fill

    # --- tasks -------------------------------------------------------------------

    def task(
        self,
        node: Node,
        at: Where,
        path: str,
        *,
        default_name: str | None = None,
        allow_ref: bool = False,
        what: str = "a task (a mapping)",
    ) -> tuple[RawTask | None, Any, Optional[Fill]]:
        """A task, a template, or (where ``allow_ref``) a ``taskRef``.

        Returns the raw task (filled in once validated), its data for the
        validation, and the function that fills it from the validated data.
        """
        stand_in = {"name": "_"}  # keeps a list's indices when an item is not a task
        self.mark(at, node, path, cls=Task)
        bare = isinstance(node, ScalarNode) and node.tag == _STR and not node.style
        if allow_ref and bare and not is_placeholder(node):
            self.issue(
                node,
                path,
                f"expected a task (a mapping); to use the task {node.value!r} write "
                f"'taskRef: {node.value}'",
            )
            return None, stand_in, None
        if not isinstance(node, MappingNode):
            self.issue(node, path, expected(node, what))
            return None, stand_in, None
        entries = self.entries(node, path, Task)
        raw = RawTask(name=default_name, node=node, path=path)
        if "taskRef" in entries:
            return self._task_ref(raw, entries, at, path, allow_ref)
        data: dict[str, Any] = {}
        executor = self._executor(entries, at, path)
        # An executor without a kind is checked as custom, but a template's kind
        # may still come in: the kind is dropped again once validated.
        kindless = isinstance(executor, dict) and "kind" not in executor
        if kindless:
            executor = {**executor, "kind": "custom"}
        if executor is not None:
            data["executor"] = executor
        known = fields(Task)
        for name, entry in entries.items():
            if name in ("executor", "runcommand", "taskType"):
                continue
            spec = known.get(name, _PLAIN)
            where = join(path, entry.spelling)
            self.mark((*at, name), entry.value, where, entry.key, path, spec.child, spec.what)
            if name not in known:
                data[name] = EMPTY  # an unknown key: reported by the class, not read
            elif name == "env" and isinstance(entry.value, SequenceNode):
                data[name] = self._env(entry.value, (*at, name), where)
            else:
                data[name] = self.plain(entry.value, (*at, name), where, spec)
        if "name" not in data and default_name is not None:
            data["name"] = "_"  # a default name is not the user's to get wrong
        written = copy.copy(data)

        def fill(value: dict[str, Any]) -> bool:
            if "name" in entries:
                raw.name = value["name"] if isinstance(value.get("name"), str) else None
                raw.name_node = entries["name"].value
            if not raw.name:
                self.unsure = True  # a task without a name is left out of the project
            raw.template = self._lift_ref(value, "fromTemplate", written, at)
            refs = value.pop("dataSets", None)
            if isinstance(refs, list):
                given = written.get("dataSets")
                raw.data_sets = [
                    ref
                    for i, item in enumerate(refs)
                    if (ref := self._ref_at(item, _item_at(given, i), (*at, "dataSets", i)))
                ]
            owner = value.pop("project", None)
            if owner is not None and not (isinstance(owner, str) and NAME_RE.match(owner)):
                self.unsure = True
            if isinstance(owner, str):
                raw.project = (owner, self.spot((*at, "project")).node)
            ran = value.get("executor")
            if isinstance(ran, dict):
                if kindless:
                    ran.pop("kind", None)
                self._one_pip_source(ran, (*at, "executor"))
            value.pop("name", None)
            raw.data = value
            return True

        return raw, data, fill

    def _one_pip_source(self, executor: dict[str, Any], at: Where) -> None:
        """A !pip task takes requirements.txt or ``packages``, never both (docs/tasks.md).

        Installing both would mix two lists of pins nobody reviewed together;
        ame refuses here, at the line, rather than guessing which one was meant
        (the environment builder refuses it again for projects made in code).
        """
        directory = self.source.directory
        if executor.get("kind") != "pip" or not executor.get("packages") or directory is None:
            return
        if (directory / "requirements.txt").is_file():
            spot = self.spot((*at, "packages"))
            self.issue(
                spot.key or spot.node,
                spot.path,
                "!pip takes requirements.txt or packages, not both: "
                f"{directory / 'requirements.txt'} exists; remove packages or the file",
            )

    def _task_ref(
        self, raw: RawTask, entries: dict[str, Entry], at: Where, path: str, allow_ref: bool
    ) -> tuple[RawTask | None, Any, Optional[Fill]]:
        ref_entry = entries["taskRef"]
        stand_in = {"name": "_"}
        if not allow_ref:
            self.issue(
                ref_entry.key,
                path,
                "taskRef can only stand where a task is used (a model's training or "
                "validation, a dataset's task); define the task here instead",
            )
            return None, stand_in, None
        known = spellings(Task)
        for canonical, entry in entries.items():
            if canonical not in known:
                self.issue(entry.key, path, unknown_key(entry.spelling, Task))
            elif canonical != "taskRef":
                self.issue(
                    entry.key,
                    path,
                    f"'{entry.spelling}' cannot be combined with taskRef: set it on the "
                    "referenced task instead",
                )
        entry = self._section(entries, "taskRef", at, path)
        inner, where = (*at, "taskRef"), join(path, entry.spelling)
        if not isinstance(entry.value, MappingNode):
            text = (
                self.scalar(entry.value, True, where)
                if isinstance(entry.value, ScalarNode)
                else None
            )
            if not isinstance(text, str):
                self.issue(
                    entry.value, where, expected(entry.value, "a task name (or {name, project})")
                )
                return None, stand_in, None
        # The stand-in task carries the reference in its Ref-typed fromTemplate,
        # so that the file's one validation checks it too (placed at taskRef).
        carrier = (*at, "fromTemplate")
        self.where[carrier] = self.where.pop(inner)
        self._update(carrier, cls=Ref)
        written_ref = self.plain(entry.value, carrier, where, FieldSpec(Ref, True, None))

        def fill(value: dict[str, Any]) -> bool:
            raw.task_ref = self._ref_at(value.get("fromTemplate"), written_ref, carrier)
            return raw.task_ref is not None

        return raw, {"name": "_", "fromTemplate": written_ref}, fill

    def _lift_ref(self, value: dict[str, Any], key: str, data: Any, at: Where) -> RefAt | None:
        if key not in value:
            return None
        given = data.get(key) if isinstance(data, dict) else None
        return self._ref_at(value.pop(key), given, (*at, key))

    def _ref_at(self, ref: Any, as_written: Any, at: Where) -> RefAt | None:
        """A validated reference with its place; a bare dotted string may name another project."""
        if isinstance(ref, str):
            ref = {"name": ref}
        if not self.check and not _well_formed(ref):
            self.unsure = True  # lifted out of the data, so only a check would see it
            return None
        spot = self.spot_or(at)
        if spot is None or not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            return None
        project = ref.get("project")
        dotted = isinstance(as_written, str) and "." in ref["name"]
        return RefAt(
            ref["name"], project if isinstance(project, str) else None, spot.node, spot.path, dotted
        )

    def _executor(self, entries: dict[str, Entry], at: Where, path: str) -> Any:
        """The executor from ``executor: !tag {...}``, ``taskType`` and ``runcommand``."""
        here = (*at, "executor")
        executor: Any = {}
        tag_kind: str | None = None
        node: Node | None = None
        if "executor" in entries:
            entry = self._section(entries, "executor", at, path)
            node, ex_path = entry.value, join(path, entry.spelling)
            tag = node.tag or ""
            if tag in EXECUTOR_TAGS:
                tag_kind = EXECUTOR_TAGS[tag]
                executor["kind"] = tag_kind
                self.source.tags_used.add(id(node))
            if isinstance(node, ScalarNode) and tag in EXECUTOR_TAGS:
                if node.value.strip():
                    self.issue(node, ex_path, f"expected settings (a mapping) after {tag}")
            elif id(node) in self.source.reported:
                pass
            elif isinstance(node, ScalarNode) and node.value.strip().lower() in _KIND_WORDS:
                word = node.value.strip()
                self.issue(
                    node,
                    ex_path,
                    f"write the executor as a tag, e.g. 'executor: "
                    f"{_KIND_WORDS[word.lower()]}', not the string {word!r}",
                )
            elif isinstance(node, MappingNode):
                kind = _peek(node, "kind")
                cls = EXECUTOR_CLASSES.get(tag_kind or kind or "custom", CustomExecutor)
                given = self.plain(node, here, ex_path, FieldSpec(cls, True, None))
                if "kind" in given and tag_kind is not None:
                    if str(given["kind"]).strip().lower() != tag_kind:
                        self.issue(
                            self.spot((*here, "kind")).node,
                            join(ex_path, "kind"),
                            "kind contradicts the tag; keep one",
                        )
                    del given["kind"]
                executor.update(given)
            else:
                executor = self.plain(node, here, ex_path, _PLAIN)
        else:
            self.mark(here, self.spot(at).node, path)
        if "taskType" in entries and isinstance(executor, dict):
            entry = self._section(entries, "taskType", at, path)
            where = join(path, entry.spelling)
            self.where[(*here, "kind")] = self.where.pop((*at, "taskType"))
            self._update((*here, "kind"), path=where)
            said = str(executor.get("kind", "")).strip().lower()
            kind = entry.value.value if isinstance(entry.value, ScalarNode) else None
            if kind is not None and said and kind.strip().lower() != said:
                message = f"taskType says {kind.strip().lower()} but the executor says {said}"
                self.issue(entry.value, where, f"{message}; keep one")
            else:
                executor["kind"] = self.plain(entry.value, (*here, "kind"), where, _TEXT)
        if "runcommand" in entries and isinstance(executor, dict):
            entry = self._section(entries, "runcommand", at, path)
            where = join(path, entry.spelling)
            if "command" in executor:
                message = "both runcommand and executor.command are set; keep one"
                self.issue(entry.key, path, message)
            else:
                self.where[(*here, "command")] = self.where.pop((*at, "runcommand"))
                self._update((*here, "command"), what=What("a command"))
                executor["command"] = self.plain(entry.value, (*here, "command"), where, _TEXT)
        if not executor and "executor" not in entries:
            return None
        if isinstance(executor, dict) and "kind" in executor:
            kind_value = executor["kind"]
            if not isinstance(kind_value, str):
                spot = self.spot((*here, "kind"))
                self.issue(spot.node, spot.path, expected(spot.node, "an executor kind"))
                del executor["kind"]
            else:
                executor["kind"] = kind_value.strip().lower()
        kind = executor.get("kind", "custom") if isinstance(executor, dict) else "custom"
        self._update(here, cls=EXECUTOR_CLASSES.get(kind, Executor))
        return executor

    def _env(self, node: SequenceNode, at: Where, path: str) -> dict[str, Any]:
        """AME's ``env: [{key: K, val: V}]`` as the mapping ``{K: V}``."""
        env: dict[str, Any] = {}
        pairs = []
        for i, item in enumerate(node.value):
            item_at, item_path = (*at, i), join(path, i)
            self.mark(item_at, item, item_path, cls=EnvItem)
            pairs.append(self.plain(item, item_at, item_path, FieldSpec(EnvItem, True, None)))
        bad: set[Any] = set()
        try:  # all pairs in one call: they are many in AME's files
            _env_pairs().validate_python(pairs, strict=True)
        except ValidationError as exc:
            self.unsure = True
            for error in exc.errors():
                if self.check:
                    self._report(error, pairs, at)
                bad.add(error["loc"][0] if error["loc"] else None)
        for i, value in enumerate(pairs):
            if i in bad or None in bad:
                continue
            item_at, item_path = (*at, i), join(path, i)
            key_node = self.spot((*item_at, "key")).node
            var = value["key"]
            if var in env:
                self.issue(key_node, item_path, f"environment variable '{var}' is set twice")
                continue
            env[var] = value["val"]
            val = self.spot((*item_at, "val"))
            self.mark((*at, var), val.node, val.path, key_node, item_path)
        return env

    # --- models and datasets -----------------------------------------------------

    def model(
        self, node: Node, at: Where, path: str
    ) -> tuple[RawModel | None, Any, Optional[Fill]]:
        """A model: its tasks (inline or referenced), deployment and schedules."""
        if not isinstance(node, MappingNode):
            self.issue(node, path, expected(node, Model.what))
            return None, {"name": "_"}, None
        entries = self.entries(node, path, Model)
        raw = RawModel(name=None, node=node, path=path)
        data: dict[str, Any] = {}
        known = fields(Model)
        label_node = entries["name"].value if "name" in entries else None
        label = str(label_node.value) if isinstance(label_node, ScalarNode) else f"model{path}"
        slots: list[tuple[str, RawTask, Optional[Fill]]] = []
        for name, entry in entries.items():
            spec = known.get(name, _PLAIN)
            inner, where = (*at, name), join(path, entry.spelling)
            self.mark(inner, entry.value, where, entry.key, path, spec.child, spec.what)
            if name not in known:
                data[name] = EMPTY
                continue
            if name == "validation" and entry.spelling == "validationTask":
                # AME's code: the task itself, not wrapped in {task: ...}.
                self._update(inner, cls=ModelTask)
                task_node, task_at, task_path = entry.value, (*inner, "task"), where
                value: Any = {}
            elif name in _SLOTS and not isinstance(entry.value, MappingNode):
                self.issue(
                    entry.value, where, expected(entry.value, f"{name} settings {{task: ...}}")
                )
                continue
            else:
                value = self.plain(entry.value, inner, where, spec, skip=("task",))
                if not (
                    name in _SLOTS + _SCHEDULED and isinstance(value, dict) and "task" in value
                ):
                    data[name] = value
                    continue
                task_spot = self.spot((*inner, "task"))
                task_node, task_at, task_path = task_spot.node, (*inner, "task"), task_spot.path
            task, task_data, fill = self.task(
                task_node, task_at, task_path, default_name=f"{label}.{name}", allow_ref=True
            )
            value["task"] = task_data
            data[name] = value
            if task is not None:
                slots.append((name, task, fill))

        def fill_model(value: dict[str, Any]) -> bool:
            if isinstance(value.get("name"), str):
                raw.name = value["name"]
            if label_node is not None:
                raw.name_node = label_node
            for slot in _SLOTS:
                holder = value.get(slot)
                if slot in value and not (isinstance(holder, dict) and set(holder) == {"task"}):
                    self.unsure = True  # {task: ...} and nothing else, or it is left out
            for slot, task, fill in slots:
                holder = value.get(slot)
                task_value = holder.pop("task", None) if isinstance(holder, dict) else None
                if fill is not None and isinstance(task_value, dict) and fill(task_value):
                    raw.slots[slot] = task
            for slot in _SLOTS:
                value.pop(slot, None)
            if isinstance(value.get("batchInference"), dict):
                raw.batch_data_set = self._lift_ref(
                    value["batchInference"], "dataSet", data["batchInference"],
                    (*at, "batchInference"),
                )  # fmt: skip
            if isinstance(value.get("monitoring"), dict):
                raw.monitoring_reference = self._lift_ref(
                    value["monitoring"], "reference", data["monitoring"], (*at, "monitoring")
                )
            value.pop("name", None)
            raw.data = value
            return True

        return raw, data, fill_model

    def data_set(
        self, node: Node, at: Where, path: str
    ) -> tuple[RawDataSet | None, Any, Optional[Fill]]:
        """A dataset: name, path, the task that makes it, its size."""
        if not isinstance(node, MappingNode):
            self.issue(node, path, expected(node, DataSet.what))
            return None, {"name": "_"}, None
        raw = RawDataSet(name=None, node=node, path=path)
        data = self.plain(node, at, path, FieldSpec(DataSet, False, None), skip=("task",))
        task_fill: Optional[Fill] = None
        named = self.spot_or((*at, "name")) if "name" in data else None
        name_node = named.node if named is not None else None
        if "task" in data:
            spot = self.spot((*at, "task"))
            label = str(name_node.value) if isinstance(name_node, ScalarNode) else None
            raw.task, data["task"], task_fill = self.task(
                spot.node,
                (*at, "task"),
                spot.path,
                default_name=f"{label or 'dataset' + path}.dataset",
                allow_ref=True,
            )

        def fill(value: dict[str, Any]) -> bool:
            if name_node is not None:
                raw.name = value["name"] if isinstance(value.get("name"), str) else None
                raw.name_node = name_node
            task_value = value.pop("task", None)
            if task_fill is None or not isinstance(task_value, dict) or not task_fill(task_value):
                raw.task = None
            value.pop("name", None)
            raw.data = value
            return True

        return raw, data, fill


@functools.cache
def _spec_of_item(spec: FieldSpec) -> FieldSpec:
    """The spec of a list's items or a mapping's values under ``spec`` (no class: plain)."""
    return FieldSpec(spec.child, spec.text, None, listy=False)


def _plain_pairs(
    node: MappingNode, cls: type[BaseModel] | None
) -> list[tuple[str, str, ScalarNode, Node]] | None:
    """(current spelling, spelling, key node, value node) of each entry, in one pass.

    None when the mapping needs ``Normaliser.entries``: a merge key, a key that
    is not a plain string, a duplicate, or two spellings of one key.
    """
    keys = spellings(cls) if cls is not None else None
    out = []
    seen: set[str] = set()
    for key, value in node.value:
        if type(key) is not ScalarNode or key.tag == _MERGE:
            return None
        spelling = str(key.value)
        name = spelling if keys is None else keys.get(spelling, spelling)
        if name in seen or spelling in seen:
            return None
        seen.add(name)
        seen.add(spelling)
        out.append((name, spelling, key, value))
    return out


def _well_formed(ref: Any) -> bool:
    """Whether a reference is one the schema takes: ``{name, project}``, both names."""
    if not isinstance(ref, dict) or not set(ref) <= {"name", "project"}:
        return False
    name, project = ref.get("name"), ref.get("project")
    if not isinstance(name, str) or not NAME_RE.match(name):
        return False
    return project is None or (isinstance(project, str) and NAME_RE.match(project) is not None)


def _holds(container: Any, part: Any) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _item_at(items: Any, i: int) -> Any:
    return items[i] if isinstance(items, list) and i < len(items) else None


def _peek(node: MappingNode, key: str) -> str | None:
    """The lower-cased text of ``key`` in ``node``, read before the mapping is."""
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key and isinstance(v, ScalarNode):
            return str(v.value).strip().lower()
    return None


def _prune(data: Any, loc: tuple[Any, ...]) -> bool:
    """Drop the value at ``loc`` (or the nearest one above it that exists); False if none."""
    parent: Any = None
    last: Any = None
    current = data
    for part in loc:
        if part == "[key]":
            break
        if _holds(current, part):
            parent, last, current = current, part, current[part]
    if parent is None:
        return False
    del parent[last]
    return True


def _yaml_int(node: ScalarNode) -> int:
    """The value of a YAML int scalar; ValueError, for a person, when it is absurdly long."""
    digits = sum(ch.isdigit() for ch in node.value)
    if digits > MAX_INT_DIGITS:
        shown = node.value if len(node.value) <= 20 else node.value[:12] + "..."
        raise ValueError(
            f"the number {shown} has {digits} digits; ame accepts at most {MAX_INT_DIGITS}"
        )
    return int(_constructor.construct_yaml_int(node))
