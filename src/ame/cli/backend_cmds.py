"""``ame backend status``: what the engine has, and ame's jobs and deployments on it.

Presentation only: ``ame.backends.select`` picks the backend (``--backend``,
``AME_BACKEND``, ame.yml, ``local``) and the backend answers with plain
``EngineStatus`` data, shown as tables or ``--json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ame.cli.common import FileOption, JsonOption, TrackingUriOption, print_json

if TYPE_CHECKING:
    from ame.backends.base import Backend
    from ame.backends.select import BackendChoice
    from ame.spec.model import Project, Task

backend_app = typer.Typer(
    help="The engine ame's work runs on: local, or a Ray cluster.", no_args_is_help=True
)

BackendOption = Annotated[
    Optional[str],
    typer.Option(
        "--backend",
        help="Where to run: local, ray or kubernetes (default: AME_BACKEND, then ame.yml "
        "backend.kind, then local).",
        show_default=False,
    ),
]


def load_optional_project(file: Optional[Path]) -> Optional[Project]:
    """The project when there is one (an explicit ``-f`` must exist); None outside any project."""
    from ame.errors import ProjectNotFoundError
    from ame.spec import load_project

    try:
        return load_project(file)
    except ProjectNotFoundError:
        if file is not None:
            raise
        return None


def announce(choice: BackendChoice) -> None:
    """The one line every command that runs work prints about where it runs (stderr)."""
    typer.secho(choice.describe(), dim=True, err=True)


def _gib(amount: int) -> str:
    from ame._system import format_bytes

    return format_bytes(amount)


@backend_app.command("status")
def status_cmd(
    backend: BackendOption = None,
    file: FileOption = None,
    tracking_uri: TrackingUriOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the engine's nodes, CPUs, GPUs and memory, and ame's jobs and deployments on it.

    Example: RAY_ADDRESS=http://127.0.0.1:8265 ame backend status --backend ray
    """
    from ame.backends.select import choose_backend, open_backend
    from ame.cli import output

    project = load_optional_project(file)
    choice = choose_backend(backend, project)
    engine = open_backend(choice, project.root if project else None, tracking_uri)
    status = engine.status()
    if as_json:
        print_json(status.as_dict())
        return
    announce(choice)
    output.message(f"{status.backend} at {status.address}: {status.hosts} host(s)")
    output.table(
        ("node", "state", "cpus", "gpus", "memory", "role"),
        [
            (
                n.address,
                output.Styled("alive", "green") if n.alive else output.Styled("dead", "red"),
                f"{n.cpus:g}",
                f"{n.gpus:g}",
                _gib(n.memory),
                "head" if n.head else "worker",
            )
            for n in status.nodes
        ],
    )
    if status.jobs:
        output.table(
            ("job", "project", "task", "status", "run id", "started"),
            [
                (
                    j.id,
                    j.project,
                    j.task,
                    j.status,
                    j.run_id or "-",
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.started))
                    if j.started
                    else "-",
                )
                for j in status.jobs
            ],
        )
    else:
        output.message("no ame jobs")
    if status.deployments:
        output.table(
            ("model", "version", "url", "state", "replicas"),
            [(d.model, d.version, d.url, d.state, str(d.replicas)) for d in status.deployments],
        )
    else:
        output.message("no ame deployments")


def task_backend(
    flag: Optional[str], project: Project, tracking_uri: Optional[str]
) -> Optional[Backend]:
    """The backend ``ame train`` and ``ame model validate`` run their tasks on.

    None means this machine, through exactly the code local runs always took;
    a cluster backend is announced in one line. Kubernetes runs training
    through its own commands (``ame task run --backend kubernetes``), so here
    it is None as well.
    """
    from ame.backends.select import choose_backend, open_backend

    choice = choose_backend(flag, project)
    if choice.kind == "kubernetes":  # said, not silently done here
        typer.secho(
            "backend: kubernetes: training and validation tasks run on this machine "
            "(`ame task run T --backend kubernetes` runs one as a Job); a promotion "
            "re-applies the model's Deployment on the cluster",
            dim=True,
            err=True,
        )
    if choice.kind != "ray":
        return None
    announce(choice)
    return open_backend(choice, project.root, tracking_uri)


