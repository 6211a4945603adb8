"""Helpers of the serving tests (fixtures are in conftest.py).

Logging models costs seconds, so one project store (``.ame/mlflow.db``) is
made per test session and holds:

- ``lr``: a scikit-learn LogisticRegression with a signature; version 1 and a
  version 2 trained on flipped labels (so a swap is visible in predictions);
- ``pyf``: a custom pyfunc ``PythonModel`` with params (``scale``, ``sleep``, and
  ``marker``, a file it creates when predict starts).

Servers are real ``ame serve`` processes on 127.0.0.1; the one most tests use
is session-scoped. Tests that move aliases use their own alias names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import httpx

from tests.helpers import AME, free_port

MLFLOW = str(Path(sys.executable).parent / "mlflow")
FEATURES = ["a", "b", "c", "d"]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 480.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready in {timeout}s:\n{log.read_text()[-3000:]}")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    log: Path
    grpc_port: Optional[int] = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode


@dataclass(frozen=True)
class Store:
    root: Path
    uri: str
    lr: str
    pyf: str

    def env(self) -> dict[str, str]:
        # mlflow models serve runs ``uvicorn`` from PATH: the venv's.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return {
            **os.environ,
            "PATH": path,
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }


def start_ame(
    store: Store,
    args: list[str],
    tmp: Path,
    ready: str = "/v2/health/ready",
    grpc: bool = False,
) -> Server:
    """``ame serve ARGS`` on a free port (and a gRPC one with ``grpc``), waited for until ready."""
    port = free_port()
    grpc_port = free_port() if grpc else None
    if grpc_port is not None:
        args = [*args, "--grpc-port", str(grpc_port)]
    log = tmp / f"ame-serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [AME, "serve", *args, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=store.root,
            env=store.env(),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + ready, proc, log)
    except BaseException:
        Server(proc, url, port, log).stop(signal.SIGKILL)
        raise
    return Server(proc, url, port, log, grpc_port)


def start_mlflow(store: Store, model_uri: str, tmp: Path) -> Server:
    """The baseline: ``mlflow models serve --env-manager local`` on the same store."""
    port = free_port()
    log = tmp / f"mlflow-serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(MLFLOW, "models", "serve", "-m", model_uri, "--env-manager", "local"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=store.root,
            env=store.env(),
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url + "/ping", proc, log)
    except BaseException:
        Server(proc, url, port, log).stop(signal.SIGKILL)
        raise
    return Server(proc, url, port, log)


def _make_store(root: Path) -> Store:
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.pyfunc import PythonModel
    from sklearn.linear_model import LogisticRegression

    class Scaled(PythonModel):
        """x * scale + n; sleeps ``sleep`` seconds first (to test draining).

        ``marker``, a path, is created as soon as predict starts, so a test
        knows that its request is now inside predict without guessing a delay.
        """

        # No type hints on purpose: MLflow 3 would derive the signature from them.
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            params = params or {}
            if params.get("marker"):
                Path(params["marker"]).touch()
            if params.get("sleep"):
                time.sleep(float(params["sleep"]))
            return np.asarray(model_input["x"] * float(params.get("scale", 1.0)) + model_input["n"])

    (root / ".ame").mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / '.ame' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment(
        "serving-tests", artifact_location=(root / ".ame" / "artifacts").as_uri()
    )
    tag = uuid.uuid4().hex[:8]
    lr, pyf = f"lr-{tag}", f"pyf-{tag}"

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=FEATURES)
    y = ((X.a + X.b) > 0).astype(int)
    for labels in (y, 1 - y):
        model = LogisticRegression().fit(X, labels)
        with mlflow.start_run(experiment_id=exp):
            mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(X, model.predict(X)),
                registered_model_name=lr,
            )
    frame = pd.DataFrame({"x": [1.0, 2.5], "n": [1, 2]})
    params = {"scale": 1.0, "sleep": 0.0, "marker": ""}
    with mlflow.start_run(experiment_id=exp):
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Scaled(),
            signature=infer_signature(frame, np.asarray([2.0, 4.5]), params=params),
            registered_model_name=pyf,
        )
    client.set_registered_model_alias(lr, "champion", "1")
    client.set_registered_model_alias(pyf, "champion", "1")
    (root / "ame.yml").write_text("project: servingtests\n")
    return Store(root=root, uri=uri, lr=lr, pyf=pyf)


def rows(n: int, seed: int = 1) -> list[list[float]]:
    import numpy as np

    return np.random.default_rng(seed).normal(size=(n, 4)).round(4).tolist()


def split_body(data: list[list[float]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": FEATURES, "data": data}}


class ThreadServer:
    """A real uvicorn server on 127.0.0.1 for an ASGI app of this process, in a thread.

    For tests that serve many small models side by side (MLflow's own scoring
    app and ame's for each): one process and its loaded models, real sockets.
    """

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            lifespan="on",
            log_config=None,
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 60.0) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
