"""No silent schedules: the one line saying a project's schedules have nobody to run them.

AME parsed ``schedule`` and ``autoTrain`` and then did nothing with them. Here,
``ame validate``, ``ame train`` and ``ame status`` each call ``unscheduled_notice``
and print its line when the project declares jobs and no scheduler runs for it.
Cheap by design (a read of the typed project and one ``flock`` probe): no
croniter, no mlflow.
"""

from __future__ import annotations

from typing import Optional

from ame.schedule.daemon import running
from ame.schedule.jobs import project_jobs
from ame.spec.model import Project

SHOWN = 3


def unscheduled_notice(project: Project) -> Optional[str]:
    """The notice for ``project``, or None when it has no jobs or a scheduler runs them."""
    jobs = project_jobs(project)
    if not jobs or running(project.root) is not None:
        return None
    names = ", ".join(job.name for job in jobs[:SHOWN])
    if len(jobs) > SHOWN:
        names += f" and {len(jobs) - SHOWN} more"
    count = f"{len(jobs)} scheduled job{'s' * (len(jobs) != 1)}"
    return (
        f"note: this project has {count} ({names}) and no scheduler is running for it; "
        "start one with `ame scheduler start`"
    )
