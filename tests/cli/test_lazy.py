"""The lazy command table: one list of commands, each imported only when used.

The table in ``ame.cli.main`` is the registration itself, so there is nothing
to keep in step; these tests check that every entry loads, that a command
line imports only its own module, and that usage errors still see every name.
"""

from __future__ import annotations

import subprocess
import sys

from ame.cli.main import COMMANDS
from tests.helpers import run_ame


def _run(*args: str) -> tuple[int, str, str]:
    done = run_ame(*args)
    return done.returncode, done.stdout, done.stderr


def test_every_entry_loads_as_the_command_it_names() -> None:
    import typer

    from ame.cli.lazy import load_command
    from ame.cli.main import app

    for name, target in COMMANDS.items():
        command = load_command(name, target)
        assert command.name == name
        assert (command.help or "").strip(), f"{name} ({target}) has no help"
    group = typer.main.get_group(app)
    assert group.list_commands(None) == list(COMMANDS)  # type: ignore[arg-type]


def _loaded_commands(*argv: str) -> set[str]:
    """The ``ame.cli.*_cmds`` modules a fresh interpreter imports to run ``ame ARGV``."""
    code = (
        "import sys\n"
        "from ame.cli.main import run\n"
        f"sys.argv = ['ame', *{list(argv)!r}]\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(m for m in sys.modules if m.startswith('ame.cli.') and "
        "m.endswith('_cmds')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.strip().splitlines()[-1].split())


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _loaded_commands("task", "run", "--help")
    assert "ame.cli.task_cmds" in loaded
    # render_cmds holds the shared --backend option task_cmds uses; nothing else comes in.
    assert loaded <= {"ame.cli.task_cmds", "ame.cli.render_cmds"}, loaded
    # ``model validate`` lives with the lifecycle commands: not imported for ``model show``.
    assert _loaded_commands("model", "show", "--help") == {"ame.cli.model_cmds"}


def test_unknown_commands_are_suggested_from_every_name() -> None:
    code, _, err = _run("tsk", "run")
    assert code == 2
    assert err.strip() == "error: No such command 'tsk'. Did you mean 'task'? (see 'ame --help')"
    code, _, err = _run("model", "validat")
    assert code == 2 and "Did you mean 'validate'" in err, err
    code, _, err = _run("nothing-like-it")
    assert code == 2 and err.strip().startswith("error: No such command 'nothing-like-it'.")
    assert "Did you mean" not in err


def test_lazily_loaded_nested_command_runs() -> None:
    code, out, _ = _run("model", "validate", "--help")
    assert code == 0 and "--version" in out
    code, out, _ = _run("model", "--help")
    assert code == 0 and "validate" in out and "register" in out
