"""``ame init``, ``ame train``, ``ame status`` and ``ame model validate``: the model's life."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ame.cli.backend_cmds import BackendOption, task_backend
from ame.cli.common import (
    CpuOnlyOption,
    FileOption,
    JsonOption,
    TrackingUriOption,
    console,
    print_json,
)


def _load(file: Optional[Path], tracking_uri: Optional[str]):  # type: ignore[no-untyped-def]
    from ame.registry.store import resolve_store
    from ame.spec import load_project

    project = load_project(file)
    return project, resolve_store(tracking_uri, project_root=project.root)


def _stream(line: str) -> None:
    from rich.markup import escape

    # The task's own text is never read as markup ("[INFO]", "[/x]" are data).
    console.print(f"[dim]│[/dim] {escape(line)}", markup=True, highlight=False, soft_wrap=True)


def _event(message: str) -> None:
    console.print(f"[bold cyan]ame[/bold cyan] {message}")


def init(
    directory: Annotated[Path, typer.Argument(help="Where to write the project.")] = Path("."),
    name: Annotated[
        Optional[str], typer.Option("--name", help="Project name (default: the directory's).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a golden-path project: training/, serving/, common/, validation/ and ame.yml.

    Example: [bold]ame init demo && cd demo && ame train demo_model[/bold]
    """
    from ame.scaffold import init_project, scaffold_values

    written = init_project(directory, name, force=force)
    values = scaffold_values(directory, name)
    console.print(f"wrote {len(written)} files to {directory.resolve()}")
    console.print(
        f"next: cd {directory} && ame train {values['model']}   "
        "(train -> validate -> promote -> deploy)"
    )


def train(
    model: Annotated[str, typer.Argument(help="The model to train, as named in ame.yml.")],
    allow_same_version: Annotated[
        bool,
        typer.Option(
            "--allow-same-version",
            help="Register a new version even if this code version was already trained.",
        ),
    ] = False,
    deploy: Annotated[
        Optional[bool],
        typer.Option(
            "--deploy/--no-deploy",
            help="Override the model's deployment.autoDeploy.",
            show_default=False,
        ),
    ] = None,
    cpu_only: CpuOnlyOption = False,
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    backend: BackendOption = None,
) -> None:
    """Train MODEL, validate the new version, promote it and deploy it if autoDeploy is set.

    Exit codes: 0 promoted, 1 training or validation failed, 2 bad input.

    Example: [bold]ame train logreg[/bold]
    """
    from ame import lifecycle

    project, store = _load(file, tracking_uri)
    from ame.backends.kubernetes.keys import model_tasks, warn_unless_cluster

    warn_unless_cluster(
        project, backend=backend, models=[model], tasks=model_tasks(project, model)
    )
    from ame.cli.schedule_cmds import echo_unscheduled

    echo_unscheduled(project)
    result = lifecycle.train(
        project,
        model,
        store,
        allow_same_version=allow_same_version,
        deploy=deploy,
        on_event=_event,
        on_output=_stream,
        cpu_only=cpu_only,
        backend=task_backend(backend, project, tracking_uri),
    )
    summary = f"{result.model} version {result.version}: validation {result.validation}"
    if result.promoted:
        summary += f", promoted to @{result.alias}"
    if result.deployment_url:
        summary += f", served at {result.deployment_url}"
    console.print(f"[bold green]done[/bold green] {summary}")


def status(
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each model's latest version, its validation state, the champion and the deployment.

    Example: [bold]ame status --json[/bold]
    """
    from dataclasses import asdict

    from ame import lifecycle
    from ame.cli import output

    project, store = _load(file, tracking_uri)
    from ame.cli.schedule_cmds import echo_unscheduled

    echo_unscheduled(project)
    rows_in = lifecycle.status(project, store)
    if as_json:
        print_json([asdict(r) for r in rows_in])
        return
    rows = [
        (
            r.model,
            r.latest_version or "-",
            r.latest_validation or "-",
            f"@{r.champion_alias} -> {r.champion_version}" if r.champion_version else "-",
            r.deployed_version or "-",
            r.deployment_url or "-",
        )
        for r in rows_in
    ]
    output.table(
        ("model", "latest", "validation", "champion", "deployed", "url"),
        rows,
        title=f"project {project.name}",
    )


def validate_model(
    model: Annotated[str, typer.Argument(help="The model, as named in ame.yml.")],
    version: Annotated[
        Optional[str], typer.Option("--version", help="Version to validate (default: latest).")
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Move the champion alias to it if it passes.")
    ] = False,
    cpu_only: CpuOnlyOption = False,
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    backend: BackendOption = None,
) -> None:
    """Re-run MODEL's validation task on one version; exit 1 if it fails.

    Example: [bold]ame model validate logreg --version 3[/bold]
    """
    from ame import lifecycle
    from ame.errors import ValidationFailedError

    project, store = _load(file, tracking_uri)
    checked, outcome = lifecycle.validate_version(
        project,
        model,
        store,
        version,
        promote_on_pass=promote,
        on_output=_stream,
        cpu_only=cpu_only,
        backend=task_backend(backend, project, tracking_uri),
    )
    if outcome == lifecycle.FAILED:
        raise ValidationFailedError(f"{model} version {checked} failed validation")
    console.print(f"{model} version {checked}: validation {outcome}")
