"""The scheduler's loop with a clock the test moves, firing real ``ame task run`` commands."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ame.schedule.scheduler import Scheduler
from ame.schedule.state import FAILED, FINISHED, MISSED, SKIPPED, Store
from ame.spec import load_project
from tests.schedule.conftest import Clock, child_env, drain, marks, write_tasks


def _scheduler(root: Path, clock: Clock, made: list[Scheduler]) -> Scheduler:
    scheduler = Scheduler(load_project(root / "ame.yml"), clock=clock, env=child_env())
    made.append(scheduler)
    return scheduler


def _tags(root: Path, job: str) -> list[tuple[str, str]]:
    """(job, fire_time) tags of the runs the store holds for ``job``."""
    with sqlite3.connect(root / ".ame" / "mlflow.db") as db:
        rows = db.execute(
            "SELECT a.value, b.value FROM tags a JOIN tags b ON a.run_uuid = b.run_uuid "
            "WHERE a.key = 'ame.schedule.job' AND a.value = ? AND b.key = 'ame.schedule.fire_time'",
            (job,),
        ).fetchall()
    return sorted(rows)


def test_fires_on_time_tags_the_run_and_never_twice_after_restart(
    shared_root: Path, clock: Clock, schedulers: list[Scheduler]
) -> None:
    write_tasks(shared_root, {"hourly": '| schedule: "0 * * * *"'})
    first = _scheduler(shared_root, clock, schedulers)
    assert first.tick() == []  # first sight: the cursor starts now, nothing is due
    clock.advance(hours=1)  # 13:00, a fire time
    fired = first.tick()
    assert [(r.job, r.fire_time, r.state) for r in fired] == [
        ("task:hourly", "2026-06-01T13:00:00Z", "running")
    ]
    # A second scheduler started while the fire runs (a restart) does not run it again.
    second = _scheduler(shared_root, clock, schedulers)
    assert second.tick() == []
    (done,) = drain(first)
    assert (done.state, done.exit_code) == (FINISHED, 0)
    assert [m[:2] for m in marks(shared_root, "hourly")] == [
        ["task:hourly", "2026-06-01T13:00:00Z"]
    ]
    # Nor does one started afterwards, at the same time or a little later.
    third = _scheduler(shared_root, clock, schedulers)
    clock.advance(minutes=10)
    assert third.tick() == []
    assert len(marks(shared_root, "hourly")) == 1
    assert _tags(shared_root, "task:hourly") == [("task:hourly", "2026-06-01T13:00:00Z")]


def test_overlap_is_skipped_and_recorded(
    shared_root: Path, clock: Clock, schedulers: list[Scheduler]
) -> None:
    release = shared_root / "release-slow"
    write_tasks(shared_root, {"slow": f'0 {release} | schedule: "*/5 * * * *"'})
    scheduler = _scheduler(shared_root, clock, schedulers)
    scheduler.tick()
    clock.advance(minutes=5)
    (running,) = scheduler.tick()
    clock.advance(minutes=5)  # the first run still waits for its release file
    (skipped,) = scheduler.tick()
    assert skipped.state == SKIPPED and "overlap" in (skipped.reason or "")
    assert skipped.fire_time == "2026-06-01T12:10:00Z"
    release.write_text("go")
    (done,) = drain(scheduler)
    assert (done.fire_time, done.state) == (running.fire_time, FINISHED)
    records = Store(shared_root).records("task:slow")
    assert [(r.fire_time, r.state) for r in records] == [
        ("2026-06-01T12:05:00Z", FINISHED),
        ("2026-06-01T12:10:00Z", SKIPPED),
    ]
    assert len(marks(shared_root, "slow")) == 1


def test_catch_up_runs_once_after_downtime(
    shared_root: Path, clock: Clock, schedulers: list[Scheduler]
) -> None:
    write_tasks(
        shared_root,
        {
            "catching": "| schedule: {cron: '0 * * * *', catchUp: true}",
            "missing": "| schedule: '0 * * * *'",
        },
    )
    _scheduler(shared_root, clock, schedulers).tick()  # both jobs seen at 12:00
    clock.advance(hours=5, minutes=20)  # down until 17:20: five fires missed
    later = _scheduler(shared_root, clock, schedulers)
    events = {r.job: r for r in later.tick()}
    caught = events["task:catching"]
    assert (caught.catch_up, caught.missed, caught.fire_time) == (True, 5, "2026-06-01T17:00:00Z")
    missed = events["task:missing"]
    assert (missed.state, missed.missed) == (MISSED, 5)
    drain(later)
    assert len(marks(shared_root, "catching")) == 1
    assert marks(shared_root, "missing") == []
    # Back on time: the next fire runs normally, for both.
    clock.advance(minutes=40)
    assert sorted(r.job for r in later.tick()) == ["task:catching", "task:missing"]
    drain(later)
    assert len(marks(shared_root, "catching")) == 2 and len(marks(shared_root, "missing")) == 1


def test_a_failure_is_recorded_and_retried_only_at_the_next_fire(
    shared_root: Path, clock: Clock, schedulers: list[Scheduler]
) -> None:
    write_tasks(shared_root, {"flaky": "3 | schedule: '*/10 * * * *'"})
    scheduler = _scheduler(shared_root, clock, schedulers)
    scheduler.tick()
    clock.advance(minutes=10)
    scheduler.tick()
    (failed,) = drain(scheduler)
    assert (failed.state, failed.exit_code) == (FAILED, 3)
    assert failed.reason  # the command's last line says why
    clock.advance(minutes=5)
    assert scheduler.tick() == []  # no retry before the next fire
    clock.advance(minutes=5)
    assert [r.fire_time for r in scheduler.tick()] == ["2026-06-01T12:20:00Z"]
    drain(scheduler)
    assert len(marks(shared_root, "flaky")) == 2


def test_an_edited_ame_yml_is_picked_up(
    shared_root: Path, clock: Clock, schedulers: list[Scheduler]
) -> None:
    write_tasks(shared_root, {"before": "| schedule: '*/10 * * * *'"})
    scheduler = _scheduler(shared_root, clock, schedulers)
    scheduler.tick()
    assert [j.name for j in scheduler.jobs()] == ["task:before"]
    write_tasks(shared_root, {"after": "| schedule: '*/10 * * * *'"})
    scheduler.tick()  # the new job is seen (its cursor starts now)
    assert [j.name for j in scheduler.jobs()] == ["task:after"]
    (shared_root / "ame.yml").write_text("project: [broken\n")
    scheduler.tick()  # an invalid edit keeps the jobs it had
    write_tasks(shared_root, {"after": "| schedule: '*/10 * * * *'"})
    clock.advance(minutes=10)
    assert [r.job for r in scheduler.tick()] == ["task:after"]
    drain(scheduler)
    assert len(marks(shared_root, "after")) == 1 and marks(shared_root, "before") == []
