"""What the schema walk produces: plain data plus references still to follow.

Each raw object keeps the YAML node it was read from, so that the resolver
can report a dangling reference or a duplicate name at the right place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import Node


@dataclass
class RefAt:
    """A reference as written: ``tpl``, ``proj.tpl`` or ``{name, project}``, and where."""

    name: str
    project: str | None
    node: Node
    path: str
    # A bare string may be a local name containing dots or ``project.name``;
    # the resolver decides once it knows the local names.
    dotted: bool = False

    def split(self) -> RefAt:
        """The ``project.name`` reading of a dotted string reference."""
        project, _, name = self.name.partition(".")
        return RefAt(name, project, self.node, self.path)

    def __str__(self) -> str:
        return f"{self.project}.{self.name}" if self.project else self.name


@dataclass
class RawTask:
    """A task (or template) read from the file, before templates and references."""

    name: str | None
    node: Node
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    name_node: Node | None = None
    template: RefAt | None = None
    task_ref: RefAt | None = None
    data_sets: list[RefAt] = field(default_factory=list)
    project: tuple[str, Node] | None = None


@dataclass
class RawModel:
    """A model read from the file; its task slots still hold raw tasks or references."""

    name: str | None
    node: Node
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    name_node: Node | None = None
    # "training", "validation", "monitoring", "batchInference" -> the task in that slot
    slots: dict[str, RawTask] = field(default_factory=dict)
    batch_data_set: RefAt | None = None
    monitoring_reference: RefAt | None = None


@dataclass
class RawDataSet:
    """A dataset read from the file."""

    name: str | None
    node: Node
    path: str
    data: dict[str, Any] = field(default_factory=dict)
    name_node: Node | None = None
    task: RawTask | None = None


@dataclass
class RawProject:
    """A whole file, read and checked, ready for reference resolution."""

    name: str | None = None
    name_node: Node | None = None
    models: list[RawModel] = field(default_factory=list)
    tasks: list[RawTask] = field(default_factory=list)
    templates: list[RawTask] = field(default_factory=list)
    data_sets: list[RawDataSet] = field(default_factory=list)
    template_sources: list[str] = field(default_factory=list)
    backend: dict[str, Any] | None = None
    # Sections that were not even lists: references into them are not checked.
    broken: set[str] = field(default_factory=set)
