"""Turning request bodies into model input, and predictions back into bytes.

Two paths, one answer:

- the *fast path* handles the common, well-formed request for a model whose
  signature is a list of plain typed columns: it parses JSON with orjson, checks
  each value's type against the signature in pure Python, and keeps the rows as
  column lists so that many requests can be merged into one DataFrame and one
  ``predict`` call;
- anything else (CSV, ``params``, ``instances``/``inputs``, missing or extra
  columns, nulls, a value of the wrong type, a failed prediction...) goes
  through MLflow's own ``scoring_server.invocations``, so status codes, messages
  and output are by construction those of ``mlflow models serve``.

The fast path only *accepts* requests it can answer exactly as MLflow would and
hands every doubt to the slow path; it never produces an error of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from io import StringIO
from typing import Any, Optional

import orjson

log = logging.getLogger(__name__)

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"

# (status, body, content type): what the HTTP layer sends back.
Reply = tuple[int, bytes, bytes]

# Python types a JSON value may have for each MLflow column type, and the
# NumPy dtype the column is built with (what MLflow's own casting produces).
_ACCEPT: dict[str, tuple[frozenset[type], str]] = {
    "double": (frozenset({float, int}), "float64"),
    "float": (frozenset({float, int}), "float32"),
    "long": (frozenset({int}), "int64"),
    "integer": (frozenset({int}), "int32"),
    "boolean": (frozenset({bool}), "bool"),
    "string": (frozenset({str}), "object"),
}

V2_OF_TYPE = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


@dataclass(frozen=True)
class ColumnPlan:
    """The model's input signature as plain typed columns, when it is that simple."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    accepts: tuple[frozenset[type], ...]
    dtypes: tuple[str, ...]

    @classmethod
    def from_metadata(cls, metadata: Any) -> Optional[ColumnPlan]:
        """A plan for ``metadata``'s signature, or None when only MLflow's path is safe."""
        try:
            schema = metadata.get_input_schema()
            from_hint = getattr(metadata, "_is_signature_from_type_hint", lambda: False)()
        except Exception:  # an object without MLflow metadata: serve it the slow way
            return None
        if schema is None or from_hint or schema.is_tensor_spec() or not schema.has_input_names():
            return None
        names, types = [], []
        for spec in schema.inputs:
            kind = getattr(getattr(spec, "type", None), "name", None)
            if kind not in _ACCEPT or not getattr(spec, "required", True) or not spec.name:
                return None
            names.append(spec.name)
            types.append(kind)
        if len(set(names)) != len(names):
            return None
        return cls(
            names=tuple(names),
            types=tuple(types),
            accepts=tuple(_ACCEPT[t][0] for t in types),
            dtypes=tuple(_ACCEPT[t][1] for t in types),
        )

    def check(self, columns: list[list[Any]]) -> bool:
        """True when every value has a type MLflow accepts for its column."""
        return all(
            set(map(type, col)) <= ok for col, ok in zip(columns, self.accepts, strict=False)
        )

    def from_split(self, obj: Any) -> Optional[list[list[Any]]]:
        """Columns of a ``dataframe_split`` payload, or None to use MLflow's path."""
        if type(obj) is not dict or "data" not in obj or "columns" not in obj or len(obj) != 2:
            return None
        columns, data = obj["columns"], obj["data"]
        width = len(self.names)
        if type(columns) is not list or type(data) is not list or not data or len(columns) != width:
            return None
        if not all(type(c) is str for c in columns) or set(columns) != set(self.names):
            return None
        order = [columns.index(n) for n in self.names]
        cols: list[list[Any]] = [[] for _ in order]
        for row in data:
            if type(row) is not list or len(row) != width:
                return None
            for out, i in zip(cols, order, strict=False):
                out.append(row[i])
        return cols if self.check(cols) else None

    def from_records(self, obj: Any) -> Optional[list[list[Any]]]:
        """Columns of a ``dataframe_records`` payload, or None to use MLflow's path."""
        if type(obj) is not list or not obj:
            return None
        width = len(self.names)
        cols: list[list[Any]] = [[] for _ in self.names]
        try:
            for rec in obj:
                if type(rec) is not dict or len(rec) != width:
                    return None
                for out, name in zip(cols, self.names, strict=False):
                    out.append(rec[name])
        except KeyError:
            return None
        return cols if self.check(cols) else None

    def frame(self, parts: list[list[list[Any]]]) -> Any:
        """One DataFrame from the columns of one or more requests, typed as MLflow types them."""
        import numpy as np
        import pandas as pd

        merged = [
            parts[0][j] if len(parts) == 1 else [v for p in parts for v in p[j]]
            for j in range(len(self.names))
        ]
        if len(set(self.dtypes)) == 1 and self.dtypes[0] != "object":
            # one 2-D block: what pandas would consolidate the columns into anyway
            block = np.asarray(merged, dtype=self.dtypes[0]).T
            return pd.DataFrame(block, columns=list(self.names), copy=False)
        data = {
            name: np.asarray(values, dtype=dtype)
            for name, values, dtype in zip(self.names, merged, self.dtypes, strict=True)
        }
        return pd.DataFrame(data, copy=False)


