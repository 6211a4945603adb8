"""The ame.yml language: schema, loading with positions, legacy spellings, templates.

Pure: it reads files and runs nothing. ``load_project`` is the one entry point
the rest of ame uses.
"""

from __future__ import annotations

from ame.spec.loader import (
    UnresolvedReferenceError,
    load_project,
    load_project_text,
    resolve_data_set,
    resolve_project,
    resolve_task,
)
from ame.spec.model import (
    ArtifactConfig,
    BatchInference,
    Batching,
    DataSet,
    Deployment,
    Executor,
    Model,
    ModelTask,
    Monitoring,
    Project,
    Ref,
    Resources,
    SecretRef,
    Task,
    Triggers,
)

__all__ = [
    "ArtifactConfig",
    "BatchInference",
    "Batching",
    "DataSet",
    "Deployment",
    "Executor",
    "Model",
    "ModelTask",
    "Monitoring",
    "Project",
    "Ref",
    "Resources",
    "SecretRef",
    "Task",
    "Triggers",
    "UnresolvedReferenceError",
    "load_project",
    "load_project_text",
    "resolve_data_set",
    "resolve_project",
    "resolve_task",
]
