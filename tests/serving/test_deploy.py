"""Local deployments through the real ``ame`` CLI: deploy, list, logs, follow, replace, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
import tritonclient.grpc as grpcclient

from ame._system import pid_alive
from tests.helpers import free_port
from tests.serving.helpers import AME, Store, rows, split_body

pytestmark = pytest.mark.timeout(1500)

ALIAS = "prod"


def ame(
    store: Store, project: Path, *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AME, *args],
        cwd=project,
        env=store.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def project(store: Store, tmp_path: Path) -> Path:
    """A project whose ame.yml gives the model replicas, resources and batching.

    The registry is the session store's (``MLFLOW_TRACKING_URI`` in its env).
    """
    (tmp_path / "ame.yml").write_text(
        "project: deploytests\n"
        "models:\n"
        f"  - name: {store.lr}\n"
        "    deployment:\n"
        "      replicas: 2\n"
        "      resources: {cpu: 1, memory: 4Gi}\n"
        "      batching:\n"
        "        maxBatchSize: 16\n"
        "        maxLatencyMs: 2\n"
    )
    return tmp_path


def test_deploy_list_follow_replace_logs_stop(store: Store, project: Path) -> None:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    client.set_registered_model_alias(store.lr, ALIAS, "1")

    out = ame(
        store, project, "deploy", store.lr, "--alias", ALIAS, "--poll-interval", "0.5", "--json"
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["version"] == "1" and info["ref"] == f"{store.lr}@{ALIAS}" and info["workers"] == 2
    record = project / ".ame" / "deployments" / f"{store.lr}.json"
    assert json.loads(record.read_text())["pid"] == info["pid"]
    try:
        # it outlives the CLI, answers, and runs the replicas, resources and
        # batching ame.yml asks for
        assert pid_alive(info["pid"])
        server = psutil.Process(info["pid"])
        assert len(server.children()) == 2
        for proc in (server, *server.children()):
            assert len(proc.cpu_affinity()) == 1
            assert proc.environ().get("OMP_NUM_THREADS") == "1"
        started = Path(info["log"]).read_text()
        assert "--max-batch-size 16 --max-latency-ms 2.0" in started
        resp = httpx.post(info["url"] + "/invocations", json=split_body(rows(2)))
        assert resp.status_code == 200 and len(resp.json()["predictions"]) == 2

        def listed() -> list[tuple[str, str, str, bool]]:
            out = ame(store, project, "deployment", "list", "--json")
            assert out.returncode == 0, out.stderr
            rows = json.loads(out.stdout)
            return [(d["backend"], d["model"], d["version"], d["healthy"]) for d in rows]

        assert listed() == [("local", store.lr, "1", True)]
        table = ame(store, project, "deployment", "list")
        assert store.lr in table.stdout and "ready" in table.stdout and "local" in table.stdout

        # the alias moves: the server swaps by itself and writes nothing; the
        # listing asks it what it serves
        client.set_registered_model_alias(store.lr, ALIAS, "2")
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and listed()[0][2] != "2":
            time.sleep(0.3)
        assert listed() == [("local", store.lr, "2", True)]
        assert json.loads(record.read_text())["version"] == "1"  # the server never rewrites it

        # deploying the same alias again moves nothing
        again = json.loads(
            ame(store, project, "deploy", store.lr, "--alias", ALIAS, "--json").stdout
        )
        assert again["pid"] == info["pid"]

        # pinning a version replaces the deployment: new server first, then the old one
        # stops; this one also serves v2 over gRPC, on both replicas' shared port
        grpc_port = free_port()
        pinned = ame(
            store, project, "deploy", store.lr, "--version", "1", "--grpc-port", str(grpc_port),
            "--json",
        )  # fmt: skip
        assert pinned.returncode == 0, pinned.stderr
        new = json.loads(pinned.stdout)
        assert new["pid"] != info["pid"] and new["version"] == "1" and new["ref"] == f"{store.lr}/1"
        assert new["grpc_port"] == grpc_port
        assert json.loads(record.read_text())["grpc_port"] == grpc_port
        assert not pid_alive(info["pid"])
        assert httpx.post(new["url"] + "/invocations", json=split_body(rows(1))).status_code == 200
        client_grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
        assert client_grpc.is_server_ready() and client_grpc.is_model_ready(store.lr, "1")

        logs = ame(store, project, "deployment", "logs", store.lr)
        assert logs.returncode == 0 and "serving" in logs.stdout

        stopped = ame(store, project, "deployment", "stop", store.lr)
        assert stopped.returncode == 0, stopped.stderr
        assert not pid_alive(new["pid"]) and not record.exists()
        assert json.loads(ame(store, project, "deployment", "list", "--json").stdout) == []
    finally:
        # the whole session: killing only the supervisor would orphan its workers
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(info["pid"], signal.SIGKILL)
        ame(store, project, "deployment", "stop", store.lr)


def test_deployment_errors_are_one_line_with_exit_code_2(store: Store, project: Path) -> None:
    missing = ame(store, project, "deployment", "stop", "nosuchmodel")
    assert missing.returncode == 2 and "no local deployment of 'nosuchmodel'" in missing.stderr
    unknown = ame(store, project, "deploy", "nosuchmodel-xyz")
    # the registry's resolver words it; it names the model and stays on one line
    assert unknown.returncode == 2 and "'nosuchmodel-xyz'" in unknown.stderr, unknown.stderr
    assert unknown.stderr.startswith("error: ") and unknown.stderr.count("\n") == 1
    assert "Traceback" not in unknown.stderr
    bad = ame(store, project, "serve", "/no/such/dir/or-model!")
    assert bad.returncode == 2 and "invalid model reference" in bad.stderr
