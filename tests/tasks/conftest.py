"""Fixtures for the task tests: one environment cache and one MLflow store per session.

Environments are expensive, so every test (and every xdist worker, through the
file lock ame takes per environment) shares one cache directory. Each test gets
its own project directory and a unique project name, so runs never mix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ame.registry.store import Store, embedded_store
from ame.spec.model import Project


@pytest.fixture(scope="session", autouse=True)
def task_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Path]:
    """One AME_CACHE_DIR for the whole session, shared by xdist workers."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "ame-task-cache"
    root.mkdir(exist_ok=True)
    old = os.environ.get("AME_CACHE_DIR")
    os.environ["AME_CACHE_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("AME_CACHE_DIR", None)
    else:
        os.environ["AME_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def private_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has its own secret store and config dir."""
    monkeypatch.setenv("AME_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "config" / "secrets.json"
    monkeypatch.setenv("AME_SECRETS_FILE", str(path))
    return path


@pytest.fixture(scope="session")
def task_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """An embedded SQLite store shared by the session (created once, it is slow)."""
    store = embedded_store(tmp_path_factory.mktemp("task-store"))
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=store.tracking_uri).search_experiments(max_results=1)
    return store


@pytest.fixture
def project(tmp_path: Path, unique_name: str) -> Project:
    """An empty project in its own directory with a unique name (= experiment)."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "ame.yml").write_text(f"project: {unique_name}\n")
    return Project(name=unique_name, root=root, file=root / "ame.yml")
