"""Following references: templates, ``taskRef``s and datasets, local and across projects.

Works on the validated plain data the normaliser produced. Templates are deep-merged
under the task (the task's own fields win), chains of templates are followed
and cycles reported, every task gets its final name and project, and every
reference that leads nowhere is reported with the names that do exist.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from yaml.nodes import Node

from ame.spec.model import Project
from ame.spec.raw import RawDataSet, RawModel, RawProject, RawTask, RefAt


class Reporter(Protocol):
    """Where the resolver reports: the normaliser of the file being loaded."""

    def issue(self, node: Node | None, path: str, message: str) -> None: ...


class OtherProjects(Protocol):
    """Loads another project by name on behalf of a reference (reports issues itself)."""

    def __call__(self, name: str, ref: RefAt) -> Project | None: ...


@dataclass(frozen=True)
class Target:
    """Where a reference points: a local name, another project's name, or nowhere."""

    kind: Literal["local", "remote", "missing"]
    name: str
    project: str | None = None


def classify(ref: RefAt, own: str | None, local: Iterable[str]) -> Target:
    """Decide whether ``ref`` is local (an exact local name wins) or names another project."""
    names = set(local)
    if ref.project is None or ref.project == own:
        if ref.name in names:
            return Target("local", ref.name)
        if ref.project is None and ref.dotted:
            return classify(ref.split(), own, names)
        return Target("missing", ref.name)
    return Target("remote", ref.name, ref.project)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, recursively for mappings; lists are replaced.

    The executor merges like any mapping: a task that only changes the kind
    (``taskType: Mlflow``) keeps the template's command and Python version.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = deep_merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _default_kind(data: dict[str, Any]) -> dict[str, Any]:
    """An executor given without a kind (``runcommand`` alone, say) runs as ``custom``."""
    executor = data.get("executor")
    if isinstance(executor, dict) and "kind" not in executor:
        data["executor"] = {**executor, "kind": "custom"}
    return data


def _names(items: Iterable[str]) -> str:
    listed = sorted(set(items))
    return ", ".join(listed) if listed else "none"


