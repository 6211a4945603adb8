"""The one place that talks to a Ray cluster: its dashboard's job, package and state APIs.

Everything goes over the dashboard's HTTP address (``http://head:8265``), the
one a laptop outside the cluster can reach; ame never joins the cluster as a
driver. ``JobSubmissionClient`` carries Ray's own authentication headers, so
its request method is reused for the two endpoints it has no method for (the
node list and raw package uploads).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any, Optional

from ame.backends.base import JobView, NodeView
from ame.backends.ray.errors import ClusterUnreachableError, RayUnavailableError, SubmitError

log = logging.getLogger(__name__)

# Labels ame puts on its jobs (Ray job metadata), to find them again.
META_KIND = "ame.kind"
META_PROJECT = "ame.project"
META_TASK = "ame.task"
META_RUN = "ame.run_id"
META_NAMESPACE = "ame.namespace"

ENTRY_PREFIX = "_ame_entry_"
_API_SERVER_ENV = "RAY_API_SERVER_ADDRESS"


def _quiet_ray_logging() -> None:
    """Ray logs every package upload at INFO to the terminal; ame says what matters itself."""
    if not log.isEnabledFor(logging.INFO):
        for name in (
            "ray",
            "ray.dashboard",
            "ray.dashboard.modules.dashboard_sdk",
            "ray.dashboard.modules.job.sdk",
        ):
            logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _address_pinned(address: str) -> Iterator[None]:
    """Make Ray's client use ``address`` and nothing else while it is built.

    ``JobSubmissionClient`` prefers ``RAY_API_SERVER_ADDRESS`` and then
    ``RAY_ADDRESS`` from the environment over the address it is given, and
    turns a non-HTTP address into a GCS lookup that may rewrite 127.0.0.1 to
    the machine's public IP. ame resolved the address itself (``select``), so
    it pins the HTTP one for the constructor and restores the environment.
    """
    saved = os.environ.get(_API_SERVER_ENV)
    os.environ[_API_SERVER_ENV] = address
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_API_SERVER_ENV, None)
        else:
            os.environ[_API_SERVER_ENV] = saved


class RayCluster:
    """A connection to one cluster's dashboard; every call is plain HTTP."""

    def __init__(self, address: str, namespace: str = "ame") -> None:
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            raise RayUnavailableError("the ray backend needs Ray: pip install 'ame[ray]'") from None
        _quiet_ray_logging()
        self.address = address
        self.namespace = namespace
        try:
            with _address_pinned(address):
                self.client: Any = JobSubmissionClient(address)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ClusterUnreachableError(
                f"no Ray cluster answers at {address} ({first[:200]}); "
                "start one with `ray start --head` or fix RAY_ADDRESS / backend.ray.address"
            ) from None

    # --- nodes ---------------------------------------------------------------

    def nodes(self) -> list[NodeView]:
        """Every node the cluster knows, with its total CPUs, GPUs and memory."""
        resp = self.client._do_request("GET", "/api/v0/nodes?detail=1&limit=10000")
        if resp.status_code != 200:
            raise ClusterUnreachableError(
                f"the Ray cluster at {self.address} did not list its nodes "
                f"(HTTP {resp.status_code})"
            )
        rows = resp.json().get("data", {}).get("result", {}).get("result", [])
        nodes = []
        for row in rows:
            total = row.get("resources_total") or {}
            nodes.append(
                NodeView(
                    address=str(row.get("node_ip", "?")),
                    alive=row.get("state") == "ALIVE",
                    cpus=float(total.get("CPU", 0.0)),
                    gpus=float(total.get("GPU", 0.0)),
                    memory=int(total.get("memory", 0)),
                    head=bool(row.get("is_head_node")),
                )
            )
        return nodes

    # --- packages and one-use entries ---------------------------------------

    def upload_package(self, uri: str, data: bytes) -> None:
        """Store ``data`` in the cluster under ``uri`` (``gcs://name.zip``) unless it is there."""
        name = uri.removeprefix("gcs://")
        if self.client._package_exists(uri):
            return
        resp = self.client._do_request("PUT", f"/api/packages/gcs/{name}", data=data)
        if resp.status_code != 200:
            raise SubmitError(
                f"the Ray cluster refused the upload of {uri}: HTTP {resp.status_code}"
            )

    def put_entry(self, data: bytes) -> str:
        """Store ``data`` under a fresh random key and return the key.

        The key names nothing but itself; ``ame.backends.ray.entry`` reads the
        entry on the node and deletes it before the task starts. The dashboard
        stores a package's bytes as-is in the cluster's internal key-value
        store, which only processes of the cluster can read.
        """
        uri = f"gcs://{ENTRY_PREFIX}{uuid.uuid4().hex}.zip"
        resp = self.client._do_request(
            "PUT", f"/api/packages/gcs/{uri.removeprefix('gcs://')}", data=data
        )
        if resp.status_code != 200:
            raise SubmitError(f"the Ray cluster refused a one-use entry: HTTP {resp.status_code}")
        return uri

    # --- jobs ------------------------------------------------------------------

    def submit(
        self,
        *,
        submission_id: str,
        entrypoint: str,
        runtime_env: dict[str, Any],
        metadata: dict[str, str],
        num_cpus: Optional[float],
        num_gpus: Optional[float],
        memory: Optional[int],
    ) -> str:
        """Submit one job; its id is ``submission_id``."""
        try:
            return str(
                self.client.submit_job(
                    entrypoint=entrypoint,
                    submission_id=submission_id,
                    runtime_env=runtime_env,
                    metadata=metadata,
                    entrypoint_num_cpus=num_cpus,
                    entrypoint_num_gpus=num_gpus,
                    entrypoint_memory=memory,
                )
            )
        except RuntimeError as exc:
            raise SubmitError(f"the Ray cluster refused the job: {str(exc)[:300]}") from None

    def info(self, job_id: str) -> Any:
        """The job's details (status, driver_exit_code, message, metadata)."""
        return self.client.get_job_info(job_id)

    def stop(self, job_id: str) -> None:
        """Ask the cluster to stop the job (SIGTERM to its entrypoint, then SIGKILL)."""
        try:
            self.client.stop_job(job_id)
        except RuntimeError as exc:
            log.warning("could not stop Ray job %s: %s", job_id, exc)

    def tail(self, job_id: str) -> Any:
        """An async iterator of the job's log, chunk by chunk, live until it ends."""
        return self.client.tail_job_logs(job_id)

    def jobs(self) -> list[JobView]:
        """ame's jobs on the cluster (those carrying ame's metadata), newest first."""
        views = []
        for job in self.client.list_jobs():
            meta = job.metadata or {}
            if META_KIND not in meta:
                continue
            if meta.get(META_NAMESPACE, self.namespace) != self.namespace:
                continue
            views.append(
                JobView(
                    id=str(job.submission_id or job.job_id),
                    task=meta.get(META_TASK, "?"),
                    project=meta.get(META_PROJECT, "?"),
                    status=str(getattr(job.status, "value", job.status)),
                    run_id=meta.get(META_RUN),
                    started=(job.start_time / 1000.0) if job.start_time else None,
                )
            )
        views.sort(key=lambda v: v.started or 0.0, reverse=True)
        return views
