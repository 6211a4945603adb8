"""How a task run is recorded: the few MLflow calls the runner makes, behind one interface.

The runner needs six things from MLflow: the project's experiment, a new run,
its params and tags, its artifacts, and its end. ``DirectTracker`` makes those
calls in this process through the registry's ``RunRecorder`` (the registry is
the only package that makes MLflow clients); that is right when MLflow is
already imported (``ame train``, the library). A one-off ``ame task run`` would
spend seconds importing MLflow and opening its store to make six calls, so it
uses ``ame.tasks.agent.AgentTracker``, which sends them to a warm agent process.
Both speak this interface, so the runner does not know which one it has.
"""

from __future__ import annotations

import logging
import os
from typing import Optional, Protocol

from ame.registry.runs import RunRecorder
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


class DirectTracker(RunRecorder):
    """``Tracker`` by direct calls in this process: the registry's ``RunRecorder`` (imports MLflow).

    The registry makes the client (it is the one place that does, run tracking
    included); the tracking agent holds one of these, so its calls stay as fast.
    """


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
