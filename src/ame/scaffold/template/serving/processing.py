"""Pre- and post-processing of the served model.

Requests arrive as a DataFrame; they are put in the column order the pipeline
was trained with, and class indices go back out as class names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.pipeline import CLASSES, FEATURES


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    """Select and order the features; a missing one is a clear error."""
    missing = [name for name in FEATURES if name not in frame.columns]
    if missing:
        raise ValueError(f"missing features: {', '.join(missing)}")
    return frame[FEATURES].astype("float64")


def postprocess(predictions: np.ndarray) -> pd.DataFrame:
    """Class indices -> class names."""
    return pd.DataFrame({"species": [CLASSES[int(i)] for i in predictions]})
