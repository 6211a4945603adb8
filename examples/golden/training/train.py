"""Train the model and hand it to ame.

ame runs this task with MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and AME_MODEL_NAME
set. The model is logged as a pyfunc that carries ``common/`` and ``serving/``
as code, so what is served is exactly this pipeline; ame registers the version
and tags it with the code version.
"""

from __future__ import annotations

import os
import tempfile

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
    log_reference(features, served.predict(None, features))
    print(f"trained {common.__version__}: train accuracy {accuracy:.3f}")


def log_reference(features, predictions, max_rows: int = 10_000) -> None:
    """Keep a sample of the training inputs (and their predictions) for `ame monitor`.

    It is the run artifact ame/reference.parquet that ame.monitoring.log_reference
    writes; written here with pandas because this task's environment has no ame.
    """
    sample = features.assign(**{f"output.{c}": predictions[c].to_numpy() for c in predictions})
    if len(sample) > max_rows:
        sample = sample.sample(max_rows, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reference.parquet")
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(path, artifact_path="ame")


if __name__ == "__main__":
    main()
