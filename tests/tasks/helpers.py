"""Small builders shared by the task tests."""

from __future__ import annotations

import shlex
import sys
import textwrap

from ame.spec.model import Executor, Project, Task

PYTHON = sys.executable


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
