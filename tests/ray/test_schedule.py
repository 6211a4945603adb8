"""A scheduled task on the ray backend: the fire is a Ray job, tagged with its fire time.

The scheduler fires the same ``ame task run`` a person would type, with the
backend it was given; on Ray that command submits the task to the cluster. The
clock is the test's, so the fire is due at once.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ame.backends.ray.cluster import META_PROJECT, META_TASK
from ame.schedule.scheduler import Scheduler
from ame.schedule.state import FINISHED
from ame.spec import load_project
from tests.ray.cluster import Cluster
from tests.ray.helpers import cli_env, job_client, write_project
from tests.schedule.conftest import Clock, drain

PROJECT = """\
project: {name}
tasks:
  - name: nightly
    executor: !custom
      command: >-
        python -c "import os; print('fired at', os.environ.get('AME_SCHEDULE_FIRE_TIME'))"
    triggers:
      schedule: {{cron: "0 2 * * *", timezone: Europe/Berlin}}
"""


@pytest.mark.timeout(600)
def test_a_cron_fire_on_the_ray_backend_is_a_ray_job_tagged_with_its_fire_time(
    ray_cluster: Cluster, tmp_path: Path, unique_name: str
) -> None:
    root = write_project(tmp_path / "p", PROJECT.format(name=unique_name))
    # 23:00 UTC on 31 May is 01:00 in Berlin (summer time): the fire is 02:00 there.
    clock = Clock(datetime(2026, 5, 31, 23, 0, tzinfo=timezone.utc))
    scheduler = Scheduler(
        load_project(root / "ame.yml"), clock=clock, backend="ray", env=cli_env(ray_cluster)
    )
    try:
        assert scheduler.tick() == []  # first sight: nothing is due yet
        clock.advance(hours=1)
        fired = scheduler.tick()
        assert [(r.job, r.fire_time) for r in fired] == [("task:nightly", "2026-06-01T00:00:00Z")]
        (done,) = drain(scheduler)
        assert (done.state, done.exit_code) == (FINISHED, 0), done
    finally:
        scheduler.shutdown(timeout=30)

    client = job_client(ray_cluster)
    jobs = [
        j
        for j in client.list_jobs()
        if (j.metadata or {}).get(META_PROJECT) == unique_name
        and (j.metadata or {}).get(META_TASK) == "nightly"
    ]
    assert len(jobs) == 1, jobs
    assert str(jobs[0].status) in {"SUCCEEDED", "JobStatus.SUCCEEDED"}
    assert "fired at 2026-06-01T00:00:00Z" in client.get_job_logs(jobs[0].submission_id)

    with sqlite3.connect(root / ".ame" / "mlflow.db") as db:
        tags = dict(
            db.execute(
                "SELECT key, value FROM tags WHERE key IN "
                "('ame.schedule.job', 'ame.schedule.fire_time', 'ame.ray_job_id')"
            ).fetchall()
        )
    assert tags.get("ame.schedule.job") == "task:nightly", tags
    assert tags.get("ame.schedule.fire_time") == "2026-06-01T00:00:00Z", tags
    assert tags.get("ame.ray_job_id") == jobs[0].submission_id, tags
