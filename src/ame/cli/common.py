"""Options and helpers shared by every command group.

Kept tiny and import-light: every command module imports this at start-up, so
anything heavy here would slow ``ame --help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

TrackingUriOption = Annotated[
    Optional[str],
    typer.Option(
        "--tracking-uri",
        envvar="MLFLOW_TRACKING_URI",
        help="MLflow tracking server to use instead of the project's embedded store.",
        show_default=False,
    ),
]

FileOption = Annotated[
    Optional[Path],
    typer.Option(
        "-f",
        "--file",
        help="The ame.yml to read (default: ame.yml or ame.yaml, searched upwards).",
        show_default=False,
    ),
]

CpuOnlyOption = Annotated[
    bool,
    typer.Option(
        "--cpu-only",
        help="Run tasks that ask for nvidia.com/gpu on this machine without any GPU.",
    ),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout, untouched by Rich markup."""
    import json

    typer.echo(json.dumps(data, indent=2, default=str))
