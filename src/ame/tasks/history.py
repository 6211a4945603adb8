"""Reading task runs back from the store: for ``ame task list`` and ``ame task logs``.

Every task run carries the tag ``ame.kind=task``, so listing is one MLflow
search in the project's experiment; the log is the run's ``task.log`` artifact,
so it can be read from any machine that reaches the store.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from ame.errors import AmeError, InvalidValueError, ResourceNotFoundError, TaskError
from ame.registry.store import Store
from ame.tasks.runner import KIND_TAG, LOG_ARTIFACT


def list_runs(
    store: Store, project: str, *, task: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """Task runs of ``project``'s experiment, newest first, as plain dicts."""
    from ame.registry.runs import find_runs

    tags = {KIND_TAG: "task", **({"ame.task": task} if task else {})}
    runs = find_runs(store, project, tags=tags, limit=limit)
    rows: list[dict[str, Any]] = []
    for run in runs:
        info, data = run.info, run.data
        start, end = info.start_time, info.end_time
        rows.append(
            {
                "run_id": info.run_id,
                "task": data.tags.get("ame.task", ""),
                "status": info.status,
                "exit_code": data.tags.get("ame.exit_code"),
                "reason": data.tags.get("ame.reason"),
                "started": dt.datetime.fromtimestamp(start / 1000).isoformat(timespec="seconds")
                if start
                else None,
                "duration": (end - start) / 1000 if start and end else None,
                "executor": data.params.get("executor"),
                "git_commit": data.tags.get("ame.git_commit"),
            }
        )
    return rows


def read_log(store: Store, run_id: str) -> str:
    """The stored log of task run ``run_id``; ``TaskError`` if there is no such run or log."""
    from ame.registry.runs import download_run_artifacts, get_run

    try:
        run = get_run(store, run_id)
    except (ResourceNotFoundError, InvalidValueError):
        raise TaskError(f"no run {run_id!r} in {store.tracking_uri}") from None
    if run.data.tags.get(KIND_TAG) != "task":
        raise TaskError(f"run {run_id} is not an ame task run")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = download_run_artifacts(store, run_id, LOG_ARTIFACT, Path(tmp))
        except (AmeError, OSError):
            raise TaskError(
                f"run {run_id} has no stored log yet (it may still be running)"
            ) from None
        return Path(local).read_text(encoding="utf-8", errors="replace")
