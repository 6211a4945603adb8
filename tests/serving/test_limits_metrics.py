"""Body limits, malformed traffic, params on a pyfunc model, and /metrics."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_for_file
from tests.serving.helpers import Server, Store, rows, split_body

pytestmark = pytest.mark.timeout(1200)


def test_body_over_limit_gets_413_in_mlflow_shape(lr_server: Server) -> None:
    big = json.dumps(split_body(rows(6000))).encode()
    assert len(big) > 200_000
    resp = httpx.post(
        lr_server.url + "/invocations", content=big, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413
    doc = resp.json()
    assert doc["error_code"] == "BAD_REQUEST" and "200000 bytes" in doc["message"]


def test_chunked_body_over_limit_gets_413(lr_server: Server, store: Store) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b" " * 10_000

    resp = httpx.post(
        f"{lr_server.url}/v2/models/{store.lr}/infer",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413 and "limit" in resp.json()["error"]


def test_garbage_on_the_wire_does_not_bring_the_server_down(lr_server: Server) -> None:
    for junk in (
        b"\x00\x01\x02 not http\r\n\r\n",
        b"POST /invocations HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
    ):
        with socket.create_connection(("127.0.0.1", lr_server.port), timeout=5) as sock:
            sock.sendall(junk)
            sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                sock.recv(4096)
    resp = httpx.post(lr_server.url + "/invocations", json=split_body(rows(1)))
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 1


def test_pyfunc_params_over_invocations(pyf_server: Server) -> None:
    body = {
        "dataframe_split": {"columns": ["x", "n"], "data": [[1.0, 1], [2.5, 2]]},
        "params": {"scale": 2.0},
    }
    resp = httpx.post(pyf_server.url + "/invocations", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"predictions": [3.0, 7.0]}
    plain = httpx.post(
        pyf_server.url + "/invocations", json={"dataframe_records": [{"x": 1.5, "n": 1}]}
    )
    assert plain.json() == {"predictions": [2.5]}
    bad = httpx.post(pyf_server.url + "/invocations", json={**body, "params": {"scale": "big"}})
    assert bad.status_code == 400 and bad.json()["error_code"] in (
        "BAD_REQUEST",
        "INVALID_PARAMETER_VALUE",
    )


def test_metrics_report_requests_latency_batches_errors_and_version(
    lr_server: Server, store: Store
) -> None:
    httpx.post(lr_server.url + "/invocations", json=split_body(rows(2)))
    httpx.post(
        lr_server.url + "/invocations", content=b"{", headers={"content-type": "application/json"}
    )
    text = httpx.get(lr_server.url + "/metrics").text
    assert 'ame_requests_total{route="/invocations",status="200"}' in text
    assert 'ame_requests_total{route="/invocations",status="400"}' in text
    assert 'ame_request_duration_seconds_bucket{le="0.005",route="/invocations"}' in text
    assert "ame_batch_size_count" in text
    assert 'ame_errors_total{kind="client",route="/invocations"}' in text
    assert f'ame_model_info{{model="{store.lr}",version="1"}} 1.0' in text
    for line in text.splitlines():
        if line.startswith('ame_requests_total{route="/invocations",status="200"}'):
            assert float(line.split()[-1]) >= 1


def test_slow_prediction_does_not_block_health_checks(pyf_server: Server, tmp_path: Path) -> None:
    import threading
    import time

    inside = tmp_path / "inside-predict"
    slow = {
        "dataframe_split": {"columns": ["x", "n"], "data": [[1.0, 1]]},
        "params": {"sleep": 2.0, "marker": str(inside)},
    }
    results: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: results.append(
            httpx.post(pyf_server.url + "/invocations", json=slow, timeout=60)
        )
    )
    thread.start()
    wait_for_file(inside, timeout=60)  # the slow request is inside predict now
    started = time.perf_counter()
    ping = httpx.get(pyf_server.url + "/ping", timeout=10)
    waited = time.perf_counter() - started
    thread.join(timeout=60)
    assert ping.status_code == 200 and waited < 1.0, waited
    assert results and results[0].json() == {"predictions": [2.0]}