class Resolver:
    """Resolves one project's references into the dict ``Project.model_validate`` takes."""

    def __init__(self, raw: RawProject, reader: Reporter, other: OtherProjects) -> None:
        self.raw = raw
        self.r = reader
        self.other = other
        self.own = raw.name
        self.templates: dict[str, RawTask] = {}
        self._template_memo: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}

    # --- public --------------------------------------------------------------

    def resolve(self) -> dict[str, Any]:
        """The project as plain data; issues go to the reader's source."""
        raw = self.raw
        self._check_duplicates()
        self.templates = {t.name: t for t in raw.templates if t.name}
        templates = []
        for tpl in raw.templates:
            if tpl.name and self.templates.get(tpl.name) is tpl:
                data = self._template(tpl.name, [])
                templates.append(_default_kind({**data, "name": tpl.name, "project": self.own}))
        tasks = [t for t in (self._task(raw_task) for raw_task in raw.tasks) if t is not None]
        # Inline tasks first, so that a taskRef may point at another model's inline task.
        for holder in self._task_holders():
            for slot_task in holder:
                if slot_task.task_ref is None:
                    self._task(slot_task)
        models = [self._model(m) for m in raw.models]
        data_sets = [self._data_set(d) for d in raw.data_sets]
        self._check_data_set_refs()
        return {
            "name": self.own,
            "models": models,
            "tasks": tasks,
            "templates": templates,
            "dataSets": data_sets,
            "templateSources": raw.template_sources,
            **({"backend": raw.backend} if raw.backend is not None else {}),
        }

    # --- duplicates ----------------------------------------------------------

    def _check_duplicates(self) -> None:
        raw = self.raw
        task_like = [t for t in raw.tasks] + [
            t for holder in self._task_holders() for t in holder if t.task_ref is None
        ]
        for what, items in (
            ("task", task_like),
            ("template", raw.templates),
            ("model", raw.models),
            ("dataset", raw.data_sets),
        ):
            first: dict[str, Any] = {}
            for item in items:
                if not item.name:
                    continue
                if item.name in first:
                    earlier = first[item.name]
                    line = (earlier.name_node or earlier.node).start_mark.line + 1
                    self.r.issue(
                        item.name_node or item.node,
                        item.path,
                        f"duplicate {what} name '{item.name}' (first defined on line {line})",
                    )
                else:
                    first[item.name] = item

    def _task_holders(self) -> list[list[RawTask]]:
        holders: list[list[RawTask]] = [list(m.slots.values()) for m in self.raw.models]
        holders.append([d.task for d in self.raw.data_sets if d.task is not None])
        return holders

    # --- templates -----------------------------------------------------------

    def _template(self, name: str, chain: list[str]) -> dict[str, Any]:
        if name in self._template_memo:
            return self._template_memo[name]
        raw = self.templates[name]
        data = copy.deepcopy(raw.data)
        if raw.template is not None:
            base = self._template_base(raw.template, [*chain, name])
            if base is not None:
                data = deep_merge(base, data)
        data.update(self._data_set_field(raw))
        self._template_memo[name] = data
        return data

    def _template_base(self, ref: RefAt, chain: list[str]) -> dict[str, Any] | None:
        """The fields a ``fromTemplate`` brings in; None (with an issue) when it can't."""
        target = classify(ref, self.own, self.templates)
        if target.kind == "missing":
            self.r.issue(
                ref.node,
                ref.path,
                f"unknown template '{ref}' (templates here: {_names(self.templates)})",
            )
            return None
        if target.kind == "local":
            if target.name in chain:
                cycle = " -> ".join([*chain[chain.index(target.name) :], target.name])
                self.r.issue(ref.node, ref.path, f"template cycle: {cycle}")
                return None
            return self._template(target.name, chain)
        assert target.project is not None
        project = self.other(target.project, ref)
        if project is None:
            return None
        found = {t.name: t for t in project.templates}
        if target.name not in found:
            self.r.issue(
                ref.node,
                ref.path,
                f"project '{target.project}' ({project.file}) has no template "
                f"'{target.name}' (its templates: {_names(found)})",
            )
            return None
        dumped = found[target.name].model_dump(
            by_alias=True, exclude_unset=True, exclude={"name", "project", "from_template"}
        )
        for ds in dumped.get("dataSets", []):
            ds.setdefault("project", None)
            if ds["project"] is None:
                ds["project"] = target.project
        return dumped

    # --- tasks ---------------------------------------------------------------

    def _task(self, raw: RawTask) -> dict[str, Any] | None:
        if raw.name is None:
            return None
        data = copy.deepcopy(raw.data)
        if raw.template is not None:
            base = self._template_base(raw.template, [])
            if base is not None:
                data = deep_merge(base, data)
            target = classify(raw.template, self.own, self.templates)
            data["fromTemplate"] = {"name": target.name, "project": target.project}
        data.update(self._data_set_field(raw))
        if raw.project is not None and self.own is not None and raw.project[0] != self.own:
            self.r.issue(
                raw.project[1],
                raw.path,
                f"the task says it belongs to project '{raw.project[0]}' but this file is "
                f"project '{self.own}' (use taskRef {{name, project}} to use another "
                "project's task)",
            )
        data["name"] = raw.name
        data["project"] = self.own
        _default_kind(data)
        self.tasks.setdefault(raw.name, data)
        return data

    def _data_set_field(self, raw: RawTask) -> dict[str, Any]:
        if not raw.data_sets:
            return {}
        local = [d.name for d in self.raw.data_sets if d.name]
        refs = []
        for ref in raw.data_sets:
            target = classify(ref, self.own, local)
            refs.append({"name": target.name, "project": target.project})
        return {"dataSets": refs}

    def _slot(self, raw: RawTask) -> dict[str, Any] | None:
        """The resolved task of a model or dataset slot (inline, or a taskRef)."""
        if raw.task_ref is None:
            return self.tasks.get(raw.name or "")
        ref = raw.task_ref
        if "tasks" in self.raw.broken and ref.project is None and not ref.dotted:
            return None
        target = classify(ref, self.own, self.tasks)
        if target.kind == "local":
            return copy.deepcopy(self.tasks[target.name])
        if target.kind == "missing":
            self.r.issue(ref.node, ref.path, f"unknown task '{ref}' (tasks: {_names(self.tasks)})")
            return None
        assert target.project is not None
        project = self.other(target.project, ref)
        if project is None:
            return None
        try:
            return project.task(target.name).model_dump(by_alias=True)
        except KeyError:
            names = [t.name for t in project.all_tasks()]
            self.r.issue(
                ref.node,
                ref.path,
                f"project '{target.project}' has no task '{target.name}' "
                f"(its tasks: {_names(names)})",
            )
            return None

    # --- models and datasets -------------------------------------------------

    def _model(self, raw: RawModel) -> dict[str, Any]:
        data = copy.deepcopy(raw.data)
        data["name"] = raw.name
        for slot, task_raw in raw.slots.items():
            task = self._slot(task_raw)
            if task is None:
                continue
            if slot in ("training", "validation"):
                data[slot] = {"task": task}
            else:
                data.setdefault(slot, {})["task"] = task
        if raw.batch_data_set is not None:
            target = self._check_data_set(raw.batch_data_set)
            if target is not None:
                data.setdefault("batchInference", {})["dataSet"] = target
        if raw.monitoring_reference is not None:
            target = self._check_data_set(raw.monitoring_reference)
            if target is not None:
                data.setdefault("monitoring", {})["reference"] = target
        return data

    def _data_set(self, raw: RawDataSet) -> dict[str, Any]:
        data = copy.deepcopy(raw.data)
        data["name"] = raw.name
        if raw.task is not None:
            task = self._slot(raw.task)
            if task is not None:
                data["task"] = task
        return data

    def _check_data_set_refs(self) -> None:
        every = [*self.raw.tasks, *self.raw.templates]
        every += [t for holder in self._task_holders() for t in holder]
        for raw in every:
            for ref in raw.data_sets:
                self._check_data_set(ref)

    def _check_data_set(self, ref: RefAt) -> dict[str, Any] | None:
        local = [d.name for d in self.raw.data_sets if d.name]
        target = classify(ref, self.own, local)
        if target.kind == "local":
            return {"name": target.name, "project": None}
        if target.kind == "missing":
            if "dataSets" not in self.raw.broken:
                self.r.issue(
                    ref.node, ref.path, f"unknown dataset '{ref}' (dataSets: {_names(local)})"
                )
            return None
        assert target.project is not None
        project = self.other(target.project, ref)
        if project is None:
            return None
        names = [d.name for d in project.data_sets]
        if target.name not in names:
            self.r.issue(
                ref.node,
                ref.path,
                f"project '{target.project}' has no dataset '{target.name}' "
                f"(its dataSets: {_names(names)})",
            )
            return None
        return {"name": target.name, "project": target.project}
