"""MLflow runs: the run a save lands in, and the runs ame records (tasks, drift checks, datasets).

The registry is the only package that makes MLflow clients, run tracking
included: ``RunRecorder`` and the functions at the end are what the task runner,
its tracking agent, monitoring and the backends call to write and read runs.

Training code usually saves inside its own run (or the one ``ame task run``
opened for it and announced through ``MLFLOW_RUN_ID``); a save from a notebook
or the CLI has none, so ame opens one in the project's experiment, whose
artifact location keeps embedded artifacts under ``.ame/artifacts``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.registry.errors import mlflow_errors

if TYPE_CHECKING:
    from ame.registry.store import Store

logger = logging.getLogger(__name__)


@contextmanager
def saving_run(store: Optional[Store] = None) -> Iterator[str]:
    """Yield the id of the run to log into, ending it afterwards only if ame started it."""
    import mlflow

    from ame.registry.locking import locked_write
    from ame.registry.store import activate, ensure_experiment, resolve_store

    active = mlflow.active_run()
    if active is not None:
        yield active.info.run_id
        return
    store = store or resolve_store()
    activate(store)
    if os.environ.get("MLFLOW_RUN_ID"):
        # A task's run, opened by ame for it: log into it and leave ending it to ame.
        run = locked_write(store, mlflow.start_run)
        yield run.info.run_id
        return
    experiment_id = ensure_experiment(store)
    run = locked_write(store, lambda: mlflow.start_run(experiment_id=experiment_id))
    status = "FAILED"
    try:
        yield run.info.run_id
        status = "FINISHED"
    finally:
        # MLflow prints "View run ... at: URL" on stdout when a server run ends;
        # library code must not print (it would corrupt ``--json``), so log it.
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            locked_write(store, lambda: mlflow.end_run(status))
        if shown.getvalue().strip():
            logger.info("%s", shown.getvalue().strip())


class RunRecorder:
    """Runs recorded in ``store`` through one MLflow client: task runs, drift checks, datasets.

    The registry is the one place that makes MLflow clients (docs/architecture.md),
    so the layers above that record runs (the task runner and its tracking agent,
    drift checks, dataset producers) call this instead of opening clients of their
    own. Every argument and result is a plain value; MLflow's errors come out as
    ``ame.errors``. One recorder keeps one client, so the tracking agent, which
    lives to make these calls fast, opens the store once.
    """

    def __init__(self, store: Store) -> None:
        from ame.registry.resolve import client_for

        self.store = store
        self.client: Any = client_for(store)

    def ensure_experiment(self, name: str) -> str:
        """The id of experiment ``name``, created with the store's artifact root."""
        from ame.registry.store import ensure_experiment

        with mlflow_errors(self.store.tracking_uri):
            return ensure_experiment(self.store, name)

    def create_run(self, experiment_id: str, run_name: str, tags: dict[str, str]) -> str:
        """A new RUNNING run; its id."""
        with mlflow_errors(self.store.tracking_uri):
            run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        return str(run.info.run_id)

    def log_batch(
        self,
        run_id: str,
        *,
        params: Optional[Mapping[str, str]] = None,
        metrics: Optional[Mapping[str, float]] = None,
        timestamp_ms: Optional[int] = None,
    ) -> None:
        """Params and metrics of a run in one call (NaN metrics are left out)."""
        from mlflow.entities import Metric, Param

        stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        with mlflow_errors(self.store.tracking_uri):
            self.client.log_batch(
                run_id,
                metrics=[Metric(k, v, stamp, 0) for k, v in (metrics or {}).items() if v == v],
                params=[Param(k, v) for k, v in (params or {}).items()],
            )

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        """Params of a run."""
        self.log_batch(run_id, params=params)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        """One tag of a run."""
        with mlflow_errors(self.store.tracking_uri):
            self.client.set_tag(run_id, key, value)

    def log_artifact(self, run_id: str, local_path: str, artifact_path: Optional[str]) -> None:
        """One file into the run's artifacts (under ``artifact_path``)."""
        with mlflow_errors(self.store.tracking_uri):
            self.client.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(self, run_id: str, folder: str, artifact_path: Optional[str]) -> None:
        """A folder's files into the run's artifacts (under ``artifact_path``)."""
        with mlflow_errors(self.store.tracking_uri):
            self.client.log_artifacts(run_id, folder, artifact_path)

    def set_terminated(self, run_id: str, status: str) -> None:
        """End a run with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``)."""
        with mlflow_errors(self.store.tracking_uri):
            self.client.set_terminated(run_id, status=status)

    def close(self) -> None:
        """Nothing to release: an ``MlflowClient`` holds no connection of its own."""


def tag_filter(tags: Mapping[str, str]) -> str:
    """``tags.`k` = 'v' and ...``: an MLflow run filter matching every tag, values quoted.

    Values go through ``resolve.quote`` (a task or model name may hold a quote);
    keys are ame's own tag names, written between backticks.
    """
    from ame.registry.resolve import quote

    return " and ".join(f"tags.`{key}` = {quote(value)}" for key, value in tags.items())


def find_runs(
    store: Store,
    experiment: str,
    *,
    tags: Optional[Mapping[str, str]] = None,
    where: Optional[str] = None,
    limit: int = 1,
    client: Any = None,
) -> list[Any]:
    """Runs of experiment ``experiment`` carrying ``tags``, newest first ([] without it).

    ``where`` is a whole MLflow filter used instead of ``tags`` (build it with
    ``tag_filter``). ``client`` reuses a client the registry made already.
    """
    from ame.registry.resolve import client_for

    client = client if client is not None else client_for(store)
    with mlflow_errors(store.tracking_uri):
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return []
        return list(
            client.search_runs(
                [found.experiment_id],
                filter_string=where if where is not None else tag_filter(tags or {}),
                order_by=["attributes.start_time DESC"],
                max_results=max(1, limit),
            )
        )


def get_run(store: Store, run_id: str) -> Any:
    """The MLflow run ``run_id``; ``ResourceNotFoundError`` when the store has none."""
    from ame.registry.resolve import client_for

    with mlflow_errors(store.tracking_uri):
        return client_for(store).get_run(run_id)


def run_artifacts(store: Store, run_id: str, path: Optional[str] = None) -> list[str]:
    """The artifact paths directly under ``path`` in run ``run_id``."""
    from ame.registry.resolve import client_for

    with mlflow_errors(store.tracking_uri):
        return [a.path for a in client_for(store).list_artifacts(run_id, path)]


def download_run_artifacts(store: Store, run_id: str, path: str, destination: Path) -> Path:
    """Download artifact ``path`` of run ``run_id`` into ``destination``; the local copy."""
    from ame.registry.resolve import client_for

    with mlflow_errors(store.tracking_uri):
        return Path(client_for(store).download_artifacts(run_id, path, str(destination)))


def experiment_location(store: Store, name: str) -> str:
    """The artifact location of experiment ``name`` (created first when missing)."""
    from ame.registry.resolve import client_for
    from ame.registry.store import ensure_experiment

    with mlflow_errors(store.tracking_uri):
        experiment_id = ensure_experiment(store, name)
        return str(client_for(store).get_experiment(experiment_id).artifact_location)
