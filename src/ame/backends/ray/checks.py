"""What is refused before anything is submitted: an over-ask, and a store no node can read.

A job asking for more than any node has would sit PENDING forever on Ray (the
autoscaler may never come); saying so at once, with what the cluster has, is
the useful answer. An embedded SQLite store lives on this machine's disk: when
the cluster spans more than one host, a task on another node would write its
metrics and model to a database nobody reads, so ame refuses instead.
"""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ame.backends.ray.errors import EmbeddedStoreOnClusterError
from ame.errors import ResourceUnavailableError

if TYPE_CHECKING:
    from ame.backends.base import NodeView
    from ame.registry.store import Store
    from ame.spec.model import Resources


@dataclass(frozen=True)
class JobResources:
    """A task's ``resources`` as a Ray job's entrypoint resources."""

    num_cpus: Optional[float] = None
    num_gpus: Optional[float] = None
    memory: Optional[int] = None

    def describe(self) -> str:
        """``2 CPUs, 1 GPU (nvidia.com/gpu), 4G memory`` for messages."""
        from ame.tasks.resources import format_bytes

        parts = []
        if self.num_cpus:
            parts.append(f"{self.num_cpus:g} CPUs")
        if self.num_gpus:
            parts.append(f"{self.num_gpus:g} GPUs (nvidia.com/gpu)")
        if self.memory:
            parts.append(f"{format_bytes(self.memory)} memory")
        return ", ".join(parts) or "nothing"


def job_resources(resources: Resources, *, cpu_only: bool = False) -> JobResources:
    """cpu, memory and ``nvidia.com/gpu`` as entrypoint resources (GPUs dropped with --cpu-only)."""
    gpus = None if cpu_only or not resources.gpu else float(resources.gpu)
    return JobResources(
        num_cpus=resources.cpu if resources.cpu else None,
        num_gpus=gpus,
        memory=int(resources.memory) if resources.memory else None,
    )


def _node_line(node: NodeView) -> str:
    from ame.tasks.resources import format_bytes

    memory = format_bytes(node.memory)
    return f"{node.address}: {node.cpus:g} CPUs, {node.gpus:g} GPUs, {memory} memory"


def check_fits(wanted: JobResources, nodes: list[NodeView], address: str) -> None:
    """``ResourceUnavailableError`` unless one alive node has all that the task asks for."""
    alive = [n for n in nodes if n.alive]
    for node in alive:
        if (
            node.cpus >= (wanted.num_cpus or 0)
            and node.gpus >= (wanted.num_gpus or 0)
            and node.memory >= (wanted.memory or 0)
        ):
            return
    have = "; ".join(_node_line(n) for n in alive) or "no alive node"
    hint = " (run it with --cpu-only to run it without a GPU)" if wanted.num_gpus else ""
    raise ResourceUnavailableError(
        f"the task asks for {wanted.describe()} and no node of the Ray cluster at {address} "
        f"has that ({have}){hint}"
    )


def _this_host() -> set[str]:
    names = {"127.0.0.1", "localhost"}
    with contextlib.suppress(OSError):
        names.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return names


def check_store(store: Store, nodes: list[NodeView]) -> None:
    """Refuse a store on this machine's disk unless every alive node is this one machine.

    That is the embedded store, and any ``sqlite:`` or ``file:`` tracking URI:
    both are files another host cannot open.
    """
    uri = store.tracking_uri
    if not (store.embedded or store.sqlite_path is not None or uri.startswith(("file:", "/"))):
        return
    hosts = sorted({n.address for n in nodes if n.alive})
    local = _this_host()
    if len(hosts) <= 1 and all(h in local for h in hosts):
        return
    raise EmbeddedStoreOnClusterError(
        f"the Ray cluster spans {len(hosts)} host(s) ({', '.join(hosts)}) and the store is "
        f"a file on this machine ({uri}), which no other host reads; pass --tracking-uri "
        "http://MLFLOW-HOST:5000 for an MLflow server with its artifact proxy "
        "(`mlflow server --serve-artifacts`)"
    )
