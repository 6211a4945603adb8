"""Fixtures of the kubernetes backend tests: projects on disk, a champion on a real MLflow server.

No API server exists on this machine, and none is faked: the tests check every
rendered object against the official schemas (kubernetes_validate, strict), read
the official client's typed objects (``shapes.py``), and hand every call to the
real client pointed at a closed port, so they stop at the socket.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SERVER = "http://mlflow.mlflow.svc:5000"
VERSIONS = ("1.25", "1.37")


def write_project(root: Path, text: str, **files: str) -> Path:
    """A project directory holding ``text`` as its ame.yml (and any ``files``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ame.yml").write_text(textwrap.dedent(text).lstrip())
    for name, content in files.items():
        (root / name).write_text(content)
    return root


def ame(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``ame`` CLI in a subprocess (from the repository root)."""
    full = {**os.environ, "AME_TRACKING_AGENT": "0", **(env or {})}
    full["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "ame.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        input=input,
        env=full,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _secret_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own (empty) secret store, never the developer's."""
    path = tmp_path / "secrets.json"
    monkeypatch.setenv("AME_SECRETS_FILE", str(path))
    monkeypatch.delenv("AME_BACKEND", raising=False)
    return path


@dataclass(frozen=True)
class Champion:
    """A model registered on the session's MLflow server with @champion on version 1."""

    tracking_uri: str
    name: str


@pytest.fixture(scope="module")
def champion(mlflow_server: str) -> Iterator[Champion]:
    """A tiny pyfunc model (its requirements pinned) promoted to @champion."""
    import mlflow
    from mlflow import MlflowClient

    class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return model_input

    name = f"k8s-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)  # process-wide: an earlier test may have set another
    mlflow.set_experiment(f"k8s-tests-{name}")
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=Echo(),
            pip_requirements=["numpy==2.0.0"],
            registered_model_name=name,
        )
    MlflowClient(mlflow_server, mlflow_server).set_registered_model_alias(name, "champion", "1")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield Champion(mlflow_server, name)
