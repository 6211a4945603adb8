"""``ame ui``: ame's own web pages (models, versions, packages, deployments, runs).

Only options and the start-up lines live here; the pages are ``ame.ui``,
which calls the same library functions as the other commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ame.cli.common import FileOption, TrackingUriOption, err_console


def ui(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 5000,
    host: Annotated[
        str,
        typer.Option("--host", help="Interface to listen on; any but loopback requires the token."),
    ] = "127.0.0.1",
    token: Annotated[
        Optional[str],
        typer.Option(
            "--token",
            envvar="AME_UI_TOKEN",
            help="Access token every client must give (generated when bound off loopback).",
            show_default=False,
        ),
    ] = None,
    max_upload_mb: Annotated[
        float,
        typer.Option("--max-upload-mb", min=0.001, help="Largest upload accepted, in MiB."),
    ] = 512.0,
    no_mlflow: Annotated[
        bool, typer.Option("--no-mlflow", help="Do not serve MLflow's UI under /mlflow/.")
    ] = False,
    tracking_uri: TrackingUriOption = None,
    file: FileOption = None,
) -> None:
    """Serve ame's pages: models, versions, packages, deployments and runs, with MLflow's UI beside.

    Bound to 127.0.0.1 by default. With any other --host, every client needs
    the access token (printed at start, or given with --token).

    Examples:
      [bold]ame ui[/bold]  then browse http://127.0.0.1:5000
      [bold]ame ui --host 0.0.0.0 --port 8000 --token "$(cat ui.token)"[/bold]
    """
    from ame.errors import ProjectNotFoundError
    from ame.ui.server import Launch, serve

    root: Optional[Path] = None
    if file is not None:
        if not file.exists():
            raise ProjectNotFoundError(f"{file} does not exist")
        root = (file if file.is_dir() else file.parent).resolve()

    def announce(launch: Launch) -> None:
        err_console.print(f"ame ui on {launch.url}  (store {launch.store})")
        if launch.mlflow:
            err_console.print(f"MLflow UI: {launch.mlflow}")
        if launch.token:
            err_console.print(
                f"access token: {launch.token}  (open {launch.url}?token={launch.token})",
                soft_wrap=True,
            )

    serve(
        host=host,
        port=port,
        project_root=root,
        tracking_uri=tracking_uri,
        token=token,
        max_upload=int(max_upload_mb * 1024 * 1024),
        mount_mlflow=not no_mlflow,
        announce=announce,
    )
