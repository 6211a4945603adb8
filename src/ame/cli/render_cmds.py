"""``ame render kubernetes``, and the ``--backend kubernetes`` paths of ``deploy`` and ``task run``.

Presentation only: objects are made in ``ame.backends.kubernetes``. The YAML
goes to stdout (or to files with ``-o``); every other line goes to stderr, so
``ame render kubernetes | kubectl apply -f -`` works.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ame.cli.common import FileOption, TrackingUriOption

if TYPE_CHECKING:
    from ame.backends.kubernetes.apply import Plan
    from ame.spec.model import Project

render_app = typer.Typer(
    name="render",
    help="The project as another system's objects (Kubernetes manifests), validated.",
    no_args_is_help=True,
)

BackendOption = Annotated[
    Optional[str],
    typer.Option(
        "--backend",
        help="Where to run: local, ray or kubernetes (default: $AME_BACKEND, else ame.yml "
        "backend.kind, else local).",
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="With --backend kubernetes: print what would be applied."),
]


def project_or_none(file: Optional[Path]) -> Optional[Project]:
    """The project, or None where there is none (``ame deploy`` works outside a project).

    Only a file named with ``-f`` must load: a broken ame.yml found by searching
    upwards is ``ame validate``'s business, not a reason to refuse a local deploy.
    """
    from ame.errors import AmeError
    from ame.spec import load_project

    try:
        return load_project(file)
    except AmeError:
        if file is not None:
            raise
        return None


def choose_backend(flag: Optional[str], project: Optional[Project]) -> str:
    """The backend kind: ``--backend``, else ``$AME_BACKEND``, else ame.yml, else ``local``.

    ``ame.backends.select`` decides the precedence for every command; this is its kind.
    """
    from ame.backends.select import choose_backend as choose

    return choose(flag, project).kind


@render_app.command("kubernetes")
def kubernetes_cmd(
    out: Annotated[
        Optional[Path],
        typer.Option(
            "-o", "--output", help="Write one YAML file per model/task here.", show_default=False
        ),
    ] = None,
    model: Annotated[
        Optional[list[str]], typer.Option("--model", help="Only this model (repeatable).")
    ] = None,
    task: Annotated[
        Optional[list[str]], typer.Option("--task", help="Only this task (repeatable).")
    ] = None,
    kube_version: Annotated[
        Optional[str],
        typer.Option(
            "--kube-version",
            help="Also validate for this Kubernetes X.Y (1.25 and 1.37 always).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="plain (Deployment+Service) or kserve.")
    ] = "plain",
    source: Annotated[
        str, typer.Option("--source", help="How pods get the project: auto, git or archive.")
    ] = "auto",
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not ask the registry which version to pin.")
    ] = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Write the project as Kubernetes manifests: Jobs, CronJobs, Deployments, Ingresses...

    Every object is validated against the Kubernetes 1.25 and 1.37 schemas first;
    if one fails nothing is written. Example:
    [bold]ame render kubernetes --tracking-uri http://mlflow.ml:5000 -o k8s/[/bold]
    """
    from ame.backends.kubernetes.apply import render_options
    from ame.backends.kubernetes.errors import KubernetesError
    from ame.backends.kubernetes.render import (
        render_project,
        to_yaml,
        validate_rendered,
        write_rendered,
    )
    from ame.spec import load_project

    if fmt not in ("plain", "kserve"):
        raise KubernetesError(f"--format must be plain or kserve, got {fmt!r}")
    if source not in ("auto", "git", "archive"):
        raise KubernetesError(f"--source must be auto, git or archive, got {source!r}")
    if kube_version is not None:
        from ame.backends.kubernetes.validate import supported_versions

        known = supported_versions()
        if kube_version not in known:
            raise KubernetesError(
                f"--kube-version {kube_version}: the schemas cover {known[0]} to {known[-1]}"
            )
    project = load_project(file)
    options = render_options(
        project, tracking_uri, fmt=fmt, source=source, kube_version=kube_version,
        models=model, offline=offline,
    )  # fmt: skip
    rendered = render_project(project, options, models=model, tasks=task)
    validate_rendered(rendered, options.kube_versions)
    versions = ", ".join(options.kube_versions)
    if out is None:
        sys.stdout.write(to_yaml(item.obj for item in rendered))
        typer.echo(f"{len(rendered)} objects, valid for Kubernetes {versions}", err=True)
        return
    written = write_rendered(rendered, out)
    for path in written:
        typer.echo(str(path), err=True)
    typer.echo(
        f"wrote {len(rendered)} objects in {len(written)} files to {out}, valid for "
        f"Kubernetes {versions}",
        err=True,
    )


