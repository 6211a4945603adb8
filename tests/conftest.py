"""Session-wide fixtures: one real MLflow server and one embedded store per test session.

Starting ``mlflow server`` costs seconds, so it is started once, on a free port
of 127.0.0.1, and shared. Tests keep out of each other's way by using unique
model and experiment names (``unique_name``), never by making new stores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest

from tests.helpers import AmeResult, free_port, run_ame, wait_for_http

# Tests never talk to a developer's own tracking server, and MLflow never
# tries to phone home from a machine without a network.
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "AME_PATH"):
    os.environ.pop(_var, None)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# Tracking agents started by ``ame task run`` in tests leave soon after.
os.environ.setdefault("AME_AGENT_IDLE_SECONDS", "20")

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 for the whole session; yields its URL."""
    base = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    log = (base / "server.log").open("wb")
    # MLflow's job runner (huey consumers) is not used by ame and doubles the
    # server's start-up cost and idle CPU on a 2-core machine.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{base / 'server.db'}",
            "--artifacts-destination",
            str(base / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=base,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", timeout=300, proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def embedded_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project directory (with a minimal ame.yml) whose embedded store the session shares."""
    root = tmp_path_factory.mktemp("embedded-project")
    (root / "ame.yml").write_text("project: testproject\n")
    return root


@pytest.fixture
def unique_name() -> str:
    """A model/experiment name no other test uses."""
    return f"m-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def _no_leaked_tracking_uri() -> Iterator[None]:
    """Undo ``mlflow.set_tracking_uri`` leaking into os.environ between tests.

    MLflow copies the URI into ``MLFLOW_TRACKING_URI`` for subprocesses; a test
    that calls it directly would otherwise redirect every later test's
    ``resolve_store`` on the same worker.
    """
    yield
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ.pop(var, None)


class AmeCli(Protocol):
    """The ``ame_cli`` fixture: ``ame_cli(*args, cwd=..., env=..., input=...)``."""

    def __call__(
        self,
        *args: str | os.PathLike[str],
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
    ) -> AmeResult: ...


@pytest.fixture
def ame_cli(tmp_path: Path) -> AmeCli:
    """Run ``ame`` in this process (see ``tests.helpers.run_ame``), in ``tmp_path`` by default."""

    def invoke(
        *args: str | os.PathLike[str],
        cwd: Path | None = None,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
    ) -> AmeResult:
        return run_ame(*args, cwd=cwd or tmp_path, env=env, input=input)

    return invoke
