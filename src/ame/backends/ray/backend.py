"""``RayBackend``: the ``Backend`` protocol on a Ray cluster reached through its dashboard."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.backends.base import DeploymentView, DeployRequest, EngineStatus, TaskRequest
from ame.backends.ray.cluster import RayCluster
from ame.backends.ray.jobs import RayTaskHandle

if TYPE_CHECKING:
    from ame.backends.ray.serve import RayServe
    from ame.batch.scorer import ScoreOptions
    from ame.registry.store import Store

log = logging.getLogger(__name__)


class RayBackend:
    """Tasks as Ray jobs, deployments as Ray Serve applications; connected on first use."""

    name = "ray"

    def __init__(
        self,
        address: str,
        *,
        namespace: str = "ame",
        project_root: Optional[Path] = None,
        tracking_uri: Optional[str] = None,
    ) -> None:
        self.address = address
        self.namespace = namespace
        self.project_root = project_root
        self.tracking_uri = tracking_uri
        self._cluster: Optional[RayCluster] = None

    @property
    def cluster(self) -> RayCluster:
        """The dashboard connection (``ClusterUnreachableError`` when nothing answers)."""
        if self._cluster is None:
            self._cluster = RayCluster(self.address, self.namespace)
        return self._cluster

    def run_task(self, request: TaskRequest) -> RayTaskHandle:
        """Check and submit the task as a Ray job; the handle follows it."""
        return RayTaskHandle(self.cluster, request).start()

    @property
    def serve(self) -> RayServe:
        """The cluster's Ray Serve, where ame's deployments are applications."""
        from ame.backends.ray.serve import RayServe

        return RayServe(self.cluster)

    def deploy(self, request: DeployRequest) -> DeploymentView:
        """Serve ``request.ref`` as a Ray Serve application; return it once it serves."""
        from ame.backends.ray import checks

        checks.check_store(request.store, self.cluster.nodes())
        return self.serve.deploy(request, namespace=self.namespace, project=self._project_name())

    def _project_name(self) -> Optional[str]:
        if self.project_root is None:
            return None
        from ame.errors import AmeError
        from ame.spec import load_project

        try:
            return load_project(self.project_root).name
        except AmeError:
            return None

    def list_deployments(self) -> list[DeploymentView]:
        """ame's Serve applications in this backend's namespace."""
        return self.serve.views(self.namespace)

    def stop_deployment(self, model: str) -> DeploymentView:
        """Remove ``model``'s Serve application (its replicas drain first)."""
        return self.serve.stop(self.namespace, model)

    def deployment_logs(self, model: str, tail: Optional[int] = None) -> list[str]:
        """The Serve logs of ``model``'s replicas."""
        return self.serve.logs(self.namespace, model, tail)

    def predict(
        self,
        model: str,
        input: str,
        output: str | Path,
        options: ScoreOptions,
        store: Store,
        *,
        on_progress: Optional[Callable[[int, Optional[int]], None]] = None,
        on_output: Optional[Callable[[str], None]] = None,
        on_submitted: Optional[Callable[[str], None]] = None,
    ) -> dict[str, Any]:
        """Batch scoring as one Ray job running ame's streaming scorer (``ray.batch``)."""
        from ame.backends.ray import batch

        return batch.predict(
            self.cluster,
            model,
            input,
            output,
            options,
            store,
            on_progress=on_progress,
            on_output=on_output,
            on_submitted=on_submitted,
        )

    def status(self) -> EngineStatus:
        """The cluster's nodes, and ame's jobs and Serve deployments on it."""
        from ame.errors import AmeError

        cluster = self.cluster
        try:
            deployments = self.list_deployments()
        except AmeError as exc:  # the jobs and nodes are still worth showing
            log.warning("ray: could not list Serve deployments: %s", exc)
            deployments = []
        return EngineStatus("ray", self.address, cluster.nodes(), cluster.jobs(), deployments)
