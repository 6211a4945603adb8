"""How a task run is recorded: the few MLflow calls the runner makes, behind one interface.

The runner needs six things from MLflow: the project's experiment, a new run,
its params and tags, its artifacts, and its end. ``DirectTracker`` makes those
calls in this process through ``MlflowClient``; that is right when MLflow is
already imported (``ame train``, the library). A one-off ``ame task run`` would
spend seconds importing MLflow and opening its store to make six calls, so it
uses ``ame.tasks.agent.AgentTracker``, which sends them to a warm agent process.
Both speak this interface, so the runner does not know which one it has.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Protocol

from ame.registry.store import Store

log = logging.getLogger(__name__)

AGENT_ENV = "AME_TRACKING_AGENT"


class Tracker(Protocol):
    """The MLflow calls a task run makes; every argument and result is a plain value."""

    def ensure_experiment(self, name: str) -> str: ...

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str: ...

    def log_params(self, run_id: str, params: dict[str, str]) -> None: ...

    def set_tag(self, run_id: str, key: str, value: str) -> None: ...

    def log_artifact(self, run_id: str, local_path: str, artifact_path: Optional[str]) -> None: ...

    def set_terminated(self, run_id: str, status: str) -> None: ...

    def close(self) -> None:
        """Release what the tracker holds (a connection); it may be used again after."""


class DirectTracker:
    """``Tracker`` through an ``MlflowClient`` in this process (imports MLflow)."""

    def __init__(self, store: Store) -> None:
        from mlflow.tracking import MlflowClient

        self.store = store
        self.client: Any = MlflowClient(
            tracking_uri=store.tracking_uri, registry_uri=store.registry_uri
        )

    def ensure_experiment(self, name: str) -> str:
        from ame.registry.store import ensure_experiment

        return ensure_experiment(self.store, name)

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: Optional[str]) -> None:
        self.client.log_artifact(run_id, local_path, artifact_path)

    def set_terminated(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)

    def close(self) -> None:
        pass  # MlflowClient holds nothing to release


def agent_enabled() -> bool:
    """False when ``AME_TRACKING_AGENT=0`` (or ``false``/``no``/``off``) turns the agent off."""
    return os.environ.get(AGENT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def open_tracker(store: Store, *, use_agent: bool = False) -> Tracker:
    """The tracker for ``store``: the agent when asked for and allowed, else direct calls.

    The agent is skipped when MLflow is already imported here: the direct calls
    then cost nothing extra, and no second process is needed.
    """
    import sys

    unix = sys.platform != "win32"  # the agent listens on a Unix socket
    if use_agent and unix and agent_enabled() and "mlflow" not in sys.modules:
        from ame.tasks.agent import AgentTracker

        return AgentTracker(store)
    return DirectTracker(store)
