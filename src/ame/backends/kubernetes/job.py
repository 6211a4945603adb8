"""A task as a batch/v1 Job (a CronJob when it has ``triggers.schedule``).

The pod runs ``ame task run`` on the project itself, so a task behaves on the
cluster exactly as on a laptop: the same executor builds the same environment,
the run is tracked in the same MLflow server, the exit code is the task's.
The init container fetches the project's files (``source.py``); the task's
``secrets`` come from the project's Secret and are put in the pod's own
secret store before the run, never into a rendered file.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Optional

from ame import __version__
from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes import pods, quantities
from ame.backends.kubernetes.names import dns_label
from ame.backends.kubernetes.options import WORKSPACE, RenderOptions
from ame.spec.model import Model, Project, Schedule, SecretRef, Task

# A finished Job (and its pod's logs) stays a day for `kubectl logs`, then goes.
TTL_SECONDS = 24 * 3600
SOURCE_DIR = f"{WORKSPACE}/src"
HOME_DIR = f"{WORKSPACE}/home"
# What the scheduler sets on a fired command (``ame.tasks.runner`` tags runs with it).
SCHEDULE_ENV = "AME_SCHEDULE_JOB"
# A fire missed by more than this is skipped (catchUp: false).
STARTING_DEADLINE = 300
_TOOLS = {"poetry": "poetry", "pipenv": "pipenv", "mlflow": "mlflow", "pip": "pip", "uv": "uv"}


def runner_image(task: Task) -> str:
    """The image ``ame image build --task T`` tags: Python, ame, uv and the executor's tool."""
    python = task.executor.python_version or "3.11"
    return f"ame-runner:{__version__}-py{python}-{task.executor.kind}"


def task_image(project: Project, task: Task, options: RenderOptions) -> str:
    """The task's ``image``, else ``backend.kubernetes.image``, else the runner image."""
    if task.image:
        return task.image
    if options.image:
        return options.image
    cluster = project.backend.kubernetes if project.backend is not None else None
    if cluster is not None and cluster.image:
        return cluster.image
    return runner_image(task)


def job_name(task: Task, options: RenderOptions, limit: int = 63) -> str:
    """The Job's name: the task's, plus the run's id when ``apply`` starts one run."""
    if options.run_id:
        return dns_label(task.name, options.run_id, limit=limit)
    return dns_label(task.name, limit=limit)


def _script(
    options: RenderOptions, secrets: list[SecretRef], argv: list[str], prepare: list[str]
) -> str:
    subdir = options.source.subdir
    workdir = f"{SOURCE_DIR}/{subdir}" if subdir else SOURCE_DIR
    lines = ["set -eu", f"cd {shlex.quote(workdir)}"]
    for ref in secrets:
        lines.append(
            f'printf %s "${ref.inject_as}" | ame secret set {shlex.quote(ref.key)} 2>/dev/null'
        )
    lines.extend(prepare)
    lines.append("exec " + shlex.join(["ame", *argv]))
    return "\n".join(lines) + "\n"


def _produced_datasets(project: Project, task: Task) -> bool:
    """Whether ``task`` reads a dataset that a task produces (kept in the artifact store)."""
    from ame.spec.loader import resolve_data_set

    for ref in task.data_sets:
        try:
            _, ds = resolve_data_set(project, ref)
        except Exception:  # an unresolvable reference is `ame validate`'s to report
            continue
        if ds.task is not None:
            return True
    return False


@dataclass(frozen=True)
class PodWork:
    """What one pod of a Job runs: ``ame ARGV`` in the project, with this task's settings.

    ``task`` gives the image, env, secrets, resources, storage and timeout; the
    built-in monitoring check and batch scorer have none and run in ``image``.
    """

    argv: list[str]
    meta: dict[str, str]
    image: str
    task: Optional[Task] = None
    env: dict[str, str] = field(default_factory=dict)


