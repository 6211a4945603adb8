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

from ame.backends.kubernetes import pods
from ame.backends.kubernetes.errors import ApplyError, KubernetesError, NoVersionError
from ame.backends.kubernetes.names import label_value, secret_key
from ame.backends.kubernetes.options import RenderOptions
from ame.backends.kubernetes.render import Rendered, render_project, validate_rendered
from ame.spec.model import Project, Task

log = logging.getLogger(__name__)
FIELD_MANAGER = "ame"
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


def _kubeconfig_namespace(context: Optional[str]) -> Optional[str]:
    try:
        from kubernetes import config

        contexts, current = config.list_kube_config_contexts()
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
    rendered = render_project(project, options, models=[model])
    validate_rendered(rendered, options.kube_versions)
    plan = Plan(target, rendered)
    plan.deployment = next(
        (str(r.obj["metadata"]["name"]) for r in rendered if r.obj["kind"] == "Deployment"), None
    )
    return plan


# --- the cluster (not reachable from the tests: thin calls into the official client) ---


def _client(target: Target) -> Any:
    from kubernetes import config

    try:
        return config.new_client_from_config(context=target.context)
    except Exception as exc:  # no kubeconfig: perhaps we run in a pod
        try:
            config.load_incluster_config()
            from kubernetes import client

            return client.ApiClient()
        except Exception:
            raise KubernetesError(f"no Kubernetes cluster configured: {exc}") from exc


def _apply(api: Any, objects: list[dict[str, Any]], namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient

    dynamic = DynamicClient(api)
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        try:
            resource = dynamic.resources.get(api_version=obj["apiVersion"], kind=kind)
            resource.server_side_apply(
                body=obj,
                name=name,
                namespace=namespace if resource.namespaced else None,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except ApiException as exc:
            raise ApplyError(f"{kind}/{name}: the cluster refused it: {exc.reason}") from exc
        log.info("applied %s/%s", kind, name)


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


def _wait_job(api: Any, plan: Plan, on_line: Callable[[str], None]) -> int:
    from kubernetes import client, watch

    core: Any = client.CoreV1Api(api)
    batch: Any = client.BatchV1Api(api)
    ns, name = plan.target.namespace, plan.job
    pod_name: Optional[str] = None
    for event in watch.Watch().stream(
        core.list_namespaced_pod, ns, label_selector=f"job-name={name}", timeout_seconds=3600
    ):
        pod = event["object"]
        statuses = pod.status.container_statuses or []
        if pod.status.phase in ("Running", "Succeeded", "Failed") or any(
            s.state.terminated for s in statuses
        ):
            pod_name = pod.metadata.name
            break
    if pod_name is None:
        raise ApplyError(f"the pod of Job {name} did not start")
    stream = core.read_namespaced_pod_log(
        pod_name, ns, container="task", follow=True, _preload_content=False
    )
    for raw in stream.stream():
        for line in raw.decode("utf-8", "replace").splitlines():
            on_line(line)
    for event in watch.Watch().stream(
        batch.list_namespaced_job, ns, field_selector=f"metadata.name={name}", timeout_seconds=600
    ):
        status = event["object"].status
        if status.succeeded or status.failed:
            break
    pod = core.read_namespaced_pod(pod_name, ns)
    for status in pod.status.container_statuses or []:
        if status.name == "task" and status.state.terminated is not None:
            return int(status.state.terminated.exit_code)
    return 1


def _wait_rollout(api: Any, plan: Plan, timeout: int = 900) -> None:
    from kubernetes import client, watch

    apps: Any = client.AppsV1Api(api)
    for event in watch.Watch().stream(
        apps.list_namespaced_deployment,
        plan.target.namespace,
        field_selector=f"metadata.name={plan.deployment}",
        timeout_seconds=timeout,
    ):
        dep = event["object"]
        want = dep.spec.replicas or 0
        status = dep.status
        if (
            (status.observed_generation or 0) >= (dep.metadata.generation or 0)
            and (status.updated_replicas or 0) >= want
            and (status.available_replicas or 0) >= want
            and (status.replicas or 0) == (status.updated_replicas or 0)
        ):
            return
    raise ApplyError(f"Deployment {plan.deployment} did not finish rolling out in {timeout}s")


def execute(plan: Plan, tracking_uri: str, on_line: Callable[[str], None]) -> int:
    """Apply ``plan`` and wait: the Job's exit code, or 0 once the rollout is done."""
    api = _client(plan.target)
    upload_source(plan, tracking_uri)
    _apply(api, plan.manifests(redact=False), plan.target.namespace)
    if plan.job is not None:
        return _wait_job(api, plan, on_line)
    if plan.deployment is not None:
        _wait_rollout(api, plan)
    return 0
