"""The list of command modules; each exposes ``register(app: typer.Typer)``."""

from __future__ import annotations

import importlib
from types import ModuleType

# One module per command group. Each owns its commands' options and output;
# the logic they call lives in the library packages (spec, registry, tasks...).
COMMAND_MODULES = (
    "ame.cli.project_cmds",  # validate, show
    "ame.cli.model_cmds",  # model ..., ui
    "ame.cli.task_cmds",  # task ..., secret ...
    "ame.cli.serve_cmds",  # serve, deploy, deployment ...
    "ame.cli.package_cmds",  # package ...
    "ame.cli.lifecycle_cmds",  # init, train, status, model validate
)


def modules() -> list[ModuleType]:
    """Import and return every command module, in help order."""
    return [importlib.import_module(name) for name in COMMAND_MODULES]
