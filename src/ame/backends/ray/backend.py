"""``RayBackend``: the ``Backend`` protocol on a Ray cluster reached through its dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ame.backends.base import DeploymentView, DeployRequest, EngineStatus, TaskRequest
from ame.backends.ray.cluster import RayCluster
from ame.backends.ray.jobs import RayTaskHandle
from ame.errors import DeploymentError


class RayBackend:
    """Tasks as Ray jobs; the cluster is connected to on first use."""

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

    def deploy(self, request: DeployRequest) -> DeploymentView:
        """Not offered yet: Ray Serve deployments are a later step of this backend."""
        raise DeploymentError(
            f"deploying {request.model} on Ray Serve is not available in this version of ame; "
            "deploy it with --backend local"
        )

    def list_deployments(self) -> list[DeploymentView]:
        """ame's deployments on the cluster (none: see ``deploy``); checks the cluster answers."""
        _ = self.cluster
        return []

    def stop_deployment(self, model: str) -> DeploymentView:
        """There is no Ray deployment to stop (see ``deploy``)."""
        raise DeploymentError(f"no Ray deployment of '{model}' at {self.address}")

    def deployment_logs(self, model: str, tail: Optional[int] = None) -> list[str]:
        """There is no Ray deployment to read (see ``deploy``)."""
        raise DeploymentError(f"no Ray deployment of '{model}' at {self.address}")

    def status(self) -> EngineStatus:
        """The cluster's nodes and ame's jobs on it."""
        cluster = self.cluster
        return EngineStatus(
            "ray", self.address, cluster.nodes(), cluster.jobs(), self.list_deployments()
        )
