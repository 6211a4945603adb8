"""``run_task``: one task, in its cached environment, as one tracked MLflow run.

The order matters and is chosen so that mistakes cost nothing: resources,
secrets and the command are checked first (a missing secret or GPU fails
before any environment is built), then the environment is made ready, then
the datasets the task needs, and only then is the MLflow run created, so that
the run's id can be handed to the task (``AME_RUN_ID``, ``MLFLOW_RUN_ID``) and
the task's own ``mlflow`` calls log into it. Whatever happens while the task
runs, the run is closed with FINISHED, FAILED or KILLED and keeps the log.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

# ``git_commit`` lives in ``ame._system``; re-exported for the Ray backend's import.
from ame._system import git_commit as git_commit
from ame.errors import TaskError
from ame.registry.store import Store
from ame.secrets import Redactor, resolve_secrets
from ame.spec.model import Project, Task
from ame.tasks import artifacts as artifact_files
from ame.tasks import datasets as dataset_mod
from ame.tasks import mlproject
from ame.tasks.environments import Environment, Progress, prepare_environment, task_root
from ame.tasks.process import run_process
from ame.tasks.resources import limits_for
from ame.tasks.tracking import Tracker, open_tracker

log = logging.getLogger(__name__)

LOG_ARTIFACT = "task.log"
KIND_TAG = "ame.kind"
OWNER_TAG = "ame.owner"
# The variables ``ame scheduler`` sets on a fired command -> the run tags they become.
SCHEDULE_ENV_TAGS = {
    "AME_SCHEDULE_JOB": "ame.schedule.job",
    "AME_SCHEDULE_FIRE_TIME": "ame.schedule.fire_time",
}


@dataclass(frozen=True)
class TaskRun:
    """The outcome of one task run: its MLflow run, exit code, status and log."""

    run_id: str
    task: str
    exit_code: int
    status: str  # FINISHED, FAILED or KILLED
    log_path: Path
    duration: float
    reason: str | None = None
    environment: Environment | None = None

    @property
    def ok(self) -> bool:
        """Whether the task finished with exit code 0."""
        return self.status == "FINISHED"

    def tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines of the task's (redacted) log."""
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return lines[-n:] if n > 0 else []


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a run is open, SIGTERM raises KeyboardInterrupt (as Ctrl-C does).

    ``run_process`` handles SIGTERM itself while the task runs; this covers the
    rest of the run's life (logging params, uploading the log and artifacts,
    which can take minutes for a remote store), where SIGTERM's default action
    would end ame at once and leave the run RUNNING forever instead of KILLED.
    Signal handlers can only be set from the main thread; elsewhere it is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        del frame
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def task_command(project: Project, task: Task) -> str:
    """The shell command a task runs (an MLproject entry point's for ``!mlflow``)."""
    executor = task.executor
    if executor.kind == "mlflow" and not executor.command:
        proj = mlproject.load_mlproject(task_root(project, task))
        return mlproject.command_for(proj, executor.entry_point)
    if not executor.command:
        raise TaskError(f"task '{task.name}' has no command (executor.command)")
    return executor.command


def preflight(project: Project, task: Task, *, cpu_only: bool = False) -> None:
    """Raise the errors that would stop ``task`` from starting, before anything is built.

    A missing secret, a GPU the machine lacks or a task without a command must
    not cost an environment build first; ``ame task run`` calls this before its
    build spinner, and ``run_task`` makes the same checks in the same order.
    """
    limits_for(task.resources, cpu_only=cpu_only)
    resolve_secrets(task.secrets)
    task_command(project, task)


def run_task(
    project: Project,
    task: Task,
    store: Store,
    *,
    extra_env: dict[str, str] | None = None,
    run_name: str | None = None,
    on_output: Callable[[str], None] | None = None,
    tags: dict[str, str] | None = None,
    on_progress: Progress | None = None,
    rebuild: bool = False,
    cpu_only: bool = False,
    tracker: Tracker | None = None,
) -> TaskRun:
    """Run ``task`` of ``project`` as a tracked MLflow run in ``store`` and wait for it.

    The task's output goes line by line to ``on_output`` (secrets masked) and to
    a log file that is stored with the run. ``extra_env`` is added last (the
    lifecycle passes ``AME_MODEL_NAME`` and friends), ``tags`` are set on the
    run, ``on_progress`` hears about environment builds. A task that fails or
    is stopped is not an exception: the returned ``TaskRun`` says how it ended.
    ``cpu_only`` runs a task that asks for GPUs on a machine without them
    (no GPU is made visible to it) instead of refusing to start. ``tracker``
    makes the MLflow calls (default: directly, in this process; the CLI passes
    the agent's, see ``ame.tasks.tracking``).
    Errors that prevent the task from starting raise ``TaskError`` subclasses.
    """
    return _run(
        project,
        task,
        store,
        extra_env=extra_env or {},
        run_name=run_name,
        on_output=on_output,
        tags=tags or {},
        on_progress=on_progress,
        rebuild=rebuild,
        cpu_only=cpu_only,
        stack=(),
        tracker=tracker or open_tracker(store),
    )


