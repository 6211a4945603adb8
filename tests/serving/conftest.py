"""Fixtures of the serving tests: one store with real models and one shared server.

See helpers.py for what the store holds and how servers are started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serving.helpers import Server, Store, _make_store, start_ame


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The session's project store with the ``lr`` and ``pyf`` models."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return _make_store(tmp_path_factory.mktemp("serving-project"))


@pytest.fixture(scope="session")
def lr_server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ame serve models:/lr/1`` with 2 workers, batching on, a small body limit and gRPC."""
    server = start_ame(
        store,
        [
            *(f"models:/{store.lr}/1", "--workers", "2", "--max-batch-size", "64"),
            *("--max-latency-ms", "10", "--max-body-bytes", "200000"),
        ],
        tmp_path_factory.mktemp("lr-server"),
        grpc=True,
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lr_model(store: Store) -> Any:
    """Version 1 of ``lr`` loaded in the test process, to compute expected predictions."""
    import mlflow.pyfunc

    # Name the store explicitly: other tests may have pointed mlflow elsewhere.
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    return mlflow.pyfunc.load_model(f"models:/{store.lr}/1")


@pytest.fixture(scope="session")
def pyf_server(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ame serve pyf@champion`` (one worker): the custom pyfunc model with params."""
    server = start_ame(store, [f"{store.pyf}@champion"], tmp_path_factory.mktemp("pyf-server"))
    yield server
    server.stop()