def direct_predict(predictor: Any, plan: Optional[ColumnPlan]) -> Optional[Any]:
    """The model's own predict function, when MLflow's input checks would be a no-op.

    A frame built by ``plan`` already has exactly the signature's columns, order
    and dtypes, so ``PyFuncModel.predict``'s schema enforcement returns it
    unchanged; skipping it halves the cost of a small batch. Only for models
    without a params schema (MLflow would fill in default params) and without
    type-hint signatures (they convert inputs).
    """
    if plan is None or type(predictor).__name__ != "PyFuncModel":
        return None
    fn = getattr(predictor, "_predict_fn", None)
    try:
        meta = predictor.metadata
        if fn is None or meta.get_params_schema() is not None:
            return None
        if meta._is_signature_from_type_hint() or meta._is_type_hint_from_example():
            return None
    except Exception:
        return None
    import inspect

    takes_params = "params" in inspect.signature(fn).parameters
    return (lambda data: fn(data, params=None)) if takes_params else fn


def parse_fast(
    plan: Optional[ColumnPlan], body: bytes, content_type: Optional[str]
) -> Optional[list[list[Any]]]:
    """Columns for a JSON request the fast path can answer exactly, else None."""
    if plan is None or content_type != "application/json":
        return None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or len(doc) != 1:
        return None
    if "dataframe_split" in doc:
        return plan.from_split(doc["dataframe_split"])
    if "dataframe_records" in doc:
        return plan.from_records(doc["dataframe_records"])
    return None


def row_count(columns: list[list[Any]]) -> int:
    return len(columns[0]) if columns else 0


def split_predictions(preds: Any, counts: list[int]) -> Optional[list[Any]]:
    """Cut one batch's predictions back into per-request pieces, or None if not row-aligned."""
    import numpy as np
    import pandas as pd

    if len(counts) == 1:
        return [preds]
    total = sum(counts)
    if isinstance(preds, (pd.DataFrame, pd.Series)):
        if len(preds) != total:
            return None
        pieces, start = [], 0
        for n in counts:
            pieces.append(preds.iloc[start : start + n])
            start += n
        return pieces
    if isinstance(preds, (np.ndarray, list)):
        if getattr(preds, "ndim", 1) == 0 or len(preds) != total:
            return None
        pieces, start = [], 0
        for n in counts:
            pieces.append(preds[start : start + n])
            start += n
        return pieces
    return None


def predictions_json(preds: Any) -> bytes:
    """``{"predictions": ...}`` byte for byte as MLflow writes it.

    A plain numeric array is written by the stdlib's C encoder directly (what
    MLflow's ``json.dump`` with its NumpyEncoder produces for it, without the
    detour through the encoder's fallback); orjson would be faster but writes
    ``[1,2]`` and ``0.00001`` where MLflow writes ``[1, 2]`` and ``1e-05``.
    """
    import json

    import numpy as np

    finite = isinstance(preds, np.ndarray) and (
        preds.dtype.kind in "biu" or (preds.dtype.kind == "f" and bool(np.isfinite(preds).all()))
    )
    if finite:
        return ('{"predictions": ' + json.dumps(preds.tolist()) + "}").encode()
    from mlflow.pyfunc.scoring_server import predictions_to_json

    out = StringIO()
    predictions_to_json(preds, out)
    return out.getvalue().encode()


def mlflow_invocation(
    body: bytes, content_type: Optional[str], predictor: Any, input_schema: Any
) -> Reply:
    """Answer one ``/invocations`` request with MLflow's own code, errors included."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    try:
        result = invocations(body, content_type, predictor, input_schema)
    except MlflowException as exc:
        return exc.get_http_status_code(), exc.serialize_as_json().encode(), JSON
    except Exception:
        # mlflow models serve lets these escape to its framework: a bare 500.
        log.exception("unexpected error while scoring")
        return 500, b"Internal Server Error", TEXT
    mimetype = result.mimetype.encode()
    if mimetype == b"text/plain":
        mimetype = TEXT
    return result.status, result.response.encode(), mimetype


def error_json(status: int, message: str, code: str = "BAD_REQUEST") -> Reply:
    """An error in MLflow's JSON shape, for cases MLflow's server has no answer for."""
    return status, orjson.dumps({"error_code": code, "message": message}), JSON
