"""``ame monitor``: a version's logged traffic against its reference.

Commands only: the check lives in ``ame.monitoring``. Exit codes, as for a
validation gate: 0 within thresholds, 1 drift (or the monitoring task failed),
2 nothing to check (no traffic in the window, no reference) or bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ame.cli.common import FileOption, JsonOption, TrackingUriOption, print_json


def monitor(
    model: Annotated[
        str, typer.Argument(help="NAME, NAME@ALIAS or NAME/VERSION (default: latest).")
    ],
    since: Annotated[
        str,
        typer.Option("--since", help="How far back to look: 30m, 24h, 7d... ('all': everything)."),
    ] = "24h",
    reference: Annotated[
        Optional[str],
        typer.Option(
            "--reference",
            help="Compare with this dataset of ame.yml, or a .parquet/.csv/.jsonl file or folder.",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Optional[Path],
        typer.Option("--html", help="Also write the report, with a plot per feature, here."),
    ] = None,
    builtin: Annotated[
        bool,
        typer.Option(
            "--builtin", help="Run the built-in drift check even if monitoring.task is set."
        ),
    ] = False,
    no_track: Annotated[
        bool, typer.Option("--no-track", help="Do not record the check as an MLflow run.")
    ] = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a served version for drift: PSI and KS/chi² per feature, predictions, volume.

    Exit 0 within monitoring.thresholds, 1 over them, 2 with no traffic in the window.
    Example: [bold]ame monitor iris@champion --since 24h --html drift.html[/bold]
    """
    from ame.cli.backend_cmds import load_optional_project
    from ame.cli.output import message
    from ame.monitoring.section import monitoring_task
    from ame.registry.store import resolve_store
    from ame.registry.uris import parse_model_ref

    project = load_optional_project(file)
    store = resolve_store(tracking_uri, project.root if project is not None else None)
    name = parse_model_ref(model).name or model
    spec = _model_spec(project, name)
    scheduled = spec is not None and spec.monitoring is not None and spec.monitoring.schedule
    if scheduled and project is not None and not _scheduler_running(project.root):
        schedule = spec.monitoring.schedule
        message(
            f"note: monitoring.schedule '{getattr(schedule, 'cron', schedule)}' is not run "
            f"by anything: no scheduler runs for this project (`ame scheduler start`); "
            f"`ame monitor {name}` runs the check now",
            err=True,
        )
    task = monitoring_task(project, name)
    if task is not None and not builtin:
        _run_task(project, task, store, model)
        return
    from ame.monitoring.check import parse_window, run_check

    window = None if since.strip().lower() == "all" else parse_window(since)
    result = run_check(
        store, model, project=project, since=window, reference=reference, track=not no_track
    )
    if html is not None:
        from ame.monitoring.report import write_report

        written = write_report(result, html)
    if json_out:
        data = result.as_dict()
        if html is not None:
            data["html"] = str(written)
        print_json(data)
    else:
        _show(result)
        if html is not None:
            message(f"report: {written}")
    if result.drifted:
        raise typer.Exit(1)


def _scheduler_running(root: Path) -> bool:
    """Whether ``ame scheduler`` runs for the project (then it runs the schedule, no note)."""
    try:
        from ame.schedule.daemon import running
    except ImportError:  # a build of ame without the scheduler
        return False
    return running(root) is not None


def _model_spec(project: Any, name: str) -> Any:
    if project is None:
        return None
    try:
        return project.model(name)
    except KeyError:
        return None


def _run_task(project: Any, task: Any, store: Any, ref: str) -> None:
    from ame.cli.output import message
    from ame.monitoring.section import run_monitoring_task

    message(f"running monitoring task '{task.name}' for {ref}", err=True)
    run = run_monitoring_task(project, task, store, ref, on_output=lambda line: typer.echo(line))
    message(f"monitoring task '{task.name}': {run.status} (exit {run.exit_code})", err=True)
    if not run.ok:
        raise typer.Exit(run.exit_code or 1)


def _show(result: Any) -> None:
    from ame.cli import output

    when = "all logged traffic" if result.since is None else "the window"
    output.message(
        f"{result.model} version {result.version}: {result.requests} requests, {result.rows} rows "
        f"in {when} ({result.requests_per_hour:.1f}/hour), latency p95 "
        f"{result.latency_p95_ms:.2f} ms; reference {result.reference}"
    )
    columns = ("column", "kind", "psi", "test", "p-value", "missing ref/now", "state")
    rows = []
    for prefix, items in (("", result.features), ("prediction:", result.predictions)):
        for c in items:
            state = (
                output.Styled("DRIFT", "bold red") if c.drifted else output.Styled("ok", "green")
            )
            rows.append((f"{prefix}{c.name}", c.kind, f"{c.psi:.4f}", c.test, f"{c.p_value:.4g}",
                         f"{c.missing_reference:.1%}/{c.missing_current:.1%}", state))  # fmt: skip
    output.table(columns, rows, title="drift")
    if not result.predictions:
        output.message("predictions: not compared (the reference holds no output.* columns)")
    thresholds = result.thresholds
    verdict = "drift detected" if result.drifted else "within thresholds"
    output.message(f"{verdict} (psi > {thresholds.psi}, p-value < {thresholds.p_value})",
                   style="bold red" if result.drifted else "green")  # fmt: skip
    sys.stdout.flush()
