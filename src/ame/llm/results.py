"""One answer per prompt: the text and what a caller needs to trust or bill it.

A served pyfunc must return something MLflow can serialise, so the adapter
returns a DataFrame with the columns below, one row per input item in input
order. Python callers get the same rows as typed ``ChatResult`` objects with
``results_from_frame``. A failed item is a row too (``text`` null, ``error_type``
and ``error`` set), so one bad item never hides the answers of the others.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ChatResult:
    """The outcome of one prompt: an answer with its metadata, or a structured error."""

    text: Optional[str]
    model: Optional[str]
    finish_reason: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None
    latency_ms: Optional[float] = None
    error_type: Optional[str] = None
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when the endpoint answered this item."""
        return self.error_type is None


OUTPUT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ChatResult))
#: MLflow column types of ``OUTPUT_COLUMNS``, for the model signature.
OUTPUT_TYPES: dict[str, str] = {
    "text": "string",
    "model": "string",
    "finish_reason": "string",
    "prompt_tokens": "long",
    "completion_tokens": "long",
    "total_tokens": "long",
    "latency_ms": "double",
    "error_type": "string",
    "error": "string",
}


def results_to_frame(results: list[ChatResult]) -> pd.DataFrame:
    """Rows as a DataFrame whose cells are plain Python values (None, not NaN).

    Object columns keep integers integral and missing values ``None``, which
    serialise to JSON ``null``; float columns would turn them into ``NaN``.
    """
    import pandas as pd

    rows = [asdict(r) for r in results]
    return pd.DataFrame(
        {col: pd.Series([row[col] for row in rows], dtype=object) for col in OUTPUT_COLUMNS}
    )


def results_from_frame(frame: Any) -> list[ChatResult]:
    """Typed rows back from a predict output (a DataFrame or a list of records)."""
    records = frame.to_dict(orient="records") if hasattr(frame, "to_dict") else list(frame)
    return [
        ChatResult(**{col: _clean(record.get(col)) for col in OUTPUT_COLUMNS}) for record in records
    ]


def _clean(value: Any) -> Any:
    # NaN (a float that is not equal to itself) is how pandas may spell "missing".
    if isinstance(value, float) and value != value:
        return None
    return value
