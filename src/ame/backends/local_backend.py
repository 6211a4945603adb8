"""The ``local`` backend: today's code (``ame.tasks``, ``ame.backends.local``) behind the protocol.

Nothing here changes how a local task or deployment behaves: the handle runs
``ame.tasks.run_task`` in the calling thread when it is waited on (so its
Ctrl-C and SIGTERM handling, which needs the main thread, is the one local
runs always had), and deployments are ``ame.backends.local``'s detached
servers. The adapter only translates to the protocol's plain types.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.backends.base import (
    KILLED,
    PENDING,
    RUNNING,
    DeploymentView,
    DeployRequest,
    EngineStatus,
    NodeView,
    TaskRequest,
)
from ame.errors import TaskError

if TYPE_CHECKING:
    from ame.backends.local import DeploymentInfo
    from ame.tasks.runner import TaskRun


class LocalTaskHandle:
    """A task that runs as a process on this machine when ``wait`` is called."""

    backend = "local"

    def __init__(self, request: TaskRequest) -> None:
        self.request = request
        self._run: Optional[TaskRun] = None
        self._state = PENDING
        self._cancelled: Optional[str] = None

    @property
    def id(self) -> Optional[str]:
        """The MLflow run id once the task ran (a local task has no other id)."""
        return self._run.run_id if self._run else None

    def status(self) -> str:
        """PENDING until waited on, then how the run ended."""
        return self._run.status if self._run else self._state

    @property
    def exit_code(self) -> Optional[int]:
        """The process's exit code once it ended."""
        return self._run.exit_code if self._run else None

    def wait(self, on_output: Optional[Callable[[str], None]] = None) -> TaskRun:
        """Run the task here, in this thread, exactly as ``ame.tasks.run_task`` does."""
        if self._run is not None:
            return self._run
        if self._cancelled is not None:
            raise TaskError(
                f"task '{self.request.task.name}' was {self._cancelled} before it started"
            )
        from ame.tasks import run_task

        r = self.request
        self._state = RUNNING
        self._run = run_task(
            r.project,
            r.task,
            r.store,
            extra_env=dict(r.extra_env),
            run_name=r.run_name,
            on_output=on_output,
            tags=dict(r.tags),
            on_progress=r.on_progress,
            rebuild=r.rebuild,
            cpu_only=r.cpu_only,
            tracker=r.tracker,
        )
        return self._run

    def cancel(self, reason: str = "cancelled") -> None:
        """Before ``wait``: never start. During it, Ctrl-C/SIGTERM stop the process tree."""
        if self._run is None:
            self._cancelled = reason
            self._state = KILLED


def _view(info: DeploymentInfo) -> DeploymentView:
    detail: dict[str, Any] = {
        "pid": info.pid,
        "port": info.port,
        "log": info.log,
        "started": info.started,
        "phase": info.state,  # the record's: starting, running
        "alive": info.alive,
        "healthy": info.healthy,
    }
    if info.grpc_port is not None:
        detail["grpc_port"] = info.grpc_port
    if info.previous:
        # the deployment being replaced serves its version until the new one is ready
        detail["previous_version"] = str(info.previous.get("version", ""))
        detail["previous_pid"] = info.previous.get("pid")
    state = "ready" if info.healthy else ("not ready" if info.alive else "dead")
    return DeploymentView(
        backend="local",
        model=info.model,
        version=info.version,
        ref=info.ref,
        url=info.url,
        state=state,
        replicas=info.workers,
        detail=detail,
    )


class LocalBackend:
    """``Backend`` for this machine: processes for tasks, detached servers for deployments."""

    name = "local"

    def __init__(self, project_root: Optional[Path] = None, tracking_uri: Optional[str] = None):
        self.project_root = project_root
        self.tracking_uri = tracking_uri

    def run_task(self, request: TaskRequest) -> LocalTaskHandle:
        """A handle that runs the task when waited on."""
        return LocalTaskHandle(request)

    def deploy(self, request: DeployRequest) -> DeploymentView:
        """Start (or replace) the model's local server following ``request.ref``."""
        from ame.backends import local

        version = alias = None
        _name, at, rest = request.ref.partition("@")
        if at:
            alias = rest
        else:
            version = request.ref.rpartition("/")[2]
        options = request.options
        if options is None and request.settings is not None:
            from ame.serving.options import merge_options

            options = merge_options(None, request.settings)
        info = local.deploy(
            request.model,
            version=version,
            alias=alias,
            project_root=self.project_root,
            tracking_uri=self.tracking_uri or request.store.tracking_uri,
            options=options,
        )
        return _view(info)

    def list_deployments(self) -> list[DeploymentView]:
        """The project's deployment records, with whether each server answers."""
        from ame.backends import local

        return [_view(i) for i in local.list_deployments(self.project_root)]

    def stop_deployment(self, model: str) -> DeploymentView:
        """Drain and stop the model's server."""
        from ame.backends import local

        return _view(local.stop_deployment(model, self.project_root))

    def deployment_logs(self, model: str, tail: Optional[int] = None) -> list[str]:
        """The server's log file."""
        from ame.backends import local

        info = local.get_deployment(model, self.project_root)
        try:
            lines = Path(info.log).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return lines[-tail:] if tail else lines

    def status(self) -> EngineStatus:
        """This machine: its cores, GPUs and memory, and the project's deployments."""
        import psutil

        from ame.tasks.resources import available_cores, gpu_count

        node = NodeView(
            address="127.0.0.1",
            alive=True,
            cpus=float(len(available_cores())),
            gpus=float(gpu_count()),
            memory=int(psutil.virtual_memory().total),
            head=True,
        )
        return EngineStatus("local", "this machine", [node], [], self.list_deployments())
