"""Validate the version ame just trained on fresh data; exit 1 below MIN_ACCURACY.

ame gives the version under test as AME_MODEL_URI (models:/name/version).
"""

from __future__ import annotations

import os
import sys

import mlflow

from common.pipeline import CLASSES, make_dataset


def main() -> int:
    uri = os.environ["AME_MODEL_URI"]
    threshold = float(os.environ.get("MIN_ACCURACY", "0.8"))
    model = mlflow.pyfunc.load_model(uri)
    features, labels = make_dataset(n=300, seed=1)
    predicted = model.predict(features)["species"].tolist()
    accuracy = sum(p == CLASSES[int(t)] for p, t in zip(predicted, labels, strict=True)) / len(
        labels
    )
    mlflow.log_metric("validation_accuracy", accuracy)
    print(f"{uri}: validation accuracy {accuracy:.3f} (threshold {threshold})")
    return 0 if accuracy >= threshold else 1


if __name__ == "__main__":
    sys.exit(main())
