"""The jobs a project declares: what each runs and when.

One list, read from the typed ``Project`` only, shared by the scheduler,
``ame schedule list`` and the "no scheduler is running" notice, so all three
agree on what a project schedules. A job's name says its kind and target
(``task:nightly``, ``monitor:iris``, ``batch:iris``, ``autoTrain:iris``): it
names the job's directory under ``.ame/schedule/`` and the ``ame.schedule.job``
tag, so it must stay stable across restarts and edits of unrelated keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ame.spec.model import Project, Schedule

TASK, MONITOR, BATCH, AUTO_TRAIN = "task", "monitor", "batch", "autoTrain"


@dataclass(frozen=True)
class Job:
    """A scheduled job: a cron ``schedule``, or (autoTrain) a ``poll`` interval in seconds."""

    kind: str
    target: str
    schedule: Optional[Schedule] = None
    poll: Optional[float] = None

    @property
    def name(self) -> str:
        """``kind:target``, stable across restarts: the key of the job's records."""
        return f"{self.kind}:{self.target}"

    def argv(self) -> list[str]:
        """The ``ame`` arguments a fire runs (after ``ame`` and before ``-f FILE``)."""
        if self.kind == TASK:
            return ["task", "run", self.target]
        if self.kind == AUTO_TRAIN:
            return ["train", self.target]
        return [self.kind, self.target]

    def when(self) -> str:
        """When the job fires, in words: the cron (and zone), or the autoTrain poll."""
        if self.schedule is not None:
            return str(self.schedule)
        return f"on a new commit or training data (checked every {self.poll:g}s)"


def project_jobs(project: Project) -> list[Job]:
    """Every job ``project`` declares, in file order: tasks, then each model's jobs."""
    jobs: list[Job] = []
    for task in project.all_tasks():
        if task.triggers is not None and task.triggers.schedule is not None:
            jobs.append(Job(TASK, task.name, schedule=task.triggers.schedule))
    for model in project.models:
        if model.monitoring is not None and model.monitoring.schedule is not None:
            jobs.append(Job(MONITOR, model.name, schedule=model.monitoring.schedule))
        batch = model.batch_inference
        if batch is not None and batch.schedule is not None:
            jobs.append(Job(BATCH, model.name, schedule=batch.schedule))
        poll = model.deployment.auto_train_poll() if model.deployment is not None else None
        if poll is not None:
            jobs.append(Job(AUTO_TRAIN, model.name, poll=poll))
    return jobs
