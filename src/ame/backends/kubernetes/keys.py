"""The one list of ame.yml keys that only take effect on a cluster, and the warning for them.

AME parsed ``enableTls``, ``ingressAnnotations``, ``image`` and ``storage`` and
then, run anywhere but its operator, ignored them without a word. ame runs the
same file on this machine too, so every command that runs or serves something
locally (``train``, ``deploy``, ``serve``, ``task run``) and ``ame validate``
asks this module which of those keys the file sets and logs one warning line
for each, naming where it was written and where it would take effect. Adding a
cluster-only key to ame.yml means adding it here; nothing else decides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

from ame.spec.model import Deployment, Project, Task
from ame.spec.positions import Place

log = logging.getLogger(__name__)

_RENDER = "takes effect on the kubernetes backend (ame render kubernetes)"

# (keys under the task, what the local backend does instead)
TASK_KEYS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("image",), "the local backend runs the task in an environment on this machine"),
    (("resources", "storage"), "the local backend does not limit a task's disk"),
)
# (keys under models[].deployment, what the local backend does instead)
DEPLOYMENT_KEYS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("image",), "the local backend serves with this machine's Python"),
    (("ingressAnnotations",), "the local backend has no Ingress"),
    (("enableTls",), "the local backend serves plain HTTP"),
    (("host",), "the local backend has no Ingress and listens on --host/--port"),
    (("path",), "the local backend has no Ingress and serves at /"),
    (("resources", "storage"), "the local backend does not limit a server's disk"),
    (("autoscaling",), "the local backend runs a fixed number of workers (replicas)"),
)

_DEPLOYMENT_FIELDS = {
    ("image",): "image",
    ("ingressAnnotations",): "ingress_annotations",
    ("enableTls",): "enable_tls",
    ("host",): "host",
    ("path",): "path",
    ("resources", "storage"): "storage",
    ("autoscaling",): "autoscaling",
}

# Lines already logged by this process: a command that touches a model twice warns once.
_warned: set[str] = set()


@dataclass(frozen=True)
class ClusterKey:
    """One cluster-only key a project sets: where, and what it does and does not do here."""

    place: Place
    effect: str

    def __str__(self) -> str:
        return f"{self.place}: {self.effect}"


def _is_set(value: Any) -> bool:
    return value not in (None, False, {}, [], "")


def _task_value(task: Task, keys: tuple[str, ...]) -> Any:
    return task.resources.storage if keys == ("resources", "storage") else task.image


def _deployment_value(deployment: Deployment, keys: tuple[str, ...]) -> Any:
    field = _DEPLOYMENT_FIELDS[keys]
    if field == "storage":
        return deployment.resources.storage
    return getattr(deployment, field)


def cluster_only_keys(
    project: Project,
    *,
    models: Optional[Iterable[str]] = None,
    tasks: Optional[Iterable[str]] = None,
) -> list[ClusterKey]:
    """The cluster-only keys ``project`` sets, for the named models and tasks (None: all)."""
    from ame.spec.positions import Positions

    wanted_models = None if models is None else set(models)
    wanted_tasks = None if tasks is None else set(tasks)
    # (model name or task, keys, what the local backend does): placed only when any is set
    settings: list[tuple[str | Task, tuple[str, ...], str]] = []
    for model in project.models:
        if wanted_models is not None and model.name not in wanted_models:
            continue
        if model.deployment is None:
            continue
        for keys, local in DEPLOYMENT_KEYS:
            if _is_set(_deployment_value(model.deployment, keys)):
                settings.append((model.name, ("deployment", *keys), local))
    for task in project.all_tasks():
        if wanted_tasks is not None and task.name not in wanted_tasks:
            continue
        for keys, local in TASK_KEYS:
            if _is_set(_task_value(task, keys)):
                settings.append((task, keys, local))
    if not settings:  # the common case: no need to read the file again
        return []
    positions = Positions(project)
    found = [
        ClusterKey(
            positions.model(owner, *keys)
            if isinstance(owner, str)
            else positions.task(owner, *keys),
            f"{_RENDER}; {local}",
        )
        for owner, keys, local in settings
    ]
    found.sort(key=lambda k: (k.place.file, k.place.line, k.place.column))
    return found


def model_tasks(project: Project, model: str) -> list[str]:
    """The tasks ``ame train MODEL`` runs: its training and validation tasks."""
    try:
        spec = project.model(model)
    except KeyError:
        return []
    return [slot.task.name for slot in (spec.training, spec.validation) if slot is not None]


def warn_local(
    project: Project,
    *,
    models: Optional[Iterable[str]] = None,
    tasks: Optional[Iterable[str]] = None,
) -> list[ClusterKey]:
    """Log one warning per cluster-only key for a command running on the local backend."""
    found = cluster_only_keys(project, models=models, tasks=tasks)
    for key in found:
        line = str(key)
        if line not in _warned:
            _warned.add(line)
            log.warning("%s", line)
    return found


def _effective_backend(project: Project, backend: Optional[str]) -> str:
    from ame.backends.select import choose_backend
    from ame.errors import AmeError

    try:
        return choose_backend(backend, project).kind
    except AmeError:  # a misconfigured Ray backend: that command reports it, not this warning
        return "ray"


def warn_unless_cluster(
    project: Project,
    *,
    backend: Optional[str] = None,
    models: Optional[Iterable[str]] = None,
    tasks: Optional[Iterable[str]] = None,
) -> list[ClusterKey]:
    """``warn_local`` unless the command runs on the kubernetes backend, where the keys work.

    On the ray backend only tasks' keys are warned of: Ray Serve deployments
    report their own keys.

    ``backend`` is the command's ``--backend``; then ``$AME_BACKEND`` and ame.yml's
    ``backend.kind`` decide, as everywhere.
    """
    kind = _effective_backend(project, backend)
    if kind == "kubernetes":
        return []
    if kind == "ray":
        # A deployment on Ray Serve says itself, key by key, what each one does
        # there (backends/ray/serve_settings.py); tasks' cluster keys stay unused.
        models = []
    return warn_local(project, models=models, tasks=tasks)


def warn_for_model(model: str, project_root: Optional[Any] = None) -> list[ClusterKey]:
    """For ``ame serve M``: warn about ``M``'s deployment keys if a project defines ``M``.

    A model can be served from outside any project; then there is nothing to say,
    and an ame.yml that does not load is ``ame validate``'s business, not the server's.
    """
    from ame.errors import AmeError
    from ame.spec import load_project

    try:
        project = load_project(project_root)
    except AmeError:
        return []
    if not any(m.name == model for m in project.models):
        return []
    return warn_unless_cluster(project, models=[model], tasks=[])
