"""Train the model and hand it to ame.

ame runs this task with MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and AME_MODEL_NAME
set. The model is logged as a pyfunc that carries ``common/`` and ``serving/``
as code, so what is served is exactly this pipeline; ame registers the version
and tags it with the code version.
"""

from __future__ import annotations

import os

import mlflow
from mlflow.models import infer_signature

import common
from common.pipeline import build_pipeline, make_dataset
from serving.model import ServedModel


def main() -> None:
    features, labels = make_dataset(n=600, seed=0)
    pipeline = build_pipeline().fit(features, labels)
    accuracy = float(pipeline.score(features, labels))
    mlflow.log_param("code_version", common.__version__)
    mlflow.log_metric("train_accuracy", accuracy)

    served = ServedModel(pipeline)
    example = features.head(3)
    mlflow.pyfunc.log_model(
        name="model",
        python_model=served,
        code_paths=["common", "serving"],
        signature=infer_signature(example, served.predict(None, example)),
        input_example=example,
        registered_model_name=os.environ.get("AME_MODEL_NAME"),
    )
    print(f"trained {common.__version__}: train accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
