"""autoTrain: a new commit (or changed training data) retrains, through ``ame train``'s gate."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ame.schedule.autotrain import fingerprint
from ame.schedule.scheduler import Scheduler
from ame.schedule.state import FAILED, FINISHED
from ame.spec import load_project
from tests.lifecycle.conftest import TRAIN_PY, VALIDATE_PY
from tests.schedule.conftest import Clock, child_env, drain

AME_YML = f"""\
project: autotrain_test
models:
  - name: auto
    training:
      task:
        taskRef: train
    validation:
      task:
        taskRef: validate
    deployment:
      autoTrain: {{poll: 1}}
tasks:
  - name: train
    executor: !custom
      command: {sys.executable} train.py
    dataSets: [rows]
  - name: validate
    executor: !custom
      command: {sys.executable} validate.py
dataSets:
  - name: rows
    path: data/rows.csv
"""


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _commit(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", message)


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "ame.yml").write_text(AME_YML)
    (root / "train.py").write_text(TRAIN_PY)
    (root / "validate.py").write_text(VALIDATE_PY)
    (root / "data").mkdir()
    (root / "data" / "rows.csv").write_text("x,y\n1,0\n")
    (root / ".gitignore").write_text(".ame/\n")
    _git(root, "init", "-q")
    _commit(root, "first")
    return root


def _champion(root: Path) -> str | None:
    with sqlite3.connect(root / ".ame" / "mlflow.db") as db:
        query = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
        row = db.execute(query, ("auto", "champion")).fetchone()
    return str(row[0]) if row else None


def _versions(root: Path) -> int:
    with sqlite3.connect(root / ".ame" / "mlflow.db") as db:
        query = "SELECT COUNT(*) FROM model_versions WHERE name = ?"
        return int(db.execute(query, ("auto",)).fetchone()[0])


def _tagged_runs(root: Path, job: str) -> int:
    with sqlite3.connect(root / ".ame" / "mlflow.db") as db:
        query = "SELECT COUNT(*) FROM tags WHERE key = 'ame.schedule.job' AND value = ?"
        return int(db.execute(query, (job,)).fetchone()[0])


def test_training_data_content_changes_the_fingerprint(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    project = load_project(root / "ame.yml")
    before = fingerprint(project, "auto")
    assert before["commit"] and set(before["data"]) == {"rows"}
    (root / "data" / "rows.csv").write_text("x,y\n1,0\n")  # same bytes, new mtime
    assert fingerprint(project, "auto") == before
    (root / "data" / "rows.csv").write_text("x,y\n1,1\n")
    assert fingerprint(project, "auto")["data"] != before["data"]


@pytest.mark.slow
def test_a_new_commit_retrains_and_validation_gates_it(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    clock = Clock(datetime(2026, 6, 1, 12, tzinfo=timezone.utc))
    scheduler = Scheduler(load_project(root / "ame.yml"), clock=clock, env=child_env())
    try:
        assert scheduler.tick() == []  # the first poll takes the baseline
        clock.advance(seconds=5)
        assert scheduler.tick() == []  # nothing changed
        (root / "README.md").write_text("a change\n")
        _commit(root, "second")
        clock.advance(seconds=5)
        (fired,) = scheduler.tick()
        assert fired.job == "autoTrain:auto" and "commit" in (fired.reason or "")
        (trained,) = drain(scheduler, timeout=280)
        assert (trained.state, trained.exit_code) == (FINISHED, 0), trained.reason
        assert _champion(root) == "1"
        assert _tagged_runs(root, "autoTrain:auto") == 2  # the training and its validation
        # This test's scheduler holds no lock, so `ame train` said no scheduler runs the job.
        assert trained.log and "no scheduler is running" in Path(trained.log).read_text()
        # A restarted scheduler does not train the same commit again.
        restarted = Scheduler(load_project(root / "ame.yml"), clock=clock, env=child_env())
        clock.advance(seconds=5)
        assert restarted.tick() == []
        # A commit whose model fails validation trains, registers, and is not promoted.
        (root / "fail-validation").write_text("")
        _commit(root, "third")
        clock.advance(seconds=5)
        (fired,) = restarted.tick()
        (gated,) = drain(restarted, timeout=280)
        assert (gated.state, gated.exit_code) == (FAILED, 1)
        assert _versions(root) == 2 and _champion(root) == "1"
    finally:
        scheduler.shutdown(timeout=30)
