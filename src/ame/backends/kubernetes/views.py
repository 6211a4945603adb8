"""The official client's typed objects (Deployments, Jobs, Pods, Nodes) read as ame's views.

Pure functions over what ``cluster.py``'s calls return (``V1Deployment``,
``V1Job``, ``V1Pod``, ``V1Node``): the listings' views, and the decisions a
wait makes (is the rollout done, did the pod start, what did the task exit
with). Tested on real client objects, made by the client's own
deserializer (``V1Deployment.from_dict``) from JSON that passes the official
schemas, so with no cluster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from ame.backends.base import (
    FAILED,
    FINISHED,
    KILLED,
    PENDING,
    RUNNING,
    DeploymentView,
    JobView,
    NodeView,
)
from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes.options import SERVING_PORT
from ame.backends.kubernetes.serving import FOLLOWS, INGRESS_URL, MODEL_VERSION

GPU = "nvidia.com/gpu"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``500m``, ``16Gi``, ``4``) as a number; 0 when absent."""
    if value in (None, ""):
        return 0.0
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(value))


def _labels(obj: Any) -> dict[str, str]:
    return dict(obj.metadata.labels or {}) if obj.metadata else {}


def _annotations(obj: Any) -> dict[str, str]:
    return dict(obj.metadata.annotations or {}) if obj.metadata else {}


def _name(obj: Any) -> str:
    return str(obj.metadata.name) if obj.metadata and obj.metadata.name else "?"


def _time(value: Optional[datetime]) -> Optional[float]:
    """A time the client parsed (a ``datetime``) as seconds since the epoch."""
    return value.timestamp() if value is not None else None


def name_of(obj: Any) -> str:
    """The name of a typed object, or of a custom resource (a dict) as the client returns it."""
    if isinstance(obj, dict):
        return str((obj.get("metadata") or {}).get("name") or "?")
    return _name(obj)


def model_name(deployment: Any) -> str:
    """The ame model a Deployment serves: its ``follows`` annotation, else its label.

    A label value may be shortened to 63 characters; the annotation is exact.
    """
    follows = _annotations(deployment).get(FOLLOWS, "")
    if "@" in follows:
        return follows.rsplit("@", 1)[0]
    return _labels(deployment).get(lbl.MODEL, _name(deployment))


def model_deployments(deployments: list[Any], model: Optional[str] = None) -> list[Any]:
    """The Deployments (typed, as listed) that serve an ame model (``model`` only, when named).

    ame's labels on a Deployment without ``ame.dev/model`` (a hand-made one) do
    not make it a model deployment. By name, so listings are stable.
    """
    found = [d for d in deployments if lbl.MODEL in _labels(d)]
    if model is not None:
        found = [d for d in found if model_name(d) == model]
    return sorted(found, key=_name)


def deployment_state(deployment: Any) -> str:
    """``ready``, ``rolling out``, ``not ready`` or ``stopped``, from the rollout's status."""
    want = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    if want == 0:
        return "stopped"
    if not rollout_done(deployment):
        return "rolling out"
    return "ready" if (deployment.status.available_replicas or 0) >= want else "not ready"


def rollout_done(deployment: Any) -> bool:
    """Whether the controller saw the newest spec and every pod runs it (as ``kubectl rollout``).

    Old pods still counted (``replicas > updatedReplicas``) mean the rollout is
    under way; availability is judged apart (``deployment_state``).
    """
    status = deployment.status
    if status is None:
        return False
    want = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    generation = deployment.metadata.generation or 0
    updated = status.updated_replicas or 0
    return (
        (status.observed_generation or 0) >= generation
        and updated >= want
        and (status.replicas or 0) <= updated
    )


def rollout_available(deployment: Any) -> bool:
    """The rollout is done and every wanted replica is available: ``ame deploy`` may return."""
    want = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    return rollout_done(deployment) and (deployment.status.available_replicas or 0) >= want


def deployment_view(deployment: Any) -> DeploymentView:
    """One Deployment ame rendered, as ``ame deployment list`` shows it.

    The URL is the Service's in-cluster address (the Service has the
    Deployment's name and port 80), or the Ingress's when it has a host.
    """
    annotations = _annotations(deployment)
    name = _name(deployment)
    namespace = deployment.metadata.namespace or "default"
    model = model_name(deployment)
    version = annotations.get(MODEL_VERSION) or _labels(deployment).get(lbl.VERSION, "?")
    follows = annotations.get(FOLLOWS)
    want = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    ready = (deployment.status.ready_replicas or 0) if deployment.status else 0
    return DeploymentView(
        backend="kubernetes",
        model=model,
        version=version,
        ref=follows or f"{model}/{version}",
        url=annotations.get(INGRESS_URL) or f"http://{name}.{namespace}.svc",
        state=deployment_state(deployment),
        replicas=int(want),
        detail={
            "namespace": namespace,
            "deployment": name,
            "ready": f"{ready}/{want}",
            "port": SERVING_PORT,
        },
    )


