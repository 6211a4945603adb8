"""The model's ``monitoring`` section, run once: its task if it names one, else the drift check.

What a scheduler (or a person) runs for ``monitoring``. A task replaces the
built-in check and gets, besides ame's usual task environment, the version it
watches (``AME_MODEL_NAME``, ``AME_MODEL_VERSION``, ``AME_MODEL_URI``) and where
that version's payload logs are (``AME_MONITORING_LOGS``: a directory with the
embedded store, an artifact URI with a remote one). Its exit code is the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from ame.monitoring.location import location_for

if TYPE_CHECKING:
    from ame.registry.store import Store
    from ame.spec.model import Project, Task


def monitoring_task(project: Optional[Project], model: str) -> Optional[Task]:
    """The task of ``model``'s monitoring section, if it has one."""
    if project is None:
        return None
    try:
        monitoring = project.model(model).monitoring
    except KeyError:
        return None
    return monitoring.task if monitoring is not None else None


def task_env(store: Store, model: str, version: str) -> dict[str, str]:
    """The variables a monitoring task gets on top of ame's task environment."""
    return {
        "AME_MODEL_NAME": model,
        "AME_MODEL_VERSION": version,
        "AME_MODEL_URI": f"models:/{model}/{version}",
        "AME_MONITORING_LOGS": str(location_for(store, model, version)),
    }


def run_monitoring_task(
    project: Project,
    task: Task,
    store: Store,
    ref: str,
    on_output: Optional[Callable[[str], None]] = None,
) -> Any:
    """Run the section's task for version ``ref``; its ``TaskRun``'s exit code decides."""
    from ame.registry.facade import Registry
    from ame.tasks.runner import run_task

    version = Registry(store).resolve(ref)
    return run_task(
        project,
        task,
        store,
        extra_env=task_env(store, version.name, version.version),
        tags={
            "ame.kind": "monitoring",
            "ame.model": version.name,
            "ame.model_version": version.version,
        },
        on_output=on_output,
    )
