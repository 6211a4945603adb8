"""The pyfunc model that is registered and served: preprocess -> pipeline -> postprocess."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd

from serving.processing import postprocess, preprocess


class ServedModel(mlflow.pyfunc.PythonModel):
    """Wraps the fitted shared pipeline with the serving-side processing."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return postprocess(self.pipeline.predict(preprocess(model_input)))
