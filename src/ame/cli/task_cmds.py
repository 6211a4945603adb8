"""``ame task run|list|logs|env`` and ``ame secret set|list|delete``.

Presentation only: the work is done by ``ame.tasks``. A run streams the task's
output prefixed with ``[task]``; environment builds show a spinner; the exit
code of ``ame task run`` is the task's own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ame.cli import common
from ame.cli.common import (
    CpuOnlyOption,
    FileOption,
    JsonOption,
    TrackingUriOption,
    parse_pairs,
    print_json,
    store_for,
)
from ame.cli.render_cmds import BackendOption, DryRunOption
from ame.errors import AmeError, SecretError, TaskError, TaskFailedError

if TYPE_CHECKING:
    from ame.spec.model import Project, Task

task_app = typer.Typer(
    help="Run a project's tasks locally and read their runs back.",
    no_args_is_help=True,
)
secret_app = typer.Typer(
    help="Manage the local secret store that tasks' `secrets` are read from.",
    no_args_is_help=True,
)


def _load(file: Optional[Path]) -> Project:
    from ame.spec import load_project

    return load_project(file)


def _task(project: Project, name: str) -> Task:
    try:
        return project.task(name)
    except KeyError:
        names = ", ".join(t.name for t in project.all_tasks()) or "none"
        raise TaskError(f"no task '{name}' in {project.file} (tasks: {names})") from None


def _store(tracking_uri: Optional[str], project: Optional[Project]) -> Any:
    return store_for(tracking_uri, project=project)


@task_app.command("run")
def run_cmd(
    name: Annotated[str, typer.Argument(help="The task to run.")],
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rebuild the task's environment first.")
    ] = False,
    env: Annotated[
        Optional[list[str]],
        typer.Option("--env", "-e", help="Extra KEY=VALUE for the task (repeatable)."),
    ] = None,
    cpu_only: CpuOnlyOption = False,
    backend: BackendOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Run a task locally, with live logs; the exit code is the task's.

    With --backend kubernetes it runs as a Job on the cluster (--dry-run prints it).
    Example: ame task run train -e EPOCHS=3
    """
    from ame.tasks import prepare_environment, run_task
    from ame.tasks.runner import preflight

    extra = parse_pairs(env or [], "--env")
    project = _load(file)
    task = _task(project, name)
    from ame.cli.render_cmds import choose_backend

    if choose_backend(backend, project) == "kubernetes":
        from ame.cli.render_cmds import cluster_task_run

        if extra:
            raise TaskError("--env is for local runs; on kubernetes set the task's env in ame.yml")
        cluster_task_run(name, file, tracking_uri, dry_run)
        return
    if choose_backend(backend, project) == "ray":
        from ame.cli.backend_cmds import run_task_on

        run_task_on(
            backend,
            project,
            task,
            tracking_uri,
            extra_env=extra,
            cpu_only=cpu_only,
            rebuild=rebuild,
        )
        return
    from ame.backends.kubernetes.keys import warn_local

    warn_local(project, models=[], tasks=[name])
    store = _store(tracking_uri, project)
    preflight(project, task, cpu_only=cpu_only)
    # The spinner (and Rich) only when the environment has to be built: a cached
    # one is found in a millisecond, and a quick task should not pay for Rich.
    spinner: list[Any] = []

    def progress(line: str) -> None:
        from rich.markup import escape

        if not spinner:
            spinner.append(common.err_console.status(f"preparing the environment of {name}..."))
            spinner[0].start()
        spinner[0].update(f"[bold]{name}[/]: {escape(line[-120:])}")

    try:
        environment = prepare_environment(project, task, rebuild=rebuild, on_progress=progress)
    finally:
        if spinner:
            spinner[0].stop()
    if not environment.cached and environment.isolated:
        typer.secho(
            f"built environment {environment.key} ({environment.how}) "
            f"in {environment.build_seconds:.1f}s",
            dim=True,
            err=True,
        )
    prefix = typer.style(f"[{name}] ", fg="cyan")

    def show(line: str) -> None:
        typer.echo(prefix + line)

    from ame.tasks.tracking import open_tracker

    # A warm agent makes the run's MLflow calls: this process never imports MLflow.
    tracker = open_tracker(store, use_agent=True)
    try:
        run = run_task(
            project,
            task,
            store,
            extra_env=extra,
            on_output=show,
            cpu_only=cpu_only,
            tracker=tracker,
        )
    finally:
        tracker.close()
    report_run(name, run)


