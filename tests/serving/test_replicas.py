"""Replicas: a killed worker is replaced, and SIGTERM drains requests in flight."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import wait_for_file, wait_until
from tests.serving.helpers import Server, Store, start_ame

pytestmark = pytest.mark.timeout(1200)

BODY = {"dataframe_split": {"columns": ["x", "n"], "data": [[1.0, 1]]}}


@pytest.fixture(scope="module")
def replicated(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_ame(
        store, [f"{store.pyf}/1", "--workers", "2"], tmp_path_factory.mktemp("replicas")
    )
    yield server
    server.stop()


def _workers(server: Server) -> set[int]:
    """The server's live worker processes (one that ends while being looked at is not)."""
    alive = set()
    for child in psutil.Process(server.proc.pid).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
    return alive


def test_killed_worker_is_restarted(replicated: Server) -> None:
    before = _workers(replicated)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> set[int] | None:
        now = _workers(replicated)
        return now if len(now) == 2 and victim not in now else None

    now = wait_until(replaced, timeout=120, what="a new worker in place of the killed one")
    assert victim not in now and len(now) == 2, now
    # every request succeeds again, whichever worker takes it
    with httpx.Client(base_url=replicated.url, timeout=30) as client:
        for _ in range(30):
            resp = client.post("/invocations", json=BODY, headers={"connection": "close"})
            assert resp.status_code == 200 and resp.json() == {"predictions": [2.0]}
    assert replicated.proc.poll() is None


def test_sigterm_drains_requests_in_flight(replicated: Server, tmp_path: Path) -> None:
    results: list[httpx.Response] = []
    inside = tmp_path / "inside-predict"
    slow = {**BODY, "params": {"sleep": 3.0, "marker": str(inside)}}

    def call() -> None:
        results.append(httpx.post(replicated.url + "/invocations", json=slow, timeout=60))

    thread = threading.Thread(target=call)
    thread.start()
    wait_for_file(inside, timeout=60)  # the request is now inside predict
    workers = _workers(replicated)
    replicated.proc.send_signal(signal.SIGTERM)
    thread.join(timeout=60)
    assert results and results[0].status_code == 200
    assert results[0].json() == {"predictions": [2.0]}
    assert replicated.proc.wait(timeout=60) == 0
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in workers
    )


def test_workers_exit_when_the_supervisor_is_killed(
    store: Store, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server = start_ame(
        store, [f"{store.pyf}/1", "--workers", "2"], tmp_path_factory.mktemp("orphans")
    )
    try:
        workers = _workers(server)
        assert len(workers) == 2
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
        wait_until(
            lambda: not any(psutil.pid_exists(p) for p in workers),
            timeout=60,
            what="the workers to exit with their supervisor",
        )
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/ping", timeout=5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
