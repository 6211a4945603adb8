"""Small builders shared by the task tests."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

from ame.spec.model import Executor, Project, Task
from tests.helpers import AME, AmeResult, run_ame

PYTHON = sys.executable


def ame(*args: str, cwd: Path, stdin: str | None = None, **env: str) -> AmeResult:
    """``ame`` run in this process on the project's embedded store (``env`` added)."""
    return run_ame(*args, cwd=cwd, input=stdin, env=env)


def ame_process(
    *args: str, cwd: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The real ``ame`` console script, for tests about the processes it leaves (the agent)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
    return subprocess.run(
        [AME, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=600,
    )


def py(code: str) -> str:
    """A shell command running ``code`` with the interpreter found first on PATH."""
    return "python -c " + shlex.quote(textwrap.dedent(code).strip())


def custom(name: str, command: str, **fields: object) -> Task:
    """A ``!custom`` task (runs in the test interpreter's environment)."""
    return Task(name=name, executor=Executor(kind="custom", command=command), **fields)


def add(project: Project, *tasks: Task) -> Project:
    """``project`` with ``tasks`` appended."""
    project.tasks.extend(tasks)
    return project
