"""Registry commands print ame's one line, never MLflow's log lines or its own prints.

``ame model register --llm-config`` once printed six MLflow INFO/WARNING lines
(``Creating initial MLflow database tables`` among them) and ``ame model copy``
MLflow's ``Successfully registered model ...``. Each runs here as the real
console script on a brand-new embedded store, where MLflow is at its loudest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

AME = str(Path(sys.executable).parent / "ame")
# What MLflow's own lines look like: its logger names, and its direct prints.
NOISE = ("mlflow", "INFO", "WARNING", "Successfully registered", "Copied version", "alembic")


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AME_VERBOSE"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return subprocess.run(
        [AME, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def _quiet(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    noisy = [line for line in result.stderr.splitlines() if any(n in line for n in NOISE)]
    assert noisy == [], result.stderr


def test_register_llm_config_prints_no_mlflow_lines(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: quietllm\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": "gpt-4o-mini", "base_url": "http://127.0.0.1:9/v1"}))
    result = _run(tmp_path, "model", "register", "assistant", "--llm-config", str(config))
    _quiet(result)
    assert result.stdout.startswith("registered assistant version 1"), result.stdout


def test_register_files_and_copy_print_no_mlflow_lines(tmp_path: Path) -> None:
    (tmp_path / "ame.yml").write_text("project: quietcopy\n")
    weights = tmp_path / "weights.txt"
    weights.write_text("1 2 3\n")
    registered = _run(tmp_path, "model", "register", "src", "--files", str(weights))
    _quiet(registered)
    copied = _run(tmp_path, "model", "copy", "src/1", "dst", "--json")
    _quiet(copied)
    version = json.loads(copied.stdout)
    assert (version["name"], version["version"]) == ("dst", "1")
    assert version["tags"]["ame.copied_from"] == "src/1"
