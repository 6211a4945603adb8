"""Fixtures for the scheduler's tests: a clock the test moves, one project dir per session.

Fires run the real CLI (``ame task run``) against the project's real embedded
store. The task-tracking agent is keyed by store and directory, and starting
one costs seconds, so the cron tests share one project directory (each test
writes its own ame.yml there, with job names of its own), and so one agent.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ame.schedule.scheduler import Scheduler
from ame.schedule.state import FireRecord

JOB_PY = """
import os, sys, time
name = sys.argv[1]
exit_code = int(sys.argv[2]) if len(sys.argv) > 2 else 0
wait_for = sys.argv[3] if len(sys.argv) > 3 else None
os.makedirs("marks", exist_ok=True)
with open(os.path.join("marks", name + ".log"), "a") as out:
    out.write("%s %s %d\\n" % (os.environ.get("AME_SCHEDULE_JOB"),
                              os.environ.get("AME_SCHEDULE_FIRE_TIME"), os.getpid()))
if wait_for:
    deadline = time.monotonic() + 120
    while not os.path.exists(wait_for) and time.monotonic() < deadline:
        time.sleep(0.05)
print("job", name, "exits", exit_code)
sys.exit(exit_code)
"""


class Clock:
    """A clock the test sets and advances; the scheduler reads it through ``__call__``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc))


def child_env() -> dict[str, str]:
    """The environment fired commands get: the test's, without a remote tracking URI."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "NO_COLOR": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project directory the cron tests share (one tracking agent for all of them)."""
    root = tmp_path_factory.mktemp("schedule-project")
    (root / "job.py").write_text(JOB_PY)
    return root


def write_tasks(root: Path, tasks: dict[str, str], project: str = "schedule_test") -> Path:
    """Write ame.yml: one ``!custom`` task per entry, ``name -> "job.py args | triggers"``."""
    lines = [f"project: {project}", "tasks:"]
    for name, body in tasks.items():
        args, _, triggers = body.partition("|")
        lines += [
            f"  - name: {name}",
            "    executor: !custom",
            f"      command: {sys.executable} job.py {name} {args.strip()}",
        ]
        if triggers.strip():
            lines += ["    triggers:", *textwrap.indent(triggers.strip(), "      ").splitlines()]
    (root / "ame.yml").write_text("\n".join(lines) + "\n")
    return root / "ame.yml"


def marks(root: Path, name: str) -> list[list[str]]:
    """What each run of task ``name`` wrote: ``[job, fire_time, pid]`` per run."""
    path = root / "marks" / f"{name}.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def drain(scheduler: Scheduler, timeout: float = 180) -> list[FireRecord]:
    """Tick (without moving the clock) until every fired command has ended; their records."""
    events: list[FireRecord] = []
    deadline = time.monotonic() + timeout
    while scheduler.busy():
        assert time.monotonic() < deadline, "fired commands did not end in time"
        time.sleep(0.05)
    events += scheduler.tick()
    return events


@pytest.fixture
def schedulers() -> Iterator[list[Scheduler]]:
    """Schedulers a test made; any still running a fire are shut down at the end."""
    made: list[Scheduler] = []
    yield made
    for scheduler in made:
        scheduler.shutdown(timeout=30)
