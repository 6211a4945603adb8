"""Loading an ame.yml into a ``Project``: read, normalise and validate, follow references.

``load_project`` is the one entry point the rest of ame uses. It reports every
issue of a file at once (and those of any project it pulls templates from) in
one ``SpecError``. Other projects referenced by name are loaded once per call
and cycles between projects are reported, not followed forever.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from yaml.nodes import Node

from ame.boundedio import InputLimitError, read_regular_file
from ame.errors import SpecError, SpecIssue, UnresolvedReferenceError
from ame.spec import locate
from ame.spec.discovery import check_project_file, find_project_file, project_file_in_dir
from ame.spec.model import DataSet, Project, Ref, Task
from ame.spec.normalise import Normaliser
from ame.spec.raw import RawProject, RefAt
from ame.spec.resolve import OtherProjects, Resolver
from ame.spec.source import MAX_SPEC_BYTES, Source, check_misplaced_tags, compose, decode

log = logging.getLogger(__name__)


def display_name(file: Path, resolved: Path | None = None, cwd: Path | None = None) -> str:
    """How a file is named in messages: relative to the current directory when inside it.

    ``resolved`` and ``cwd`` save resolving again what the caller resolved already.
    """
    try:
        full = resolved if resolved is not None else file.resolve()
        return str(full.relative_to(cwd if cwd is not None else Path.cwd().resolve()))
    except ValueError:
        return str(file)


class _Context:
    """One load: the projects already loaded (by file) and those being loaded."""

    def __init__(self) -> None:
        self.done: dict[Path, Project | None] = {}
        self.done_issues: dict[Path, list[SpecIssue]] = {}
        self.loading: list[tuple[Path, str | None]] = []
        self.issues_shown: set[Path] = set()
        # Each referenced project is searched for once per load, not once per reference.
        self.found: dict[tuple[Path, str], tuple[Path | None, Path | None, str]] = {}
        self.cwd = Path.cwd().resolve()

    def load(self, file: Path, text: str | None = None, shown: str | None = None) -> Project:
        project, issues = self._load(file, text, shown)
        if issues or project is None:
            raise SpecError(issues)
        return project

    def _load(
        self, file: Path, text: str | None = None, shown: str | None = None
    ) -> tuple[Project | None, list[SpecIssue]]:
        key = file.resolve()
        source = Source(shown or display_name(file, key, self.cwd), directory=key.parent)
        if text is None:
            try:
                data = read_regular_file(file, MAX_SPEC_BYTES, what="ame.yml")
            except InputLimitError as exc:
                source.add_at(1, 1, "", f"cannot read the file: {exc}")
                return None, source.issues
            text = decode(data, source)
        if text is None:
            return None, source.issues
        root = compose(text, source)
        if root is None:
            return None, source.issues
        # A valid file (nearly every load) is validated once, as the resolved
        # project. Anything to say, and the file is read again piece by piece,
        # so that every issue gets its line, column and path.
        shown_before, reported = set(self.issues_shown), set(source.reported)
        before = len(source.issues)
        project = self._attempt(key, root, source, check=False)
        if project is not None:
            return project, []
        del source.issues[before:]
        source.tags_used.clear()
        source.reported = reported
        self.issues_shown = shown_before
        project = self._attempt(key, root, source, check=True)
        if project is None and not source.issues:  # pragma: no cover - a safety net
            source.add(root, "", "invalid project")
        return project, _sorted(source.issues, source.file)

    def _attempt(self, key: Path, root: Node, source: Source, *, check: bool) -> Project | None:
        """``root`` as a project; None when there are issues (reported when ``check``)."""
        reader = Normaliser(source, check=check)
        raw = reader.project(root)
        check_misplaced_tags(root, source)
        if not check and (reader.unsure or source.issues):
            return None
        self.loading.append((key, raw.name))
        try:
            resolved = Resolver(raw, reader, self._other_for(key, raw, reader)).resolve()
        finally:
            self.loading.pop()
        if source.issues:
            return None
        resolved["root"] = key.parent
        resolved["file"] = key
        try:
            return Project.model_validate(resolved, strict=True)
        except ValidationError as exc:
            if check:
                _map_errors(exc, raw, source)
            return None

    def _other_for(self, me: Path, raw: RawProject, reader: Normaliser) -> OtherProjects:
        def other(name: str, ref: RefAt) -> Project | None:
            if (me, name) not in self.found:
                place, places = locate.find_project(name, me, raw.template_sources)
                looked = "; ".join(str(p) for p in places)
                resolved = place.resolve() if place is not None else None
                self.found[(me, name)] = (place, resolved, looked)
            found, key, looked = self.found[(me, name)]
            if found is None or key is None:
                reader.issue(ref.node, ref.path, f"project '{name}' not found; looked in: {looked}")
                return None
            chain = [n or str(p) for p, n in self.loading]
            if any(p == key for p, _ in self.loading):
                reader.issue(
                    ref.node,
                    ref.path,
                    f"projects reference each other in a cycle: {' -> '.join([*chain, name])}",
                )
                return None
            if key not in self.done:
                log.debug("loading project %s from %s for %s", name, found, ref)
                self.done[key], self.done_issues[key] = self._load(found)
            issues = self.done_issues[key]
            if issues and key not in self.issues_shown:
                self.issues_shown.add(key)
                reader.source.issues.extend(issues)
            project = self.done[key]
            if project is None:
                reader.issue(
                    ref.node, ref.path, f"project '{name}' ({display_name(found)}) is invalid"
                )
            return project

        return other


def _sorted(issues: list[SpecIssue], main: str) -> list[SpecIssue]:
    """This file's issues by position, then those of the files it references."""
    return sorted(issues, key=lambda i: (i.file != main, i.file, i.line, i.column))


