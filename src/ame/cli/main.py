"""The ``ame`` application: global options, the command table and error presentation.

The commands are listed once, in ``COMMANDS``, and imported only when used
(``ame.cli.lazy``); this module turns errors into exit codes. User errors
(``AmeError``, usage errors) print one line and never a traceback, unless
``--debug`` is given. ``run`` is the one entry point: the console script, and
``python -m ame.cli.main`` for the processes ame starts itself (deployment
servers, the scheduler, scheduled tasks).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Annotated

import typer

from ame import __version__
from ame.cli.lazy import LazyGroup
from ame.errors import AmeError, SpecError

# Every top-level command, in help order, and where it is defined.
COMMANDS = {
    "init": "ame.cli.lifecycle_cmds:init",
    "validate": "ame.cli.project_cmds:validate",
    "show": "ame.cli.project_cmds:show",
    "task": "ame.cli.task_cmds:task_app",
    "secret": "ame.cli.task_cmds:secret_app",
    "train": "ame.cli.lifecycle_cmds:train",
    "status": "ame.cli.lifecycle_cmds:status",
    "model": "ame.cli.model_cmds:model_app",
    "serve": "ame.cli.serve_cmds:serve",
    "deploy": "ame.cli.serve_cmds:deploy",
    "deployment": "ame.cli.serve_cmds:deployment_app",
    "backend": "ame.cli.backend_cmds:backend_app",
    "render": "ame.cli.render_cmds:render_app",
    "image": "ame.cli.image_cmds:image_app",
    "predict": "ame.cli.batch_cmds:predict",
    "batch": "ame.cli.batch_cmds:batch",
    "monitor": "ame.cli.monitor_cmds:monitor",
    "schedule": "ame.cli.schedule_cmds:schedule_app",
    "scheduler": "ame.cli.schedule_cmds:scheduler_app",
    "package": "ame.cli.package_cmds:package_app",
    "ui": "ame.cli.ui_cmds:ui",
}


class _Commands(LazyGroup):
    lazy = COMMANDS


app = typer.Typer(
    cls=_Commands,
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
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Show MLflow's and other libraries' log lines.",
            envvar="AME_VERBOSE",
        ),
    ] = False,
) -> None:
    """ame: one ame.yml, one CLI, from training to serving."""
    # ``run`` parses with the collector off (see there); the command itself runs
    # with it on, and never rescans what start-up created.
    gc.freeze()
    gc.enable()
    from ame import _logging

    if debug:
        os.environ["AME_DEBUG"] = "1"
    if verbose:  # servers and agents this command starts log the same way
        os.environ["AME_VERBOSE"] = "1"
    _logging.configure(verbose=verbose, debug=debug)


def _debug_enabled() -> bool:
    return os.environ.get("AME_DEBUG", "") not in ("", "0") or "--debug" in sys.argv


def _usage_error(exc: typer.TyperException) -> int:
    """Print a usage error as one line (the help for a bare group); returns the exit code."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # ``ame`` or ``ame task`` alone
        typer.echo(exc.format_message())
        return 2
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    typer.echo(f"error: {exc.format_message()}{hint}", err=True)
    return 2


def run() -> None:
    """Console-script entry point: run the app and map errors to exit codes."""
    # Start-up (imports, typer building the command) allocates much and frees
    # nothing: collecting during it is pure cost, ~10% of a quick command.
    gc.disable()
    try:
        result = app(standalone_mode=False)
    except AmeError as exc:
        if _debug_enabled():
            raise
        prefix = "" if isinstance(exc, SpecError) else "error: "
        for line in str(exc).splitlines() or [type(exc).__name__]:
            typer.echo(f"{prefix}{line}" if not isinstance(exc, SpecError) else line, err=True)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # typer's own click: usage errors and friends
        sys.exit(_usage_error(exc))
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    finally:
        gc.enable()
        gc.unfreeze()  # for in-process callers: their later garbage is collectable again
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    run()
