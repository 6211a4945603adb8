"""The list of command modules; each exposes ``register(app: typer.Typer)``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType
from typing import Optional

# One module per command group. Each owns its commands' options and output;
# the logic they call lives in the library packages (spec, registry, tasks...).
COMMAND_MODULES = (
    "ame.cli.project_cmds",  # validate, show
    "ame.cli.model_cmds",  # model ..., ui
    "ame.cli.task_cmds",  # task ..., secret ...
    "ame.cli.serve_cmds",  # serve, deploy, deployment ...
    "ame.cli.package_cmds",  # package ...
    "ame.cli.lifecycle_cmds",  # init, train, status, model validate
    "ame.cli.render_cmds",  # render kubernetes
    "ame.cli.image_cmds",  # image dockerfile, image build
    "ame.cli.monitor_cmds",  # monitor
    "ame.cli.batch_cmds",  # predict, batch
    "ame.cli.backend_cmds",  # backend status
    "ame.cli.schedule_cmds",  # schedule list, scheduler run|start|stop|status
)


# The top-level names each module adds. A command line names one of them, and
# only its modules are imported and registered: building every command's
# parameters (typer inspects each signature) costs more than the command itself
# for quick ones such as ``ame task run``. tests/spec/test_spec_cli.py checks this
# table against what the modules really register.
TOP_LEVEL: dict[str, tuple[str, ...]] = {
    "validate": ("ame.cli.project_cmds",),
    "show": ("ame.cli.project_cmds",),
    "model": ("ame.cli.model_cmds", "ame.cli.lifecycle_cmds"),
    "ui": ("ame.cli.model_cmds",),
    "task": ("ame.cli.task_cmds",),
    "secret": ("ame.cli.task_cmds",),
    "serve": ("ame.cli.serve_cmds",),
    "deploy": ("ame.cli.serve_cmds",),
    "deployment": ("ame.cli.serve_cmds",),
    "package": ("ame.cli.package_cmds",),
    "init": ("ame.cli.lifecycle_cmds",),
    "train": ("ame.cli.lifecycle_cmds",),
    "status": ("ame.cli.lifecycle_cmds",),
    "schedule": ("ame.cli.schedule_cmds",),
    "scheduler": ("ame.cli.schedule_cmds",),
    "render": ("ame.cli.render_cmds",),
    "image": ("ame.cli.image_cmds",),
    "monitor": ("ame.cli.monitor_cmds",),
    "predict": ("ame.cli.batch_cmds",),
    "batch": ("ame.cli.batch_cmds",),
    "backend": ("ame.cli.backend_cmds",),
}


def command_name(argv: Sequence[str]) -> Optional[str]:
    """The top-level command in ``argv`` (the first word after the root options), if any."""
    for arg in argv[1:]:
        if not arg.startswith("-"):
            return arg
    return None


def modules(argv: Optional[Sequence[str]] = None) -> list[ModuleType]:
    """Import and return the command modules ``argv`` needs, in help order.

    All of them without ``argv``, or when it names no known command (the root
    help, ``--version``, a typo that deserves the full list of commands).
    """
    name = command_name(argv) if argv is not None else None
    wanted = TOP_LEVEL.get(name) if name is not None else None
    return [
        importlib.import_module(module)
        for module in COMMAND_MODULES
        if wanted is None or module in wanted
    ]
