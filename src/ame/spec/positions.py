"""Where in the ame.yml a field of the resolved ``Project`` was written.

The ``Project`` holds resolved values only: legacy spellings are gone and
templates are merged in. Commands that talk about a key after loading (the
warning for a key the local backend ignores, a rendered Kubernetes object that
failed its schema) still owe the user ``file:line:col`` and the path as
written, so this module reads the file's node tree again and finds the key
under the model or task it belongs to, following the spellings the schema
accepts and, for a task, the local template it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ame.spec.model import Deployment, Model, Project, Resources, Task
from ame.spec.normalise import join, spellings
from ame.spec.source import Source, compose, position

_SLOTS = {  # spelling in the file -> the canonical slot (its default task name suffix)
    "training": "training",
    "validation": "validation",
    "validationTask": "validation",
    "monitoring": "monitoring",
    "batchInference": "batchInference",
    "batch_inference": "batchInference",
}


@dataclass(frozen=True)
class Place:
    """A position in an ame.yml and the field path written there."""

    file: str
    line: int
    column: int
    path: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column} {self.path}"


def _spellings(key: str) -> list[str]:
    """Every spelling of canonical ``key`` the schema accepts, the current one first."""
    found = [key]
    for cls in (Task, Deployment, Resources, Model):
        table = spellings(cls)
        found += [s for s, canonical in table.items() if canonical == key and s not in found]
    return found


def _child(node: Node, key: str) -> Optional[tuple[str, ScalarNode, Node]]:
    """The entry of mapping ``node`` for canonical ``key``: (spelling, key node, value node)."""
    if not isinstance(node, MappingNode):
        return None
    spellings = _spellings(key)
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value in spellings:
            return str(k.value), k, v
    return None


def _name(node: Node) -> Optional[str]:
    entry = _child(node, "name")
    if entry is None or not isinstance(entry[2], ScalarNode):
        return None
    return str(entry[2].value)


def _items(root: Node, key: str) -> list[tuple[str, Node]]:
    entry = _child(root, key)
    if entry is None or not isinstance(entry[2], SequenceNode):
        return []
    return [(join(entry[0], i), item) for i, item in enumerate(entry[2].value)]


class Positions:
    """The node tree of one project's file, asked "where is this key of that model/task?"."""

    def __init__(self, project: Project, shown: Optional[str] = None) -> None:
        from ame.spec.loader import display_name

        self.project = project
        self.file = shown or display_name(Path(project.file))
        try:
            text = Path(project.file).read_text(encoding="utf-8")
        except OSError:
            text = ""
        self.root: Optional[Node] = compose(text, Source(self.file)) if text else None

    def _place(self, node: Optional[Node], path: str) -> Place:
        line, column = position(node)
        return Place(self.file, line, column, path)

    def _descend(self, node: Node, path: str, keys: tuple[str, ...]) -> Optional[Place]:
        current, where = node, path
        key_node: Optional[Node] = None
        for key in keys:
            entry = _child(current, key)
            if entry is None:
                return None
            spelling, key_node, current = entry
            where = join(where, spelling)
        return self._place(key_node if key_node is not None else node, where)

    def model(self, name: str, *keys: str) -> Place:
        """Where ``keys`` (e.g. ``deployment``, ``enableTls``) of model ``name`` is written."""
        for path, item in _items(self.root, "models") if self.root is not None else []:
            if _name(item) == name:
                return self._descend(item, path, keys) or self._place(
                    item, join(path, ".".join(keys))
                )
        return self._place(None, f"models[{name}]." + ".".join(keys))

    def _task_nodes(self, task: Task) -> list[tuple[str, Node]]:
        """Where ``task`` is defined in this file, then the local templates it merges."""
        if self.root is None:
            return []
        found = [(p, n) for p, n in _items(self.root, "tasks") if _name(n) == task.name]
        for path, model in _items(self.root, "models"):
            label = _name(model) or ""
            if not isinstance(model, MappingNode):
                continue
            for key, value in model.value:
                slot = _SLOTS.get(getattr(key, "value", ""))
                if slot is None:
                    continue
                slot_path = join(path, key.value)
                node: Optional[Node] = value
                if key.value != "validationTask":
                    inner = _child(value, "task")
                    node, slot_path = (inner[2], join(slot_path, "task")) if inner else (None, "")
                if node is None or _child(node, "taskRef") is not None:
                    continue
                if (_name(node) or f"{label}.{slot}") == task.name:
                    found.append((slot_path, node))
        ref = task.from_template
        if ref is not None and ref.project in (None, self.project.name):
            found += [(p, n) for p, n in _items(self.root, "templates") if _name(n) == ref.name]
        return found

    def task(self, task: Task, *keys: str) -> Place:
        """Where ``keys`` (e.g. ``resources``, ``storage``) of ``task`` is written.

        A value merged from another project's template is placed at the task
        itself, its path saying which template it came from.
        """
        nodes = self._task_nodes(task)
        for path, node in nodes:
            place = self._descend(node, path, keys)
            if place is not None:
                return place
        rest = ".".join(keys)
        if nodes:
            path, node = nodes[0]
            origin = f" (from template {task.from_template})" if task.from_template else ""
            return self._place(node, join(path, rest) + origin)
        return self._place(None, f"{task.name}.{rest}")
