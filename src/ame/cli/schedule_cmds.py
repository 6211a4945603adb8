"""``ame schedule list`` and ``ame scheduler run|start|stop|status``: the project's scheduled jobs.

The logic is ``ame.schedule``; this module presents. ``scheduler status``
exits 0 when a scheduler runs for the project and 1 when none does, so a
script (or a health check) can test it without parsing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ame.cli.common import FileOption, JsonOption, TrackingUriOption, print_json

if TYPE_CHECKING:
    from ame.schedule.state import FireRecord
    from ame.spec.model import Project

schedule_app = typer.Typer(
    help="The project's scheduled jobs: cron triggers, monitoring, batch and autoTrain.",
    no_args_is_help=True,
)
scheduler_app = typer.Typer(
    help="The scheduler that runs the project's scheduled jobs (one per project).",
    no_args_is_help=True,
)

BackendOption = Annotated[
    Optional[str],
    typer.Option(
        "--backend",
        help="Where fired jobs run (local, ray, kubernetes); default: AME_BACKEND, then ame.yml.",
        show_default=False,
    ),
]


def _load(file: Optional[Path]) -> Project:
    from ame.spec import load_project

    return load_project(file)


@schedule_app.command("list")
def list_cmd(
    count: Annotated[int, typer.Option("--next", min=1, max=50, help="Next fire times shown.")] = 3,
    file: FileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each scheduled job: what it runs, its cron, its next fire times, its last run.

    Example: [bold]ame schedule list --next 5[/bold]
    """
    from dataclasses import asdict

    from ame.cli import output
    from ame.schedule.cron import utc_now
    from ame.schedule.daemon import running
    from ame.schedule.listing import describe_last, summarize

    project = _load(file)
    rows_in = summarize(project, utc_now(), count)
    info = running(project.root)
    if as_json:
        print_json(
            {
                "scheduler": {"running": info is not None, "pid": info.pid if info else None},
                "jobs": [asdict(row) for row in rows_in],
            }
        )
        return
    if not rows_in:
        output.message(f"project {project.name} has no scheduled jobs")
        return
    rows = [
        (
            r.job,
            r.command,
            r.schedule if not r.timezone or r.timezone == "UTC" else f"{r.schedule} ({r.timezone})",
            ", ".join(r.next_fires) or "-",
            describe_last(r.last),
            describe_last(r.latest) if r.latest is not None and r.latest != r.last else "-",
        )
        for r in rows_in
    ]
    output.table(
        ("job", "runs", "schedule", "next (UTC)", "last run", "latest fire"),
        rows,
        title=f"project {project.name}",
    )
    state = f"running (pid {info.pid})" if info else "not running (`ame scheduler start`)"
    output.message(f"scheduler: {state}", err=True)


def _print_record(record: FireRecord) -> None:
    from ame.cli import output
    from ame.schedule.listing import describe_last

    output.message(f"{record.job}: {describe_last(record)}")


def _child_env(tracking_uri: Optional[str]) -> dict[str, str]:
    """The environment fired commands get: ours, with ``--tracking-uri`` passed on."""
    import os

    env = dict(os.environ)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def _warn_double_run(project: Project, kind: str) -> None:
    """On the kubernetes backend, the one line about CronJobs firing the same jobs."""
    from ame.schedule.cronjobs import double_run_warning

    line = double_run_warning(project, kind)
    if line:
        typer.secho(line, fg="yellow", err=True)


@scheduler_app.command("run")
def run_cmd(
    backend: BackendOption = None,
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Run the scheduler in the foreground until Ctrl-C; each fire prints one line.

    Example: [bold]ame scheduler run[/bold]
    """
    import signal
    import threading

    from ame.backends.select import choose_backend
    from ame.cli import output
    from ame.schedule.daemon import Lock
    from ame.schedule.scheduler import Scheduler

    project = _load(file)
    # Checked before the lock is taken: a ray backend without a cluster fails here, once.
    choice = choose_backend(backend, project)
    _warn_double_run(project, choice.kind)
    lock = Lock(project.root)
    lock.acquire()
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler = Scheduler(
        project, backend=backend, env=_child_env(tracking_uri), on_record=_print_record
    )
    jobs = scheduler.jobs()
    output.message(
        f"scheduler for {project.name}: {len(jobs)} job{'s' * (len(jobs) != 1)}"
        + (f" ({', '.join(j.name for j in jobs)})" if jobs else "")
        + f"; {choice.describe()}"
    )
    try:
        scheduler.run(stop)
    finally:
        lock.release()
    output.message("scheduler stopped")


@scheduler_app.command("start")
def start_cmd(
    backend: BackendOption = None,
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """Start the scheduler in the background: one per project, its log under .ame/schedule/.

    Example: [bold]ame scheduler start && ame scheduler status[/bold]
    """
    from ame.cli import output
    from ame.schedule import daemon

    project = _load(file)
    from ame.backends.select import choose_backend

    _warn_double_run(project, choose_backend(backend, project).kind)
    extra = ["--backend", backend] if backend else []
    if tracking_uri:
        extra += ["--tracking-uri", tracking_uri]
    info = daemon.start(project.file, project.root, extra)
    output.message(f"scheduler started (pid {info.pid}), log: {info.log}")
    from ame.schedule.jobs import project_jobs

    if not project_jobs(project):
        output.message("note: the project has no scheduled jobs yet; ame.yml edits are picked up")


@scheduler_app.command("stop")
def stop_cmd(file: FileOption = None) -> None:
    """Stop the project's background scheduler and the runs it started.

    Example: [bold]ame scheduler stop[/bold]
    """
    from ame.cli import output
    from ame.schedule import daemon

    project = _load(file)
    info, orphans = daemon.stop(project.root)
    if orphans:
        output.message(f"ended {orphans} run{'s' * (orphans != 1)} a gone scheduler had left")
    if info is None:
        output.message("no scheduler is running for this project")
        return
    output.message(f"scheduler stopped (pid {info.pid})")


@scheduler_app.command("status")
def status_cmd(file: FileOption = None, as_json: JsonOption = False) -> None:
    """Whether a scheduler runs for the project: exit 0 running, 1 stopped.

    Example: [bold]ame scheduler status || ame scheduler start[/bold]
    """
    from ame.cli import output
    from ame.schedule.daemon import running

    project = _load(file)
    info = running(project.root)
    if as_json:
        print_json({"running": info is not None, "pid": info.pid if info else None,
                    "log": info.log if info else None})  # fmt: skip
    elif info is not None:
        output.message(f"running (pid {info.pid}), log: {info.log}")
    else:
        output.message("stopped: no scheduler is running for this project")
    if info is None:
        raise typer.Exit(1)


def echo_unscheduled(project: Project) -> None:
    """Print, on stderr, the one-line notice that the project's schedules have no scheduler.

    ``ame validate``, ``ame train`` and ``ame status`` call this: a schedule in
    ame.yml that nothing runs is never silent.
    """
    from ame.cli import output
    from ame.schedule.notice import unscheduled_notice

    note = unscheduled_notice(project)
    if note is not None:
        output.message(note, style="yellow", err=True)
