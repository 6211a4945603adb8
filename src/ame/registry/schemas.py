"""``Outputs``: what every ame adapter's ``predict`` returns.

Models answer in many shapes (arrays, series, lists, frames, dicts). Serving,
validation and tests want one: prediction columns as a ``pandas.DataFrame``
plus metadata saying which model answered and how fast. pandas is imported
only when an ``Outputs`` is built, so importing this module stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class OutputMetadata:
    """Which model produced a prediction, and what it cost."""

    uri: str
    flavor: str
    name: Optional[str] = None
    version: Optional[str] = None
    run_id: Optional[str] = None
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "uri": self.uri,
            "flavor": self.flavor,
            "name": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "latency_ms": round(self.latency_ms, 3),
        }


@dataclass(frozen=True)
class Outputs:
    """Prediction columns (``predictions``) and the ``metadata`` of the model that made them."""

    predictions: pd.DataFrame
    metadata: OutputMetadata
    raw: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"predictions": [row, ...], "metadata": {...}}`` for JSON answers."""
        return {
            "predictions": self.predictions.to_dict(orient="records"),
            "metadata": self.metadata.to_dict(),
        }

    def column(self, name: str = "prediction") -> list[Any]:
        """One prediction column as a list (the only one when there is just one)."""
        frame = self.predictions
        if name not in frame.columns and len(frame.columns) == 1:
            name = str(frame.columns[0])
        return list(frame[name].tolist())


def to_frame(result: Any) -> pd.DataFrame:
    """Normalise a model's raw answer into prediction columns.

    A 1-d answer becomes one ``prediction`` column, a 2-d array ``prediction_0..n``,
    a series keeps its name, a frame is kept, a dict of lists becomes columns and a
    scalar a single row.
    """
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame(name=result.name if result.name is not None else "prediction")
    if isinstance(result, dict):
        try:
            return pd.DataFrame(result)
        except ValueError:
            return pd.DataFrame([result])
    if isinstance(result, (list, tuple)) and result and isinstance(result[0], dict):
        return pd.DataFrame(list(result))
    array = np.asarray(result, dtype=object if isinstance(result, (list, tuple)) else None)
    if array.ndim == 0:
        return pd.DataFrame({"prediction": [array.item()]})
    if array.ndim == 1:
        return pd.DataFrame({"prediction": list(array)})
    if array.ndim == 2:
        return pd.DataFrame(array, columns=[f"prediction_{i}" for i in range(array.shape[1])])
    return pd.DataFrame({"prediction": [row.tolist() for row in array]})


def to_model_input(inputs: Any) -> Any:
    """Inputs as models expect them: records and column dicts become a DataFrame."""
    import pandas as pd

    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
        return pd.DataFrame(inputs)
    if isinstance(inputs, dict) and inputs and all(isinstance(v, list) for v in inputs.values()):
        return pd.DataFrame(inputs)
    return inputs
