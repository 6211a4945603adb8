"""Running tasks: cached isolated environments, live logs, tracked runs, datasets, secrets.

``run_task`` runs one task of a project as an MLflow run and returns a
``TaskRun``; ``prepare_environment`` makes (or reuses) the task's Python
environment. Nothing heavy is imported here: MLflow is loaded only when a run
is actually tracked.
"""

from __future__ import annotations

from ame.secrets import SecretStore
from ame.tasks.environments import Environment, prepare_environment
from ame.tasks.runner import TaskRun, run_task, task_command

__all__ = [
    "Environment",
    "SecretStore",
    "TaskRun",
    "prepare_environment",
    "run_task",
    "task_command",
]
