"""Deployments on Ray Serve, end to end on the real local cluster through the real ``ame`` CLI.

One test walks the whole story, because every Serve deployment costs the
2-CPU cluster 10-20 s: ``ame train --backend ray`` with autoDeploy trains and
validates as Ray jobs, promotes, and deploys the champion as a Serve
application with two replicas; both protocols answer as ``ame serve`` does;
version 2 (a model that predicts the opposite class) becomes the champion
and ``ame deploy`` rolls the deployment to it while four threads send
requests, with zero failures;
``/metrics`` sums both replicas; then list, logs and stop.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port
from tests.ray.cluster import Cluster
from tests.ray.helpers import ame, cli_env, job_client, write_trained_project

DEPLOYMENT = """\
    deployment:
      autoDeploy: true
      replicas: 2
      resources: {cpu: 0.1}
      batching: {maxBatchSize: 8, maxLatencyMs: 2}
      enableTls: true
"""


def _serve_apps(cluster: Cluster) -> dict[str, Any]:
    client = job_client(cluster)
    apps: dict[str, Any] = client._do_request("GET", "/api/serve/applications/").json()[
        "applications"
    ]
    return apps


@pytest.fixture
def serve_left_clean(ray_cluster: Cluster) -> Iterator[None]:
    """After the test: no ame application left, and Serve itself shut down when nothing is left."""
    yield
    from ame.backends.ray.cluster import RayCluster
    from ame.backends.ray.serve import RayServe

    serve = RayServe(RayCluster(ray_cluster.dashboard))
    for app in _serve_apps(ray_cluster).values():
        args = (app.get("deployed_app_config") or {}).get("args") or {}
        if args.get("ame_namespace"):
            serve.stop(args["ame_namespace"], args["model"])
    if not _serve_apps(ray_cluster):
        job_client(ray_cluster)._do_request("DELETE", "/api/serve/applications/")


class Load:
    """Threads posting to ``/invocations`` until stopped, recording every answer."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.ok: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=60.0) as client:
            while not self._stop.is_set():
                try:
                    resp = client.post(f"{self.url}/invocations", json={"inputs": [[2.0]]})
                    if resp.status_code == 200:
                        self.ok.append(int(resp.json()["predictions"][0]))
                    else:
                        self.failures.append(f"HTTP {resp.status_code}: {resp.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                # Continuous, but leaving the 2-CPU cluster room to run ame train's jobs.
                self._stop.wait(0.02)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})?\s+(\S+)$", line)
        if not match or match.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def _register_flipped(uri: str, name: str) -> Any:
    """Register version 2 of ``name``: TRAIN_PY's model with the classes swapped."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    x = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, np.array([1, 1, 1, 0, 0, 0]))
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = client.get_experiment_by_name(name)  # the project's, made by ame train
    assert experiment is not None
    with mlflow.start_run(experiment_id=experiment.experiment_id):
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name,
            signature=infer_signature(x, model.predict(x)), pip_requirements=["scikit-learn"],
        )  # fmt: skip
    return client


def test_train_deploys_on_serve_rolls_with_zero_failures_then_stops(
    ray_cluster: Cluster,
    tmp_path: Path,
    unique_name: str,
    shared_store_uri: str,
    serve_left_clean: None,
) -> None:
    root = write_trained_project(tmp_path / "p", unique_name, deployment=DEPLOYMENT)
    env = cli_env(ray_cluster, AME_RAY_SERVE_PORT=str(free_port()), NO_COLOR="1")
    train = ("train", unique_name, "--backend", "ray", "--tracking-uri", shared_store_uri)

    first = ame(*train, cwd=root, env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    found = re.search(r"version 1 is served at (http://\S+)", first.stdout)
    assert found, first.stdout
    url = found.group(1)
    # enableTls has no Serve equivalent: one line says so.
    assert "deployment.enableTls: has no effect on the ray backend" in first.stderr

    # Both protocols answer, with the model's own predictions (x=2 -> class 1).
    scored = httpx.post(f"{url}/invocations", json={"inputs": [[2.0], [-2.0]]}, timeout=30)
    assert scored.status_code == 200, scored.text
    assert scored.json() == {"predictions": [1, 0]}
    meta = httpx.get(f"{url}/v2/models/{unique_name}", timeout=30).json()
    assert meta["versions"] == ["1"]
    infer = httpx.post(
        f"{url}/v2/models/{unique_name}/infer",
        json={"inputs": [{"name": meta["inputs"][0]["name"], "shape": [2, 1],
                          "datatype": "FP64", "data": [2.0, -2.0]}]},
        timeout=30,
    )  # fmt: skip
    assert infer.status_code == 200, infer.text
    assert infer.json()["model_version"] == "1"
    assert infer.json()["outputs"][0]["data"] == [1, 0]
    assert httpx.get(f"{url}/v2/health/ready", timeout=10).status_code == 200

    # Two replicas, each with a tenth of a CPU, as ame.yml says.
    listed = ame("deployment", "list", "--backend", "ray", "--json", cwd=root, env=env)
    assert listed.returncode == 0, listed.stderr
    [view] = [d for d in json.loads(listed.stdout) if d["model"] == unique_name]
    assert view["backend"] == "ray" and view["replicas"] == 2 and view["version"] == "1"
    assert view["ref"] == f"{unique_name}@champion" and view["url"] == url
    actors = job_client(ray_cluster)._do_request("GET", "/api/v0/actors?detail=1&limit=1000")
    replicas = [
        a for a in actors.json()["data"]["result"]["result"]
        if a.get("state") == "ALIVE" and "AmeModel" in str(a.get("class_name"))
        and view["application"] in str(a.get("name", "")) + str(a.get("class_name", ""))
    ]  # fmt: skip
    assert len(replicas) == 2, replicas
    assert all(r["required_resources"].get("CPU") == 0.1 for r in replicas), replicas

    # The roll: a model predicting the opposite class becomes version 2, and the
    # champion moves to it under load (``ame train`` would do the same, slower:
    # its two jobs would share the 2 CPUs with the load).
    client = _register_flipped(shared_store_uri, unique_name)
    with Load(url) as load:
        deadline = time.monotonic() + 60
        while len(load.ok) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        client.set_registered_model_alias(unique_name, "champion", "2")
        second = ame("deploy", unique_name, "--backend", "ray", "--tracking-uri",
                     shared_store_uri, cwd=root, env=env, timeout=300)  # fmt: skip
        after = len(load.ok)
        deadline = time.monotonic() + 60
        while len(load.ok) < after + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{unique_name} version 2 ({unique_name}@champion) serving at {url}" in second.stdout
    assert load.failures == [], load.failures[:5]
    assert 1 in load.ok and 0 in load.ok  # both versions answered during the run
    assert load.ok[-5:] == [0] * 5  # and only version 2 once ame deploy returned
    for _ in range(6):  # every replica now answers with version 2
        resp = httpx.post(f"{url}/invocations", json={"inputs": [[2.0]]}, timeout=30)
        assert resp.json() == {"predictions": [0]}

    # /metrics sums the replicas: every request above is counted, whichever answered.
    sent = len(load.ok) + 1 + 6
    deadline = time.monotonic() + 30
    while True:
        text = httpx.get(f"{url}/metrics", timeout=30).text
        counted = _metric(text, "ame_requests_total", route="/invocations", status="200")
        if counted >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counted >= sent, (counted, sent)
    assert _metric(text, "ame_replicas") == 2
    assert _metric(text, "ame_model_info", model=unique_name, version="2") == 1
    assert _metric(text, "ame_model_info", model=unique_name, version="1") == 0

    logs = ame("deployment", "logs", unique_name, "--backend", "ray", "--tail", "20",
               cwd=root, env=env)  # fmt: skip
    assert logs.returncode == 0, logs.stderr
    assert re.search(r"^\[\w+\] ", logs.stdout, re.M), logs.stdout

    stopped = ame("deployment", "stop", unique_name, "--backend", "ray", cwd=root, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert view["application"] not in _serve_apps(ray_cluster)
    again = ame("deployment", "list", "--backend", "ray", "--json", cwd=root, env=env)
    assert [d for d in json.loads(again.stdout) if d["model"] == unique_name] == []
    missing = ame("deployment", "stop", unique_name, "--backend", "ray", cwd=root, env=env)
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1].startswith("error: no Ray Serve deployment")
    assert "Traceback" not in missing.stderr
