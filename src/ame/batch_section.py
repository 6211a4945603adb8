"""``ame batch M``: a model's ``batchInference`` section, run on its champion, tracked.

AME's batchInference task got no model and no dataset. Here the section is
run one of two ways, both recorded as an MLflow run in the project's
experiment with the rows, the seconds, the version scored and the output as
an artifact:

- without ``task``: the built-in scorer (``ame.batch.scorer.score``) streams the
  section's ``dataSet`` or ``input`` through ``M@<championAlias>`` into ``output``;
- with ``task``: the task runs like any other, given ``AME_MODEL_NAME``,
  ``AME_MODEL_VERSION``, ``AME_MODEL_URI`` (the champion's ``models:/M/N``),
  ``AME_OUTPUT`` (where to write), and ``AME_DATASET_<NAME>`` for the section's
  ``dataSet`` (or ``AME_INPUT`` for its ``input``).

The champion is resolved once, up front, so an alias moved during the run
does not change what is scored.

Given a cluster ``backend`` (the Ray backend), the same two ways run there:
the built-in scorer as the backend's batch-scoring job (``predict``), the
task through its ``run_task``. What is recorded stays the submitting ame's
business, as here, so a run on Ray is tracked exactly like a local one, plus
``ame.backend`` and ``ame.ray_job_id``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.batch.errors import BatchError
from ame.batch.remote import shown
from ame.batch.scorer import Progress, ScoreOptions, ScoreSummary, score
from ame.errors import AliasNotFoundError, TaskFailedError

if TYPE_CHECKING:
    from ame.backends.base import Backend
    from ame.registry.store import Store
    from ame.spec.model import BatchInference, Model, Project, Task
    from ame.tasks.runner import TaskRun

log = logging.getLogger(__name__)

BATCH_TAG = "ame.batch"
BACKEND_TAG = "ame.backend"
RAY_JOB_TAG = "ame.ray_job_id"
DEFAULT_OUTPUT = "predictions.parquet"


@dataclass
class BatchRun:
    """What ``run_batch`` did, for the CLI and tests."""

    model: str
    version: str
    run_id: str
    output: str
    rows: Optional[int]
    seconds: float
    task: Optional[str] = None
    summary: Optional[ScoreSummary] = None
    note: str = ""
    ray_job_id: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "summary"}
        if self.ray_job_id is None:  # a local run's JSON is as it always was
            del data["ray_job_id"]
        data["seconds"] = round(self.seconds, 3)
        if self.summary is not None:
            data["errors"] = self.summary.errors
            data["errors_file"] = self.summary.errors_file
        return data


def section_of(project: Project, model_name: str) -> tuple[Model, BatchInference]:
    """The model and its ``batchInference`` section, or an error naming what exists."""
    try:
        model = project.model(model_name)
    except KeyError:
        names = ", ".join(m.name for m in project.models) or "none"
        raise BatchError(f"no model '{model_name}' in {project.file} (models: {names})") from None
    section = model.batch_inference
    if section is None:
        raise BatchError(
            f"model '{model_name}' has no batchInference section in {project.file}; "
            "score a file directly with `ame predict`"
        )
    if section.task is None and section.data_set is None and section.input is None:
        raise BatchError(
            f"models[{model_name}].batchInference needs 'dataSet' or 'input' (what to score), "
            "or a 'task' that scores"
        )
    return model, section


def output_path(project: Project, model: Model, section: BatchInference) -> Path:
    """``output`` relative to the project, else ``.ame/batch/<model>/predictions.parquet``."""
    if section.output:
        return (project.root / section.output).resolve()
    return project.root / ".ame" / "batch" / model.name / DEFAULT_OUTPUT


def champion(store: Store, model: Model) -> str:
    """The version ``M@<championAlias>`` points at now."""
    from ame.registry.facade import Registry

    try:
        return Registry(store).resolve(f"{model.name}@{model.champion_alias}").version
    except AliasNotFoundError as exc:
        raise BatchError(
            f"{exc}; batch scoring uses the champion: train and promote a version first "
            f"(`ame train {model.name}`)"
        ) from exc


def run_batch(
    project: Project,
    model_name: str,
    store: Store,
    *,
    options: ScoreOptions = ScoreOptions(),
    on_output: Optional[Callable[[str], None]] = None,
    on_progress: Optional[Progress] = None,
    cpu_only: bool = False,
    backend: Optional[Backend] = None,
) -> BatchRun:
    """Run ``model_name``'s batchInference section on its champion; see the module docstring.

    ``backend`` None runs it on this machine; a cluster backend (Ray) runs the
    scorer or the task there, the node reaching the input and output paths.
    """
    model, section = section_of(project, model_name)
    version = champion(store, model)
    out = output_path(project, model, section)
    out.parent.mkdir(parents=True, exist_ok=True)
    if section.task is not None:
        return _run_task(project, model, section, section.task, store, version, out, on_output,
                         cpu_only, backend)  # fmt: skip
    source = _input(project, section, store, on_output, cpu_only)
    return _run_scorer(project, model, store, version, source, out, options, backend,
                       on_progress, on_output)  # fmt: skip


def _score(
    backend: Optional[Backend],
    ref: str,
    source: str,
    out: Path,
    options: ScoreOptions,
    store: Store,
    on_progress: Optional[Progress],
    on_output: Optional[Callable[[str], None]],
    tag: Callable[[str, str], None],
) -> ScoreSummary:
    """The built-in scorer, here (``backend`` None) or as ``backend``'s batch-scoring job.

    ``tag`` records on the tracked run what only the scoring knows: where it
    ran and, on Ray, the job's id as soon as it is submitted.
    """
    if backend is None:
        return score(ref, source, out, options, tracking_uri=store.tracking_uri,
                     on_progress=on_progress)  # fmt: skip
    predict = getattr(backend, "predict", None)
    if predict is None:
        raise BatchError(f"the {backend.name} backend does not run batch scoring")
    tag(BACKEND_TAG, backend.name)
    data: dict[str, Any] = predict(
        ref,
        source,
        out,
        options,
        store,
        on_progress=on_progress,
        on_output=on_output,
        on_submitted=lambda job_id: tag(RAY_JOB_TAG, job_id),
    )
    return _summary_of(data)


def _summary_of(data: dict[str, Any]) -> ScoreSummary:
    """The ``ScoreSummary`` a scoring job reported as JSON (its extra keys left out)."""
    known = {f.name for f in fields(ScoreSummary)}
    return ScoreSummary(**{k: v for k, v in data.items() if k in known})


def _input(
    project: Project,
    section: BatchInference,
    store: Store,
    on_output: Optional[Callable[[str], None]],
    cpu_only: bool,
) -> str:
    """The path to score: the section's ``input`` (relative to the project) or its dataset."""
    if section.input is not None:
        return _input_path(project, section.input)
    assert section.data_set is not None
    from ame.spec.model import Task
    from ame.tasks.datasets import ensure_datasets, variable_name
    from ame.tasks.runner import run_task

    def producer(owner: Project, task: Task, env: dict[str, str], _: tuple[str, ...]) -> TaskRun:
        return run_task(owner, task, store, extra_env=env, on_output=on_output,
                        tags={"ame.dataset_producer": "true"}, cpu_only=cpu_only)  # fmt: skip

    holder = Task(name=f"batch.{section.data_set.name}", data_sets=[section.data_set])
    variables = ensure_datasets(project, holder, producer)
    return variables[variable_name(section.data_set.name)]


