"""Models to package, shared per session: a scikit-learn model and a files-based pyfunc.

Both are logged and registered into an embedded store (SQLite in a tmp project)
with the real MLflow, once per test module, because logging a model costs
seconds. Each test builds its own packages from them into its own tmp_path.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@dataclass(frozen=True)
class Registered:
    """A registered version and an input it predicts on, with the plain predictions."""

    project: Path
    tracking_uri: str
    name: str
    version: str
    inputs: Any
    expected: Any

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


FILES_MODEL_CODE = textwrap.dedent(
    '''
    """A files-based model: weights and an offset in plain files, read by load_context."""
    import json

    import mlflow
    import numpy as np
    import pandas as pd


    class FilesModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context):
            with open(context.artifacts["weights"]) as fh:
                self.weights = np.array(json.load(fh))
            with open(context.artifacts["offset"]) as fh:
                self.offset = float(fh.read())
            with open(context.artifacts["blob"], "rb") as fh:
                self.blob_size = len(fh.read())

        def predict(self, context, model_input, params=None):
            frame = pd.DataFrame(model_input)
            scale = float((params or {}).get("scale", 1.0))
            return (frame.to_numpy(dtype=float) @ self.weights + self.offset) * scale


    mlflow.models.set_model(FilesModel())
    '''
)


@pytest.fixture(scope="session")
def pkg_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A project directory with its own embedded store; yields (root, tracking URI)."""
    root = tmp_path_factory.mktemp("pkg-project")
    (root / "ame.yml").write_text("project: pkgtest\n")
    db = root / ".ame" / "mlflow.db"
    db.parent.mkdir()
    yield root, f"sqlite:///{db}"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def sklearn_model(pkg_project: tuple[Path, str]) -> Registered:
    """A LogisticRegression on iris, logged with mlflow.sklearn and registered."""
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from ame.registry.store import activate, ensure_experiment, resolve_store

    root, uri = pkg_project
    store = resolve_store(uri, root)
    activate(store)
    frame = load_iris(as_frame=True).frame
    x = frame.drop(columns=["target"])
    model = LogisticRegression(max_iter=300).fit(x, frame["target"])
    name = _unique("sk")
    with mlflow.start_run(experiment_id=ensure_experiment(store, "pkgtest")):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=x.head(3),
            pip_requirements=["mlflow", "scikit-learn"],
        )
    inputs = x.iloc[:12]
    return Registered(
        root, uri, name, str(info.registered_model_version), inputs, model.predict(inputs)
    )


@pytest.fixture(scope="session")
def files_model(
    pkg_project: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Registered:
    """A pyfunc from code whose artifacts are plain files (two of them the same size)."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    from ame.registry.store import activate, ensure_experiment, resolve_store

    root, uri = pkg_project
    store = resolve_store(uri, root)
    activate(store)
    src = tmp_path_factory.mktemp("files-model")
    (src / "weights.json").write_text("[0.5, -1.0, 2.0]")
    # Same size as weights.json, so the swap test swaps two equal-length files.
    (src / "offset.txt").write_text("3.25".ljust(16))
    # 3 chunks at the 4 KiB chunk size the tamper tests use.
    (src / "blob.bin").write_bytes(os.urandom(10_000))
    code = src / "files_model.py"
    code.write_text(FILES_MODEL_CODE)
    inputs = pd.DataFrame({"a": [1.0, 2.0, 0.0], "b": [0.0, 1.0, 4.0], "c": [2.0, 2.0, -1.0]})
    expected = inputs.to_numpy() @ np.array([0.5, -1.0, 2.0]) + 3.25
    name = _unique("files")
    with mlflow.start_run(experiment_id=ensure_experiment(store, "pkgtest")):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            artifacts={
                "weights": str(src / "weights.json"),
                "offset": str(src / "offset.txt"),
                "blob": str(src / "blob.bin"),
            },
            signature=infer_signature(inputs, expected, params={"scale": 1.0}),
            registered_model_name=name,
            pip_requirements=["mlflow", "numpy", "pandas"],
        )
    return Registered(root, uri, name, str(info.registered_model_version), inputs, expected)
