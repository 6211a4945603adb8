"""The run a save lands in: the caller's active run, or a new one in the project's experiment.

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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Optional

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