def _run(
    project: Project,
    task: Task,
    store: Store,
    *,
    extra_env: dict[str, str],
    run_name: str | None,
    on_output: Callable[[str], None] | None,
    tags: dict[str, str],
    on_progress: Progress | None,
    rebuild: bool,
    stack: tuple[str, ...],
    tracker: Tracker,
    cpu_only: bool = False,
) -> TaskRun:
    limits = limits_for(task.resources, cpu_only=cpu_only)
    secret_env = resolve_secrets(task.secrets)
    redact = Redactor(secret_env.values())
    command = task_command(project, task)
    root = task_root(project, task)
    environment = prepare_environment(project, task, rebuild=rebuild, on_progress=on_progress)

    def producer(owner: Project, ptask: Task, env: dict[str, str], st: tuple[str, ...]) -> TaskRun:
        prefix = f"(dataset producer {ptask.name}) "
        return _run(
            owner,
            ptask,
            store,
            extra_env=env,
            run_name=None,
            on_output=(lambda line: on_output(prefix + line)) if on_output else None,
            tags={"ame.dataset_producer": "true"},
            on_progress=on_progress,
            rebuild=False,
            cpu_only=cpu_only,
            stack=st,
            tracker=tracker,
        )

    dataset_env = dataset_mod.ensure_datasets(project, task, producer, stack)

    from ame._owner import owner_token

    experiment_id = tracker.ensure_experiment(project.name)
    run_tags = task_run_tags(project, task, root)
    # Who keeps this run open: a later ``ame status`` or ``ame train`` marks
    # the run KILLED if this process died without closing it (ame.reconcile).
    run_tags[OWNER_TAG] = owner_token()
    run_tags.update(tags)
    run_id = tracker.create_run(
        experiment_id, run_name or task.name, {k: redact(v) for k, v in run_tags.items()}
    )
    # Named task.log locally so the artifact has the same stable name.
    log_path = project.root / ".ame" / "logs" / run_id / LOG_ARTIFACT
    status = "FAILED"
    try:
        with _sigterm_interrupts():
            params = {
                "task": task.name,
                "executor": task.executor.kind,
                "command": redact(command)[:6000],
                "python_version": environment.python_version,
            }
            tracker.log_params(run_id, params)
            env = _child_env(project, task, store, run_id, experiment_id, environment)
            env.update(limits.env)
            env.update(dataset_env)
            env.update(task.env)
            env.update(secret_env)
            env.update(extra_env)
            config = task.artifacts
            before = (
                artifact_files.snapshot(root)
                if config is not None and config.save_changed_files
                else None
            )
            log.info("running task %s (run %s): %s", task.name, run_id, command)
            result = run_process(
                command,
                cwd=root,
                env=env,
                log_path=log_path,
                on_output=on_output,
                redact=redact,
                timeout=task.timeout,
                limits=limits,
            )
            status = result.status
            tracker.set_tag(run_id, "ame.exit_code", str(result.exit_code))
            if result.reason:
                tracker.set_tag(run_id, "ame.reason", result.reason)
            try:
                _log_artifacts(tracker, run_id, root, log_path, config, before)
            except Exception as exc:  # the run's outcome matters more than its files
                log.warning("could not store the artifacts of run %s: %s", run_id, exc)
                tracker.set_tag(run_id, "ame.artifacts_error", str(exc)[:500])
    except KeyboardInterrupt as exc:
        status = "KILLED"
        why = str(exc) or "interrupted"
        with contextlib.suppress(Exception):
            tracker.set_tag(run_id, "ame.reason", f"killed: {why} while ame was recording the run")
        raise
    finally:
        tracker.set_terminated(run_id, status)
    return TaskRun(
        run_id=run_id,
        task=task.name,
        exit_code=result.exit_code,
        status=result.status,
        log_path=log_path,
        duration=result.duration,
        reason=result.reason,
        environment=environment,
    )


def _child_env(
    project: Project,
    task: Task,
    store: Store,
    run_id: str,
    experiment_id: str,
    environment: Environment,
) -> dict[str, str]:
    """The environment of architecture.md: the store, the run, the project, the venv."""
    from ame._logging import user_environ

    env = user_environ()
    for stale in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(stale, None)
    env.update(store.env())
    env.update(
        {
            "MLFLOW_EXPERIMENT_NAME": project.name,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
            "MLFLOW_RUN_ID": run_id,
            "AME_RUN_ID": run_id,
            "AME_PROJECT": project.name,
            "AME_PROJECT_DIR": str(project.root),
            "AME_TASK": task.name,
            # Lines reach the log as they are printed, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(environment.variables(env.get("PATH", "")))
    return env


def _log_artifacts(
    tracker: Tracker,
    run_id: str,
    root: Path,
    log_path: Path,
    config: Any,
    before: artifact_files.Snapshot | None,
) -> None:
    """Upload the log, the ``artifacts.paths`` matches and the changed files."""
    if log_path.exists():
        tracker.log_artifact(run_id, str(log_path), None)
    if config is None:
        return
    for item in artifact_files.glob_paths(root, list(config.paths)):
        tracker.log_artifact(run_id, str(item.local), item.artifact_dir)
    if before is not None:
        for rel in artifact_files.changed_files(root, before):
            parent = Path(rel).parent.as_posix()
            target = "changed_files" if parent == "." else f"changed_files/{parent}"
            tracker.log_artifact(run_id, str(root / rel), target)


def task_run_tags(project: Project, task: Task, root: Path) -> dict[str, str]:
    """The tags of a task's MLflow run on every backend: what ran, from which commit, and why.

    A run the scheduler fired (``ame.schedule``) also says which job and fire
    time it belongs to, from the variables the scheduler set on the command.
    """
    import os

    from ame import __version__

    tags: dict[str, str] = {
        KIND_TAG: "task",
        "ame.task": task.name,
        "ame.project": project.name,
        "ame.version": __version__,
        "ame.executor": task.executor.kind,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": f"ame task run {task.name}",
    }
    commit = git_commit(root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["ame.git_commit"] = commit
    fired = {tag: os.environ.get(var, "") for var, tag in SCHEDULE_ENV_TAGS.items()}
    tags.update({tag: value for tag, value in fired.items() if value})
    return tags