@task_app.command("list")
def list_cmd(
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    task: Annotated[Optional[str], typer.Option("--task", help="Only runs of this task.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List task runs of the project, newest first.

    Example: ame task list --task train --json
    """
    from ame.tasks.history import list_runs

    project = _load(file)
    runs = list_runs(_store(tracking_uri, project), project.name, task=task, limit=limit)
    if as_json:
        print_json(runs)
        return
    from ame.cli import output

    colours = {"FINISHED": "green", "FAILED": "red", "KILLED": "yellow"}
    rows = [
        (
            r["run_id"],
            r["task"],
            output.Styled(r["status"], colours.get(r["status"], "")),
            str(r["exit_code"]) if r["exit_code"] is not None else "-",
            r["started"],
            f"{r['duration']:.1f}s" if r["duration"] is not None else "-",
        )
        for r in runs
    ]
    if not rows:
        output.message(f"no task runs in project {project.name}")
        return
    output.table(("run id", "task", "status", "exit", "started", "duration"), rows)


@task_app.command("logs")
def logs_cmd(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id of a task run.")],
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    tail: Annotated[
        Optional[int], typer.Option("--tail", help="Only the last N lines.", show_default=False)
    ] = None,
) -> None:
    """Print the stored log of a task run.

    Example: ame task logs 3f2a9c0e41b84d4fa1e0c1d2b3a4f5e6 --tail 50
    """
    from ame.tasks.history import read_log

    project: Optional[Project]
    try:
        project = _load(file)
    except AmeError:
        if file is not None or tracking_uri is None:
            raise
        project = None
    text = read_log(_store(tracking_uri, project), run_id)
    lines = text.splitlines()
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    for line in lines:
        typer.echo(line)


@task_app.command("env")
def env_cmd(
    name: Annotated[str, typer.Argument(help="The task whose environment to prepare.")],
    file: FileOption = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build it again from scratch.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Build (or show the cached) environment of a task, without running it.

    Example: ame task env train --rebuild
    """
    from rich.markup import escape

    from ame.tasks import prepare_environment

    project = _load(file)
    task = _task(project, name)
    with common.err_console.status(f"preparing the environment of {name}...") as status:

        def progress(line: str) -> None:
            status.update(f"[bold]{name}[/]: {escape(line[-120:])}")

        environment = prepare_environment(project, task, rebuild=rebuild, on_progress=progress)
    info = {
        "task": name,
        "executor": environment.kind,
        "python": str(environment.python),
        "python_version": environment.python_version,
        "prefix": str(environment.prefix) if environment.prefix else None,
        "isolated": environment.isolated,
        "cached": environment.cached,
        "key": environment.key,
        "how": environment.how,
        "build_seconds": round(environment.build_seconds, 2),
    }
    if as_json:
        print_json(info)
        return
    state = "reused from cache" if environment.cached else "built now"
    if not environment.isolated:
        state = "no isolation"
    common.console.print(f"[bold]{name}[/] ({environment.kind}): {state}")
    common.console.print(f"  python  {environment.python} ({environment.python_version})")
    common.console.print(f"  how     {environment.how}")
    if environment.prefix:
        common.console.print(f"  prefix  {environment.prefix}")


@secret_app.command("set")
def secret_set(
    key: Annotated[str, typer.Argument(help="The secret's name, as used in ame.yml `key`.")],
) -> None:
    """Store a secret; the value is read from a hidden prompt, or from stdin when piped.

    Example: printf %s "$TOKEN" | ame secret set hf_token
    """
    from ame.tasks.secrets import SecretStore

    if sys.stdin.isatty():
        value = typer.prompt(f"value for {key}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise SecretError(f"no value given for secret '{key}'")
    store = SecretStore()
    store.set(key, value)
    common.err_console.print(f"secret [bold]{key}[/] saved in {store.path}")


@secret_app.command("list")
def secret_list(as_json: JsonOption = False) -> None:
    """List the names of stored secrets (never their values).

    Example: ame secret list
    """
    from ame.tasks.secrets import SecretStore

    keys = SecretStore().keys()
    if as_json:
        print_json(keys)
        return
    for key in keys:
        typer.echo(key)


@secret_app.command("delete")
def secret_delete(key: Annotated[str, typer.Argument(help="The secret to remove.")]) -> None:
    """Remove a secret from the store.

    Example: ame secret delete hf_token
    """
    from ame.tasks.secrets import SecretStore

    SecretStore().delete(key)
    common.err_console.print(f"secret [bold]{key}[/] deleted")


def report_run(name: str, run: Any) -> None:
    """The closing line of ``ame task run`` on any backend; a failed run raises with its code."""
    summary = f"run {run.run_id} {run.status} in {run.duration:.1f}s (exit {run.exit_code})"
    if run.reason:
        typer.secho(run.reason, fg="red", bold=True, err=True)
    if run.status == "FINISHED":
        typer.secho(summary, fg="green", err=True)
        return
    raise TaskFailedError(f"task '{name}' {summary}", exit_code=run.exit_code or 1)
