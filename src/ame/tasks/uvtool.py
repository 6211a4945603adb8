"""The ``uv`` binary ame builds environments with, and the environment it runs in.

uv ships as a PyPI package carrying its binary, so ame always has a known
version of it. It is run with Python downloads switched off: an environment is
built from an interpreter already on the machine, or not at all.
"""

from __future__ import annotations

import functools
import os
import shutil


@functools.lru_cache(maxsize=1)
def uv_bin() -> str:
    """Path of the uv executable (the PyPI package's, else one on PATH)."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            from ame.errors import EnvironmentBuildError

            raise EnvironmentBuildError(
                "the uv binary was not found; install ame's dependencies (pip install uv)"
            ) from None
        return found


def uv_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The process environment for uv: no interpreter downloads, no stray project venv."""
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.pop("VIRTUAL_ENV", None)
    env.pop("UV_PROJECT_ENVIRONMENT", None)
    env.setdefault("UV_NO_PROGRESS", "1")
    if extra:
        env.update(extra)
    return env