def _input_path(project: Project, given: str) -> str:
    """The section's ``input``, relative to the project unless absolute."""
    path = Path(given).expanduser()
    return str(path if path.is_absolute() else project.root / path)


def _path_dataset(project: Project, ref: Any) -> dict[str, str]:
    """A ``path:`` dataset (no producer) as ``AME_DATASET_<NAME>``: its path on this machine.

    A cluster backend sets the variable for produced datasets only (the node
    downloads them); a path dataset travels in the job's working_dir unnamed.
    The section's task is told where, as locally: the node reaches the
    project's paths (one host, or shared storage), as for ``AME_OUTPUT``.
    """
    from ame.spec.loader import resolve_data_set
    from ame.spec.model import Task
    from ame.tasks.datasets import ensure_datasets

    _, ds = resolve_data_set(project, ref)
    if ds.task is not None:
        return {}

    def no_producer(*_: Any) -> TaskRun:
        raise AssertionError("a path dataset has no producer")

    return ensure_datasets(project, Task(name=f"batch.{ds.name}", data_sets=[ref]), no_producer)


def _run_scorer(
    project: Project,
    model: Model,
    store: Store,
    version: str,
    source: str,
    out: Path,
    options: ScoreOptions,
    backend: Optional[Backend],
    on_progress: Optional[Progress],
    on_output: Optional[Callable[[str], None]],
) -> BatchRun:
    """Score (``_score``) inside one tracked MLflow run: its tags, params and results.

    The one place a built-in scorer's run is recorded, wherever the scoring ran.
    """
    from ame.registry.resolve import client_for
    from ame.registry.store import activate, ensure_experiment

    activate(store)
    client = client_for(store)
    experiment = ensure_experiment(store, project.name)
    tags = {
        BATCH_TAG: "true",
        "ame.kind": "batch",
        "ame.project": project.name,
        "ame.model": model.name,
        "ame.model_version": version,
        "mlflow.source.name": f"ame batch {model.name}",
    }
    run_id = client.create_run(experiment, run_name=f"batch {model.name}", tags=tags).info.run_id
    status = "FAILED"
    job: dict[str, str] = {}

    def tag(key: str, value: str) -> None:
        client.set_tag(run_id, key, value)
        if key == RAY_JOB_TAG:
            job["id"] = value

    try:
        for key, value in {
            "model": f"models:/{model.name}/{version}",
            "input": shown(source),
            "output": str(out),
            "chunk_rows": str(options.chunk_rows),
            "on_error": options.on_error,
        }.items():
            client.log_param(run_id, key, value)
        summary = _score(backend, f"{model.name}/{version}", source, out, options, store,
                         on_progress, on_output, tag)  # fmt: skip
        _log_result(client, run_id, out, summary.rows, summary.seconds, summary.errors)
        if summary.errors_file:
            client.log_artifact(run_id, summary.errors_file, "output")
        status = "FINISHED"
    finally:
        client.set_terminated(run_id, status)
    return BatchRun(
        model=model.name,
        version=version,
        run_id=run_id,
        output=str(out),
        rows=summary.rows,
        seconds=summary.seconds,
        summary=summary,
        ray_job_id=job.get("id"),
    )


