"""The ``!mlflow`` executor: an MLproject file's entry point, run without ``mlflow run``.

AME's older demos ran tasks as MLflow projects. ame keeps that working by
reading the ``MLproject`` file itself: the entry point's command with its
parameters' defaults substituted (quoted the way ``mlflow run`` quotes them),
and the pip dependencies of its ``python_env`` or ``conda_env`` file to build
the environment from. Reading the YAML directly avoids importing MLflow (many
seconds) just to learn a command line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ame.errors import TaskError

MLPROJECT_NAMES = ("MLproject", "mlproject", "MLProject")


@dataclass(frozen=True)
class MLProject:
    """What ame needs from an MLproject: its file, entry points and dependency files."""

    file: Path
    entry_points: dict[str, dict[str, Any]]
    env_file: Path | None
    env_kind: str | None  # "python_env" or "conda_env"
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvSpec:
    """The pip side of an MLproject's environment: a Python version and requirements."""

    python_version: str | None
    requirements: list[str]
    files: list[Path]


def find_mlproject(root: Path) -> Path:
    """The MLproject file in ``root``; ``TaskError`` if there is none."""
    for name in MLPROJECT_NAMES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise TaskError(f"executor !mlflow needs an MLproject file in {root}, and there is none")


def load_mlproject(root: Path) -> MLProject:
    """Parse the MLproject in ``root``."""
    path = find_mlproject(root)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TaskError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TaskError(f"{path}: expected a mapping at the top level")
    env_file: Path | None = None
    env_kind: str | None = None
    for kind in ("python_env", "conda_env"):
        if data.get(kind):
            env_file = root / str(data[kind])
            env_kind = kind
            break
    if env_file is None:
        for name, kind in (("python_env.yaml", "python_env"), ("conda.yaml", "conda_env")):
            if (root / name).is_file():
                env_file, env_kind = root / name, kind
                break
    if env_file is not None and not env_file.is_file():
        raise TaskError(f"{path}: {env_kind} names {env_file}, which does not exist")
    entry_points = data.get("entry_points") or {}
    if not isinstance(entry_points, dict):
        raise TaskError(f"{path}: entry_points must be a mapping")
    return MLProject(path, entry_points, env_file, env_kind, data)


def command_for(project: MLProject, entry_point: str | None) -> str:
    """The shell command of ``entry_point`` (default ``main``), parameters filled in.

    Parameters take their ``default``; one without a default is an error naming
    it. A ``.py`` or ``.sh`` file that is not a declared entry point runs the
    way ``mlflow run`` runs it.
    """
    name = entry_point or "main"
    spec = project.entry_points.get(name)
    if spec is None:
        if name.endswith(".py"):
            return f"python {shlex.quote(name)}"
        if name.endswith(".sh"):
            return f"bash {shlex.quote(name)}"
        known = ", ".join(sorted(project.entry_points)) or "none"
        raise TaskError(f"{project.file}: no entry point {name!r} (entry points: {known})")
    command = spec.get("command") if isinstance(spec, dict) else None
    if not command:
        raise TaskError(f"{project.file}: entry point {name!r} has no command")
    values: dict[str, str] = {}
    params = spec.get("parameters") or {}
    for pname, pspec in params.items():
        default = pspec.get("default") if isinstance(pspec, dict) else pspec
        if default is None:
            raise TaskError(
                f"{project.file}: parameter {pname!r} of entry point {name!r} has no default; "
                "give it one in MLproject"
            )
        values[pname] = shlex.quote(str(default))
    try:
        return str(command).format(**values)
    except (KeyError, IndexError) as exc:
        raise TaskError(
            f"{project.file}: entry point {name!r} uses {{{exc.args[0]}}}, which is not a parameter"
        ) from None


def env_spec(project: MLProject) -> EnvSpec | None:
    """The Python version and pip requirements of the project's env file, if it has one."""
    if project.env_file is None:
        return None
    try:
        data = yaml.safe_load(project.env_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TaskError(f"{project.env_file}: not valid YAML: {exc}") from None
    files = [project.env_file]
    requirements: list[str] = []
    python: str | None = None
    if project.env_kind == "python_env":
        python = str(data["python"]) if data.get("python") else None
        deps = [str(d) for d in data.get("dependencies") or []]
    else:
        deps = []
        for dep in data.get("dependencies") or []:
            if isinstance(dep, dict) and "pip" in dep:
                deps.extend(str(d) for d in dep["pip"] or [])
            elif isinstance(dep, str) and dep.split("=")[0].strip() == "python":
                python = dep.split("=", 1)[1].lstrip("=").strip() or None
    for dep in deps:
        if dep.startswith(("-r ", "--requirement ")):
            ref = project.env_file.parent / dep.split(None, 1)[1].strip()
            files.append(ref)
            requirements.extend(["-r", str(ref)])
        else:
            requirements.append(dep)
    if python is not None:
        # conda writes "3.10.*" or "3.10"; keep the plain version part.
        python = python.rstrip(".*") or None
    return EnvSpec(python, requirements, files)