def run_task_on(
    flag: Optional[str],
    project: Project,
    task: Task,
    tracking_uri: Optional[str],
    *,
    extra_env: dict[str, str],
    cpu_only: bool = False,
    rebuild: bool = False,
) -> None:
    """``ame task run`` on a cluster: the same live lines, summary and exit code as locally."""
    from ame._system import format_bytes
    from ame.backends.base import TaskRequest
    from ame.backends.select import choose_backend, open_backend
    from ame.registry.store import resolve_store
    from ame.tasks.tracking import open_tracker

    choice = choose_backend(flag, project)
    announce(choice)
    engine = open_backend(choice, project.root, tracking_uri)
    store = resolve_store(tracking_uri, project.root)
    name = task.name
    prefix = typer.style(f"[{name}] ", fg="cyan")

    def show(line: str) -> None:
        typer.echo(prefix + line)

    tracker = open_tracker(store, use_agent=True)
    try:
        request = TaskRequest(
            project=project,
            task=task,
            store=store,
            extra_env=extra_env,
            cpu_only=cpu_only,
            rebuild=rebuild,
            tracker=tracker,
            on_output=show,
        )
        handle = engine.run_task(request)
        left_out = getattr(handle, "left_out", [])
        if left_out:
            listed = ", ".join(f"{p} ({format_bytes(s)})" for p, s in left_out[:10])
            more = f" and {len(left_out) - 10} more" if len(left_out) > 10 else ""
            typer.secho(f"left out of the job's files (too large): {listed}{more}", err=True)
        typer.secho(f"submitted {choice.kind} job {handle.id}", dim=True, err=True)
        run = handle.wait(show)
    finally:
        tracker.close()
    from ame.cli.task_cmds import report_run

    report_run(name, run)


def wants_ray(flag: Optional[str], file: Optional[Path]) -> bool:
    """True when a deployment or batch command runs on Ray (``--backend``, AME_BACKEND, ame.yml).

    An ame.yml that does not load is the command's own business (a model can be
    served or scored from outside any project): then only the flag and the
    environment decide.
    """
    from ame.backends.select import ENV_BACKEND, choose_backend
    from ame.errors import AmeError

    if flag is not None:
        return flag.strip().lower() == "ray"
    if os.environ.get(ENV_BACKEND, "").strip():
        return os.environ[ENV_BACKEND].strip().lower() == "ray"
    try:
        project = load_optional_project(file)
        return project is not None and choose_backend(None, project).kind == "ray"
    except AmeError:
        return False


def deploy_on_ray(
    model: str,
    file: Optional[Path],
    tracking_uri: Optional[str],
    flag: Optional[str],
    *,
    version: Optional[str] = None,
    alias: Optional[str] = None,
    workers: Optional[int] = None,
    max_batch_size: Optional[int] = None,
    max_latency_ms: Optional[float] = None,
    port: Optional[int] = None,
    grpc_port: Optional[int] = None,
    json_out: bool = False,
) -> None:
    """``ame deploy M --backend ray``: the model as a Ray Serve application, its URL printed.

    The version is chosen as locally (``--version``, ``--alias``, else the
    champion, else the latest). ``--workers`` and the batching options override
    ame.yml's ``replicas`` and ``batching``; ``--port`` has no meaning behind
    Serve's one proxy (one line says so) and gRPC is not served on Ray.
    """
    from ame.backends.base import DeployRequest
    from ame.backends.local import _choose_ref
    from ame.backends.select import choose_backend, open_backend
    from ame.cli import output
    from ame.errors import DeploymentError
    from ame.registry.store import resolve_store
    from ame.serving.options import merge_options
    from ame.spec.model import Deployment

    if grpc_port is not None:
        raise DeploymentError(
            "--grpc-port: ame does not serve v2 gRPC on Ray Serve (HTTP only); "
            "use --backend local for gRPC"
        )
    project = load_optional_project(file)
    choice = choose_backend(flag or "ray", project)
    announce(choice)
    root = project.root if project else None
    if port is not None:
        typer.secho(
            f"--port {port}: has no effect on the ray backend (Serve's proxy has one port for "
            "the cluster: AME_RAY_SERVE_PORT)",
            fg="yellow",
            err=True,
        )
    settings: Optional[Deployment] = None
    champion = "champion"
    if project is not None and any(m.name == model for m in project.models):
        spec = project.model(model)
        champion, settings = spec.champion_alias, spec.deployment
    # One merge (ame.serving.options): these flags, then ame.yml, then defaults.
    flags = {"workers": workers, "max_batch_size": max_batch_size, "max_latency_ms": max_latency_ms}
    options = merge_options(flags, settings)
    store = resolve_store(tracking_uri, project_root=root)
    ref, resolved = _choose_ref(model, version, alias, store, champion)
    engine = open_backend(choice, root, tracking_uri)
    view = engine.deploy(DeployRequest(model, ref, resolved, store, settings, options))
    if json_out:
        print_json(view.as_dict())
        return
    output.message(
        f"{view.model} version {view.version} ({view.ref}) serving at {view.url} "
        f"on ray ({view.replicas} replica(s))"
    )