def _log_result(
    client: Any, run_id: str, out: Path, rows: Optional[int], seconds: float, errors: int
) -> None:
    if rows is not None:
        client.log_metric(run_id, "rows", rows)
        client.log_metric(run_id, "rows_per_second", rows / seconds if seconds > 0 else 0.0)
    client.log_metric(run_id, "seconds", seconds)
    client.log_metric(run_id, "errors", errors)
    client.log_artifact(run_id, str(out), "output")


def _run_task(
    project: Project,
    model: Model,
    section: BatchInference,
    task: Task,
    store: Store,
    version: str,
    out: Path,
    on_output: Optional[Callable[[str], None]],
    cpu_only: bool,
    backend: Optional[Backend] = None,
) -> BatchRun:
    from ame.registry.resolve import client_for

    env = {
        "AME_MODEL_NAME": model.name,
        "AME_MODEL_VERSION": version,
        "AME_MODEL_URI": f"models:/{model.name}/{version}",
        "AME_OUTPUT": str(out),
    }
    if section.input is not None:
        env["AME_INPUT"] = _input_path(project, section.input)
    if section.data_set is not None and all(
        str(ref) != str(section.data_set) for ref in task.data_sets
    ):
        # The section's dataset reaches the task as AME_DATASET_<NAME>, made first if need be.
        task = task.model_copy(update={"data_sets": [*task.data_sets, section.data_set]})
    if section.data_set is not None and backend is not None:
        env.update(_path_dataset(project, section.data_set))
    tags = {BATCH_TAG: "true", "ame.model": model.name, "ame.model_version": version}
    run_name = f"batch {model.name}"
    started = time.perf_counter()
    job_id: Optional[str] = None
    if backend is None:
        from ame.tasks.runner import run_task

        run = run_task(project, task, store, extra_env=env, on_output=on_output,
                       run_name=run_name, tags=tags, cpu_only=cpu_only)  # fmt: skip
    else:
        # The Backend protocol, as ``ame train`` runs its tasks (``lifecycle._run_task``).
        from ame.backends.base import TaskRequest

        request = TaskRequest(project=project, task=task, store=store, extra_env=env,
                              run_name=run_name, tags=tags, cpu_only=cpu_only,
                              on_output=on_output)  # fmt: skip
        handle = backend.run_task(request)
        job_id = handle.id
        run = handle.wait(on_output)
    seconds = time.perf_counter() - started
    if run.status != "FINISHED":
        raise TaskFailedError(
            f"batch task '{task.name}' of model '{model.name}' ended {run.status} "
            f"(exit {run.exit_code}, run {run.run_id}); see `ame task logs {run.run_id}`",
            exit_code=run.exit_code or 1,
        )
    client = client_for(store)
    rows: Optional[int] = None
    note = ""
    if out.is_file():
        rows = _count_output(out)
        _log_result(client, run.run_id, out, rows, seconds, 0)
    else:
        note = f"the task wrote nothing at AME_OUTPUT ({out})"
        client.log_metric(run.run_id, "seconds", seconds)
    return BatchRun(
        model=model.name,
        version=version,
        run_id=run.run_id,
        output=str(out),
        rows=rows,
        seconds=seconds,
        task=task.name,
        note=note,
        ray_job_id=job_id if backend is not None and backend.name == "ray" else None,
    )


def _count_output(out: Path) -> Optional[int]:
    """Rows in a task's output when it is a format ame reads; None otherwise."""
    from ame.batch.inputs import count_rows, format_of, resolve_inputs

    if format_of(out) is None:
        return None
    try:
        return count_rows(resolve_inputs(str(out)))
    except Exception as exc:  # the task's file, in whatever state it left it
        log.info("cannot count the rows of %s: %s", out, exc)
        return None
