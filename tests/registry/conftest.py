"""Fixtures of the registry tests: one tiny model per session, stores of both kinds.

Every test that takes ``store`` runs twice: against an embedded SQLite store
in a temporary project and against the session's real ``mlflow server``. The
expensive things (training, the first ``log_model``) happen once per store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ame.registry.store import Store, resolve_store

PIP = ["scikit-learn", "pandas"]


@dataclass(frozen=True)
class Tiny:
    """A trained estimator and the frame it was trained on."""

    model: Any
    X: Any
    y: list[int]


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    """A logistic regression on four rows: trained once for the whole session."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    y = [0, 0, 1, 1]
    return Tiny(LogisticRegression().fit(X, y), X, y)


def _project(base: Path, name: str) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    (base / "ame.yml").write_text(f"project: {name}\n")
    return base


@pytest.fixture(scope="module", params=["embedded", "server"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """An embedded store in a fresh project, or the session's mlflow server."""
    root = _project(tmp_path_factory.mktemp(f"proj-{request.param}"), "regtests")
    if request.param == "embedded":
        return resolve_store(project_root=root)
    url = request.getfixturevalue("mlflow_server")
    return resolve_store(tracking_uri=url, project_root=root)


@pytest.fixture(scope="module")
def logged(store: Store, tiny: Tiny) -> Any:
    """The tiny model logged once per store with ame's BuiltinSaver (its ModelInfo)."""
    from ame.registry import BuiltinSaver

    return BuiltinSaver(flavor="sklearn", store=store, pip_requirements=PIP).save(
        tiny.model, input_example=tiny.X.head(2)
    )


@pytest.fixture
def registry(store: Store) -> Iterator[Any]:
    """A ``Registry`` on the parametrised store."""
    from ame.registry import Registry

    yield Registry(store)
