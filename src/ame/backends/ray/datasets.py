"""Datasets on a cluster: kept where a task on any node finds them.

Locally a produced dataset is a directory under ``.ame/datasets``; on Ray the
producer may run on one node and the reader on another, so the data is stored
as artifacts of the producer's MLflow run (``ame-dataset/``), in the tracking
store's artifact store, which every node reaches (see ``checks.check_store``).
The node's wrapper downloads it for the reader. Which run holds the current
version is recorded beside the local cache, keyed by the same hash of the
producer's spec (``ame.tasks.datasets.spec_hash``), so an unchanged producer
is not run again and an edited one makes a new version.

A dataset with only a ``path`` is data in the project: it travels in the
working_dir, and ``workdir.check_paths`` refuses the run when it would not.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ame.errors import TaskError

if TYPE_CHECKING:
    from ame.backends.ray.jobs import RayTaskHandle
    from ame.spec.model import DataSet, Project, Task
    from ame.tasks.tracking import Tracker

log = logging.getLogger(__name__)


def declared_paths(project: Project, task: Task) -> dict[str, Path]:
    """The datasets ``task`` reads through ``path:`` (no producer), name -> resolved path."""
    from ame.spec.loader import resolve_data_set

    paths: dict[str, Path] = {}
    for ref in task.data_sets:
        owner, ds = resolve_data_set(project, ref)
        if ds.task is None:
            if not ds.path:
                raise TaskError(f"dataset '{ds.name}' has neither a task to make it nor a path")
            path = (owner.root / ds.path).resolve()
            if not path.exists():
                raise TaskError(f"dataset '{ds.name}' points at {path}, which does not exist")
            paths[ds.name] = path
    return paths


def _record(owner: Project, ds: DataSet) -> Path:
    from ame.tasks.datasets import spec_hash

    return owner.root / ".ame" / "datasets" / ds.name / f"{spec_hash(ds)}.ray.json"


def _known_run(owner: Project, ds: DataSet, tracking_uri: str) -> Optional[str]:
    try:
        data = json.loads(_record(owner, ds).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("tracking_uri") != tracking_uri:
        return None
    run_id = data.get("run_id")
    return str(run_id) if run_id else None


def _remember(owner: Project, ds: DataSet, run_id: str, tracking_uri: str) -> None:
    path = _record(owner, ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "tracking_uri": tracking_uri}), encoding="utf-8")
    os.replace(tmp, path)


def _prefixed(
    show: Optional[Callable[[str], None]], prefix: str
) -> Optional[Callable[[str], None]]:
    """``show`` with ``prefix`` before each line, as local runs show a producer's output."""
    if show is None:
        return None
    target = show
    return lambda line: target(prefix + line)


def ensure(handle: RayTaskHandle, tracker: Tracker) -> dict[str, str]:
    """Make every produced dataset the task reads exist; ``AME_DATASET_*`` -> producer run id."""
    from ame.backends.base import TaskRequest
    from ame.backends.ray.jobs import RayTaskHandle
    from ame.spec.loader import resolve_data_set
    from ame.tasks.datasets import variable_name

    r = handle.request
    found: dict[str, str] = {}
    for ref in r.task.data_sets:
        owner, ds = resolve_data_set(r.project, ref)
        if ds.task is None:
            continue
        key = f"{owner.name}.{ds.name}"
        if key in handle.stack:
            chain = " -> ".join((*handle.stack, key))
            raise TaskError(f"datasets depend on each other in a cycle: {chain}")
        variable = variable_name(ds.name)
        known = _known_run(owner, ds, r.store.tracking_uri)
        if known is not None:
            found[variable] = known
            continue
        if ds.size is not None:
            log.warning(
                "dataSets %s: size is checked where the dataset is produced on this machine "
                "(the local and kubernetes backends); on Ray the producer's output is stored "
                "unchecked",
                ds.name,
            )
        prefix = f"(dataset producer {ds.task.name}) "
        parent_output = r.on_output
        producer = RayTaskHandle(
            handle.cluster,
            TaskRequest(
                project=owner,
                task=ds.task,
                store=r.store,
                tags={"ame.dataset_producer": "true"},
                cpu_only=r.cpu_only,
                tracker=tracker,
                on_output=_prefixed(parent_output, prefix),
            ),
            dataset_out=variable,
            stack=(*handle.stack, key),
        ).start()
        run = producer.wait()
        if run.status != "FINISHED":
            raise TaskError(
                f"dataset '{ds.name}': producer task '{ds.task.name}' ended {run.status} "
                f"(exit {run.exit_code}, run {run.run_id}); see `ame task logs {run.run_id}`"
            )
        _remember(owner, ds, run.run_id, r.store.tracking_uri)
        found[variable] = run.run_id
    return found
