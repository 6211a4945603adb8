"""Finding another project by name, for cross-project templates, tasks and datasets.

``fromTemplate: shared_templates.xgboost_resources`` names a project, not a
path. It is looked for, in order, in the ``templateSources`` directories of
the ame.yml (relative to it), in the ``AME_PATH`` directories, then among the
sibling directories of the project. In each place a project matches when its
directory has that name or its ame.yml declares that project name. When
nothing matches, the caller gets every place that was looked at, so the user
can see why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, ScalarNode

from ame.spec.discovery import PROJECT_FILE_NAMES

_NAME_KEYS = ("project", "name", "projectid")


@dataclass(frozen=True)
class Place:
    """One directory searched for projects, and why it was searched."""

    directory: Path
    reason: str  # "templateSources", "AME_PATH" or "sibling directories"
    include_self: bool = True

    def __str__(self) -> str:
        return f"{self.directory} ({self.reason})"


def search_places(project_file: Path, template_sources: list[str]) -> list[Place]:
    """Where to look for other projects, in order of precedence."""
    root = project_file.parent
    places = [Place((root / entry).resolve(), "templateSources") for entry in template_sources]
    for entry in os.environ.get("AME_PATH", "").split(os.pathsep):
        if entry.strip():
            places.append(Place(Path(entry).expanduser().resolve(), "AME_PATH"))
    places.append(Place(root.resolve().parent, "sibling directories", include_self=False))
    return places


def project_file_in(directory: Path) -> Path | None:
    """The ame.yml (or ame.yaml) directly inside ``directory``, if any."""
    for name in PROJECT_FILE_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def declared_name(file: Path) -> str | None:
    """The project name an ame.yml declares, read cheaply; None if unreadable."""
    from ame.boundedio import InputLimitError, read_regular_file
    from ame.spec.source import MAX_SPEC_BYTES, Source, shallow

    try:
        text = read_regular_file(file, MAX_SPEC_BYTES, what="ame.yml").decode("utf-8")
        # libyaml's composer recurses in C: too deep a file would crash, not raise
        if not shallow(text, Source(str(file))):
            return None
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
    except (InputLimitError, UnicodeDecodeError, yaml.YAMLError, AttributeError, RecursionError):
        return None
    if not isinstance(node, MappingNode):
        return None
    for key, value in node.value:
        if (
            isinstance(key, ScalarNode)
            and key.value in _NAME_KEYS
            and isinstance(value, ScalarNode)
        ):
            return str(value.value)
    return None


def find_project(
    name: str, project_file: Path, template_sources: list[str]
) -> tuple[Path | None, list[Place]]:
    """The ame.yml of the project called ``name`` and the places searched.

    ``project_file`` is the file that refers to ``name``; it never matches
    itself. Returns ``(None, places)`` when no place holds the project.
    """
    me = project_file.resolve()
    places = search_places(project_file, template_sources)
    for place in places:
        found = _find_in(name, place, me)
        if found is not None:
            return found, places
    return None, places


def _find_in(name: str, place: Place, me: Path) -> Path | None:
    directory = place.directory
    if not directory.is_dir():
        return None
    if place.include_self:
        own = project_file_in(directory)
        if own is not None and own.resolve() != me and _matches(own, name):
            return own
    named = project_file_in(directory / name)
    if named is not None and named.resolve() != me:
        return named
    try:
        children = sorted(p for p in directory.iterdir() if p.is_dir())
    except OSError:
        return None
    for child in children:
        candidate = project_file_in(child)
        if candidate is not None and candidate.resolve() != me and declared_name(candidate) == name:
            return candidate
    return None


def _matches(file: Path, name: str) -> bool:
    return file.parent.name == name or declared_name(file) == name
