"""Command groups whose subcommands are imported when they are used.

Click documents this pattern ("Lazily Loading Subcommands", and pypa/hatch's
``cli/lazy.py``): a group knows each subcommand as ``"module:attribute"`` and
imports the module in ``get_command``, the one place Click asks for a command
by name. ``ame task run`` thus imports the task commands and nothing else,
while ``ame --help`` (which asks every command for its short help) still lists
them all. The table is the registration: there is no second list to keep in
step with what the modules define.

An attribute is either a ``typer.Typer`` (a command group) or a plain
function (one command, its parameters read from its signature as
``app.command()`` would).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any, ClassVar, Optional

import typer
import typer.main
import typer.models
from typer.core import TyperGroup


def load_command(name: str, target: str, rich_markup_mode: Any = "rich") -> Any:
    """Import ``target`` (``"module:attribute"``) and build the Click command ``name`` from it."""
    module_name, _, attribute = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        command: Any = typer.main.get_group(obj)
    else:
        command = typer.main.get_command_from_info(
            typer.models.CommandInfo(name=name, callback=obj),
            pretty_exceptions_short=True,
            rich_markup_mode=rich_markup_mode,
        )
    command.name = name
    return command


class LazyGroup(TyperGroup):
    """A Typer group with subcommands loaded on first use; subclasses set ``lazy``.

    ``lazy`` maps each subcommand name to ``"module:attribute"``, in help
    order. Commands registered the usual way (``@app.command()``) come first.
    """

    lazy: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        # Typer suggests close names among the commands built so far, which
        # here are none yet; ``resolve_command`` suggests among all of them.
        self._suggest_all = self.suggest_commands
        self.suggest_commands = False

    def list_commands(self, ctx: Any) -> list[str]:
        """Every subcommand name, without importing any of them."""
        names = super().list_commands(ctx)
        return [*names, *(name for name in self.lazy if name not in names)]

    def get_command(self, ctx: Any, cmd_name: str) -> Optional[Any]:
        """The subcommand ``cmd_name``, importing its module the first time."""
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy:
            command = load_command(cmd_name, self.lazy[cmd_name], self.rich_markup_mode)
            self.commands[cmd_name] = command
        return command

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[Any, Any, list[str]]:
        """Click's lookup, with "did you mean" among every subcommand, loaded or not."""
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            matches = difflib.get_close_matches(name, self.list_commands(ctx))
            hint = ""
            if matches and self._suggest_all:
                hint = f" Did you mean {', '.join(repr(m) for m in matches)}?"
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)
