"""The pipeline both training and serving run: features in, class out.

Keeping it here, and only here, is what keeps the served model in step with the
trained one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]


def make_dataset(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic, iris-like data made on the spot, so nothing is downloaded."""
    rng = np.random.default_rng(seed)
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    labels = rng.integers(0, len(CLASSES), n)
    values = centers[labels] + rng.normal(scale=0.3, size=(n, len(FEATURES)))
    return pd.DataFrame(values, columns=FEATURES), labels


def build_pipeline() -> Pipeline:
    """The model: scaling then a logistic regression."""
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
