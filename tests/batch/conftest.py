"""Fixtures of the batch-scoring tests: small real models on disk and in a real store.

Models are saved once per session (saving costs seconds): a scikit-learn
classifier with a named-column signature, one with a tensor signature (the
shape of the demo's logistic regression), and a pyfunc that takes a little
time per chunk so a test can kill a run mid-way. Inputs are made by each test
in its own tmp_path.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers import AME as AME  # re-exported: test_memory and test_resume start it
from tests.helpers import run_ame

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
FEATURES = ["a", "b", "c"]

SLOW_MODEL = textwrap.dedent(
    '''
    """Sums the features; sleeps a little per call so a run can be caught mid-way."""
    import time

    import mlflow
    import numpy as np
    import pandas as pd


    class Slow(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            time.sleep(0.15)
            frame = pd.DataFrame(model_input)
            return frame[["a", "b", "c"]].to_numpy(dtype=float).sum(axis=1)


    mlflow.models.set_model(Slow())
    '''
)


@dataclass(frozen=True)
class SavedModel:
    """A model directory and the plain scikit-learn model, to compute expected predictions."""

    path: Path
    model: Any


def frame(rows: int, seed: int = 0, start_id: int = 1000) -> pd.DataFrame:
    """Features a, b, c and an id column, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    data.insert(0, "id", np.arange(start_id, start_id + rows, dtype=np.int64))
    return data


def write(data: pd.DataFrame, path: Path) -> Path:
    """``data`` as CSV, Parquet or JSONL by ``path``'s suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        data.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        data.to_parquet(path, index=False)
    else:
        data.to_json(path, orient="records", lines=True)
    return path


def read(path: Path) -> pd.DataFrame:
    """An output file back as a DataFrame."""
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, orient="records", lines=True)


def ame(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> Any:
    """Run ``ame`` in this process (``tests.helpers.run_ame``); ``timeout`` is pytest's."""
    del timeout
    given: dict[str, str | None] = dict(env or {})
    return run_ame(*args, cwd=cwd, env=given)


@pytest.fixture(scope="session")
def sk_model(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """A LogisticRegression on a, b, c with a named-column signature, saved to a directory."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    train = frame(300, seed=1)[FEATURES]
    labels = (train["a"] + train["b"] > 0).astype(int)
    model = LogisticRegression().fit(train, labels)
    path = tmp_path_factory.mktemp("models") / "sk"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(train, model.predict(train)),
        pip_requirements=["scikit-learn"],
    )
    return SavedModel(path, model)


@pytest.fixture(scope="session")
def tensor_model(tmp_path_factory: pytest.TempPathFactory) -> SavedModel:
    """A LogisticRegression logged with a tensor signature (NumPy in), like the demo's."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    x = frame(200, seed=2)[FEATURES].to_numpy()
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    path = tmp_path_factory.mktemp("models") / "tensor"
    mlflow.sklearn.save_model(
        model, str(path), signature=infer_signature(x, model.predict(x)),
        pip_requirements=["scikit-learn"],
    )  # fmt: skip
    return SavedModel(path, model)


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models-from-code pyfunc that takes 0.15 s per chunk (a signature on a, b, c)."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    base = tmp_path_factory.mktemp("models")
    code = base / "slow_model.py"
    code.write_text(SLOW_MODEL)
    example = frame(3)[FEATURES]
    path = base / "slow"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(code),
        signature=infer_signature(example, example.sum(axis=1).to_numpy()),
        pip_requirements=["mlflow"],
    )
    return path


@dataclass(frozen=True)
class Project:
    """A project directory with an embedded store holding ``model`` at @champion."""

    root: Path
    tracking_uri: str
    model: str
    version: str


@pytest.fixture(scope="session")
def batch_project(tmp_path_factory: pytest.TempPathFactory, sk_model: SavedModel) -> Project:
    """An embedded-store project with the scikit-learn model registered, version 1 @champion."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from ame.registry.facade import Registry
    from ame.registry.store import activate, embedded_store, ensure_experiment

    root = tmp_path_factory.mktemp("batch-project")
    (root / "ame.yml").write_text("project: batchtest\n")
    store = embedded_store(root)
    activate(store)
    name = f"scorer-{uuid.uuid4().hex[:8]}"
    train = frame(50, seed=1)[FEATURES]
    with mlflow.start_run(experiment_id=ensure_experiment(store)):
        info = mlflow.sklearn.log_model(
            sk_model.model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(train, sk_model.model.predict(train)),
            pip_requirements=["scikit-learn"],
        )
    version = str(info.registered_model_version)
    Registry(store).set_alias(name, "champion", version)
    return Project(root, store.tracking_uri, name, version)
