"""Following one Ray job: its log line by line, Ctrl-C/SIGTERM caught, its final status.

``ame task run --backend ray`` and ``ame predict --backend ray`` both submit a
job and then watch it the same way: the dashboard's log stream is read on a
thread (it is async, the caller is not), split into lines with Ray's own
preamble dropped, and every poll gives the caller a chance to stop the job
(a signal, a cancel, a timeout). When the log ends, the job's status can
still lag a moment behind it, so ``final_info`` waits for a terminal one.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ame.backends.ray.cluster import RayCluster

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
GRACE_SECONDS = 30.0
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# Ray's own lines at the head of every job log, not the job's output.
RAY_PREAMBLE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+\w+ job_manager\.py:\d+ -- "
    r"|Running entrypoint for job )"
)


def status_of(info: Any) -> str:
    """A job's status as Ray's plain word (``SUCCEEDED``), whether an enum or a string."""
    return str(getattr(info.status, "value", info.status)).rsplit(".", 1)[-1]


def _pump(cluster: RayCluster, job_id: str, out: queue.Queue[Optional[str]]) -> None:
    """Push the job's log chunks into ``out`` until it ends (then ``None``)."""

    async def pump() -> None:
        async for chunk in cluster.tail(job_id):
            out.put(chunk)

    try:
        asyncio.run(pump())
    except Exception as exc:  # the job's end is read from its status anyway
        log.debug("log stream of %s ended: %s", job_id, exc)
    finally:
        out.put(None)


def follow(
    cluster: RayCluster,
    job_id: str,
    on_line: Callable[[str], None],
    on_tick: Callable[[Optional[int]], bool],
) -> None:
    """Give each line of the job's log to ``on_line`` until the log ends or ``on_tick`` says so.

    Ctrl-C and SIGTERM are caught while following (``StopSignals``): after each
    poll (at least every ``POLL_SECONDS``) ``on_tick`` is called with the signal
    number that came, or None, and decides whether to stop the job; it returns
    True to stop following before the log ends. Ray's preamble lines are
    dropped; a last line without a newline is given too.
    """
    from ame.tasks.process import StopSignals

    chunks: queue.Queue[Optional[str]] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(cluster, job_id, chunks), daemon=True)

    def emit(line: str) -> None:
        if not RAY_PREAMBLE.match(line):
            on_line(line)

    pending = ""
    with StopSignals() as stop:
        reader.start()
        while True:
            try:
                chunk = chunks.get(timeout=POLL_SECONDS)
            except queue.Empty:
                chunk = ""
            if chunk is None:
                break
            pending += chunk
            *lines, pending = pending.split("\n")
            for line in lines:
                emit(line.rstrip("\r"))
            if on_tick(stop.signum):
                break
        if pending:
            emit(pending)


def final_info(cluster: RayCluster, job_id: str, timeout: float = GRACE_SECONDS) -> Any:
    """The job's details once Ray says it ended (its log can close a moment before)."""
    deadline = time.monotonic() + timeout
    while True:
        info = cluster.info(job_id)
        if status_of(info) in TERMINAL or time.monotonic() > deadline:
            return info
        time.sleep(POLL_SECONDS)
