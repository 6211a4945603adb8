"""``ame validate`` and ``ame show``: check an ame.yml and look at what it resolves to.

Both only read: the logic is ``ame.spec.load_project``; this module presents.
An invalid file raises ``SpecError``, which ``ame.cli.main.run`` prints as one
``FILE:LINE:COL path: message`` line per issue before exiting with 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from ame.cli.common import FileOption, JsonOption, console, print_json

if TYPE_CHECKING:
    from rich.tree import Tree

    from ame.spec.model import Project, Task


def _load(file: Optional[Path]) -> Project:
    from ame.spec import load_project

    return load_project(file)


def validate(file: FileOption = None) -> None:
    """Check an ame.yml and every project it takes templates from.

    Prints `ok: FILE (N models, M tasks)` and exits 0, or prints one line per
    issue, `FILE:LINE:COL path: message`, and exits 2.

    Example: [bold]ame validate -f examples/logreg/ame.yml[/bold]
    """
    from ame.spec.loader import display_name

    project = _load(file)
    from ame.backends.kubernetes.keys import warn_unless_cluster

    warn_unless_cluster(project)
    shown = str(file) if file is not None and file.is_file() else display_name(project.file)
    models = len(project.models)
    tasks = len(project.all_tasks())
    typer.echo(
        f"ok: {shown} ({models} model{'s' * (models != 1)}, {tasks} task{'s' * (tasks != 1)})"
    )
    from ame.cli.schedule_cmds import echo_unscheduled

    echo_unscheduled(project)


def show(file: FileOption = None, as_json: JsonOption = False) -> None:
    """Show the resolved project: legacy spellings normalised, templates merged, units parsed.

    `--json` prints the canonical current form, which loads back into the schema.

    Example: [bold]ame show -f examples/logreg/ame.yml --json[/bold]
    """
    project = _load(file)
    if as_json:
        print_json(project.model_dump(mode="json", by_alias=True))
        return
    console.print(_tree(project))


def _tree(project: Project) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree(f"[bold]{project.name}[/bold]  [dim]{escape(str(project.file))}[/dim]")
    if project.models:
        models = root.add("[bold]models[/bold]")
        for model in project.models:
            node = models.add(
                f"[cyan]{model.name}[/cyan]" + (f"  {model.type}" if model.type else "")
            )
            if model.description:
                node.add(f"[dim]{escape(model.description)}[/dim]")
            for label, slot in (("training", model.training), ("validation", model.validation)):
                if slot is not None:
                    _task_node(node.add(f"{label}"), slot.task)
            if model.deployment is not None:
                _data_node(
                    node.add("deployment"),
                    model.deployment.model_dump(by_alias=True, exclude_defaults=True),
                )
            for label, extra in (
                ("monitoring", model.monitoring),
                ("batchInference", model.batch_inference),
            ):
                if extra is not None:
                    sub = node.add(label)
                    if extra.schedule:
                        sub.add(escape(f"schedule: {extra.schedule}"))
                    data_set = getattr(extra, "data_set", None)
                    if data_set is not None:
                        sub.add(f"dataSet: {data_set}")
                    if extra.task is not None:
                        _task_node(sub, extra.task)
    if project.tasks:
        tasks = root.add("[bold]tasks[/bold]")
        for task in project.tasks:
            _task_node(tasks, task)
    if project.templates:
        templates = root.add("[bold]templates[/bold]")
        for template in project.templates:
            _task_node(templates, template)
    if project.data_sets:
        data_sets = root.add("[bold]dataSets[/bold]")
        for ds in project.data_sets:
            ds_node = data_sets.add(f"[cyan]{ds.name}[/cyan]")
            _data_node(
                ds_node, ds.model_dump(by_alias=True, exclude_none=True, exclude={"name", "task"})
            )
            if ds.task is not None:
                _task_node(ds_node, ds.task)
    return root


def _task_node(parent: Tree, task: Task) -> None:
    from rich.markup import escape

    executor = task.executor
    label = f"[green]{task.name}[/green]  !{executor.kind}"
    if executor.command:
        label += f"  [dim]{escape(executor.command)}[/dim]"
    if executor.packages:
        label += f"  [dim]packages: {escape(' '.join(executor.packages))}[/dim]"
    node = parent.add(label)
    data = task.model_dump(
        by_alias=True, exclude_defaults=True, exclude={"name", "executor", "project"}
    )
    if executor.python_version:
        data["pythonVersion"] = executor.python_version
    _data_node(node, data)


def _data_node(parent: Tree, data: dict[str, Any]) -> None:
    from rich.markup import escape

    for key, value in data.items():
        if isinstance(value, dict) and not _is_ref(value):
            if value:
                _data_node(parent.add(str(key)), value)
        elif isinstance(value, list):
            if value:
                parent.add(escape(f"{key}: {', '.join(_short(v) for v in value)}"))
        elif value is not None:
            parent.add(escape(f"{key}: {_pretty(key, value)}"))


def _is_ref(value: dict[str, Any]) -> bool:
    return "name" in value and set(value) <= {"name", "project"}


def _short(value: Any) -> str:
    if isinstance(value, dict):
        if _is_ref(value):
            return f"{value['project']}.{value['name']}" if value.get("project") else value["name"]
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _pretty(key: str, value: Any) -> str:
    """Sizes and durations as a person reads them, with the exact number kept."""
    if isinstance(value, dict):
        return _short(value)
    if key in ("memory", "storage", "size") and isinstance(value, int):
        return _bytes(value)
    if key == "timeout" and isinstance(value, float):
        return f"{value:g}s"
    return str(value)


def _bytes(value: int) -> str:
    """A byte count in the unit it was most likely written in (``4G`` rather than 3.73Gi)."""
    from ame._system import format_bytes

    return f"{format_bytes(value)} ({value} bytes)" if value >= 1000 else f"{value} bytes"
