"""The ``ame`` application: global options, command groups and error presentation.

Every command module exposes ``register(app)``; this module only assembles them
and turns errors into exit codes. User errors (``AmeError``, usage errors) print
one line and never a traceback, unless ``--debug`` is given.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import click
import typer

from ame import __version__
from ame.errors import AmeError, SpecError

app = typer.Typer(
    name="ame",
    help="Train, validate, register, package, deploy and serve models defined in ame.yml.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ame {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks and debug logs.", envvar="AME_DEBUG")
    ] = False,
) -> None:
    """ame: one ame.yml, one CLI, from training to serving."""
    if debug:
        os.environ["AME_DEBUG"] = "1"
        logging.basicConfig(level=logging.DEBUG)


def _register_groups() -> None:
    # Imported here, not at module top, so that a broken optional module never
    # hides the others and the import order stays explicit.
    from ame.cli import commands

    for module in commands.modules():
        module.register(app)


_register_groups()


def _debug_enabled() -> bool:
    return os.environ.get("AME_DEBUG", "") not in ("", "0") or "--debug" in sys.argv


def run() -> None:
    """Console-script entry point: run the app and map errors to exit codes."""
    try:
        result = app(standalone_mode=False)
    except AmeError as exc:
        if _debug_enabled():
            raise
        prefix = "" if isinstance(exc, SpecError) else "error: "
        for line in str(exc).splitlines() or [type(exc).__name__]:
            typer.echo(f"{prefix}{line}" if not isinstance(exc, SpecError) else line, err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code not in (0, 1) else exc.exit_code or 2)
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    run()
