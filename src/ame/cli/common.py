"""Options and helpers shared by every command group.

Kept tiny and import-light: every command module imports this at start-up, so
anything heavy here would slow ``ame --help``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ame.registry.store import Store
    from ame.spec.model import Project

    console: Console
    err_console: Console

_consoles: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """``console`` and ``err_console``, made on first use (PEP 562).

    Importing Rich costs about 50 ms, more than some commands take (``ame task
    run`` of a quick task prints through plain ``typer.echo``).

    A console whose stream is not a terminal never wraps: Rich would otherwise
    fold every line at 80 columns, mid-message, for a script reading a pipe.
    Tables go through ``ame.cli.output``, which prints them as plain columns there.
    """
    if name not in ("console", "err_console"):
        raise AttributeError(f"module 'ame.cli.common' has no attribute {name!r}")
    if name not in _consoles:
        from rich.console import Console

        made = Console(highlight=False, stderr=name == "err_console")
        if not made.is_terminal:
            made.soft_wrap = True
            made.width = _PIPED_WIDTH
        _consoles[name] = made
    return _consoles[name]


# Wide enough that no line (a tree of ``ame show``, a message) is ever folded
# when piped; Rich pads nothing to this width.
_PIPED_WIDTH = 1 << 14

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


def parse_pairs(items: Iterable[str], what: str) -> dict[str, str]:
    """``KEY=VALUE`` words (``--tag``, ``--env``, ``ame model tag``) as a dict.

    ``what`` names them (``tag``, ``--env``) in the one-line error for a word
    without ``=`` or with an empty key.
    """
    from ame.errors import UsageError

    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"invalid {what} {item!r}: use KEY=VALUE")
        result[key.strip()] = value
    return result


def project_root(file: Optional[Path]) -> Optional[Path]:
    """The project directory ``-f`` names (the file's folder, or the folder given).

    None without ``-f``: the store is then found from the working directory.
    A ``-f`` that does not exist is an error, never silently another project.
    """
    if file is None:
        return None
    if not file.exists():
        from ame.errors import ProjectNotFoundError

        raise ProjectNotFoundError(f"{file} does not exist")
    return (file if file.is_dir() else file.parent).resolve()


def store_for(
    tracking_uri: Optional[str],
    file: Optional[Path] = None,
    *,
    project: Optional[Project] = None,
) -> Store:
    """The store a command uses: ``--tracking-uri``, else the project's embedded one.

    The project is the loaded ``project`` when the command has one, else the
    directory ``-f`` names, else the one found from the working directory.
    """
    from ame.registry.store import resolve_store

    root = project.root if project is not None else project_root(file)
    return resolve_store(tracking_uri, root)
