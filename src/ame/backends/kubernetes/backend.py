"""``KubernetesBackend``: the ``Backend`` protocol on a cluster reached through the kubeconfig.

Deployments are what ``ame render kubernetes`` makes of a model (a
Deployment, Service, Ingress...), found again by ame's labels
(``app.kubernetes.io/managed-by=ame`` and ``ame.dev/project``, plus
``ame.dev/model`` for one model), so ``ame deployment list/stop/logs`` and
``ame backend status`` see exactly ame's objects and nothing else in the
namespace. The client library is imported only when a call needs it.

The methods only compose: the calls are ``cluster.py``'s thin ones, and what
is decided between them (selectors, ``stop_plan``, ``stopped_view``,
``cronjobs_note``, the views) is pure and tested without a cluster.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.backends.base import DeploymentView, DeployRequest, EngineStatus, TaskRequest
from ame.backends.kubernetes import labels as lbl
from ame.backends.kubernetes import views
from ame.backends.kubernetes.apply import Target, target_for
from ame.backends.kubernetes.cluster import Cluster, ClusterRefusedError, delete_call, list_call
from ame.backends.kubernetes.errors import KubernetesError
from ame.errors import DeploymentError

if TYPE_CHECKING:
    from ame.backends.base import TaskHandle
    from ame.spec.model import Project

log = logging.getLogger(__name__)
SERVER_CONTAINER = "server"
# What ``ame deployment stop`` deletes of a model, in this order, the Deployment last
# (its pods go with it): an autoscaler first, so it scales nothing being removed.
STOP_ORDER = (
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "Service",
    "InferenceService",
    "Deployment",
)


def stop_plan(
    model_deployments: Sequence[str], found: Mapping[str, Sequence[str]]
) -> list[tuple[str, str]]:
    """The ``(kind, name)`` deletions of ``ame deployment stop``, in the order they are made.

    ``model_deployments`` are the model's Deployments (already told apart from
    another model's whose label value was shortened alike); ``found`` the names
    of each other serving kind listed by the model's labels (the
    InferenceService of ``render --format kserve`` applied by hand included).
    CronJobs are not in it: see ``cronjobs_note``.
    """
    plan: list[tuple[str, str]] = []
    for kind in STOP_ORDER:
        names = model_deployments if kind == "Deployment" else found.get(kind, ())
        plan.extend((kind, name) for name in sorted(set(names)))
    return plan


def cronjobs_note(
    model: str, cronjobs: Sequence[str], namespace: str, selector: str
) -> Optional[str]:
    """One line saying the model's CronJobs are left by ``deployment stop``, and how to remove them.

    They are left on purpose: ``ame deploy`` never applies them (they come from
    ``ame render kubernetes`` applied by the user), and a model's scheduled
    monitoring or batch scoring is not its serving deployment.
    """
    if not cronjobs:
        return None
    names = ", ".join(sorted(cronjobs))
    return (
        f"{model}: CronJobs {names} are left (ame deploy does not apply them); remove them with "
        f"`kubectl delete cronjob -n {namespace} -l {selector}`"
    )


class KubernetesBackend:
    """Deployments and status on one kubeconfig context and namespace."""

    name = "kubernetes"

    def __init__(
        self,
        project: Optional[Project] = None,
        *,
        target: Optional[Target] = None,
        tracking_uri: Optional[str] = None,
    ) -> None:
        self.project = project
        if target is None:
            target = target_for(project) if project is not None else Target(None, "default")
        self.target = target
        self.tracking_uri = tracking_uri
        self.cluster = Cluster(target)

    @property
    def project_root(self) -> Optional[Path]:
        """The project's directory (None outside a project)."""
        return self.project.root if self.project is not None else None

    def where(self) -> str:
        """``context X, namespace Y``: for ``status`` and error lines."""
        context = self.target.context or "current context"
        return f"{context}, namespace {self.target.namespace}"

    # --- selection by ame's labels ---------------------------------------------

    def owned(self, model: Optional[str] = None) -> dict[str, str]:
        """The labels of ame's objects of this project (of one model when named)."""
        return lbl.owned(self.project.name if self.project is not None else None, model)

    def selector(self, model: Optional[str] = None) -> str:
        """``owned`` as a label selector."""
        return lbl.label_selector(self.owned(model))

    def _deployments(self, model: Optional[str] = None) -> list[Any]:
        return views.model_deployments(self.cluster.deployments(self.selector(model)), model)

    def _one(self, model: str) -> Any:
        found = self._deployments(model)
        if not found:
            raise DeploymentError(f"no Kubernetes deployment of '{model}' in {self.where()}")
        return found[0]

    # --- the protocol ----------------------------------------------------------

    def run_task(self, request: TaskRequest) -> TaskHandle:
        """Not through the protocol yet: ``ame task run T --backend kubernetes`` runs a Job.

        A Job's task opens its own MLflow run inside the pod, so the lifecycle
        (which finds a training's version by its run id) cannot follow it yet.
        """
        raise KubernetesError(
            f"task '{request.task.name}': run it on the cluster with "
            f"`ame task run {request.task.name} --backend kubernetes`; training and "
            "validation on the kubernetes backend are not available in this version of ame"
        )

    def deploy(self, request: DeployRequest) -> DeploymentView:
        """Apply the model's objects pinned to ``request.version`` and wait for the rollout."""
        from ame.backends.kubernetes.apply import execute
        from ame.backends.kubernetes.follow import plan_follow

        if self.project is None:
            raise KubernetesError("deploying on the kubernetes backend needs the project's ame.yml")
        uri = request.store.tracking_uri if self.tracking_uri is None else self.tracking_uri
        plan = plan_follow(self.project, request.model, request.version, uri, self.target)
        execute(plan, uri, lambda line: log.info("%s", line))
        return views.deployment_view(self._one(request.model))

    def list_deployments(self) -> list[DeploymentView]:
        """ame's Deployments of this project in the namespace, with their rollout state."""
        return [views.deployment_view(d) for d in self._deployments()]

    def _listed(self, kind: str, model: str) -> list[Any]:
        """The ``kind`` objects carrying the model's labels (no InferenceService without KServe)."""
        from ame.backends.kubernetes.cluster import items

        call = list_call(kind, self.target.namespace, self.selector(model))
        try:
            return items(self.cluster.invoke(call))
        except ClusterRefusedError as exc:
            if kind == "InferenceService" and exc.status == 404:
                return []  # the cluster has no KServe, so no InferenceService either
            raise

    def stop_deployment(self, model: str) -> DeploymentView:
        """Delete the model's serving objects (``stop_plan``), found by ame's labels.

        A model served only by an InferenceService (``render --format kserve``
        applied by hand) is stopped too. The model's CronJobs are left, in one
        warning line (``cronjobs_note``).
        """
        deployments = self._deployments(model)
        others = {kind: self._listed(kind, model) for kind in STOP_ORDER if kind != "Deployment"}
        view = stopped_view(deployments, others["InferenceService"])
        if view is None:
            raise DeploymentError(f"no Kubernetes deployment of '{model}' in {self.where()}")
        names = {kind: [views.name_of(o) for o in found] for kind, found in others.items()}
        for kind, name in stop_plan([views.name_of(d) for d in deployments], names):
            self.cluster.invoke(delete_call(kind, name, self.target.namespace))
        cronjobs = [views.name_of(c) for c in self._listed("CronJob", model)]
        note = cronjobs_note(model, cronjobs, self.target.namespace, self.selector(model))
        if note is not None:
            log.warning("%s", note)
        return view

    def deployment_logs(self, model: str, tail: Optional[int] = None) -> list[str]:
        """The server container's log of each of the model's pods (prefixed when several)."""
        deployment = self._one(model)
        pods = views.pod_names(self.cluster.pods(pods_selector(deployment)))
        lines: list[str] = []
        for pod in pods:
            text = self.cluster.pod_log(pod, SERVER_CONTAINER, tail)
            lines.extend(prefixed(pod, text, several=len(pods) > 1))
        return lines

    def status(self) -> EngineStatus:
        """The cluster's nodes, ame's task Jobs and Deployments of this project."""
        try:
            nodes = [views.node_view(n) for n in self.cluster.nodes()]
        except ClusterRefusedError as exc:  # a namespaced account may not list nodes
            log.warning("nodes not shown: %s", exc)
            nodes = []
        jobs = views.task_jobs(self.cluster.jobs(self.selector()))
        return EngineStatus("kubernetes", self.where(), nodes, jobs, self.list_deployments())


def stopped_view(
    deployments: Sequence[Any], inference_services: Sequence[dict[str, Any]]
) -> Optional[DeploymentView]:
    """What ``deployment stop`` reports: the Deployment's view, else the InferenceService's.

    None when the model has neither on the cluster: nothing to stop.
    """
    if deployments:
        view = views.deployment_view(deployments[0])
    elif inference_services:
        view = views.inference_service_view(inference_services[0])
    else:
        return None
    return dataclasses.replace(view, state="stopped")


def pods_selector(deployment: Any) -> str:
    """The label selector of a Deployment's own pods: its ``spec.selector.matchLabels``.

    Not the model's labels: its monitoring and batch pods carry them too.
    """
    labels = deployment.spec.selector.match_labels or {}
    return lbl.label_selector(dict(labels))


def prefixed(pod: str, text: str, *, several: bool) -> list[str]:
    """``text``'s lines, each prefixed ``[pod]`` when several pods' logs are printed together."""
    return [f"[{pod}] {line}" if several else line for line in text.splitlines()]
