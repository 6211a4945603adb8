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
from typing import Any

from ame import __version__
from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes import pods, quantities
from ame.backends.kubernetes.names import dns_label
from ame.backends.kubernetes.options import WORKSPACE, RenderOptions
from ame.spec.model import Project, Task

# A finished Job (and its pod's logs) stays a day for `kubectl logs`, then goes.
TTL_SECONDS = 24 * 3600
SOURCE_DIR = f"{WORKSPACE}/src"
HOME_DIR = f"{WORKSPACE}/home"
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


def _script(project: Project, task: Task, options: RenderOptions) -> str:
    subdir = options.source.subdir
    workdir = f"{SOURCE_DIR}/{subdir}" if subdir else SOURCE_DIR
    lines = ["set -eu", f"cd {shlex.quote(workdir)}"]
    for ref in task.secrets:
        lines.append(
            f'printf %s "${ref.inject_as}" | ame secret set {shlex.quote(ref.key)} 2>/dev/null'
        )
    lines.append(f"exec ame task run {shlex.quote(task.name)}")
    return "\n".join(lines) + "\n"


def job_spec(project: Project, task: Task, options: RenderOptions) -> dict[str, Any]:
    """The ``spec`` of the task's Job (also the CronJob's job template)."""
    image = task_image(project, task, options)
    source = options.source
    meta = lbl.labels(dns_label(task.name), project.name, source.short, task=task.name)
    mounts = [{"name": "workspace", "mountPath": WORKSPACE}]
    base_env = {
        "MLFLOW_TRACKING_URI": options.tracking_uri,
        "HOME": HOME_DIR,
    }
    env = {
        **task.env,
        **base_env,
        "AME_PROJECT": project.name,
        "AME_TASK": task.name,
        "AME_BACKEND": "local",  # inside the pod the task runs as a local process
    }
    workspace: dict[str, Any] = {}
    if task.resources.storage is not None:
        workspace["sizeLimit"] = quantities.size(task.resources.storage)
    container: dict[str, Any] = {
        "name": "task",
        "image": image,
        "command": ["/bin/sh", "-c", _script(project, task, options)],
        "env": pods.env_list(env) + pods.secret_env(project, task.secrets),
        "volumeMounts": mounts,
        "securityContext": pods.container_security(),
    }
    resources = quantities.resources(task.resources)
    if resources:
        container["resources"] = resources
    spec: dict[str, Any] = {"backoffLimit": 0}
    if task.timeout is not None:
        spec["activeDeadlineSeconds"] = max(1, int(task.timeout))
    spec["ttlSecondsAfterFinished"] = TTL_SECONDS
    spec["template"] = {
        "metadata": {"labels": meta},
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


def task_objects(project: Project, task: Task, options: RenderOptions) -> list[dict[str, Any]]:
    """The task's Job, or its CronJob (``concurrencyPolicy: Forbid``) when scheduled."""
    source = options.source
    meta = lbl.labels(dns_label(task.name), project.name, source.short, task=task.name)
    annotations = {"ame.dev/source": f"{source.kind} {source.url} {source.revision}"}
    schedule = task.triggers.schedule if task.triggers is not None else None
    if schedule is not None and options.run_id is None:
        return [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": {
                    "name": job_name(task, options, limit=52),
                    "labels": meta,
                    "annotations": annotations,
                },
                "spec": {
                    "schedule": schedule.cron,
                    # Explicit: a CronJob without one follows the controller's zone.
                    "timeZone": schedule.timezone,
                    "concurrencyPolicy": "Forbid",
                    # catchUp: false means a fire missed by more than 5 minutes is skipped.
                    **({} if schedule.catch_up else {"startingDeadlineSeconds": 300}),
                    "jobTemplate": {
                        "metadata": {"labels": meta},
                        "spec": job_spec(project, task, options),
                    },
                },
            }
        ]
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