def pod_job_spec(project: Project, work: PodWork, options: RenderOptions) -> dict[str, Any]:
    """The ``spec`` of a Job (or a CronJob's job template) running ``work`` in the project."""
    task = work.task
    image = work.image
    source = options.source
    mounts = [{"name": "workspace", "mountPath": WORKSPACE}]
    base_env = {
        "MLFLOW_TRACKING_URI": options.tracking_uri,
        "HOME": HOME_DIR,
    }
    env = {
        **(task.env if task is not None else {}),
        **base_env,
        "AME_PROJECT": project.name,
        **({"AME_TASK": task.name} if task is not None else {}),
        **work.env,
        "AME_BACKEND": "local",  # inside the pod the task runs as a local process
    }
    secrets = task.secrets if task is not None else []
    prepare = []
    if task is not None and _produced_datasets(project, task):
        # Produced datasets live in the artifact store: fetched (or made and stored) first.
        prepare.append("python -m ame.backends.kubernetes.datasets " + shlex.quote(task.name))
    workspace: dict[str, Any] = {}
    if task is not None and task.resources.storage is not None:
        workspace["sizeLimit"] = quantities.size(task.resources.storage)
    container: dict[str, Any] = {
        "name": "task",
        "image": image,
        "command": ["/bin/sh", "-c", _script(options, secrets, work.argv, prepare)],
        "env": pods.env_list(env) + pods.secret_env(project, secrets),
        "volumeMounts": mounts,
        "securityContext": pods.container_security(),
    }
    resources = quantities.resources(task.resources) if task is not None else None
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {"backoffLimit": 0}
    if task is not None and task.timeout is not None:
        spec["activeDeadlineSeconds"] = max(1, int(task.timeout))
    spec["ttlSecondsAfterFinished"] = TTL_SECONDS
    spec["template"] = {
        "metadata": {"labels": work.meta},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": pods.pod_security(),
            "initContainers": [
                {
                    "name": "source",
                    "image": image,
                    "command": [
                        "python",
                        "-m",
                        "ame.backends.kubernetes.fetch",
                        source.kind,
                        source.url,
                        source.revision,
                        SOURCE_DIR,
                    ],
                    "env": pods.env_list(base_env),
                    "volumeMounts": mounts,
                    "securityContext": pods.container_security(),
                }
            ],
            "containers": [container],
            "volumes": [{"name": "workspace", "emptyDir": workspace}],
        },
    }
    return spec


def job_spec(
    project: Project, task: Task, options: RenderOptions, schedule_job: Optional[str] = None
) -> dict[str, Any]:
    """The ``spec`` of the task's Job (also the CronJob's job template)."""
    meta = lbl.labels(dns_label(task.name), project.name, options.source.short, task=task.name)
    work = PodWork(
        argv=["task", "run", task.name],
        meta=meta,
        image=task_image(project, task, options),
        task=task,
        env={SCHEDULE_ENV: schedule_job} if schedule_job else {},
    )
    return pod_job_spec(project, work, options)


def cron_job(
    name: str,
    meta: dict[str, str],
    annotations: dict[str, str],
    schedule: Schedule,
    spec: dict[str, Any],
) -> dict[str, Any]:
    """A CronJob firing ``spec`` on ``schedule``: its zone, no overlap, catch-up as asked."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "labels": meta, "annotations": annotations},
        "spec": {
            "schedule": schedule.cron,
            # Explicit: a CronJob without one follows the controller's zone.
            "timeZone": schedule.timezone,
            "concurrencyPolicy": "Forbid",
            # catchUp: false means a fire missed by more than 5 minutes is skipped.
            **({} if schedule.catch_up else {"startingDeadlineSeconds": STARTING_DEADLINE}),
            "jobTemplate": {"metadata": {"labels": meta}, "spec": spec},
        },
    }


def task_objects(project: Project, task: Task, options: RenderOptions) -> list[dict[str, Any]]:
    """The task's Job, or its CronJob (``concurrencyPolicy: Forbid``) when scheduled."""
    source = options.source
    meta = lbl.labels(dns_label(task.name), project.name, source.short, task=task.name)
    annotations = {"ame.dev/source": f"{source.kind} {source.url} {source.revision}"}
    schedule = task.triggers.schedule if task.triggers is not None else None
    if schedule is not None and options.run_id is None:
        spec = job_spec(project, task, options, schedule_job=f"task:{task.name}")
        return [cron_job(job_name(task, options, limit=52), meta, annotations, schedule, spec)]
    return [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name(task, options),
                "labels": meta,
                "annotations": annotations,
            },
            "spec": job_spec(project, task, options),
        }
    ]


def schedule_objects(
    project: Project, model: Model, options: RenderOptions
) -> list[dict[str, Any]]:
    """A CronJob per schedule of ``model``: ``ame monitor M`` and ``ame batch M``.

    A section with its own ``task`` runs in that task's image with its
    resources, env and secrets; the built-in check and scorer run in the
    model's serving image (ame plus the model's requirements).
    """
    from ame.backends.kubernetes.serving import served_ref, serving_image

    source = options.source
    annotations = {"ame.dev/source": f"{source.kind} {source.url} {source.revision}"}
    _, version = served_ref(model, options)
    sections = (
        ("monitor", model.monitoring),
        ("batch", model.batch_inference),
    )
    out = []
    for kind, section in sections:
        if section is None or section.schedule is None:
            continue
        name = dns_label(model.name, kind, limit=52)
        meta = {
            **lbl.labels(name, project.name, source.short, model=model.name),
            lbl.SCHEDULE: kind,
        }
        task = section.task
        image = (
            task_image(project, task, options)
            if task is not None
            else (serving_image(project, model, version))
        )
        work = PodWork(
            argv=[kind, model.name, "-f", "ame.yml"],
            meta=meta,
            image=image,
            task=task,
            env={SCHEDULE_ENV: f"{kind}:{model.name}"},
        )
        spec = pod_job_spec(project, work, options)
        out.append(cron_job(name, meta, annotations, section.schedule, spec))
    return out
