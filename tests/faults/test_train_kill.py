"""Issue 13, items 3 and 9: ``ame train`` killed with SIGKILL leaves nothing running or pending.

- the training task's processes are stopped by the watchdog, not left running;
- the RUNNING run and the ``pending`` version are marked killed by the next
  ``ame status`` (a live ``pending`` stays pending);
- a version the training code registered before ame died gets its ame tags;
- a version ame registered carries its tags from the moment it exists;
- ``ame model alias`` refuses the killed version without ``--force``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ame._system import pid_alive as alive
from tests.faults.conftest import ame, sigkill, start, wait_until, write_project


def _client(project: Path) -> Any:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{project / '.ame' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _status(project: Path) -> dict[str, Any]:
    result = ame(project, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = json.loads(result.stdout)
    return {row["model"]: row for row in rows}


def _pid(file: Path) -> int:
    return int(file.read_text()) if file.exists() and file.read_text() else 0


def test_kill_during_training_stops_the_task_and_closes_run_and_version(
    tmp_path: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    project = write_project(tmp_path / "p", "killtrain")
    (project / "block-training").touch()
    log = tmp_path / "train.log"
    proc = start(project, "train", "killtrain", log=log)
    reap.append(proc)
    task_pid = wait_until(lambda: _pid(project / "train.pid"), 120, "the training task", log)
    sigkill(proc)

    # The task runs in its own session: only the watchdog can stop it now.
    wait_until(lambda: not alive(task_pid), 15, f"training task {task_pid} to be stopped", log)

    client = _client(project)
    [version] = client.search_model_versions("name='killtrain'")
    assert "ame.validation" not in version.tags  # the training code registered it; ame died
    [run] = client.search_runs(
        [client.get_experiment_by_name("faults_test").experiment_id],
        filter_string="tags.`ame.stage` = 'training'",
    )
    assert run.info.status == "RUNNING"

    status = _status(project)
    assert status["killtrain"]["latest_validation"] == "killed"
    run = client.get_run(run.info.run_id)
    assert run.info.status == "KILLED"
    assert "died while the run was open" in run.data.tags["ame.reason"]
    version = client.get_model_version("killtrain", version.version)
    assert version.tags["ame.run_id"] == run.info.run_id
    assert version.tags["ame.task"] == "train"
    assert version.tags["ame.validation"] == "killed"


def test_kill_during_validation_marks_pending_killed_and_alias_refuses(
    tmp_path: Path, reap: list[subprocess.Popen[bytes]]
) -> None:
    project = write_project(tmp_path / "p", "killval")
    (project / "mode").write_text("log-only")  # ame registers it, tags and all at once
    (project / "block-validation").touch()
    log = tmp_path / "train.log"
    proc = start(project, "train", "killval", log=log)
    reap.append(proc)
    task_pid = wait_until(lambda: _pid(project / "validate.pid"), 180, "the validation task", log)

    client = _client(project)
    [version] = client.search_model_versions("name='killval'")
    assert version.tags["ame.validation"] == "pending"
    assert version.tags["ame.run_id"] and version.tags["ame.task"] == "train"
    assert version.tags["ame.source"] == "run"
    # While ame lives, its pending version is pending: status does not touch it.
    assert _status(project)["killval"]["latest_validation"] == "pending"

    sigkill(proc)
    wait_until(lambda: not alive(task_pid), 15, f"validation task {task_pid} to stop", log)
    assert _status(project)["killval"]["latest_validation"] == "killed"
    version = client.get_model_version("killval", version.version)
    assert "killed before its validation finished" in version.tags["ame.validation_reason"]
    runs = client.search_runs(
        [client.get_experiment_by_name("faults_test").experiment_id],
        filter_string="tags.`ame.stage` = 'validation'",
    )
    assert [r.info.status for r in runs] == ["KILLED"]

    refused = ame(project, "model", "alias", "killval", "champion", str(version.version))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: refusing to move an alias of killval to version 1")
    assert "--force" in line
    assert client.get_registered_model("killval").aliases == {}

    forced = ame(project, "model", "alias", "killval", "champion", str(version.version), "--force")
    assert forced.returncode == 0, forced.stderr
    aliases = client.get_registered_model("killval").aliases
    assert {k: str(v) for k, v in aliases.items()} == {"champion": str(version.version)}
