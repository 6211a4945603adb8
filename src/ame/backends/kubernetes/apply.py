"""Putting rendered objects on a cluster: plan (testable here), then a thin call into the client.

``plan_task`` and ``plan_deploy`` do everything that can be checked without a
cluster: render, validate, refuse a deployment with nothing promoted, build
the project's Secret from ame's secret store, and choose the kubeconfig
context and namespace. ``--dry-run`` prints the plan. ``execute`` hands it to
the official ``kubernetes`` client: server-side apply with field manager
``ame``, then waits for the Job (streaming its pod's log, returning its exit
code) or for the Deployment's rollout.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes import pods, views
from ame.backends.kubernetes.cluster import Call, Cluster, apply_call
from ame.backends.kubernetes.errors import ApplyError, KubernetesError, NoVersionError
from ame.backends.kubernetes.names import label_value, secret_key
from ame.backends.kubernetes.options import RenderOptions
from ame.backends.kubernetes.render import Rendered, render_project, validate_rendered
from ame.spec.model import Project, Task

log = logging.getLogger(__name__)
REDACTED = "***"


@dataclass(frozen=True)
class Target:
    """Where objects go: a kubeconfig context (None: the current one) and a namespace."""

    context: Optional[str]
    namespace: str


@dataclass
class Plan:
    """What one ``--backend kubernetes`` command would apply, in order, and where."""

    target: Target
    objects: list[Rendered]
    secret: Optional[dict[str, Any]] = None
    source_archive: Optional[bytes] = None
    source_uri: Optional[str] = None
    job: Optional[str] = None
    deployment: Optional[str] = None
    notes: list[str] = field(default_factory=list)

    def manifests(self, *, redact: bool = True) -> list[dict[str, Any]]:
        """The objects to apply, the Secret first (its values masked unless ``redact`` is off)."""
        out = []
        if self.secret is not None:
            out.append(redacted(self.secret) if redact else self.secret)
        return out + [item.obj for item in self.objects]


def target_for(
    project: Project, context: Optional[str] = None, namespace: Optional[str] = None
) -> Target:
    """The context and namespace: the arguments, else ame.yml's ``backend.kubernetes``,
    else the kubeconfig's (``default`` when it names none or cannot be read)."""
    cluster = project.backend.kubernetes if project.backend is not None else None
    context = context or (cluster.context if cluster else None)
    namespace = namespace or (cluster.namespace if cluster else None)
    if namespace is None:
        namespace = _kubeconfig_namespace(context) or "default"
    return Target(context, namespace)


def kubeconfig_file() -> Optional[str]:
    """``$KUBECONFIG`` as it is now (the client reads it once, at import), else the default."""
    import os

    return os.environ.get("KUBECONFIG") or None


def _kubeconfig_namespace(context: Optional[str]) -> Optional[str]:
    try:
        from kubernetes import config

        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig_file())
    except Exception:  # no kubeconfig: the namespace is the cluster's default
        return None
    chosen = next((c for c in contexts if c["name"] == context), None) if context else current
    if not chosen:
        return None
    value = chosen.get("context", {}).get("namespace")
    return str(value) if value else None


def secret_object(project: Project, tasks: list[Task], namespace: str) -> Optional[dict[str, Any]]:
    """The project's Secret holding the values of ``tasks``' secrets, from ame's secret store."""
    from ame.tasks.secrets import resolve_secrets

    refs = {ref.key: ref for task in tasks for ref in task.secrets}
    if not refs:
        return None
    values = resolve_secrets(refs.values())
    by_var = {ref.inject_as: key for key, ref in refs.items()}
    data = {
        secret_key(by_var[var]): base64.b64encode(value.encode()).decode()
        for var, value in sorted(values.items())
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": pods.secret_name(project),
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "ame",
                "ame.dev/project": label_value(project.name),
            },
        },
        "type": "Opaque",
        "data": dict(sorted(data.items())),
    }


def redacted(secret: dict[str, Any]) -> dict[str, Any]:
    """``secret`` with every value replaced by ``***``, for printing."""
    return {**secret, "data": dict.fromkeys(secret.get("data", {}), REDACTED)}


