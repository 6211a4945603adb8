"""``ame predict --backend ray``: the same streaming scorer, run as one Ray job on the cluster.

Ray Data was measured 60x slower than one process streaming pyarrow batches
through ``predict`` (issue 19), so the cluster gets ame's own scorer
(``ame.batch.scorer.score``) as a job: ``python -m ame.backends.ray.batch``,
with the model reference, the input, the output and the options in the job's
environment. The node must reach the input and the output at the same paths
(this machine when the cluster is one host, shared storage otherwise), and the
model's store (the embedded store is refused on a multi-host cluster, as for
tasks). The output appears atomically there as it does locally: parts, then one
rename, and ``--resume`` works the same.

The job reports back through event lines (``[ame-ray] {...}``): progress,
then the summary or the error, which the submitting ame turns into the same
progress display, summary and exit code as a local run. Ctrl-C or SIGTERM
stops the job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.backends.ray import entry as entry_mod
from ame.backends.ray.cluster import META_KIND, META_NAMESPACE, META_PROJECT, META_TASK
from ame.backends.ray.follow import final_info, follow, status_of
from ame.batch.errors import BatchError

if TYPE_CHECKING:
    from ame.backends.ray.cluster import RayCluster
    from ame.batch.scorer import ScoreOptions
    from ame.registry.store import Store

log = logging.getLogger(__name__)

SPEC_ENV = "AME_RAY_BATCH"
ENTRYPOINT = "python -m ame.backends.ray.batch"
PROGRESS_EVERY_SECONDS = 1.0


class RayBatchError(BatchError):
    """The scorer on the cluster refused or failed; carries its message and exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _absolute(text: str) -> str:
    """A local path (or glob) made absolute so the node reads the same file; URIs as given."""
    if "://" in text:
        return text
    return str(Path(text).expanduser().absolute())


def _model_ref(text: str) -> str:
    """A model directory or package file made absolute; registry references as given."""
    path = Path(text).expanduser()
    return str(path.absolute()) if path.exists() else text


def predict(
    cluster: RayCluster,
    model: str,
    input: str,
    output: str | Path,
    options: ScoreOptions,
    store: Store,
    *,
    on_progress: Optional[Callable[[int, Optional[int]], None]] = None,
    on_output: Optional[Callable[[str], None]] = None,
    on_submitted: Optional[Callable[[str], None]] = None,
) -> dict[str, Any]:
    """Score ``input`` into ``output`` with ``model`` as a Ray job; the summary as a dict.

    ``on_submitted(job_id)`` is called once the job is submitted, before it is
    followed, so a caller tracking the run (``ame batch``) records the job id
    even when the job then fails. Raises ``RayBatchError`` with the scorer's
    message and exit code when it refused or failed on the node (a schema
    mismatch is exit 2 there and here).
    """
    from ame.backends.ray import checks

    checks.check_store(store, cluster.nodes())
    spec = {
        "model": _model_ref(model),
        "input": _absolute(input),
        "output": _absolute(str(output)),
        "options": dataclasses.asdict(options),
    }
    env = {
        **store.env(),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONUNBUFFERED": "1",
        SPEC_ENV: json.dumps(spec),
    }
    job_id = f"ame-predict-{uuid.uuid4().hex[:16]}"
    cluster.submit(
        submission_id=job_id,
        entrypoint=ENTRYPOINT,
        runtime_env={"env_vars": env},
        metadata={
            META_KIND: "predict",
            META_PROJECT: "-",
            META_TASK: f"predict {model}"[:200],
            META_NAMESPACE: cluster.namespace,
        },
        num_cpus=float(max(1, options.workers)),
        num_gpus=None,
        memory=None,
    )
    log.info("submitted Ray job %s", job_id)
    summary: Optional[dict[str, Any]] = None
    error: Optional[dict[str, Any]] = None
    stopped: Optional[int] = None

    def handle(line: str) -> None:
        nonlocal summary, error
        if not line.startswith(entry_mod.EVENT_PREFIX):
            if line.strip() and on_output is not None:
                on_output(line)
            return
        with contextlib.suppress(ValueError):
            event = json.loads(line[len(entry_mod.EVENT_PREFIX) :])
            kind = event.get("event")
            if kind == "progress" and on_progress is not None:
                on_progress(int(event["rows"]), event.get("total"))
            elif kind == "summary":
                summary = event["summary"]
            elif kind == "error":
                error = event

    def tick(signum: Optional[int]) -> bool:
        nonlocal stopped
        if signum is not None and stopped is None:
            stopped = signum
            cluster.stop(job_id)
        return False

    try:
        if on_submitted is not None:
            on_submitted(job_id)
        follow(cluster, job_id, handle, tick)
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.stop(job_id)
        raise
    if stopped is not None:
        raise RayBatchError(
            f"stopped by {signal.Signals(stopped).name}: Ray job {job_id} was stopped; "
            "run again with --resume to continue",
            128 + stopped,
        )
    info = final_info(cluster, job_id)
    if error is not None:
        raise RayBatchError(str(error.get("message")), int(error.get("exit_code") or 1))
    if summary is None:
        raise RayBatchError(
            f"the Ray job {job_id} ended {status_of(info)} without a result "
            f"(exit code {info.driver_exit_code}): {str(info.message or '')[:300]}"
        )
    summary["ray_job_id"] = job_id
    return summary


# --- on the node ---------------------------------------------------------------------


def _event(**fields: Any) -> None:
    sys.stdout.write(entry_mod.EVENT_PREFIX + json.dumps(fields, default=str) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Run the scorer described by ``AME_RAY_BATCH`` here; the exit code ``ame predict`` has."""
    from ame.batch.memory import settle_allocators
    from ame.batch.scorer import ScoreOptions, score
    from ame.errors import AmeError

    spec = json.loads(os.environ[SPEC_ENV])
    raw = dict(spec["options"])
    raw["id_columns"] = tuple(raw.get("id_columns") or ())
    options = ScoreOptions(**raw)
    last = [0.0]

    def progress(rows: int, total: Optional[int]) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_SECONDS or (total is not None and rows >= total):
            last[0] = now
            _event(event="progress", rows=rows, total=total)

    settle_allocators()  # this job's process is ame's own scoring process
    try:
        summary = score(
            spec["model"],
            spec["input"],
            spec["output"],
            options,
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
            on_progress=progress,
        )
    except AmeError as exc:
        _event(event="error", message=str(exc), exit_code=exc.exit_code)
        return exc.exit_code
    except Exception as exc:
        _event(event="error", message=f"the scorer failed on the node: {exc}", exit_code=1)
        return 1
    _event(event="summary", summary=summary.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
