"""The real ``ame`` console script: task run/list/logs/env and secret set/list/delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tasks.helpers import ame


@pytest.fixture
def cli_project(tmp_path: Path, unique_name: str) -> Path:
    root = tmp_path / "cliproj"
    root.mkdir()
    (root / "ame.yml").write_text(
        f"""\
project: {unique_name}
tasks:
  - name: hello
    executor: !custom
      command: echo "hello $API_TOKEN from $AME_TASK"
    secrets:
      - {{key: api_token, injectAs: API_TOKEN}}
  - name: fails
    executor: !custom
      command: echo failing; exit 5
  - name: gpu
    executor: !custom
      command: echo "cuda=[${{CUDA_VISIBLE_DEVICES-unset}}]"
    resources: {{nvidia.com/gpu: 64}}
  - name: sixer
    executor: !pip
      packages: ["six>=1.16,<2"]  # a key of its own: --rebuild below
      command: python -c "import six; print(six.__version__)"
"""
    )
    return root


def test_task_run_list_logs_and_exit_codes(cli_project: Path) -> None:
    missing = ame("task", "run", "hello", cwd=cli_project)
    assert missing.returncode == 2
    assert "ame secret set api_token" in missing.stderr
    saved = ame("secret", "set", "api_token", cwd=cli_project, stdin="tok-XYZ-987\n")
    assert saved.returncode == 0 and "tok-XYZ-987" not in saved.stdout + saved.stderr
    listed = ame("secret", "list", "--json", cwd=cli_project)
    assert json.loads(listed.stdout) == ["api_token"]

    ok = ame("task", "run", "hello", cwd=cli_project)
    assert ok.returncode == 0, ok.stderr
    assert "[hello] hello *** from hello" in ok.stdout
    assert "tok-XYZ-987" not in ok.stdout + ok.stderr

    bad = ame("task", "run", "fails", cwd=cli_project)
    assert bad.returncode == 5
    assert "[fails] failing" in bad.stdout and "FAILED" in bad.stderr

    runs = json.loads(ame("task", "list", "--json", cwd=cli_project).stdout)
    assert [(r["task"], r["status"], r["exit_code"]) for r in runs] == [
        ("fails", "FAILED", "5"),
        ("hello", "FINISHED", "0"),
    ]
    logs = ame("task", "logs", runs[1]["run_id"], cwd=cli_project)
    assert logs.returncode == 0 and logs.stdout == "hello *** from hello\n"

    unknown = ame("task", "run", "nope", cwd=cli_project)
    assert unknown.returncode == 2 and "no task 'nope'" in unknown.stderr
    assert "sixer" in unknown.stderr

    # A GPU task is refused with a hint before anything runs; --cpu-only runs it with none.
    refused = ame("task", "run", "gpu", cwd=cli_project)
    assert refused.returncode == 2
    said = " ".join(refused.stderr.split())  # however the console wrapped it
    assert "asks for 64 GPU(s)" in said and "--cpu-only" in said
    cpu = ame("task", "run", "gpu", "--cpu-only", cwd=cli_project)
    assert cpu.returncode == 0, cpu.stderr
    assert "[gpu] cuda=[]" in cpu.stdout

    deleted = ame("secret", "delete", "api_token", cwd=cli_project)
    assert deleted.returncode == 0
    assert json.loads(ame("secret", "list", "--json", cwd=cli_project).stdout) == []


def test_task_env_builds_then_reuses(cli_project: Path) -> None:
    first = json.loads(ame("task", "env", "sixer", "--json", cwd=cli_project).stdout)
    second = json.loads(ame("task", "env", "sixer", "--json", cwd=cli_project).stdout)
    assert second["cached"] is True and second["prefix"] == first["prefix"]
    assert second["executor"] == "pip" and second["isolated"] is True
    rebuilt = json.loads(ame("task", "env", "sixer", "--rebuild", "--json", cwd=cli_project).stdout)
    assert rebuilt["cached"] is False and rebuilt["key"] == first["key"]
