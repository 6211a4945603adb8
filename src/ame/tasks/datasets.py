"""Datasets a task needs, made to exist before it runs.

A dataset produced by a task is built once: its producer runs with
``AME_DATASET_<NAME>`` pointing at an empty directory to write into, and the
result is kept under ``<project>/.ame/datasets/<name>/<spec-hash>``. The hash
covers the producer task's resolved spec, so editing the producer (its command,
executor, env...) makes a new dataset while an unchanged one is reused. The
directory is renamed into place only after the producer succeeded, under a file
lock, so a failed or concurrent run never leaves a half-written dataset.

A dataset with only a ``path`` is data that already exists; it is checked, not
made. Cross-project references (``proj.ds``) are resolved by ame.spec the same
way templates are, and the dataset is cached in its own project.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ame.errors import TaskError
from ame.spec.model import DataSet, Project, Ref, Task

if TYPE_CHECKING:
    from ame.tasks.runner import TaskRun

_COMPLETE = ".ame-dataset.json"

# Runs a producer task: (owner project, task, extra env, dataset stack) -> its TaskRun.
# The stack of datasets being made is passed along so that cycles are caught.
Producer = Callable[[Project, Task, dict[str, str], tuple[str, ...]], "TaskRun"]


def variable_name(name: str) -> str:
    """``AME_DATASET_<NAME>``: upper-cased, anything but letters and digits as ``_``."""
    return "AME_DATASET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def spec_hash(ds: DataSet) -> str:
    """A hash of what makes a dataset: its producer's resolved spec and its declared path."""
    assert ds.task is not None
    payload = {
        "task": ds.task.model_dump(mode="json", by_alias=True, exclude={"triggers"}),
        "path": ds.path,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _resolve(project: Project, ref: Ref) -> tuple[Project, DataSet]:
    from ame.spec.loader import resolve_data_set

    return resolve_data_set(project, ref)


def dataset_dir(owner: Project, ds: DataSet) -> Path:
    """Where the current version of a produced dataset lives (or will)."""
    return owner.root / ".ame" / "datasets" / ds.name / spec_hash(ds)


def ensure_datasets(
    project: Project,
    task: Task,
    run_producer: Producer,
    stack: tuple[str, ...] = (),
) -> dict[str, str]:
    """Make every dataset ``task`` lists exist; return the ``AME_DATASET_*`` variables."""
    variables: dict[str, str] = {}
    for ref in task.data_sets:
        owner, ds = _resolve(project, ref)
        key = f"{owner.name}.{ds.name}"
        if key in stack:
            chain = " -> ".join((*stack, key))
            raise TaskError(f"datasets depend on each other in a cycle: {chain}")
        variables[variable_name(ds.name)] = str(_ensure(owner, ds, run_producer, (*stack, key)))
    return variables


def _ensure(owner: Project, ds: DataSet, run_producer: Producer, stack: tuple[str, ...]) -> Path:
    if ds.task is None:
        if not ds.path:
            raise TaskError(f"dataset '{ds.name}' has neither a task to make it nor a path")
        path = (owner.root / ds.path).resolve()
        if not path.exists():
            raise TaskError(
                f"dataset '{ds.name}' points at {path}, which does not exist "
                "(give the dataset a task that produces it, or create the data)"
            )
        return path
    final = dataset_dir(owner, ds)
    if (final / _COMPLETE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(final.parent / f"{final.name}.lock")):
        if (final / _COMPLETE).is_file():
            return final
        staging = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            producer = ds.task
            run = run_producer(owner, producer, {variable_name(ds.name): str(staging)}, stack)
            if run.status != "FINISHED":
                raise TaskError(
                    f"dataset '{ds.name}': producer task '{producer.name}' ended {run.status} "
                    f"(exit {run.exit_code}, run {run.run_id}); see `ame task logs {run.run_id}`"
                )
            check_size(ds, staging)
            record = {"dataset": ds.name, "producer": producer.name, "run_id": run.run_id}
            (staging / _COMPLETE).write_text(json.dumps(record))
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return final


def check_size(ds: DataSet, produced: Path) -> None:
    """Refuse a produced dataset larger than its ``size``: nothing of it is kept or stored.

    In AME, ``size`` sized the volume a dataset was written to, so a producer
    that wrote more failed. ame keeps datasets in its cache (and, on a cluster,
    the artifact store) rather than a volume of that size, and holds the
    producer to the same bound here, where the output is complete but not yet
    kept: a runaway producer fails its dataset instead of filling the disk of
    every later reader.
    """
    if ds.size is None:
        return
    total = sum(p.stat().st_size for p in produced.rglob("*") if p.is_file() and not p.is_symlink())
    if total > ds.size:
        from ame._system import format_bytes

        raise TaskError(
            f"dataset '{ds.name}': its producer wrote {format_bytes(total)}, over the dataset's "
            f"size {format_bytes(ds.size)} (dataSets[].size); nothing of it was kept"
        )
