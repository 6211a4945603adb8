"""The seam between ame and the engines that run its work: the ``Backend`` protocol.

The lifecycle and the CLI should not know whether a task is a local process, a
Ray job or a Kubernetes Job: they ask a backend to run it and get back a handle
with the same four things everywhere (live logs, status, exit code, cancel).
Deployments likewise come back as one plain ``DeploymentView`` whatever serves
them, so ``ame deployment list`` can show every engine's in one table, and
``status`` reports what an engine has (nodes, CPUs, GPUs, memory) and the ame
jobs and deployments on it.

Only plain types live here, so importing this module costs nothing: each engine
imports its own client library inside its own package, when it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:
    from ame.registry.store import Store
    from ame.serving.options import ServingOptions
    from ame.spec.model import Deployment, Project, Task
    from ame.tasks.environments import Progress
    from ame.tasks.runner import TaskRun
    from ame.tasks.tracking import Tracker

# A handle's status: the MLflow run statuses a task ends with, plus the two before.
PENDING = "PENDING"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
KILLED = "KILLED"
TERMINAL = (FINISHED, FAILED, KILLED)


@dataclass(frozen=True)
class TaskRequest:
    """Everything a backend needs to run one task; the same fields ``ame.tasks.run_task`` takes.

    Kept as one object so that adding an option does not mean editing every
    engine's signature (the fault that made the serving options typed out five
    times).
    """

    project: Project
    task: Task
    store: Store
    extra_env: dict[str, str] = field(default_factory=dict)
    run_name: Optional[str] = None
    tags: dict[str, str] = field(default_factory=dict)
    cpu_only: bool = False
    rebuild: bool = False
    on_progress: Optional[Progress] = None
    tracker: Optional[Tracker] = None
    # Where lines go before ``wait`` is called (datasets' producer tasks run
    # while a task is being started); ``wait(on_output)`` takes over after.
    on_output: Optional[Callable[[str], None]] = None


class TaskHandle(Protocol):
    """A task a backend has started (or will start when waited on)."""

    @property
    def backend(self) -> str:
        """The backend's name (``local``, ``ray``...)."""
        ...

    @property
    def id(self) -> Optional[str]:
        """The engine's id for the work (the Ray job id); None before it started."""
        ...

    def status(self) -> str:
        """``PENDING``, ``RUNNING``, or how it ended: ``FINISHED``, ``FAILED``, ``KILLED``."""
        ...

    @property
    def exit_code(self) -> Optional[int]:
        """The task's exit code once it ended, else None."""
        ...

    def wait(self, on_output: Optional[Callable[[str], None]] = None) -> TaskRun:
        """Follow the task to its end, each log line (secrets masked) to ``on_output``.

        Ctrl-C, SIGTERM and the task's ``timeout`` stop the work on the engine;
        the returned ``TaskRun`` says how it ended, as a local run's does.
        """
        ...

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the task on its engine; ``wait`` then returns it as KILLED."""
        ...


@dataclass(frozen=True)
class DeploymentView:
    """One deployment as any backend describes it, for listings and for ``deploy``'s answer."""

    backend: str
    model: str
    version: str
    ref: str
    url: str
    state: str  # ready, not ready, dead...
    replicas: int = 1
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The view as JSON-ready data (``--json``)."""
        return {
            "backend": self.backend,
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "url": self.url,
            "state": self.state,
            "replicas": self.replicas,
            **self.detail,
        }


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy: a model, which version (pinned or an alias to follow), and how."""

    model: str
    ref: str  # ``name@alias`` or ``name/version``
    version: str  # what ``ref`` means now
    store: Store
    settings: Optional[Deployment] = None
    # The merged serving options (``ame.serving.options``: flags, then ame.yml,
    # then defaults); None means the backend merges ``settings`` with no flags.
    options: Optional[ServingOptions] = None


@dataclass(frozen=True)
class NodeView:
    """One machine of an engine and what it offers."""

    address: str
    alive: bool
    cpus: float
    gpus: float
    memory: int  # bytes
    head: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The node as JSON-ready data."""
        return {
            "address": self.address,
            "alive": self.alive,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "memory": self.memory,
            "head": self.head,
        }


@dataclass(frozen=True)
class JobView:
    """One piece of ame's work on an engine (a task run as a Ray job...)."""

    id: str
    task: str
    project: str
    status: str
    run_id: Optional[str] = None
    started: Optional[float] = None  # seconds since the epoch

    def as_dict(self) -> dict[str, Any]:
        """The job as JSON-ready data."""
        return {
            "id": self.id,
            "task": self.task,
            "project": self.project,
            "status": self.status,
            "run_id": self.run_id,
            "started": self.started,
        }


@dataclass(frozen=True)
class EngineStatus:
    """What ``ame backend status`` shows: the engine, its nodes, ame's jobs and deployments."""

    backend: str
    address: str
    nodes: list[NodeView]
    jobs: list[JobView]
    deployments: list[DeploymentView]

    @property
    def hosts(self) -> int:
        """How many distinct machines the engine spans (alive nodes)."""
        return len({n.address for n in self.nodes if n.alive})

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data (``--json``)."""
        return {
            "backend": self.backend,
            "address": self.address,
            "hosts": self.hosts,
            "nodes": [n.as_dict() for n in self.nodes],
            "jobs": [j.as_dict() for j in self.jobs],
            "deployments": [d.as_dict() for d in self.deployments],
        }


class Backend(Protocol):
    """Where ame's work runs. Every engine implements this; callers use nothing else."""

    @property
    def name(self) -> str:
        """``local``, ``ray`` or ``kubernetes``."""
        ...

    def run_task(self, request: TaskRequest) -> TaskHandle:
        """Start ``request.task`` (or prepare to, on ``wait``) and return its handle."""
        ...

    def deploy(self, request: DeployRequest) -> DeploymentView:
        """Serve ``request.ref`` and return the deployment once it answers."""
        ...

    def list_deployments(self) -> list[DeploymentView]:
        """ame's deployments on this engine."""
        ...

    def stop_deployment(self, model: str) -> DeploymentView:
        """Stop ``model``'s deployment; ``DeploymentError`` when there is none."""
        ...

    def deployment_logs(self, model: str, tail: Optional[int] = None) -> list[str]:
        """The log lines of ``model``'s deployment (the last ``tail`` when given)."""
        ...

    def status(self) -> EngineStatus:
        """The engine's nodes and ame's jobs and deployments on it."""
        ...
