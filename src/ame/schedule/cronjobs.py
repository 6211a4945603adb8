"""Which of a project's schedules the cluster runs as CronJobs, and the double-run warning.

``ame render kubernetes`` makes a CronJob of every cron schedule (a task's
``triggers.schedule``, ``monitoring.schedule``, ``batchInference.schedule``);
applied, the cluster is their scheduler. ``ame scheduler`` on the kubernetes
backend would fire the same jobs as well, each fire then running on the
cluster a second time. The scheduler is not made to skip them: ame cannot
tell from here whether the CronJobs were applied (``render`` only writes
files), and skipping jobs that nobody applied would be a schedule that
silently never runs, the one thing ame exists to prevent. So it warns, once
per start, naming the jobs. autoTrain is not a CronJob (it polls a git
commit), so the local scheduler stays its only runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ame.schedule.jobs import Job
    from ame.spec.model import Project


def cluster_schedules(project: Project) -> list[Job]:
    """The project's jobs that ``ame render kubernetes`` renders as CronJobs (cron ones)."""
    from ame.schedule.jobs import AUTO_TRAIN, project_jobs

    return [j for j in project_jobs(project) if j.kind != AUTO_TRAIN and j.schedule is not None]


def double_run_warning(project: Project, backend: str) -> Optional[str]:
    """One line for ``ame scheduler`` on the kubernetes backend, when it has cron jobs."""
    if backend != "kubernetes":
        return None
    jobs = cluster_schedules(project)
    if not jobs:
        return None
    names = ", ".join(j.name for j in jobs)
    return (
        f"warning: {names} are also CronJobs on the kubernetes backend (ame render kubernetes); "
        "if those are applied, each fire runs twice: run either the CronJobs or this scheduler"
    )
