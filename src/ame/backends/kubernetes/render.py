"""A project as Kubernetes objects: chosen, made, validated, then written (or not at all).

Deterministic: the same ame.yml, options and registry state give the same
bytes (objects in a fixed order, keys in the order they are built, no times).
Every object is validated before anything is written; one that fails is
reported with the ame.yml line it came from, and no file is written.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ame.backends.kubernetes import job, serving
from ame.backends.kubernetes.errors import (
    EmbeddedStoreError,
    InvalidObjectError,
    KubernetesError,
)
from ame.backends.kubernetes.labels import SCHEDULE
from ame.backends.kubernetes.options import RenderOptions
from ame.backends.kubernetes.validate import problems
from ame.spec.model import Project
from ame.spec.positions import Place, Positions

log = logging.getLogger(__name__)
# The ame.yml section a model's scheduled CronJob comes from, by its schedule label.
_SECTION = {"monitor": "monitoring", "batch": "batchInference"}


@dataclass(frozen=True)
class Rendered:
    """One object, the ame.yml place it comes from, and the file (group) it is written to."""

    obj: dict[str, Any]
    place: Place
    group: str

    @property
    def label(self) -> str:
        """``Kind/name``, for messages."""
        return f"{self.obj['kind']}/{self.obj['metadata']['name']}"


def check_tracking_uri(uri: Optional[str]) -> str:
    """``uri`` when a pod can reach it; an embedded (file) store is refused in one line."""
    fix = "pass --tracking-uri (or set MLFLOW_TRACKING_URI) to an MLflow server the cluster reaches"
    if not uri:
        raise EmbeddedStoreError(f"the project's store is an embedded SQLite file; {fix}")
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("", "file", "sqlite"):
        raise EmbeddedStoreError(f"{uri} is a store on this machine that no pod reaches; {fix}")
    host = uri.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    if host in ("127.0.0.1", "localhost", "::1"):
        log.warning("%s is a loopback address: pods reach it only through a port-forward", uri)
    return uri


def _unknown(kind: str, wanted: Iterable[str], names: Sequence[str]) -> None:
    missing = sorted(set(wanted) - set(names))
    if missing:
        listed = ", ".join(names) or "none"
        raise KubernetesError(f"no {kind} {', '.join(map(repr, missing))} (known: {listed})")


def render_project(
    project: Project,
    options: RenderOptions,
    *,
    models: Optional[Iterable[str]] = None,
    tasks: Optional[Iterable[str]] = None,
    schedules: bool = True,
) -> list[Rendered]:
    """The objects of ``project`` (the named models and tasks only, when any are named).

    A model's ``deployment`` makes its serving objects, and its monitoring and
    batchInference schedules a CronJob each (unless ``schedules`` is off, as for
    ``ame deploy``); every task makes a Job (a CronJob when it has a schedule).
    """
    positions = Positions(project)
    model_names = list(models) if models is not None else None
    task_names = list(tasks) if tasks is not None else None
    if model_names is not None:
        _unknown("model", model_names, [m.name for m in project.models])
    if task_names is not None:
        _unknown("task", task_names, [t.name for t in project.all_tasks()])
    everything = model_names is None and task_names is None
    out: list[Rendered] = []
    for model in project.models:
        if not (everything or (model_names and model.name in model_names)):
            continue
        group = f"model-{model.name}"
        scheduled = [
            Rendered(obj, positions.model(model.name, _SECTION[kind], "schedule"), group)
            for obj in (job.schedule_objects(project, model, options) if schedules else [])
            for kind in [obj["metadata"]["labels"][SCHEDULE]]
        ]
        if model.deployment is None:
            if model_names and not scheduled:
                raise KubernetesError(f"model '{model.name}' has no deployment section to render")
            out.extend(scheduled)
            continue
        if model.name not in options.versions:
            log.warning(
                "%s: no version is promoted to @%s yet; rendering %s@%s (apply refuses until "
                "one is)",
                model.name, model.champion_alias, model.name, model.champion_alias,
            )  # fmt: skip
        place = positions.model(model.name, "deployment")
        for obj in serving.model_objects(project, model, options):
            out.append(Rendered(obj, place, group))
        out.extend(scheduled)
    for task in project.all_tasks():
        if not (everything or (task_names and task.name in task_names)):
            continue
        place = positions.task(task)
        for obj in job.task_objects(project, task, options):
            out.append(Rendered(obj, place, f"task-{task.name}"))
    return out


def validate_rendered(rendered: Sequence[Rendered], versions: Sequence[str]) -> None:
    """Raise ``InvalidObjectError`` listing every object that fails a schema, by ame.yml place."""
    failures = []
    for item in rendered:
        for problem in problems(item.obj, versions):
            failures.append(f"{item.place}: {item.label} is invalid for {problem}")
    if failures:
        raise InvalidObjectError("\n".join(failures))


def to_yaml(objects: Iterable[dict[str, Any]]) -> str:
    """Objects as one multi-document YAML stream, keys in the order they were built."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        """No anchors (a manifest is read by people), scripts as literal blocks."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    _Dumper.add_representer(str, _text)
    return "".join(
        "---\n"
        + yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)
        for obj in objects
    )


def write_rendered(rendered: Sequence[Rendered], out_dir: Path) -> list[Path]:
    """One ``<group>.yaml`` per model or task in ``out_dir``, each written atomically."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in rendered:
        groups.setdefault(item.group, []).append(item.obj)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for group, objects in groups.items():
        target = out_dir / f"{group}.yaml"
        fd, tmp = tempfile.mkstemp(prefix=f".{group}-", suffix=".yaml", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(to_yaml(objects))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
