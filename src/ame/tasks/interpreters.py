"""Finding an installed Python that matches a task's ``pythonVersion``.

ame never downloads an interpreter: a task that asks for ``3.12`` gets one of
the Pythons already on the machine (the one ame runs on, pyenv's versions,
``python3.X`` on PATH, or what ``uv python find`` knows with downloads off),
and a clear list of what was found when none matches.

The search is cheap on purpose: pyenv directories and the running interpreter
carry their version in their name or in ``sys``, so most lookups start no
process at all. That matters because it happens on every ``ame task run``.
``uv python find`` alone was measured as the replacement and kept as the last
resort only: it starts a process every time (about 85 ms for the running
interpreter's version, against no measurable time here, and ``ame task run``
about a second slower on a loaded 2-core machine), and it does not see pyenv's
non-global versions, so ``pythonVersion: "3.12"`` found nothing where this scan
finds ``~/.pyenv/versions/3.12.1`` (after 1.4 s).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ame._system import command_output
from ame.errors import InterpreterNotFoundError

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")
_PATH_NAME = re.compile(r"^python(3(\.\d+)?)?$")


@dataclass(frozen=True)
class Interpreter:
    """An installed Python: its executable and its full version (``3.11.7``)."""

    path: Path
    version: str


def current() -> Interpreter:
    """The interpreter ame itself runs on (the default when no version is asked for)."""
    return Interpreter(Path(sys.executable), platform.python_version())


def matches(version: str, wanted: str) -> bool:
    """Whether ``version`` (``3.11.7``) satisfies ``wanted`` (``3``, ``3.11`` or ``3.11.7``)."""
    have = version.split(".")
    want = wanted.strip().split(".")
    return have[: len(want)] == want


def _probe(executable: Path) -> str | None:
    """Ask an executable for its version; None if it is not a working Python."""
    text = command_output(
        [str(executable), "-c", "import platform; print(platform.python_version())"]
    )
    return text if text and _VERSION.match(text) else None


def _pyenv_candidates() -> list[Interpreter]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found: list[Interpreter] = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        exe = entry / "bin" / "python"
        if _VERSION.match(entry.name) and exe.exists():
            found.append(Interpreter(exe, entry.name))
    return found


def _path_executables() -> list[Path]:
    """``python``, ``python3`` and ``python3.X`` on PATH, skipping pyenv's shims.

    Shims answer only for pyenv's global version and fail for the others, so
    pyenv's versions are read from its directory instead.
    """
    seen: set[Path] = set()
    found: list[Path] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or "shims" in Path(directory).parts:
            continue
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            if not _PATH_NAME.match(name):
                continue
            exe = Path(directory) / name
            try:
                real = exe.resolve()
            except OSError:
                continue
            if real in seen or not os.access(exe, os.X_OK):
                continue
            seen.add(real)
            found.append(exe)
    return found


def _uv_find(wanted: str) -> Interpreter | None:
    from ame.tasks.uvtool import uv_bin, uv_env

    out = command_output(
        [uv_bin(), "python", "find", "--no-python-downloads", wanted], timeout=60, env=uv_env()
    )
    path = out.splitlines()[-1] if out else ""
    if not path:
        return None
    version = _probe(Path(path))
    return Interpreter(Path(path), version) if version and matches(version, wanted) else None


def discover() -> list[Interpreter]:
    """Every interpreter found (for error messages): current, pyenv's, PATH's."""
    found = [current(), *_pyenv_candidates()]
    for exe in _path_executables():
        version = _probe(exe)
        if version:
            found.append(Interpreter(exe, version))
    unique: dict[Path, Interpreter] = {}
    for interp in found:
        unique.setdefault(interp.path, interp)
    return list(unique.values())


def find_interpreter(wanted: str | None) -> Interpreter:
    """The installed interpreter to build a task's environment with.

    ``None`` means the interpreter ame runs on. Otherwise the first match among
    the current interpreter, pyenv's versions (newest patch first), ``python3.X``
    on PATH, then ``uv python find``; ``InterpreterNotFoundError`` lists what was
    found when nothing matches.
    """
    if wanted is None or not str(wanted).strip():
        return current()
    wanted = str(wanted).strip()
    if not _VERSION.match(wanted):
        # Specifiers such as ">=3.10" are left to uv, which understands them.
        found = _uv_find(wanted)
        if found is not None:
            return found
        raise _not_found(wanted)
    here = current()
    if matches(here.version, wanted):
        return here
    pyenv = [i for i in _pyenv_candidates() if matches(i.version, wanted)]
    if pyenv:
        return max(pyenv, key=lambda i: tuple(int(p) for p in i.version.split(".")))
    for exe in _path_executables():
        # Only run executables whose name could match (python3.X or unversioned).
        suffix = exe.name.removeprefix("python")
        if suffix.count(".") == 1 and not matches(suffix, ".".join(wanted.split(".")[:2])):
            continue
        version = _probe(exe)
        if version and matches(version, wanted):
            return Interpreter(exe, version)
    found = _uv_find(wanted)
    if found is not None:
        return found
    raise _not_found(wanted)


def _not_found(wanted: str) -> InterpreterNotFoundError:
    listing = ", ".join(f"{i.version} ({i.path})" for i in discover()) or "none"
    return InterpreterNotFoundError(
        f"no installed Python matches pythonVersion {wanted!r}; found: {listing}. "
        "Install one (e.g. `pyenv install` or `uv python install`) or change pythonVersion; "
        "ame never downloads interpreters."
    )
