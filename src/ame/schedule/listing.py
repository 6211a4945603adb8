"""What ``ame schedule list`` shows: each job, what it runs, when, and how it last went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from ame.schedule.cron import next_fires
from ame.schedule.jobs import Job, project_jobs
from ame.schedule.state import FireRecord, Store, iso
from ame.spec.model import Project


@dataclass(frozen=True)
class JobSummary:
    """One job as listed: its command, its schedule, its next fire times and its last fire."""

    job: str
    command: str
    schedule: str
    timezone: Optional[str]
    catch_up: Optional[bool]
    next_fires: list[str] = field(default_factory=list)
    last: Optional[FireRecord] = None  # the latest fire that ran a command
    latest: Optional[FireRecord] = None  # the latest fire of all, a skip or a miss included


def summarize(project: Project, now: datetime, count: int = 3) -> list[JobSummary]:
    """Every job of ``project`` with its next ``count`` fires after ``now`` and its last record."""
    store = Store(project.root)
    out = []
    for job in project_jobs(project):
        out.append(_summary(job, store, now, count))
    return out


def _summary(job: Job, store: Store, now: datetime, count: int) -> JobSummary:
    sched = job.schedule
    fires = [iso(t) for t in next_fires(sched, now, count)] if sched is not None else []
    return JobSummary(
        job=job.name,
        command="ame " + " ".join(job.argv()),
        schedule=sched.cron if sched is not None else job.when(),
        timezone=sched.timezone if sched is not None else None,
        catch_up=sched.catch_up if sched is not None else None,
        next_fires=fires,
        last=store.last(job.name, ran=True),
        latest=store.last(job.name),
    )


def describe_last(record: Optional[FireRecord]) -> str:
    """A fire's outcome in a few words: ``finished (exit 0)``, ``skipped: overlap ...``."""
    if record is None:
        return "never"
    text = f"{record.fire_time} {record.state}"
    if record.exit_code is not None:
        text += f" (exit {record.exit_code})"
    if record.reason and record.state != "finished":
        text += f": {record.reason}"
    return text
