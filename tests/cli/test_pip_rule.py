"""``!pip`` takes requirements.txt or ``packages``, and a failed install says "error:" once.

Both through the real ``ame`` console script: ``ame validate`` refuses the pair
at the line of ``packages``, and ``ame task run`` of a task whose packages
cannot be installed (uv offline, a package that exists nowhere) prints uv's
reason without doubling its ``error:`` prefix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ame.errors import TaskError

AME = str(Path(sys.executable).parent / "ame")

PIP_TASK = (
    "project: piprule\n"
    "tasks:\n"
    "  - name: fit\n"
    "    executor: !pip\n"
    "      command: python -c \"print('fit')\"\n"
    "      packages: [ame-test-no-such-package-xyz==1.0]\n"
)


def _run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    full.update({"MLFLOW_DISABLE_TELEMETRY": "true", **env})
    return subprocess.run(
        [AME, *args], cwd=project, env=full, capture_output=True, text=True, timeout=300
    )


def test_validate_refuses_packages_beside_requirements_txt(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text(PIP_TASK)
    assert _run(tmp_path, "validate").returncode == 0  # packages alone are fine
    (tmp_path / "requirements.txt").write_text("numpy\n")
    result = _run(tmp_path, "validate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ame.yml:6:7 tasks[0].executor.packages: !pip takes requirements.txt or packages, "
        f"not both: {tmp_path.resolve() / 'requirements.txt'} exists; "
        "remove packages or the file"
    ]
    (tmp_path / "ame.yml").write_text(
        PIP_TASK.replace("      packages: [ame-test-no-such-package-xyz==1.0]\n", "")
    )
    assert _run(tmp_path, "validate").returncode == 0  # requirements.txt alone is fine


def test_environment_builder_refuses_both_for_projects_made_in_code(tmp_path: Path) -> None:
    from ame.spec import load_project
    from ame.tasks import prepare_environment

    (tmp_path / "ame.yml").write_text(PIP_TASK)
    project = load_project(tmp_path / "ame.yml")
    (tmp_path / "requirements.txt").write_text("numpy\n")  # appears after validation
    with pytest.raises(TaskError, match=r"!pip takes requirements\.txt or packages, not both"):
        prepare_environment(project, project.task("fit"))


def test_failed_install_says_error_once(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text(PIP_TASK)
    result = _run(tmp_path, "task", "run", "fit", UV_OFFLINE="1")
    assert result.returncode == 2, result.stderr
    assert "No solution found" in result.stderr, result.stderr
    assert "error: error:" not in result.stderr.lower(), result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: installing packages with uv failed (exit 1):"), lines
