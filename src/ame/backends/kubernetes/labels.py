"""The labels every object ame renders carries, so that ame (and kubectl) can find its own.

``ame deployment list`` and ``ame backend status`` select on
``app.kubernetes.io/managed-by=ame`` and ``ame.dev/project``; a Deployment's
selector uses only the labels that never change for it (not the version), since
a selector cannot be changed once applied.
"""

from __future__ import annotations

from typing import Optional

from ame.backends.kubernetes.names import label_value

MANAGED_BY = "app.kubernetes.io/managed-by"
NAME = "app.kubernetes.io/name"
PROJECT = "ame.dev/project"
MODEL = "ame.dev/model"
TASK = "ame.dev/task"
VERSION = "ame.dev/version"
# On a model's scheduled CronJobs: ``monitor`` or ``batch``.
SCHEDULE = "ame.dev/schedule"


def selector(
    name: str, project: str, *, model: Optional[str] = None, task: Optional[str] = None
) -> dict[str, str]:
    """The stable labels of one model's or task's objects."""
    out = {NAME: label_value(name), MANAGED_BY: "ame", PROJECT: label_value(project)}
    if model is not None:
        out[MODEL] = label_value(model)
    if task is not None:
        out[TASK] = label_value(task)
    return out


def labels(
    name: str,
    project: str,
    version: str,
    *,
    model: Optional[str] = None,
    task: Optional[str] = None,
) -> dict[str, str]:
    """``selector`` plus ``ame.dev/version`` (the model version, or the source revision)."""
    return {**selector(name, project, model=model, task=task), VERSION: label_value(version)}


def owned(project: Optional[str], model: Optional[str] = None) -> dict[str, str]:
    """The labels every object ame made for ``project`` (for one ``model``, when named) carries.

    Outside a project (``project`` None) only ``managed-by``: all of ame's objects.
    """
    found = {MANAGED_BY: "ame"}
    if project is not None:
        found[PROJECT] = label_value(project)
    if model is not None:
        found[MODEL] = label_value(model)
    return found


def label_selector(labels: dict[str, str]) -> str:
    """A label selector (``k=v,k2=v2``) in a stable order."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def name_selector(name: str) -> str:
    """A field selector for one object by name (how a watch follows one Job or Deployment)."""
    return f"metadata.name={name}"


def job_pods_selector(job: str) -> str:
    """The label selector of a Job's pods (the Job controller's ``job-name`` label)."""
    return label_selector({"job-name": job})