def _show_plan(plan: Plan, what: str) -> None:
    from ame.backends.kubernetes.render import to_yaml

    sys.stdout.write(to_yaml(plan.manifests(redact=True)))
    context = plan.target.context or "the current kubeconfig context"
    typer.echo(
        f"dry run: would apply {len(plan.manifests())} objects for {what} to {context}, "
        f"namespace {plan.target.namespace} (server-side apply, field manager ame)",
        err=True,
    )
    if plan.source_uri:
        typer.echo(f"dry run: would upload the project's source to {plan.source_uri}", err=True)


def _banner(plan: Plan) -> None:
    context = plan.target.context or "current context"
    typer.echo(f"backend: kubernetes ({context}, namespace {plan.target.namespace})", err=True)


def cluster_deploy(
    model: str,
    file: Optional[Path],
    tracking_uri: Optional[str],
    dry_run: bool,
    version: Optional[str] = None,
) -> None:
    """``ame deploy M --backend kubernetes``: apply the model's objects, wait for the rollout.

    The champion's version, or ``version`` when the command pins one.
    """
    import dataclasses

    from ame.backends.kubernetes.apply import execute, plan_deploy, render_options, target_for
    from ame.backends.kubernetes.options import ServedVersion
    from ame.spec import load_project

    project = load_project(file)
    options = render_options(project, tracking_uri, models=[model], offline=version is not None)
    if version is not None:
        options = dataclasses.replace(options, versions={model: ServedVersion(version)})
    plan = plan_deploy(project, model, options, target_for(project))
    if dry_run:
        _show_plan(plan, f"model {model}")
        return
    _banner(plan)
    execute(plan, options.tracking_uri, typer.echo)
    version = options.versions[model].version
    typer.echo(f"{model} version {version} rolled out as Deployment {plan.deployment}", err=True)


def cluster_task_run(
    name: str, file: Optional[Path], tracking_uri: Optional[str], dry_run: bool
) -> None:
    """``ame task run T --backend kubernetes``: one Job, its log streamed; exits with its code."""
    from ame.backends.kubernetes.apply import (
        execute,
        new_run_id,
        plan_task,
        render_options,
        target_for,
    )
    from ame.errors import TaskError, TaskFailedError
    from ame.spec import load_project

    project = load_project(file)
    try:
        task = project.task(name)
    except KeyError:
        names = ", ".join(t.name for t in project.all_tasks()) or "none"
        raise TaskError(f"no task '{name}' in {project.file} (tasks: {names})") from None
    options = render_options(project, tracking_uri, offline=True, run_id=new_run_id())
    plan = plan_task(project, task, options, target_for(project))
    if dry_run:
        _show_plan(plan, f"task {name}")
        return
    _banner(plan)
    prefix = typer.style(f"[{name}] ", fg="cyan")
    code = execute(plan, options.tracking_uri, lambda line: typer.echo(prefix + line))
    if code != 0:
        raise TaskFailedError(f"task '{name}' Job {plan.job} failed (exit {code})", exit_code=code)
    typer.secho(f"task '{name}' Job {plan.job} succeeded", fg="green", err=True)