def inference_service_view(obj: dict[str, Any]) -> DeploymentView:
    """A KServe InferenceService ame rendered, as the client lists it (a custom resource: a dict).

    KServe, not ame, decides its URL and replicas; its ``status.url`` once ready.
    """
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    name, namespace = str(meta.get("name") or "?"), str(meta.get("namespace") or "default")
    model = str(labels.get(lbl.MODEL) or name)
    version = str(labels.get(lbl.VERSION) or "?")
    url = str((obj.get("status") or {}).get("url") or f"http://{name}.{namespace}.svc")
    return DeploymentView(
        backend="kubernetes",
        model=model,
        version=version,
        ref=f"{model}/{version}",
        url=url,
        state="kserve",
        detail={"namespace": namespace, "deployment": f"inferenceservice/{name}"},
    )


def job_status(job: Any) -> str:
    """A Job's state as a task handle's: FINISHED, FAILED, KILLED (deadline), RUNNING, PENDING."""
    status = job.status
    if status is None:
        return PENDING
    for condition in status.conditions or []:
        if condition.status != "True":
            continue
        if condition.type == "Complete":
            return FINISHED
        if condition.type == "Failed":
            return KILLED if condition.reason == "DeadlineExceeded" else FAILED
    if status.succeeded:
        return FINISHED
    if status.failed:
        return FAILED
    if status.active:
        return RUNNING
    return PENDING


def job_ended(job: Any) -> bool:
    """Whether the Job is over (``backoffLimit: 0``: its one pod succeeded or failed)."""
    return job_status(job) in (FINISHED, FAILED, KILLED)


def job_view(job: Any) -> JobView:
    """One task Job ame made, for ``ame backend status``."""
    labels = _labels(job)
    return JobView(
        id=_name(job),
        task=labels.get(lbl.TASK, "?"),
        project=labels.get(lbl.PROJECT, "?"),
        status=job_status(job),
        started=_time(job.status.start_time if job.status else None),
    )


def task_jobs(jobs: list[Any]) -> list[JobView]:
    """The task Jobs among ``jobs`` (those labelled ``ame.dev/task``), oldest first."""
    views = [job_view(j) for j in jobs if lbl.TASK in _labels(j)]
    return sorted(views, key=lambda j: (j.started or 0.0, j.id))


def node_view(node: Any) -> NodeView:
    """One node: its address, whether it is Ready, and what pods may ask of it (allocatable)."""
    status = node.status
    addresses = {a.type: a.address for a in (status.addresses or [])} if status else {}
    conditions = (status.conditions or []) if status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    offer = (status.allocatable or status.capacity or {}) if status else {}
    return NodeView(
        address=addresses.get("InternalIP") or _name(node),
        alive=ready,
        cpus=quantity(offer.get("cpu")),
        gpus=quantity(offer.get(GPU)),
        memory=int(quantity(offer.get("memory"))),
        head=CONTROL_PLANE in _labels(node),
    )


def pod_names(pods: list[Any]) -> list[str]:
    """The names of ``pods``, oldest first (the order ``deployment logs`` prints them in)."""

    def key(pod: Any) -> tuple[float, str]:
        return (_time(pod.metadata.creation_timestamp) or 0.0, _name(pod))

    return [_name(p) for p in sorted(pods, key=key)]


def pod_started(pod: Any, container: str) -> bool:
    """Whether ``container``'s log can be read: the pod runs or ended, or it terminated."""
    status = pod.status
    if status is None:
        return False
    if status.phase in ("Running", "Succeeded", "Failed"):
        return True
    return any(
        s.name == container and s.state is not None and s.state.terminated is not None
        for s in status.container_statuses or []
    )


def exit_code(pod: Any, container: str) -> Optional[int]:
    """``container``'s exit code once it terminated (None while it has not)."""
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.name == container and status.state is not None and status.state.terminated:
            return int(status.state.terminated.exit_code)
    return None
