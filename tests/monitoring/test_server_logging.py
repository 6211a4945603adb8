"""Payload logging in a real ``ame serve`` with two workers, under concurrent load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ame.monitoring.location import file_window
from ame.monitoring.writer import PROTOCOL, REQUEST_ID, is_sampled
from tests.helpers import free_port, wait_for_http
from tests.monitoring.conftest import FEATURES, Project, clear_traffic

BIN = Path(sys.executable).parent


def _serve(project: Project, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = (project.root / f"serve-{port}.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "ame"), "serve", f"{project.model}/1", "--port", str(port), *args],
        cwd=project.root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/v2/health/ready", timeout=180, proc=proc)
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def _logged(project: Project) -> pa.Table:
    directory = project.root / ".ame" / "monitoring" / project.model / "1"
    files = [p for p in directory.iterdir() if file_window(p.name) is not None]
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")


def _request(client: httpx.Client, url: str, i: int) -> str:
    request_id = f"{uuid.uuid4().hex}-{i}"
    row = [float(i % 7), 1.0, -1.0, 0.5]
    body2 = {"dataframe_split": {"columns": FEATURES, "data": [row, row]}}
    reply = client.post(f"{url}/invocations", json=body2, headers={"x-request-id": request_id})
    assert reply.status_code == 200, reply.text
    return request_id


def test_every_sampled_request_logged_exactly_once(project: Project) -> None:
    import numpy as np
    import tritonclient.grpc as grpcclient

    clear_traffic(project)
    grpc_port = free_port()
    proc, url = _serve(
        project, "--workers", "2", "--log-payloads", "--sample-rate", "0.5",
        "--grpc-port", str(grpc_port),
    )  # fmt: skip
    grpc_ids = [f"grpc-{i}" for i in range(40)]
    try:
        grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
        for request_id in grpc_ids:
            tensors = []
            for name in FEATURES:
                tensor = grpcclient.InferInput(name, [3], "FP64")
                tensor.set_data_from_numpy(np.asarray([1.0, 2.0, 3.0]))
                tensors.append(tensor)
            grpc.infer(project.model, tensors, model_version="1", request_id=request_id)
        with httpx.Client(timeout=30) as client, ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(lambda i: _request(client, url, i), range(400)))
            v2 = {"inputs": [{"name": n, "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]}
                             for n in FEATURES]}  # fmt: skip
            v2_ids = [f"v2-{i}" for i in range(40)]
            for request_id in v2_ids:
                answer = client.post(f"{url}/v2/models/{project.model}/infer", json=v2,
                                     headers={"x-request-id": request_id})  # fmt: skip
                assert answer.status_code == 200, answer.text
    finally:
        _stop(proc)  # a drained server closes its files
    table = _logged(project)
    logged = table.column(REQUEST_ID).to_pylist()
    expected = {i for i in ids if is_sampled(i, 0.5)}
    protocols = table.column(PROTOCOL).to_pylist()
    mlflow_ids = [r for r, p in zip(logged, protocols, strict=True) if p == "mlflow"]
    assert 120 < len(expected) < 280
    assert sorted(mlflow_ids) == sorted(r for r in expected for _ in range(2))  # 2 rows each, once
    v2_logged = {r for r, p in zip(logged, protocols, strict=True) if p == "v2"}
    assert v2_logged == {i for i in v2_ids if is_sampled(i, 0.5)}
    grpc_rows = [r for r, p in zip(logged, protocols, strict=True) if p == "grpc"]
    assert sorted(grpc_rows) == sorted(i for i in grpc_ids if is_sampled(i, 0.5) for _ in range(3))
    grpc_table = table.filter(pc.equal(table.column(PROTOCOL), "grpc"))
    assert set(grpc_table.column("input.a").to_pylist()) == {1.0, 2.0, 3.0}
    assert grpc_table.column("output.prediction").null_count == 0
    assert "output.prediction" in table.column_names
    assert set(table.column("input.a").to_pylist()) <= {float(i) for i in range(7)} | {1.0, 2.0}


def test_metrics_show_log_counters_and_drift(project: Project) -> None:
    import numpy as np
    import pandas as pd

    from ame.monitoring.check import run_check
    from ame.registry.store import embedded_store
    from tests.monitoring.conftest import log_traffic

    clear_traffic(project)
    rng = np.random.default_rng(5)
    log_traffic(project, pd.DataFrame(rng.normal(size=(500, 4)), columns=FEATURES))
    run_check(embedded_store(project.root), f"{project.model}/1", project=None)
    proc, url = _serve(project, "--workers", "2")  # ame.yml's monitoring.log turns logging on
    try:
        with httpx.Client(timeout=30) as client:
            body = {"dataframe_split": {"columns": FEATURES, "data": [[0.0, 0.0, 0.0, 0.0]]}}
            for _ in range(10):
                assert client.post(f"{url}/invocations", json=body).status_code == 200
            deadline = time.monotonic() + 60
            text = ""
            while time.monotonic() < deadline:
                text = client.get(f"{url}/metrics").text
                if (
                    "ame_feature_drift_psi{" in text
                    and "ame_payload_log_requests_total 10.0" in text
                ):
                    break
                time.sleep(0.2)
    finally:
        _stop(proc)
    assert f'ame_feature_drift_psi{{feature="a",model="{project.model}",version="1"}}' in text
    assert "ame_payload_log_dropped_total 0.0" in text
    assert "ame_payload_log_requests_total 10.0" in text  # summed over both workers