def new_run_id() -> str:
    """A short id naming one run's Job (each run is its own Job; a Job's pod is immutable)."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:4]


def render_options(
    project: Project,
    tracking_uri: Optional[str],
    *,
    fmt: str = "plain",
    source: str = "auto",
    kube_version: Optional[str] = None,
    models: Optional[list[str]] = None,
    offline: bool = False,
    run_id: Optional[str] = None,
) -> RenderOptions:
    """The options of a render or an apply: the store (refused if embedded), source, versions.

    ``tracking_uri`` falls back to ``$MLFLOW_TRACKING_URI``; unless ``offline``,
    the registry is asked which version each model's champion alias names.
    """
    import os

    from ame.backends.kubernetes.options import DEFAULT_KUBE_VERSIONS
    from ame.backends.kubernetes.render import check_tracking_uri
    from ame.backends.kubernetes.source import project_source

    uri = check_tracking_uri(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    versions = {}
    if not offline:
        from ame.backends.kubernetes.versions import lookup_versions

        versions = lookup_versions(project, uri, models)
    kube: tuple[str, ...] = DEFAULT_KUBE_VERSIONS
    if kube_version and kube_version not in kube:
        kube = (*kube, kube_version)
    return RenderOptions(
        tracking_uri=uri,
        source=project_source(project, source),  # type: ignore[arg-type]
        format=fmt,  # type: ignore[arg-type]
        kube_versions=kube,
        versions=versions,
        run_id=run_id,
    )


def plan_task(project: Project, task: Task, options: RenderOptions, target: Target) -> Plan:
    """One run of ``task`` as a Job (never a CronJob: ``task run`` runs it now)."""
    if options.run_id is None:
        raise KubernetesError("a task run on the cluster needs a run id")
    rendered = render_project(project, options, tasks=[task.name])
    validate_rendered(rendered, options.kube_versions)
    plan = Plan(target, rendered, secret=secret_object(project, [task], target.namespace))
    plan.job = str(rendered[0].obj["metadata"]["name"])
    if options.source.kind == "archive":
        from ame.backends.kubernetes.source import archive_source

        source, data = archive_source(project)
        plan.source_archive, plan.source_uri = data, source.url
    return plan


def plan_deploy(project: Project, model: str, options: RenderOptions, target: Target) -> Plan:
    """``model``'s serving objects, pinned to the version its champion alias names."""
    spec = project.model(model)
    if model not in options.versions:
        raise NoVersionError(
            f"no version of '{model}' is promoted to @{spec.champion_alias} on "
            f"{options.tracking_uri}; train it (ame train {model}) or set the alias "
            f"(ame model alias {model} {spec.champion_alias} VERSION) first"
        )
    rendered = render_project(project, options, models=[model], schedules=False)
    validate_rendered(rendered, options.kube_versions)
    plan = Plan(target, rendered)
    plan.deployment = next(
        (str(r.obj["metadata"]["name"]) for r in rendered if r.obj["kind"] == "Deployment"), None
    )
    return plan


# --- the cluster: the calls themselves are in cluster.py (no API server in the tests) ---


def api_client(target: Target) -> Any:
    """The official client for ``target`` (kubeconfig context, else the in-cluster account)."""
    from kubernetes import config

    try:
        return config.new_client_from_config(config_file=kubeconfig_file(), context=target.context)
    except Exception as exc:  # no kubeconfig: perhaps we run in a pod
        try:
            config.load_incluster_config()
            from kubernetes import client

            return client.ApiClient()
        except Exception:
            raise KubernetesError(f"no Kubernetes cluster configured: {exc}") from exc


def upload_source(plan: Plan, tracking_uri: str) -> None:
    """Put the source archive in the tracking server's artifact store under its hash.

    Named by content, so uploading the same files again writes the same object.
    """
    if plan.source_archive is None or plan.source_uri is None:
        return
    import tempfile
    from pathlib import Path

    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    directory, _, filename = plan.source_uri.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        path.write_bytes(plan.source_archive)
        repository = get_artifact_repository(directory, tracking_uri=tracking_uri)
        repository.log_artifact(str(path))


TASK_CONTAINER = "task"


def _wait_job(cluster: Cluster, plan: Plan, on_line: Callable[[str], None]) -> int:
    """Stream the Job's pod log once it starts, wait for the Job to end, return the exit code."""
    name = str(plan.job)
    pod_name = next(
        (
            p.metadata.name
            for p in cluster.watch_pods(lbl.job_pods_selector(name), timeout=3600)
            if views.pod_started(p, TASK_CONTAINER)
        ),
        None,
    )
    if pod_name is None:
        raise ApplyError(f"the pod of Job {name} did not start")
    for chunk in cluster.follow_log(pod_name, TASK_CONTAINER):
        for line in chunk.decode("utf-8", "replace").splitlines():
            on_line(line)
    for job in cluster.watch_one("Job", lbl.name_selector(name), timeout=600):
        if views.job_ended(job):
            break
    code = views.exit_code(cluster.pod(pod_name), TASK_CONTAINER)
    return 1 if code is None else code


def _wait_rollout(cluster: Cluster, plan: Plan, timeout: int = 900) -> None:
    """Return once the Deployment's rollout is done and its replicas available."""
    selector = lbl.name_selector(str(plan.deployment))
    for deployment in cluster.watch_one("Deployment", selector, timeout=timeout):
        if views.rollout_available(deployment):
            return
    raise ApplyError(f"Deployment {plan.deployment} did not finish rolling out in {timeout}s")


def apply_calls(plan: Plan) -> list[Call]:
    """The server-side apply calls of ``plan``, in order (the Secret first), with real values."""
    return [apply_call(obj, plan.target.namespace) for obj in plan.manifests(redact=False)]


def execute(plan: Plan, tracking_uri: str, on_line: Callable[[str], None]) -> int:
    """Apply ``plan`` and wait: the Job's exit code, or 0 once the rollout is done."""
    cluster = Cluster(plan.target)
    calls = apply_calls(plan)
    upload_source(plan, tracking_uri)
    for call in calls:
        cluster.invoke(call)
        log.info("%s: done", call.what)
    if plan.job is not None:
        return _wait_job(cluster, plan, on_line)
    if plan.deployment is not None:
        _wait_rollout(cluster, plan)
    return 0
