"""Executors become real, cached environments (uv, pip, poetry, pipenv, MLproject)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ame.errors import InterpreterNotFoundError, TaskError
from ame.spec.model import Executor, Project, Task
from ame.tasks import prepare_environment, task_command
from ame.tasks.environments import Environment, pipfile_requirements, poetry_bin
from ame.tasks.interpreters import find_interpreter
from ame.tasks.paths import envs_dir
from ame.tasks.uvtool import uv_bin, uv_env

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["six==1.16.0"]
"""


def six_version(env: Environment) -> str:
    out = subprocess.run(
        [str(env.python), "-c", "import six, sys; print(six.__version__, sys.prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    version, prefix = out.stdout.split()
    assert Path(prefix).resolve() == env.prefix
    return version


def has_bytecode(env: Environment) -> bool:
    """Whether six was compiled at build time (runs under PYTHONDONTWRITEBYTECODE start fast)."""
    assert env.prefix is not None
    return bool(list(env.prefix.glob("lib/python*/site-packages/__pycache__/six.*.pyc")))


def assert_reused_without_building(project: Project, task: Task, first: Environment) -> None:
    """A second prepare_environment reuses ``first``: no build step, nothing rewritten."""
    assert first.prefix is not None
    marker = first.prefix / ".ame-env.json"
    stamp = marker.stat().st_mtime_ns
    entries = sorted(p.name for p in envs_dir().iterdir())
    lines: list[str] = []
    again = prepare_environment(project, task, on_progress=lines.append)
    assert again.cached and not again.build_seconds
    assert (again.prefix, again.key) == (first.prefix, first.key)
    assert lines == []  # no build step was even started
    assert marker.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in envs_dir().iterdir()) == entries


def test_pip_requirements_env_is_built_once_then_reused(project: Project) -> None:
    (project.root / "requirements.txt").write_text("six==1.16.0\n")
    task = Task(name="t", executor=Executor(kind="pip", command="python -V"))
    lines: list[str] = []
    first = prepare_environment(project, task, on_progress=lines.append)
    assert not first.cached and first.build_seconds > 0
    assert any("building pip environment" in line for line in lines)
    assert_reused_without_building(project, task, first)
    assert six_version(first) == "1.16.0"
    assert has_bytecode(first)
    # Changing an input is a new environment; --rebuild makes a fresh one in place.
    (project.root / "requirements.txt").write_text("six==1.15.0\n")
    changed = prepare_environment(project, task)
    assert changed.key != first.key
    assert six_version(changed) == "1.15.0"
    rebuilt = prepare_environment(project, task, rebuild=True)
    assert not rebuilt.cached and rebuilt.key == changed.key
    assert rebuilt.prefix != changed.prefix
    assert not changed.prefix.exists()  # type: ignore[union-attr]
    assert six_version(rebuilt) == "1.15.0"


def test_pip_inline_packages(project: Project) -> None:
    task = Task(name="t", executor=Executor(kind="pip", command="x", packages=["six==1.16.0"]))
    env = prepare_environment(project, task)
    assert env.isolated and "six==1.16.0" in env.how
    assert six_version(env) == "1.16.0"
    assert prepare_environment(project, task).cached


def test_concurrent_builds_share_one_environment(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AME_CACHE_DIR", str(tmp_path / "fresh-cache"))
    task = Task(name="t", executor=Executor(kind="pip", command="x", packages=["six==1.16.0"]))
    results: list[Environment] = []
    threads = [
        threading.Thread(target=lambda: results.append(prepare_environment(project, task)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.cached for r in results) == [False, True]
    assert results[0].prefix == results[1].prefix
    built = [p for p in (tmp_path / "fresh-cache" / "envs").iterdir() if p.is_dir()]
    assert len([p for p in built if not p.is_symlink()]) == 1


def test_uv_lock_env(project: Project) -> None:
    (project.root / "pyproject.toml").write_text(PYPROJECT.format(name="uvdemo"))
    subprocess.run([uv_bin(), "lock"], cwd=project.root, env=uv_env(), check=True)
    task = Task(name="t", executor=Executor(kind="uv", command="python -V"))
    first = prepare_environment(project, task)
    assert six_version(first) == "1.16.0"
    assert has_bytecode(first)
    assert_reused_without_building(project, task, first)


def test_uv_without_lock_says_how_to_make_one(project: Project) -> None:
    (project.root / "pyproject.toml").write_text(PYPROJECT.format(name="nolock"))
    task = Task(name="t", executor=Executor(kind="uv", command="x"))
    with pytest.raises(TaskError, match=r"uv\.lock.*uv lock"):
        prepare_environment(project, task)


def test_poetry_env_with_real_poetry(project: Project) -> None:
    # The simple index as an explicit source: this sandbox's PyPI serves only the
    # simple API, not the JSON API poetry uses for its default PyPI source.
    (project.root / "pyproject.toml").write_text(
        PYPROJECT.format(name="poetrydemo")
        + "\n[tool.poetry]\npackage-mode = false\n\n[[tool.poetry.source]]\n"
        'name = "pypi-simple"\nurl = "https://pypi.org/simple/"\npriority = "primary"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["POETRY_VIRTUALENVS_PATH"] = str(project.root.parent / "poetry-venvs")
    subprocess.run(
        [poetry_bin(), "lock", "--no-interaction"], cwd=project.root, env=env, check=True
    )
    assert (project.root / "poetry.lock").is_file()
    task = Task(name="t", executor=Executor(kind="poetry", command="python -V"))
    first = prepare_environment(project, task)
    assert "poetry install" in first.how
    assert six_version(first) == "1.16.0"
    assert has_bytecode(first)
    assert_reused_without_building(project, task, first)


def test_pipenv_lock_installs_default_packages(project: Project) -> None:
    lock = {
        "_meta": {"requires": {"python_version": "3"}, "sources": []},
        "default": {"six": {"version": "==1.16.0", "markers": "python_version >= '3.0'"}},
        "develop": {"pytest": {"version": "==8.0.0"}},
    }
    (project.root / "Pipfile.lock").write_text(json.dumps(lock))
    assert pipfile_requirements(json.dumps(lock).encode()) == [
        "six==1.16.0; python_version >= '3.0'"
    ]
    task = Task(name="t", executor=Executor(kind="pipenv", command="python -V"))
    env = prepare_environment(project, task)
    assert six_version(env) == "1.16.0"
    out = subprocess.run(
        [str(env.python), "-c", "import pytest"], capture_output=True, text=True, check=False
    )
    assert out.returncode != 0  # develop packages are not installed


def test_mlflow_project_entry_point_and_env(project: Project) -> None:
    (project.root / "MLproject").write_text(
        "name: demo\npython_env: python_env.yaml\nentry_points:\n  main:\n"
        "    parameters:\n      alpha: {type: float, default: 0.5}\n"
        "      label: {type: string, default: 'a b'}\n"
        "    command: python train.py --alpha {alpha} --label {label}\n"
    )
    (project.root / "python_env.yaml").write_text(
        f"python: '{sys.version_info.major}.{sys.version_info.minor}'\n"
        "build_dependencies: [pip]\ndependencies: [six==1.16.0]\n"
    )
    task = Task(name="t", executor=Executor(kind="mlflow"))
    assert task_command(project, task) == "python train.py --alpha 0.5 --label 'a b'"
    env = prepare_environment(project, task)
    assert env.isolated and six_version(env) == "1.16.0"
    other = Task(name="t", executor=Executor(kind="mlflow", entry_point="nope"))
    with pytest.raises(TaskError, match="no entry point 'nope'"):
        task_command(project, other)


def test_custom_runs_in_current_environment(project: Project) -> None:
    env = prepare_environment(project, Task(name="t", executor=Executor(kind="custom")))
    assert not env.isolated and env.python == Path(sys.executable)
    assert env.variables("/usr/bin")["PATH"].startswith(str(Path(sys.executable).parent))


def test_python_version_not_installed_lists_what_was_found(project: Project) -> None:
    task = Task(name="t", executor=Executor(kind="pip", python_version="2.1", command="x"))
    with pytest.raises(InterpreterNotFoundError) as info:
        prepare_environment(project, task)
    message = str(info.value)
    assert "'2.1'" in message and sys.version.split()[0] in message
    assert "never downloads" in message


def test_python_version_found_among_pyenv_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "pyenv" / "versions" / "3.99.1" / "bin"
    fake.mkdir(parents=True)
    (fake / "python").symlink_to(sys.executable)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    found = find_interpreter("3.99")
    assert found.version == "3.99.1" and found.path == fake / "python"
    here = find_interpreter(f"{sys.version_info.major}.{sys.version_info.minor}")
    assert here.version == sys.version.split()[0]
