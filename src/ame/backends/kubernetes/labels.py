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
