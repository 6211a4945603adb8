"""Every schedule key takes a string or {cron, timezone, catchUp}; autoTrain a flag or {poll}."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ame.errors import SpecError
from ame.schedule.jobs import project_jobs
from ame.spec import load_project
from ame.spec.model import Schedule
from tests.conftest import AmeCli

PROJECT = """\
project: keys
models:
  - name: m
    training: {{task: {{taskRef: t}}}}
    deployment:
      {auto_train}
    monitoring:
      schedule: {{cron: "0 3 * * *", timezone: Europe/Berlin, catchUp: true}}
    batchInference:
      schedule: "@daily"
tasks:
  - name: t
    executor: !custom {{command: "true"}}
    triggers:
      schedule: {trigger}
"""


def _load(tmp_path: Path, auto_train: str = "autoTrain: true", trigger: str = "'*/5 * * * *'"):  # type: ignore[no-untyped-def]
    path = tmp_path / "ame.yml"
    path.write_text(PROJECT.format(auto_train=auto_train, trigger=trigger))
    return load_project(path)


def test_both_forms_normalise_to_one_type(tmp_path: Path) -> None:
    project = _load(tmp_path)
    task = project.task("t")
    assert task.triggers is not None and task.triggers.schedule == Schedule(cron="*/5 * * * *")
    model = project.model("m")
    assert model.monitoring is not None and model.monitoring.schedule == Schedule(
        cron="0 3 * * *", timezone="Europe/Berlin", catch_up=True
    )
    assert model.batch_inference is not None
    assert model.batch_inference.schedule == Schedule(cron="@daily")
    assert [j.name for j in project_jobs(project)] == [
        "task:t", "monitor:m", "batch:m", "autoTrain:m",
    ]  # fmt: skip
    # The canonical JSON form loads back.
    dumped = project.model_dump(mode="json", by_alias=True)
    assert type(project).model_validate(dumped) == project


@pytest.mark.parametrize(
    ("spelling", "poll"),
    [
        ("autoTrain: true", 60.0),
        ("auto_train: true", 60.0),
        ("autoTrain: {poll: 5m}", 300.0),
        ("auto_train: {poll: 15}", 15.0),
        ("autoTrain: false", None),
    ],
)
def test_auto_train_forms(tmp_path: Path, spelling: str, poll: float | None) -> None:
    deployment = _load(tmp_path, auto_train=spelling).model("m").deployment
    assert deployment is not None and deployment.auto_train_poll() == poll


@pytest.mark.parametrize(
    ("trigger", "auto_train", "message"),
    [
        ("{cron: '0 3 * * *', timezone: Mars/Olympus}", "autoTrain: true",
         "ame.yml:15:47 tasks[0].triggers.schedule.timezone: unknown time zone 'Mars/Olympus'"),
        ("{cron: '0 3 * * *', catchup: true}", "autoTrain: true",
         "tasks[0].triggers.schedule: unknown key 'catchup' (did you mean 'catchUp'?)"),
        ("{timezone: UTC}", "autoTrain: true",
         "tasks[0].triggers.schedule: missing required key 'cron'"),
        ("'61 * * * *'", "autoTrain: true", "is not a cron schedule"),
        ("'0 3 * * *'", "autoTrain: {poll: soon}", "models[0].deployment.autoTrain.poll"),
        ("'0 3 * * *'", "autoTrain: {every: 5}", "unknown key 'every'"),
        ("'0 3 * * *'", "autoTrain: {poll: 500ms}", "poll: must be at least 1 second, got 0.5s"),
        ("'0 3 * * *'", "autoTrain: yes please", "expected true or false"),
    ],
)  # fmt: skip
def test_mistakes_are_reported_at_their_place(
    tmp_path: Path, trigger: str, auto_train: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        _load(tmp_path, auto_train=auto_train, trigger=trigger)
    text = str(caught.value)
    # One line per mistake: FILE:LINE:COL path: message.
    (line,) = text.splitlines()
    assert line.startswith(f"{tmp_path / 'ame.yml'}:") and message in line, line


def test_validate_says_no_scheduler_runs_the_schedules(tmp_path: Path, ame_cli: AmeCli) -> None:
    (tmp_path / "ame.yml").write_text(textwrap.dedent(PROJECT).format(
        auto_train="autoTrain: false", trigger="'0 3 * * *'"
    ))  # fmt: skip
    out = ame_cli("validate", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    notes = [line for line in out.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "3 scheduled jobs" in notes[0]
    assert "no scheduler is running" in notes[0]
