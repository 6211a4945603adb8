"""Adaptive batching: requests that arrive together share one ``predict`` call.

Nothing waits on an idle server: the batcher takes whatever is queued when the
model becomes free, so under load requests pile up while one batch predicts and
the next batch is naturally larger. ``max_latency_ms`` only bounds an extra wait
while more requests are known to be on their way (read but not yet queued).

Where the model runs: a batch is predicted on the event loop itself when the
model has proven fast (recent batches took under ``INLINE_MAX_SECONDS``), else
on a dedicated thread. Handing a 1 ms ``predict`` to a thread costs a thread
switch and, worse, GIL ping-pong with the loop (CPython hands the GIL over only
every 5 ms under contention), which dominates small models; a slow model, or a
request MLflow answers alone (params, CSV...), keeps the loop free for health
checks and new connections by running on the thread.

Each job carries the model state it was parsed for, so a hot swap never mixes
versions in one call. A batch whose merged ``predict`` fails, or whose output
cannot be cut back into rows, is answered request by request, so one invalid
request fails alone with exactly the error it would get on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional

from ame.serving.codec import Parsed, Plan, Reply, split_predictions
from ame.serving.metrics import Metrics

log = logging.getLogger(__name__)

# A batch runs on the event loop when recent fast-path batches took less than this.
INLINE_MAX_SECONDS = 0.01


@dataclass(frozen=True)
class ModelState:
    """One loaded version and everything derived from it; swapped as a whole."""

    model: Any  # sources.LoadedModel
    plan: Optional[Plan]
    input_schema: Any
    output_name: str
    # predict for frames built by ``plan`` (skips checks that cannot fail on them)
    fast_predict: Optional[Callable[[Any], Any]] = None


@dataclass(eq=False)
class Job:
    """One request waiting for the model."""

    state: ModelState
    # Fast path: the request's input as the state's plan parsed it (None: MLflow's path),
    # and how to answer from its predictions.
    parsed: Optional[Parsed]
    answer: Callable[[Any], Reply]
    # Answers the request alone (MLflow's exact path); used for slow requests and fallbacks.
    alone: Callable[[], Reply]
    future: Optional[asyncio.Future[Reply]] = field(default=None)
    # When it was queued (``time.perf_counter``), for the queue-wait histogram.
    queued: float = 0.0

    @property
    def rows(self) -> int:
        return self.parsed.rows if self.parsed is not None else 0


def _safe(call: Callable[[], Reply]) -> Reply:
    try:
        return call()
    except Exception:  # a broken request must never take the worker down
        log.exception("request failed")
        return 500, b"Internal Server Error", b"text/plain; charset=utf-8"


def run_jobs(jobs: list[Job], metrics: Optional[Metrics]) -> list[Reply]:
    """Answer ``jobs``: fast ones merged per model state, the rest one by one."""
    replies: list[Optional[Reply]] = [None] * len(jobs)
    groups: dict[tuple[int, Any], list[int]] = {}

    def alone(job: Job) -> Reply:
        if metrics is not None:  # one request, one predict call (or one failed parse)
            metrics.batch_size.observe(1)
        return _safe(job.alone)

    for i, job in enumerate(jobs):
        if job.parsed is None:
            replies[i] = alone(job)
        else:
            groups.setdefault((id(job.state), job.parsed.key), []).append(i)
    for idxs in groups.values():
        state = jobs[idxs[0]].state
        pieces: Optional[list[Any]] = None
        try:
            assert state.plan is not None
            data = state.plan.build([jobs[i].parsed.part for i in idxs])  # type: ignore[union-attr]
            predict = state.fast_predict or state.model.predictor.predict
            preds = predict(data)
            pieces = split_predictions(preds, [jobs[i].rows for i in idxs])
        except Exception as exc:
            log.debug("batch of %d failed (%s); answering one by one", len(idxs), exc)
        if metrics is not None:
            metrics.batch_size.observe(len(idxs))
        for n, i in enumerate(idxs):
            job = jobs[i]
            if pieces is None:
                replies[i] = alone(job)
                continue
            piece = pieces[n]
            try:
                replies[i] = job.answer(piece)
            except Exception:
                replies[i] = alone(job)
    return [r if r is not None else (500, b"Internal Server Error", b"text/plain") for r in replies]


class Batcher:
    """Queues jobs and feeds them, in batches, to a single model thread."""

    def __init__(
        self, max_batch_size: int, max_latency_ms: float, metrics: Optional[Metrics]
    ) -> None:
        self.max_batch_size = max(1, max_batch_size)
        self.max_latency = max(0.0, max_latency_ms) / 1000.0
        self.metrics = metrics
        # Requests read but not yet queued: the only reason ever to wait.
        self.arriving = 0
        self._queue: Optional[asyncio.Queue[Job]] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ame-predict")
        # Smoothed seconds per fast-path batch, per model state (None: not measured yet).
        self._cost: Optional[float] = None
        self._cost_state: Any = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, job: Job) -> Reply:
        assert self._queue is not None, "batcher not started"
        job.future = asyncio.get_running_loop().create_future()
        job.queued = time.perf_counter()
        self._queue.put_nowait(job)
        return await job.future

    async def _gather(self, first: Job) -> list[Job]:
        assert self._queue is not None
        queue = self._queue
        jobs = [first]
        # A pre-batched request (as many rows as a full batch has requests) is a
        # batch by itself: waiting for company would only delay it.
        if self.max_batch_size == 1 or first.rows >= self.max_batch_size:
            return jobs
        # Let reads that are already in the loop's ready queue enqueue themselves.
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_latency
        while len(jobs) < self.max_batch_size:
            if not queue.empty():
                jobs.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if self.arriving <= 0 or remaining <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(queue.get(), remaining))
            except (asyncio.TimeoutError, TimeoutError):
                break
        return jobs

    def _timed(self, jobs: list[Job]) -> list[Reply]:
        """``run_jobs``, learning how long fast-path batches of this model take."""
        started = time.perf_counter()
        replies = run_jobs(jobs, self.metrics)
        if all(job.parsed is not None for job in jobs):
            cost = time.perf_counter() - started
            state = jobs[0].state
            if self._cost is None or self._cost_state is not state:
                self._cost, self._cost_state = cost, state
            else:
                self._cost = 0.8 * self._cost + 0.2 * cost
        return replies

    def _inline(self, jobs: list[Job]) -> bool:
        """True when this batch is cheap enough to predict on the event loop."""
        cost = self._cost
        if cost is None or cost >= INLINE_MAX_SECONDS:
            return False
        state = self._cost_state
        return all(job.parsed is not None and job.state is state for job in jobs)

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            jobs = await self._gather(first)
            if self.metrics is not None:
                now = time.perf_counter()
                for job in jobs:
                    self.metrics.queue_wait.observe(now - job.queued)
            try:
                if self._inline(jobs):
                    replies = self._timed(jobs)
                else:
                    replies = await loop.run_in_executor(self._executor, self._timed, jobs)
            except Exception:
                log.exception("batch failed")
                replies = [(500, b"Internal Server Error", b"text/plain; charset=utf-8")] * len(
                    jobs
                )
            for job, reply in zip(jobs, replies, strict=False):
                if job.future is not None and not job.future.done():
                    job.future.set_result(reply)
