"""``ame serve``, ``ame deploy`` and ``ame deployment list|stop|logs``.

Commands only: the server lives in ``ame.serving``, deployments in
``ame.backends.local``. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ame.cli.common import (
    FileOption,
    JsonOption,
    TrackingUriOption,
    console,
    print_json,
    project_root,
)
from ame.cli.render_cmds import BackendOption, DryRunOption

deployment_app = typer.Typer(
    name="deployment",
    help="Deployments on every configured backend: list, stop, logs.",
    no_args_is_help=True,
)

HostOption = Annotated[str, typer.Option("--host", help="Interface to listen on.")]
PortOption = Annotated[
    Optional[int],
    typer.Option(
        "--port",
        "-p",
        help="Port (default: ame.yml deployment.port, else 8080).",
        show_default=False,
    ),
]
GrpcPortOption = Annotated[
    Optional[int],
    typer.Option(
        "--grpc-port",
        min=1,
        max=65535,
        help="Also serve the open inference protocol v2 over gRPC on this port.",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        "-w",
        min=1,
        help="Worker processes (default: ame.yml deployment.replicas, else 1).",
        show_default=False,
    ),
]
BatchOption = Annotated[
    Optional[int],
    typer.Option(
        "--max-batch-size",
        min=1,
        help="Most requests merged into one predict call (1 = off).",
        show_default=False,
    ),
]
LatencyOption = Annotated[
    Optional[float],
    typer.Option(
        "--max-latency-ms",
        min=0.0,
        help="Longest extra wait for a batch to fill.",
        show_default=False,
    ),
]
PollOption = Annotated[
    Optional[float],
    typer.Option(
        "--poll-interval",
        help="Seconds between registry polls when following an alias (default: 5).",
        show_default=False,
    ),
]


def _on_cluster(backend: Optional[str], file: Optional[Path], model: str) -> bool:
    """True for the kubernetes backend; on the local one, warn about cluster-only keys."""
    from ame.cli.render_cmds import choose_backend, project_or_none

    project = project_or_none(file)
    if choose_backend(backend, project) == "kubernetes":
        return True
    if project is not None:
        from ame.backends.kubernetes.keys import warn_local

        warn_local(project, models=[model], tasks=[])
    return False


def _setup_logging() -> None:
    """The server's own lines (and uvicorn's) at INFO; libraries' only with --verbose."""
    from ame import _logging

    _logging.configure(
        verbose=os.environ.get("AME_VERBOSE", "") not in ("", "0"),
        debug="--debug" in sys.argv or os.environ.get("AME_DEBUG", "") not in ("", "0"),
        ame_level=logging.INFO,
        also_own=("uvicorn",),
        fmt="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve(
    model: Annotated[
        str,
        typer.Argument(help="NAME, NAME@ALIAS, NAME/VERSION, models:/..., or a model directory."),
    ],
    host: HostOption = "127.0.0.1",
    port: PortOption = None,
    grpc_port: GrpcPortOption = None,
    workers: WorkersOption = None,
    max_batch_size: BatchOption = None,
    max_latency_ms: LatencyOption = None,
    max_body_bytes: Annotated[
        Optional[int],
        typer.Option(
            "--max-body-bytes", min=1, help="Larger request bodies get 413 (default: 16 MiB)."
        ),
    ] = None,
    poll_interval: PollOption = None,
    max_memory: Annotated[
        Optional[str],
        typer.Option(
            "--max-memory",
            help="Resident memory per worker, e.g. 2Gi; a worker over it is restarted "
            "(default: ame.yml deployment.resources.memory, else none).",
            show_default=False,
        ),
    ] = None,
    log_payloads: Annotated[
        bool,
        typer.Option(
            "--log-payloads",
            help="Log requests and predictions for `ame monitor` (also on with ame.yml "
            "monitoring.log).",
        ),
    ] = False,
    sample_rate: Annotated[
        Optional[float],
        typer.Option(
            "--sample-rate",
            min=0.0,
            max=1.0,
            help="Share of requests logged (default: monitoring.log.sampleRate, else 1).",
            show_default=False,
        ),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
    # Only a marker on the command line: ``deployment stop`` finds a local
    # deployment's server by it even when its record lost the pid. The server
    # never reads or writes the record.
    record: Annotated[Optional[Path], typer.Option("--record", hidden=True)] = None,
) -> None:
    """Serve a model over HTTP: MLflow scoring (/invocations) and open inference protocol v2.

    Example: [bold]ame serve iris@champion --port 8080 --workers 2[/bold]
    """
    from ame.backends.local import apply_resources
    from ame.errors import ServingError
    from ame.serving.options import options_for
    from ame.serving.server import serve as run_server
    from ame.serving.sources import parse_source

    spec = parse_source(model)
    name: Optional[str] = None
    if spec.kind == "registry" and not model.startswith("runs:/"):
        from ame.registry.uris import parse_model_ref

        name = parse_model_ref(model).name or None
        if name:
            from ame.backends.kubernetes.keys import warn_for_model

            warn_for_model(name, project_root(file))
    memory: Optional[int] = None
    if max_memory is not None:
        from ame.spec.units import parse_bytes

        try:
            memory = parse_bytes(max_memory)
        except ValueError as exc:
            raise ServingError(f"--max-memory: {exc}") from exc
    # One merge: these flags, then ame.yml's deployment section, then the defaults.
    options = options_for(
        name,
        project_root(file),
        {
            "host": host,
            "port": port,
            "grpc_port": grpc_port,
            "workers": workers,
            "max_batch_size": max_batch_size,
            "max_latency_ms": max_latency_ms,
            "max_body_bytes": max_body_bytes,
            "poll_interval": poll_interval,
            "max_memory": memory,
            "log_payloads": log_payloads,
            "sample_rate": sample_rate,
        },
    )
    if options.resources is not None:
        # cpu pins and GPUs only; the memory limit is options.max_memory
        apply_resources(options.resources)
    _setup_logging()
    run_server(
        model,
        options,
        tracking_uri=tracking_uri,
        payload_log=_payload_log(model, file, tracking_uri, log_payloads, sample_rate),
    )


def _payload_log(
    model: str,
    file: Optional[Path],
    tracking_uri: Optional[str],
    log_payloads: bool,
    sample_rate: Optional[float],
) -> object:
    """The payload log settings (ame.monitoring) for a registered model, else None."""
    from ame.registry.uris import parse_model_ref
    from ame.serving.sources import names_registered_model

    if not names_registered_model(model):
        if log_payloads:
            from ame.errors import ServingError

            raise ServingError("--log-payloads needs a registered model (NAME, NAME@ALIAS...)")
        return None
    from ame.monitoring.serving import settings_for

    return settings_for(
        parse_model_ref(model).name or model,
        project_root=project_root(file),
        tracking_uri=tracking_uri,
        log_payloads=log_payloads,
        sample_rate=sample_rate,
    )


def deploy(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[Optional[str], typer.Option("--version", help="Pin this version.")] = None,
    alias: Annotated[
        Optional[str], typer.Option("--alias", help="Follow this alias (hot swaps).")
    ] = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = None,
    grpc_port: GrpcPortOption = None,
    workers: WorkersOption = None,
    max_batch_size: BatchOption = None,
    max_latency_ms: LatencyOption = None,
    poll_interval: Annotated[
        Optional[float],
        typer.Option("--poll-interval", help="Registry poll period when following an alias."),
    ] = None,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
    json_out: JsonOption = False,
    backend: BackendOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Start a model's local deployment in the background and print its URL.

    Without --version or --alias the champion alias is followed (else the latest
    version is pinned). Example: [bold]ame deploy iris --alias champion[/bold]
    With --backend kubernetes the champion is rolled out on the cluster (see
    docs/kubernetes.md); --dry-run prints what would be applied. With --backend ray it
    is a Ray Serve application (see docs/backends.md).
    """
    from ame.cli.backend_cmds import deploy_on_ray, wants_ray

    if wants_ray(backend, file):
        deploy_on_ray(
            model, file, tracking_uri, backend, version=version, alias=alias, workers=workers,
            max_batch_size=max_batch_size, max_latency_ms=max_latency_ms, port=port,
            grpc_port=grpc_port, json_out=json_out,
        )  # fmt: skip
        return
    if _on_cluster(backend, file, model):
        from ame.cli.render_cmds import cluster_deploy

        cluster_deploy(model, file, tracking_uri, dry_run, version=version)
        return
    from ame.backends.local import deploy as run_deploy
    from ame.serving.options import options_for

    root = project_root(file)
    # One merge: these flags, then ame.yml's deployment section, then the defaults.
    options = options_for(
        model,
        root,
        {
            "host": host,
            "port": port,
            "grpc_port": grpc_port,
            "workers": workers,
            "max_batch_size": max_batch_size,
            "max_latency_ms": max_latency_ms,
            "poll_interval": poll_interval,
        },
    )
    info = run_deploy(
        model,
        version=version,
        alias=alias,
        project_root=root,
        tracking_uri=tracking_uri,
        options=options,
    )
    if json_out:
        print_json({**info.record(), "backend": "local"})
    else:
        console.print(
            f"{info.model} version {info.version} ({info.ref}) "
            f"serving at {info.url} (pid {info.pid})"
        )


@deployment_app.command("list")
def list_cmd(
    file: FileOption = None,
    json_out: JsonOption = False,
    backend: BackendOption = None,
    tracking_uri: TrackingUriOption = None,
) -> None:
    """List deployments with their backend, version, URL and state.

    Without --backend, every configured backend: local always, Ray when ame.yml,
    AME_BACKEND or RAY_ADDRESS names it, Kubernetes when ame.yml or AME_BACKEND
    does. A backend that cannot be reached is one line on stderr (exit 0).
    Example: [bold]ame deployment list --json[/bold]
    """
    from ame.backends.select import choose_backend, deployments_everywhere, open_backend
    from ame.cli.backend_cmds import load_optional_project

    project = load_optional_project(file)
    root = project.root if project else project_root(file)
    if backend:
        # the one backend asked for: its failure is the command's, with its own exit code
        engine = open_backend(choose_backend(backend, project), root, tracking_uri)
        views = engine.list_deployments()
    else:
        views, unreachable = deployments_everywhere(project, root, tracking_uri)
        for missing in unreachable:
            typer.secho(missing.line(), fg="yellow", err=True)
    if json_out:
        print_json([v.as_dict() for v in views])
        return
    if not views:
        console.print("no deployments")
        return
    from ame.cli import output

    colours = {"ready": "green", "not ready": "yellow", "dead": "red"}
    output.table(
        ("backend", "model", "version", "ref", "url", "replicas", "state", "pid"),
        [
            (v.backend, v.model, v.version, v.ref, v.url, str(v.replicas),
             output.Styled(v.state, colours.get(v.state, "yellow")),
             str(v.detail.get("pid", "-")))
            for v in views
        ],
    )  # fmt: skip


@deployment_app.command("stop")
def stop_cmd(
    model: Annotated[str, typer.Argument(help="Model whose deployment to stop.")],
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to drain before killing.")
    ] = 30.0,
    file: FileOption = None,
    backend: BackendOption = None,
) -> None:
    """Stop a deployment: locally, drain in-flight requests, then stop; removes its record.

    With --backend kubernetes (or ray), the backend stops it (on Kubernetes: ame's
    Deployment, Service, Ingress, PDB, HPA and KServe InferenceService of the model are
    deleted; its CronJobs are left, and one line says how to remove them).
    Example: [bold]ame deployment stop iris[/bold]
    """
    if backend not in (None, "local"):
        view = _cluster_backend(backend, file).stop_deployment(model)
        console.print(
            f"stopped {view.model} on {view.backend} ({view.detail.get('deployment', '')})"
        )
        return
    from ame.backends.local import stop_deployment

    info = stop_deployment(model, project_root(file), timeout=timeout)
    console.print(f"stopped {info.model} (pid {info.pid})")


@deployment_app.command("logs")
def logs_cmd(
    model: Annotated[str, typer.Argument(help="Model whose deployment log to show.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="Keep printing new lines.")
    ] = False,
    file: FileOption = None,
    backend: BackendOption = None,
    tail: Annotated[
        Optional[int], typer.Option("--tail", help="With --backend: only the last N lines.")
    ] = None,
) -> None:
    """Print a deployment's log (locally: stdout and stderr of its server).

    With --backend kubernetes, each of the model's pods' server logs.
    Example: [bold]ame deployment logs iris --follow[/bold]
    """
    if backend not in (None, "local"):
        if follow:
            from ame.errors import DeploymentError

            raise DeploymentError(f"--follow is for local deployments (on {backend}: --tail N)")
        for line in _cluster_backend(backend, file).deployment_logs(model, tail):
            typer.echo(line)
        return
    from ame.backends.local import get_deployment

    info = get_deployment(model, project_root(file))
    path = Path(info.log)
    if not path.exists():
        from ame.errors import DeploymentError

        raise DeploymentError(f"the log of '{model}' ({path}) does not exist")
    with path.open("rb") as fh:
        sys.stdout.buffer.write(fh.read())
        sys.stdout.flush()
        while follow:
            chunk = fh.read()
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            else:
                time.sleep(0.3)


def _cluster_backend(flag: str, file: Optional[Path]) -> Any:
    """The backend ``--backend`` names, opened on the project (if any)."""
    from ame.backends.select import choose_backend as choose
    from ame.backends.select import open_backend
    from ame.cli.backend_cmds import load_optional_project

    project = load_optional_project(file)
    return open_backend(choose(flag, project), project.root if project else None)
