"""Produced datasets on Kubernetes: kept in the tracking server's artifact store.

Locally a produced dataset is cached under ``.ame/datasets/<name>/<hash>``
(``ame.tasks.datasets``). A pod's workspace is an ``emptyDir``: gone when the
Job ends, and another Job's pod never sees it. So before ``ame task run T``,
a task pod runs ``python -m ame.backends.kubernetes.datasets T``, which for
each dataset of ``T`` that a task produces:

* looks for a finished producer run of that dataset with the same spec hash
  (``ame.tasks.datasets.spec_hash``: an edited producer makes a new version)
  whose files were stored (tags ``ame.dataset``, ``ame.dataset_hash``,
  ``ame.dataset_stored``), in the owner project's experiment;
* if there is one, downloads its ``ame-dataset/`` artifacts into the local
  cache, so ``ame task run`` finds the dataset made and runs no producer;
* if not, runs the producer here (as ``ame task run`` would), uploads what it
  wrote as ``ame-dataset/`` artifacts of its run, tags the run stored, and
  puts the files in the local cache.

So a dataset is made once per producer spec on the whole cluster, and every
later pod (of any task, on any node) downloads it. Uploading before tagging
means a pod killed mid-upload leaves a run no reader trusts.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ame.errors import TaskError

if TYPE_CHECKING:
    from ame.registry.store import Store
    from ame.spec.model import DataSet, Project, Task

DATASET_TAG = "ame.dataset"
HASH_TAG = "ame.dataset_hash"
STORED_TAG = "ame.dataset_stored"
ARTIFACT_DIR = "ame-dataset"


def _marker() -> str:
    """The file ``ame.tasks.datasets`` marks a complete cached dataset with."""
    from ame.tasks.datasets import _COMPLETE

    return _COMPLETE


def dataset_key(owner: Project, ds: DataSet) -> str:
    """``<project>.<dataset>``: the dataset's name across projects."""
    return f"{owner.name}.{ds.name}"


@dataclass(frozen=True)
class Step:
    """One produced dataset a pod must have before its task runs, and how it is looked up.

    ``search`` finds a stored copy (the newest finished producer run of this
    spec hash whose upload completed); ``producer_tags`` mark the run that
    makes it when none is found, so the next pod's ``search`` finds it.
    """

    owner: Project
    dataset: DataSet
    key: str
    search: str
    producer_tags: dict[str, str]


def producer_tags(owner: Project, ds: DataSet) -> dict[str, str]:
    """The tags of a producer run on the cluster (``ame.dataset_stored`` comes after the upload)."""
    from ame.tasks.datasets import spec_hash

    return {
        "ame.dataset_producer": "true",
        DATASET_TAG: dataset_key(owner, ds),
        HASH_TAG: spec_hash(ds),
    }


def stored_filter(owner: Project, ds: DataSet) -> str:
    """The MLflow run search that finds a stored copy of this version of ``ds``."""
    from ame.registry.runs import tag_filter

    tags = producer_tags(owner, ds)
    wanted = {DATASET_TAG: tags[DATASET_TAG], HASH_TAG: tags[HASH_TAG], STORED_TAG: "true"}
    return f"{tag_filter(wanted)} and attributes.status = 'FINISHED'"


def plan(project: Project, task: Task) -> list[Step]:
    """The produced datasets ``task`` reads that are not in this pod's cache yet, in order.

    A dataset with no producer task (files the project ships) needs no step;
    one already cached (the same pod ran before) neither.
    """
    from ame.spec.loader import resolve_data_set
    from ame.tasks.datasets import dataset_dir

    steps: list[Step] = []
    for ref in task.data_sets:
        owner, ds = resolve_data_set(project, ref)
        if ds.task is None or (dataset_dir(owner, ds) / _marker()).is_file():
            continue
        steps.append(
            Step(
                owner,
                ds,
                dataset_key(owner, ds),
                stored_filter(owner, ds),
                producer_tags(owner, ds),
            )
        )
    return steps


