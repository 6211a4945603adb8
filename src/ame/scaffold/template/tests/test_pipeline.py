"""Fast tests of the shared pipeline and the serving processing."""

from __future__ import annotations

import pandas as pd
import pytest

from common.pipeline import FEATURES, build_pipeline, make_dataset
from serving.model import ServedModel


def test_pipeline_learns_the_synthetic_classes() -> None:
    features, labels = make_dataset(n=300, seed=0)
    assert build_pipeline().fit(features, labels).score(features, labels) > 0.8


def test_served_model_returns_class_names_and_rejects_missing_features() -> None:
    features, labels = make_dataset(n=100, seed=0)
    served = ServedModel(build_pipeline().fit(features, labels))
    out = served.predict(None, features.head(2))
    assert list(out.columns) == ["species"]
    with pytest.raises(ValueError, match="missing features"):
        served.predict(None, pd.DataFrame({FEATURES[0]: [1.0]}))
