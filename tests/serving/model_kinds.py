"""Small MLflow models of every kind the fast path serves, saved to local directories.

Saved (not registered) because the differential test needs only their files:
each is loaded with ``mlflow.pyfunc.load_model`` and served twice in the test
process, by MLflow's own scoring app and by ame's. See test_differential.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

FEATURES = ["a", "b", "c", "d"]
# Given, so that saving does not infer them (a subprocess per model: seconds each).
REQS = ["mlflow"]


# No type hints on predict on purpose: MLflow 3 would derive a signature from them.
class EchoFrame(PythonModel):
    """Returns its input DataFrame with a computed column: a DataFrame output."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        out = model_input.copy()
        out["twice"] = out["n"] * 2
        return out


class Summary(PythonModel):
    """Returns one dict for the whole input: an output that is not one row per input row."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return {"rows": len(model_input), "first": str(np.asarray(model_input).ravel()[0])}


class RowSums(PythonModel):
    """Returns a plain Python list, one number per row."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        frame = pd.DataFrame(model_input)
        return [float(v) for v in frame.select_dtypes("number").sum(axis=1)]


class TwoTensors(PythonModel):
    """Named tensors in: x (N, 2) float64 and y (N,) int64; out x.sum(1) + y."""

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input["x"].sum(axis=1) + model_input["y"]


def build(root: Path) -> dict[str, str]:
    """Save one model of each kind under ``root``; returns kind -> directory."""
    import mlflow
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types import Schema, TensorSpec
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    frame = pd.DataFrame(X, columns=FEATURES)
    out: dict[str, str] = {}

    def path(kind: str) -> str:
        out[kind] = str(root / kind)
        return out[kind]

    column = LogisticRegression().fit(frame, y)
    mlflow.sklearn.save_model(
        column,
        path("sklearn-columns"),
        signature=infer_signature(frame, column.predict(frame)),
        pip_requirements=REQS,
    )
    tensor = LogisticRegression().fit(X, y)
    # what a new user does: log with a NumPy input example (a tensor signature)
    mlflow.sklearn.save_model(
        tensor, path("sklearn-tensor"), input_example=X[:2], pip_requirements=REQS
    )
    mlflow.sklearn.save_model(tensor, path("sklearn-no-signature"), pip_requirements=REQS)

    mixed = pd.DataFrame({"s": ["x", "y"], "n": [1, 2], "x": [0.5, 1.5], "flag": [True, False]})
    mlflow.pyfunc.save_model(
        path("pyfunc-frame"),
        python_model=EchoFrame(),
        pip_requirements=REQS,
        signature=infer_signature(mixed, EchoFrame().predict(None, mixed)),
    )
    mlflow.pyfunc.save_model(path("pyfunc-dict"), python_model=Summary(), pip_requirements=REQS)
    mlflow.pyfunc.save_model(path("pyfunc-list"), python_model=RowSums(), pip_requirements=REQS)
    named = ModelSignature(
        inputs=Schema(
            [
                TensorSpec(np.dtype("float64"), (-1, 2), "x"),
                TensorSpec(np.dtype("int64"), (-1,), "y"),
            ]
        )
    )
    mlflow.pyfunc.save_model(
        path("pyfunc-named-tensors"),
        python_model=TwoTensors(),
        signature=named,
        pip_requirements=REQS,
    )
    return out


def load(directory: str) -> Any:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(directory)
