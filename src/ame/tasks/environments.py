"""Executors become Python environments, built once and cached.

Each executor kind names its dependency files (``requirements.txt``,
``uv.lock``, ``poetry.lock``, ``Pipfile.lock``, an MLproject's env file). The
environment is keyed by a hash of those files' bytes, the interpreter's full
version and the kind, and kept under ``<cache>/envs/<key>``: a second run with
the same inputs starts at once, and editing a lock file builds a new one.

Virtual environments hard-code their own absolute path (in ``pyvenv.cfg``, in
console-script shebangs written by pip or poetry), so a finished venv cannot be
renamed into place. Instead it is built in a directory with a unique name that
it keeps for life, and the cache entry ``envs/<key>`` is a symlink to it that is
swapped in atomically (``os.replace``) only once the build succeeded. A file
lock per key makes a second concurrent run wait for the first build and then
reuse it instead of building the same environment twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ame.errors import EnvironmentBuildError, TaskError
from ame.spec.model import ExecutorKind, Project, Task
from ame.tasks import interpreters, mlproject
from ame.tasks.paths import envs_dir
from ame.tasks.uvtool import uv_bin, uv_env

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

_MARKER = ".ame-env.json"
# Bump when the way environments are built changes, so old entries are not reused.
_LAYOUT = 2  # 2: bytecode compiled at build time
_LOCK_TIMEOUT = 3600.0
# "error: " (any case) that uv, pip and poetry start their own failure lines with.
_ERROR_PREFIX = re.compile(r"^\s*error:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Environment:
    """A task's Python environment: which interpreter runs it and how it was made.

    ``prefix`` is the virtual environment (None for ``!custom`` and for an
    MLproject without an env file, which run in ame's own environment);
    ``cached`` is True when an existing build was reused rather than made now.
    """

    kind: str
    python: Path
    python_version: str
    prefix: Path | None
    how: str
    key: str | None = None
    cached: bool = False
    build_seconds: float = 0.0

    @property
    def isolated(self) -> bool:
        """Whether the task runs in its own environment rather than ame's."""
        return self.prefix is not None

    def variables(self, base_path: str) -> dict[str, str]:
        """PATH and VIRTUAL_ENV for a child process running in this environment."""
        if self.prefix is not None:
            bin_dir = self.prefix / "bin"
            return {
                "PATH": f"{bin_dir}{os.pathsep}{base_path}" if base_path else str(bin_dir),
                "VIRTUAL_ENV": str(self.prefix),
            }
        # No isolation: the environment ame runs in, whose interpreter comes first.
        variables = {"PATH": f"{self.python.parent}{os.pathsep}{base_path}"}
        if sys.prefix != sys.base_prefix:
            variables["VIRTUAL_ENV"] = sys.prefix
        return variables


@dataclass(frozen=True)
class _Plan:
    """What to build: the inputs that make up the cache key, and the build steps."""

    kind: str
    interpreter: interpreters.Interpreter
    files: dict[str, bytes]
    extra: dict[str, object]
    how: str


def task_root(project: Project, task: Task) -> Path:
    """The directory a task's files live in and its command runs in.

    A task (or a template) defined by another project runs in that project's
    directory, found the way ame.spec finds cross-project templates.
    """
    if task.project and task.project != project.name:
        from ame.spec.loader import resolve_project

        return resolve_project(project, task.project).root
    return project.root


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TaskError(f"cannot read {path}: {exc.strerror}") from None


def _need(root: Path, name: str, kind: str, hint: str) -> bytes:
    path = root / name
    if not path.is_file():
        raise TaskError(f"executor !{kind} needs {name} in {root}, and there is none; {hint}")
    return _read(path)


@dataclass(frozen=True)
class _Inputs:
    """What one kind's planner found: dependency files, other key parts, the build steps."""

    files: dict[str, bytes]
    extra: dict[str, object]
    how: str
    python: str | None = None  # a Python version the files ask for (an MLproject's)


def _plan(project: Project, task: Task) -> _Plan | None:
    """The build plan for ``task``, or None when it runs in ame's own environment."""
    executor = task.executor
    kind = KINDS.get(executor.kind)
    if kind is None:  # !custom
        return None
    inputs = kind.plan(task, task_root(project, task))
    if inputs is None:
        return None
    wanted = executor.python_version or inputs.python
    return _Plan(
        executor.kind,
        interpreters.find_interpreter(wanted),
        inputs.files,
        inputs.extra,
        inputs.how,
    )


def _plan_pip(task: Task, root: Path) -> _Inputs:
    files: dict[str, bytes] = {}
    packages = list(task.executor.packages)
    if (root / "requirements.txt").is_file():
        if packages:
            raise TaskError(
                f"task '{task.name}': !pip takes requirements.txt or packages, not both "
                f"({root / 'requirements.txt'} exists); remove packages or the file"
            )
        files["requirements.txt"] = _read(root / "requirements.txt")
    how = "uv venv + uv pip install " + (
        "-r requirements.txt" if files else " ".join(packages) or "(no packages)"
    )
    return _Inputs(files, {"packages": packages}, how)


def _plan_uv(task: Task, root: Path) -> _Inputs:
    files = {
        "pyproject.toml": _need(root, "pyproject.toml", "uv", "run `uv init`"),
        "uv.lock": _need(root, "uv.lock", "uv", "run `uv lock`"),
    }
    return _Inputs(files, {}, "uv sync --frozen")


def _plan_poetry(task: Task, root: Path) -> _Inputs:
    files = {
        "pyproject.toml": _need(root, "pyproject.toml", "poetry", "run `poetry init`"),
        "poetry.lock": _need(root, "poetry.lock", "poetry", "run `poetry lock`"),
    }
    return _Inputs(files, {}, "uv venv + poetry install --no-root")


def _plan_pipenv(task: Task, root: Path) -> _Inputs:
    files = {"Pipfile.lock": _need(root, "Pipfile.lock", "pipenv", "run `pipenv lock`")}
    return _Inputs(files, {}, "uv venv + uv pip install (Pipfile.lock default packages)")


def _plan_mlflow(task: Task, root: Path) -> _Inputs | None:
    proj = mlproject.load_mlproject(root)
    spec = mlproject.env_spec(proj)
    if spec is None:
        return None
    files = {path.name: _read(path) for path in spec.files}
    how = f"uv venv + uv pip install ({proj.env_kind} {spec.files[0].name})"
    return _Inputs(files, {"requirements": spec.requirements}, how, spec.python_version)


def cache_key(plan: _Plan) -> str:
    """The hash that names an environment: kind, interpreter and dependency bytes."""
    digest = hashlib.sha256()
    head = {
        "layout": _LAYOUT,
        "kind": plan.kind,
        "python": plan.interpreter.version,
        "interpreter": str(plan.interpreter.path),
        "extra": plan.extra,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in plan.files.items()},
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def _ready(link: Path) -> bool:
    return (link / _MARKER).is_file() and (link / "bin" / "python").exists()


def _cached_env(plan: _Plan, key: str, link: Path) -> Environment:
    target = link.resolve()
    return Environment(
        kind=plan.kind,
        python=target / "bin" / "python",
        python_version=plan.interpreter.version,
        prefix=target,
        how=plan.how,
        key=key,
        cached=True,
    )


def prepare_environment(
    project: Project,
    task: Task,
    rebuild: bool = False,
    on_progress: Progress | None = None,
) -> Environment:
    """Return the environment ``task`` runs in, building it if it is not cached.

    ``rebuild`` builds a fresh environment even when a cached one exists (and
    replaces it). ``on_progress`` receives one line per build step and the build
    tools' own output, for a spinner or a log.
    """
    plan = _plan(project, task)
    if plan is None:
        here = interpreters.current()
        if task.executor.python_version and not interpreters.matches(
            here.version, task.executor.python_version
        ):
            raise TaskError(
                f"task {task.name!r} runs in ame's own environment (Python {here.version}), "
                f"which does not match pythonVersion {task.executor.python_version!r}"
            )
        return Environment(
            kind=task.executor.kind,
            python=here.path,
            python_version=here.version,
            prefix=None,
            how="current environment (no isolation)",
        )
    key = cache_key(plan)
    base = envs_dir()
    link = base / key
    if not rebuild and _ready(link):
        return _cached_env(plan, key, link)
    base.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout

    lock = FileLock(str(base / f"{key}.lock"))
    try:
        lock.acquire(timeout=_LOCK_TIMEOUT)
    except Timeout:
        raise EnvironmentBuildError(
            f"waited {_LOCK_TIMEOUT:.0f}s for another build of environment {key}"
        ) from None
    try:
        if not rebuild and _ready(link):
            return _cached_env(plan, key, link)
        return _build(project, task, plan, key, link, on_progress)
    finally:
        lock.release()


def _build(
    project: Project,
    task: Task,
    plan: _Plan,
    key: str,
    link: Path,
    on_progress: Progress | None,
) -> Environment:
    started = time.monotonic()
    target = link.parent / f"{key}.{uuid.uuid4().hex[:8]}"
    say = on_progress or (lambda _line: None)
    say(f"building {plan.kind} environment with Python {plan.interpreter.version}: {plan.how}")
    log.info("building environment %s in %s", key, target)
    try:
        kind = KINDS[plan.kind]  # type: ignore[index]
        assert kind is not None  # a plan is only made for kinds with a builder
        kind.build(project, task, plan, target, say)
        marker = {
            "key": key,
            "kind": plan.kind,
            "python": plan.interpreter.version,
            "interpreter": str(plan.interpreter.path),
            "how": plan.how,
            "files": sorted(plan.files),
            "built": time.time(),
        }
        (target / _MARKER).write_text(json.dumps(marker, indent=2))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    previous = link.resolve() if link.is_symlink() else None
    staging = link.parent / f".{key}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(target.name, staging)
    os.replace(staging, link)
    if previous is not None and previous != target and previous.parent == link.parent:
        shutil.rmtree(previous, ignore_errors=True)
    seconds = time.monotonic() - started
    say(f"environment ready in {seconds:.1f}s")
    return Environment(
        kind=plan.kind,
        python=target / "bin" / "python",
        python_version=plan.interpreter.version,
        prefix=target,
        how=plan.how,
        key=key,
        cached=False,
        build_seconds=seconds,
    )


def _run(
    args: Sequence[str],
    what: str,
    say: Progress,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> None:
    """Run one build step, streaming its output to ``say``; raise with its tail on failure."""
    try:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            env=env or uv_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise EnvironmentBuildError(f"{what}: cannot start {args[0]}: {exc.strerror}") from None
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        say(line)
    code = proc.wait()
    if code != 0:
        # The CLI starts every line of an error with "error: "; the tool's own
        # "error: " would read "error: error: No solution found".
        tail = "\n".join(_ERROR_PREFIX.sub("", line) for line in lines[-25:])
        raise EnvironmentBuildError(f"{what} failed (exit {code}):\n{tail}")


def _venv(plan: _Plan, target: Path, say: Progress) -> Path:
    say(f"creating virtual environment ({plan.interpreter.path})")
    _run(
        [uv_bin(), "venv", "--no-config", "--python", str(plan.interpreter.path), str(target)],
        "creating the virtual environment",
        say,
        cwd=target.parent,
    )
    return target / "bin" / "python"


def _uv_pip_install(python: Path, args: Sequence[str], root: Path, say: Progress) -> None:
    if not args:
        return
    say("installing " + " ".join(args))
    _run(
        # Bytecode is compiled once here: a cached environment is imported
        # from by every run, and with PYTHONDONTWRITEBYTECODE set (common in
        # containers) each run would otherwise recompile numpy, pandas and mlflow.
        [uv_bin(), "pip", "install", "--compile-bytecode", "--python", str(python), *args],
        "installing packages with uv",
        say,
        cwd=root,
    )


def _build_pip(project: Project, task: Task, plan: _Plan, target: Path, say: Progress) -> None:
    python = _venv(plan, target, say)
    args: list[str] = []
    if "requirements.txt" in plan.files:
        args += ["-r", "requirements.txt"]
    args += list(task.executor.packages)
    _uv_pip_install(python, args, task_root(project, task), say)


def _build_uv(project: Project, task: Task, plan: _Plan, target: Path, say: Progress) -> None:
    # The project itself is not installed: the task runs from the project
    # directory, and a cached environment must not point into one checkout.
    say("uv sync --frozen")
    _run(
        [
            uv_bin(),
            "sync",
            "--frozen",
            "--no-install-project",
            "--compile-bytecode",
            "--python",
            str(plan.interpreter.path),
        ],
        "uv sync --frozen",
        say,
        cwd=task_root(project, task),
        env=uv_env({"UV_PROJECT_ENVIRONMENT": str(target)}),
    )


def poetry_bin() -> str:
    """The poetry executable: beside ame's interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "poetry"
    if beside.exists():
        return str(beside)
    found = shutil.which("poetry")
    if found is None:
        raise EnvironmentBuildError(
            "executor !poetry needs the `poetry` command; install it (pipx install poetry)"
        )
    return found


def _build_poetry(project: Project, task: Task, plan: _Plan, target: Path, say: Progress) -> None:
    _venv(plan, target, say)
    env = uv_env(
        {
            # Poetry installs into the active virtualenv when it may not create one.
            "VIRTUAL_ENV": str(target),
            "PATH": f"{target / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "POETRY_VIRTUALENVS_CREATE": "false",
            "POETRY_NO_INTERACTION": "1",
        }
    )
    env.pop("PYTHONHOME", None)
    say("poetry install --no-root --compile")
    _run(
        [poetry_bin(), "install", "--no-root", "--no-interaction", "--compile"],
        "poetry install",
        say,
        cwd=task_root(project, task),
        env=env,
    )


def pipfile_requirements(lock_bytes: bytes, source: str = "Pipfile.lock") -> list[str]:
    """Requirement lines for the pinned ``default`` packages of a Pipfile.lock."""
    try:
        data = json.loads(lock_bytes)
    except ValueError as exc:
        raise TaskError(f"{source}: not valid JSON: {exc}") from None
    default = data.get("default") if isinstance(data, dict) else None
    if not isinstance(default, dict):
        raise TaskError(f"{source}: no 'default' section")
    lines: list[str] = []
    for name, spec in sorted(default.items()):
        if not isinstance(spec, dict):
            continue
        extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
        if spec.get("git"):
            ref = f"@{spec['ref']}" if spec.get("ref") else ""
            req = f"{name}{extras} @ git+{spec['git']}{ref}"
        elif spec.get("file") or spec.get("path"):
            req = f"{name}{extras} @ {spec.get('file') or spec.get('path')}"
        else:
            req = f"{name}{extras}{spec.get('version', '')}"
        if spec.get("markers"):
            req += f"; {spec['markers']}"
        lines.append(req)
    return lines


def _build_pipenv(project: Project, task: Task, plan: _Plan, target: Path, say: Progress) -> None:
    python = _venv(plan, target, say)
    lines = pipfile_requirements(plan.files["Pipfile.lock"])
    requirements = target / "ame-pipfile-requirements.txt"
    requirements.write_text("\n".join(lines) + "\n")
    if lines:
        _uv_pip_install(python, ["-r", str(requirements)], task_root(project, task), say)


def _build_mlflow(project: Project, task: Task, plan: _Plan, target: Path, say: Progress) -> None:
    python = _venv(plan, target, say)
    requirements = [str(r) for r in plan.extra.get("requirements", [])]  # type: ignore[attr-defined]
    _uv_pip_install(python, requirements, task_root(project, task), say)


@dataclass(frozen=True)
class Kind:
    """How one executor kind becomes an environment: what goes into its key, how it is built."""

    plan: Callable[[Task, Path], _Inputs | None]
    build: Callable[[Project, Task, _Plan, Path, Progress], None]


# Every executor kind of ame.spec (``EXECUTOR_KINDS``) and its builder, in one
# place; None runs the task in ame's own environment. A test holds the keys to
# the spec's kinds, so a new kind cannot be declared without its builder.
KINDS: dict[ExecutorKind, Kind | None] = {
    "custom": None,
    "pip": Kind(_plan_pip, _build_pip),
    "uv": Kind(_plan_uv, _build_uv),
    "poetry": Kind(_plan_poetry, _build_poetry),
    "pipenv": Kind(_plan_pipenv, _build_pipenv),
    "mlflow": Kind(_plan_mlflow, _build_mlflow),
}
