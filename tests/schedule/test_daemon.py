"""``ame scheduler start|stop|status`` and ``ame schedule list`` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ame._system import pid_alive
from ame.schedule import daemon
from ame.schedule.scheduler import Scheduler
from ame.schedule.state import Store
from ame.spec import load_project
from tests.schedule.conftest import Clock, child_env, drain, marks, write_tasks


def ame(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ame.cli.main", *args], cwd=root, env=child_env(),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _processes_in(root: Path) -> list[str]:
    """Command lines of live processes started for ``root`` (the shared tracking agent aside)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "ame.tasks.agent" in cmdline or not cmdline:
            continue
        if cwd == str(root) or str(root) in cmdline:
            found.append(cmdline)
    return found


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def project(shared_root: Path) -> Iterator[Path]:
    # A per-second job whose run never ends by itself: stop has to end it.
    write_tasks(shared_root, {"forever": f"0 {shared_root / 'never'} | schedule: '* * * * * *'"})
    yield shared_root
    ame(shared_root, "scheduler", "stop")


def test_start_status_stop_leave_no_process_behind(project: Path) -> None:
    stopped = ame(project, "scheduler", "status")
    assert stopped.returncode == 1 and "stopped" in stopped.stdout
    assert "no scheduler is running" in ame(project, "validate").stderr

    started = ame(project, "scheduler", "start")
    assert started.returncode == 0, started.stderr
    status = ame(project, "scheduler", "status", "--json")
    assert status.returncode == 0
    info = json.loads(status.stdout)
    assert info["running"] and pid_alive(info["pid"])
    assert Path(info["log"]).parent == project / ".ame" / "schedule"
    again = ame(project, "scheduler", "start")
    assert again.returncode == 2 and "already running" in again.stderr
    assert "no scheduler" not in ame(project, "validate").stderr

    # The per-second job fires; its task runs (and would run forever).
    _wait_for(lambda: marks(project, "forever"), 120, "the first fire's task")
    job, fire_time, task_pid = marks(project, "forever")[0]
    assert job == "task:forever" and fire_time.endswith("Z")
    record = Store(project).records("task:forever")[0]
    assert record is not None and record.pid is not None
    # While it runs, later fires are skipped as overlaps, and listed.
    _wait_for(lambda: len(Store(project).records("task:forever")) >= 2, 30, "an overlap skip")
    listing = ame(project, "schedule", "list", "--json")
    jobs = json.loads(listing.stdout)["jobs"]
    assert [j["job"] for j in jobs] == ["task:forever"] and len(jobs[0]["next_fires"]) == 3
    assert jobs[0]["last"]["state"] in ("running", "skipped")

    stop = ame(project, "scheduler", "stop")
    assert stop.returncode == 0 and "stopped" in stop.stdout
    for pid in (info["pid"], record.pid, int(task_pid)):
        assert not pid_alive(pid), f"pid {pid} outlived `ame scheduler stop`"
    assert _processes_in(project) == []
    assert ame(project, "scheduler", "status").returncode == 1
    first = Store(project).records("task:forever")[0]
    assert first.state == "failed" and first.finished is not None
    assert ame(project, "scheduler", "stop").stdout.startswith("no scheduler is running")


def test_stop_ends_runs_a_killed_scheduler_left(
    shared_root: Path, clock: Clock, schedulers: list[Scheduler]
) -> None:
    write_tasks(shared_root, {"orphan": f"0 {shared_root / 'never'} | schedule: '*/5 * * * *'"})
    scheduler = Scheduler(load_project(shared_root / "ame.yml"), clock=clock, env=child_env())
    schedulers.append(scheduler)
    scheduler.tick()
    clock.advance(minutes=5)
    (fired,) = scheduler.tick()
    _wait_for(lambda: marks(shared_root, "orphan"), 120, "the fired task")
    task_pid = int(marks(shared_root, "orphan")[0][2])
    # This scheduler holds no lock: to `stop` it is gone (as after a SIGKILL), its run is not.
    assert daemon.stop(shared_root) == (None, 1)
    assert fired.pid is not None and not pid_alive(fired.pid) and not pid_alive(task_pid)
    (ended,) = drain(scheduler)
    assert ended.state == "failed"