def _map_errors(exc: ValidationError, raw: RawProject, source: Source) -> list[SpecIssue]:
    """Errors of the resolved project, placed at the object they belong to.

    Each piece of the file was validated where it was written; what can still
    fail is what only merging shows (a template's ``packages`` under a task
    whose executor is not ``!pip``), so it is placed at the task or model.
    """
    anchors: dict[tuple[Any, ...], Any] = {}
    for section, items in (
        ("models", raw.models),
        ("tasks", raw.tasks),
        ("templates", raw.templates),
        ("dataSets", raw.data_sets),
    ):
        for i, item in enumerate(items):
            anchors[(section, i)] = item
    for error in exc.errors():
        loc = tuple(error["loc"])
        anchor = anchors.get(loc[:2])
        node = anchor.node if anchor is not None else None
        path = anchor.path if anchor is not None else ""
        rest = ".".join(str(p) for p in loc[2:] if p is not None)
        source.add(node, path, f"{error['msg']}{f' ({rest})' if rest else ''}")
    return source.issues


# --- public API ----------------------------------------------------------------


def load_project(path: Path | str | None = None) -> Project:
    """Load, check and resolve an ame.yml.

    ``path`` is an ame.yml, a directory holding one, or None to search upwards
    from the current directory. Raises ``SpecError`` listing every issue, or
    ``ProjectNotFoundError`` when there is no file to read.
    """
    file = _project_file(path)
    return _Context().load(
        file, shown=str(path) if path is not None and Path(path).is_file() else None
    )


def load_project_text(text: str, file: Path | str = "ame.yml") -> Project:
    """Load ame.yml content given as text, as if it were the file ``file``.

    Handy in tests and tools: other projects are still looked for relative to
    ``file``'s directory.
    """
    where = Path(file)
    return _Context().load(where.resolve(), text=text, shown=str(file))


def _project_file(path: Path | str | None) -> Path:
    if path is None:
        return find_project_file()
    candidate = Path(path)
    if candidate.is_dir():
        return project_file_in_dir(candidate)
    check_project_file(candidate)
    return candidate


def resolve_project(project: Project, name: str) -> Project:
    """The project called ``name`` as seen from ``project`` (itself, or found by name).

    Uses the same search as cross-project templates: ``templateSources``,
    ``AME_PATH``, then sibling directories.
    """
    if name == project.name:
        return project
    found, places = locate.find_project(name, project.file, project.template_sources)
    if found is None:
        looked = "; ".join(str(p) for p in places)
        raise UnresolvedReferenceError(f"project '{name}' not found; looked in: {looked}")
    return load_project(found)


def _as_ref(ref: Ref | str) -> Ref:
    if isinstance(ref, Ref):
        return ref
    return Ref(name=ref)


def resolve_data_set(project: Project, ref: Ref | str) -> tuple[Project, DataSet]:
    """The dataset ``ref`` points at and the project that defines it.

    ``ref`` is a ``Ref`` (as in ``Task.data_sets``) or a string ``ds`` /
    ``project.ds``. The project matters: a dataset's ``path`` and its task are
    relative to the project that defines it.
    """
    owner, name = _split(project, _as_ref(ref), [d.name for d in project.data_sets])
    try:
        return owner, owner.data_set(name)
    except KeyError:
        names = ", ".join(d.name for d in owner.data_sets) or "none"
        raise UnresolvedReferenceError(
            f"project '{owner.name}' has no dataset '{name}' (dataSets: {names})"
        ) from None


def resolve_task(project: Project, ref: Ref | str) -> tuple[Project, Task]:
    """The task ``ref`` points at and the project whose directory it runs in."""
    owner, name = _split(project, _as_ref(ref), [t.name for t in project.all_tasks()])
    try:
        return owner, owner.task(name)
    except KeyError:
        names = ", ".join(t.name for t in owner.all_tasks()) or "none"
        raise UnresolvedReferenceError(
            f"project '{owner.name}' has no task '{name}' (tasks: {names})"
        ) from None


def _split(project: Project, ref: Ref, local: list[str]) -> tuple[Project, str]:
    if ref.project is None and ref.name not in local and "." in ref.name:
        other, _, name = ref.name.partition(".")
        return resolve_project(project, other), name
    if ref.project is None:
        return project, ref.name
    return resolve_project(project, ref.project), ref.name


__all__ = [
    "UnresolvedReferenceError",
    "display_name",
    "load_project",
    "load_project_text",
    "resolve_data_set",
    "resolve_project",
    "resolve_task",
]