def find_stored(store: Store, step: Step) -> Optional[str]:
    """The run id of the newest finished producer run that stored this version, else None."""
    from ame.registry.runs import find_runs

    found = find_runs(store, step.owner.name, where=step.search)
    return found[0].info.run_id if found else None


def _install(owner: Project, ds: DataSet, staging: Path, run_id: str) -> Path:
    """Move ``staging`` into the local cache, marked complete, as ``ame.tasks.datasets`` does."""
    from ame.tasks.datasets import dataset_dir

    final = dataset_dir(owner, ds)
    assert ds.task is not None
    record = {"dataset": ds.name, "producer": ds.task.name, "run_id": run_id}
    (staging / _marker()).write_text(json.dumps(record))
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return final


def _staging(owner: Project, ds: DataSet) -> Path:
    from ame.tasks.datasets import dataset_dir

    final = dataset_dir(owner, ds)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def restore(store: Store, owner: Project, ds: DataSet, run_id: str) -> Path:
    """Download the stored files of ``run_id`` into the local cache."""
    from ame.registry.runs import download_run_artifacts

    staging = _staging(owner, ds)
    try:
        download = Path(staging) / ".download"
        download.mkdir()
        local = download_run_artifacts(store, run_id, ARTIFACT_DIR, download)
        for item in local.iterdir():
            os.replace(item, staging / item.name)
        shutil.rmtree(download)
        return _install(owner, ds, staging, run_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def make_and_store(
    store: Store, step: Step, on_output: Optional[Callable[[str], None]] = None
) -> tuple[Path, str]:
    """Run the producer, store what it wrote in the artifact store, cache it; (path, run id)."""
    from ame.registry.runs import RunRecorder
    from ame.tasks import run_task
    from ame.tasks.datasets import check_size, variable_name

    owner, ds = step.owner, step.dataset
    producer = ds.task
    assert producer is not None
    staging = _staging(owner, ds)
    try:
        prefix = f"(dataset producer {producer.name}) "
        run = run_task(
            owner,
            producer,
            store,
            extra_env={variable_name(ds.name): str(staging)},
            on_output=(lambda line: on_output(prefix + line)) if on_output else None,
            tags=step.producer_tags,
        )
        if run.status != "FINISHED":
            raise TaskError(
                f"dataset '{ds.name}': producer task '{producer.name}' ended {run.status} "
                f"(exit {run.exit_code}, run {run.run_id}); see `ame task logs {run.run_id}`"
            )
        check_size(ds, staging)
        recorder = RunRecorder(store)
        recorder.log_artifacts(run.run_id, str(staging), ARTIFACT_DIR)
        recorder.set_tag(run.run_id, STORED_TAG, "true")
        return _install(owner, ds, staging, run.run_id), run.run_id
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def prepare(
    project: Project,
    task: Task,
    store: Store,
    on_output: Optional[Callable[[str], None]] = None,
) -> list[str]:
    """Make every produced dataset ``task`` reads present in the local cache; what was done."""
    done: list[str] = []
    for step in plan(project, task):
        run_id = find_stored(store, step)
        if run_id is not None:
            restore(store, step.owner, step.dataset, run_id)
            done.append(f"dataset {step.key}: downloaded (run {run_id})")
        else:
            _, run_id = make_and_store(store, step, on_output)
            done.append(f"dataset {step.key}: made and stored (run {run_id})")
    return done


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ame.backends.kubernetes.datasets TASK`` in the project directory of a pod."""
    from ame.errors import AmeError
    from ame.registry.store import resolve_store
    from ame.spec import load_project

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ame.backends.kubernetes.datasets TASK", file=sys.stderr)
        return 2
    try:
        project = load_project(None)
        task = project.task(args[0])
        store = resolve_store(None, project.root)
        for line in prepare(project, task, store, on_output=print):
            print(line, flush=True)
    except KeyError:
        print(f"error: no task '{args[0]}'", file=sys.stderr)
        return 2
    except AmeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
