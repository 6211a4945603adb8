"""Fixtures for the ray backend's tests: one real Ray cluster for the whole run.

The cluster (see ``cluster.py``) is started by the first test that needs it,
shared by every xdist worker and stopped by the last one out. The tests are in
one xdist group as well (``make test`` runs ``--dist loadgroup``), so on a
2-core machine only one worker at a time sends it jobs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ray.cluster import LOOPBACK_ENV, Cluster, Shared

# Every test has its own secret store (autouse), as the task tests have.
from tests.tasks.conftest import private_secrets  # noqa: F401

# Every Ray client in this process too: never an address but 127.0.0.1.
os.environ.update(LOOPBACK_ENV)
for _var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "AME_BACKEND"):
    os.environ.pop(_var, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """All ray tests on one worker: the cluster has 2 CPUs, like the machine."""
    for item in items:
        if "tests/ray/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Cluster]:
    """The shared head node (2 CPUs, 4 GB, 127.0.0.1)."""
    # Not under pytest's basetemp: pytest keeps only its three newest run
    # directories, so another person's test runs on this machine would delete
    # a live cluster's session files. /tmp, named after this run, instead
    # (short, too: Ray's Unix socket paths must stay under 107 characters).
    base = tmp_path_factory.getbasetemp()
    run = (base.parent if worker_id != "master" else base).name
    folder = Path(tempfile.gettempdir()) / f"ame-ray-{os.getuid()}-{run}"
    # The node builds task environments in its own cache (the job inherits
    # ray start's environment): a private one, shared by the run.
    cache = folder / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("AME_CACHE_DIR")
    os.environ["AME_CACHE_DIR"] = str(cache)
    shared = Shared(folder)
    cluster = shared.acquire()
    try:
        yield cluster
    finally:
        if shared.release():
            shutil.rmtree(folder, ignore_errors=True)
        if old is None:
            os.environ.pop("AME_CACHE_DIR", None)
        else:
            os.environ["AME_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def shared_store_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the session's runs (a new store per test costs seconds)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("ray-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    return uri
