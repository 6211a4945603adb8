"""MLflow's log lines stay off the terminal unless ``--verbose``: a fresh process, a new store.

A real ``ame`` subprocess on a brand-new embedded store is the case that once
printed ``Creating initial MLflow database tables`` before the error line: the
first command on a store runs MLflow's migrations, which log at INFO.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

AME = str(Path(sys.executable).parent / "ame")


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AME_VERBOSE"))}
    return subprocess.run(
        [AME, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def _project(tmp_path: Path) -> Path:
    (tmp_path / "ame.yml").write_text("project: quiet\n")
    return tmp_path


def test_first_command_on_new_store_prints_one_line(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert not (project / ".ame" / "mlflow.db").exists()
    result = _run(project, "model", "show", "nosuchmodel")
    assert result.returncode == 2, result.stderr
    assert (project / ".ame" / "mlflow.db").exists()  # the store really was created
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no registered model 'nosuchmodel'"), lines


def test_verbose_lets_mlflow_lines_through(tmp_path: Path) -> None:
    project = _project(tmp_path)
    result = _run(project, "--verbose", "model", "show", "nosuchmodel")
    assert result.returncode == 2
    assert "mlflow.store.db.utils" in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no registered model")


def test_task_environment_keeps_user_mlflow_logging(tmp_path: Path) -> None:
    """ame's own switch for MLflow's logging never reaches a task's environment."""
    from ame import _logging

    saved = dict(os.environ)
    try:
        os.environ.pop(_logging.MLFLOW_CONFIGURE_ENV, None)
        _logging.configure()
        assert os.environ[_logging.MLFLOW_CONFIGURE_ENV] == "false"
        assert _logging.MLFLOW_CONFIGURE_ENV not in _logging.user_environ()
        # a value the user set is theirs to keep
        assert _logging.user_environ({_logging.MLFLOW_CONFIGURE_ENV: "true"}) == {
            _logging.MLFLOW_CONFIGURE_ENV: "true"
        }
    finally:
        os.environ.clear()
        os.environ.update(saved)
