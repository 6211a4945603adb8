"""The baseline of bench/ray_serve.py: an MLflow model on Ray Serve written as Ray's docs show.

Loaded with ``mlflow.pyfunc.load_model`` in the constructor, one ``predict``
per request on a DataFrame built from the request's JSON: no batching, no fast
path, nothing of ame. Serve imports ``app`` (``ray_plain_app:app``) with the
model URI in the ``BENCH_MODEL_URI`` environment variable of the application.
"""

from __future__ import annotations

import os
from typing import Any

from ray import serve


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class PlainMlflowModel:
    """Ray's documented pattern for serving an MLflow model."""

    def __init__(self) -> None:
        import mlflow.pyfunc

        self.model = mlflow.pyfunc.load_model(os.environ["BENCH_MODEL_URI"])

    async def __call__(self, request: Any) -> Any:
        import pandas as pd
        from starlette.responses import JSONResponse

        body = await request.json()
        frame = pd.DataFrame(**body["dataframe_split"])
        # A Response (with its Content-Length), as the docs' FastAPI examples send.
        return JSONResponse({"predictions": self.model.predict(frame).tolist()})


app = PlainMlflowModel.bind()  # type: ignore[attr-defined]  # serve.deployment adds it
