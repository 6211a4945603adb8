"""Turning request bodies into model input, and predictions back into bytes.

Two paths, one answer:

- the *fast path* handles the common, well-formed request: it parses JSON with
  orjson (nesting bounded) and turns the body into a ``Parsed`` part that a
  *plan* knows how to merge with other requests' parts into one model input
  and one ``predict`` call. ``ColumnPlan`` (here) is for signatures of plain
  typed columns; ``ame.serving.plans`` has the tensor and no-signature plans;
- anything else (CSV, ``params``, missing or extra columns, nulls, a value of
  the wrong type, a failed prediction...) goes through MLflow's own
  ``scoring_server.invocations``, so status codes, messages and output are by
  construction those of ``mlflow models serve``.

The fast path only *accepts* requests it can answer exactly as MLflow would and
hands every doubt to the slow path; it never produces an error of its own. Two
errors are ame's, because ``mlflow models serve`` answers them with a bare 500
and a traceback: a body nested too deeply for a recursive parser (400) and a
POST without a Content-Type (415).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from io import StringIO
from typing import Any, Optional, Protocol

import orjson

from ame.boundedio import InputLimitError, loads_json

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


# Content types the fast path reads (MLflow reads the same bodies the same way).
FAST_TYPES = frozenset(
    {"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}
)


@dataclass(frozen=True)
class Parsed:
    """One request's model input in a form a plan can merge with others.

    Requests merge only when their plan and ``key`` are the same: the key holds
    whatever would make a merged input differ from the inputs taken one by one
    (column order, per-column value types, the trailing shape of a tensor).
    """

    key: Hashable
    rows: int
    part: Any


class Plan(Protocol):
    """How one signature's requests become model input: parse one, merge many."""

    def parse(self, doc: Any) -> Optional[Parsed]:
        """The part of a decoded ``/invocations`` body, or None for MLflow's path."""

    def build(self, parts: list[Any]) -> Any:
        """One model input from the parts of requests that share a key."""


def _int_index(values: list[Any]) -> bool:
    return all(type(v) is int for v in values)


def index_of(obj: dict[str, Any], rows: int) -> tuple[bool, Optional[list[Any]]]:
    """``(usable, index)`` of a ``dataframe_split``: absent, or ``rows`` ints or strings."""
    if "index" not in obj:
        return True, None
    index = obj["index"]
    if type(index) is not list or len(index) != rows:
        return False, None
    if _int_index(index) or all(type(v) is str for v in index):
        return True, index
    return False, None


def merged_index(parts: list[tuple[Any, Optional[list[Any]]]], rows: list[int]) -> Any:
    """The index of merged requests: each one's own, or 0..n-1 where it gave none."""
    if all(p[1] is None for p in parts):
        return None
    out: list[Any] = []
    for (_, index), n in zip(parts, rows, strict=True):
        out.extend(range(n) if index is None else index)
    return out


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

    def parse(self, doc: Any) -> Optional[Parsed]:
        """A ``dataframe_split`` or ``dataframe_records`` body as columns (and index)."""
        if type(doc) is not dict or len(doc) != 1:
            return None
        if "dataframe_split" in doc:
            obj = doc["dataframe_split"]
            cols = self.from_split(obj)
            if cols is None:
                return None
            ok, index = index_of(obj, len(cols[0]))
            if not ok:
                return None
            kind = None if index is None else ("int" if _int_index(index) else "str")
            return Parsed(key=kind, rows=len(cols[0]), part=(cols, index))
        if "dataframe_records" in doc:
            cols = self.from_records(doc["dataframe_records"])
            return None if cols is None else Parsed(key=None, rows=len(cols[0]), part=(cols, None))
        return None

    def build(self, parts: list[Any]) -> Any:
        frame = self.frame([p[0] for p in parts])
        index = merged_index(parts, [len(p[0][0]) for p in parts])
        if index is not None:
            import pandas as pd

            frame.index = pd.Index(index)
        return frame

    def from_split(self, obj: Any) -> Optional[list[list[Any]]]:
        """Columns of a ``dataframe_split`` payload, or None to use MLflow's path."""
        if type(obj) is not dict or "data" not in obj or "columns" not in obj:
            return None
        if len(obj) != (3 if "index" in obj else 2):
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


def direct_predict(predictor: Any, plan: Optional[Plan]) -> Optional[Any]:
    """The model's own predict function, when MLflow's input checks would be a no-op.

    An input built by ``plan`` already has exactly the signature's columns, order
    and dtypes (or tensor dtype and shape; or there is no signature to check),
    so ``PyFuncModel.predict``'s schema enforcement returns it unchanged;
    skipping it halves the cost of a small batch. Only for models
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


def decode(body: bytes) -> tuple[Optional[Any], Optional[str]]:
    """``(document, None)``, ``(None, None)`` for MLflow to judge, or ``(None, reason)``.

    A document nested deeper than the bound is refused here, with a reason:
    MLflow's stdlib parser would hit the recursion limit and answer 500.
    Other invalid JSON is left to MLflow, whose message the client expects.
    """
    try:
        return loads_json(body), None
    except InputLimitError as exc:
        if str(exc).startswith("JSON nested deeper"):
            return None, f"request body is not accepted: {exc}"
        return None, None


def parse_fast(plan: Optional[Plan], body: bytes, content_type: Optional[str]) -> Optional[Parsed]:
    """The part of a JSON request the fast path can answer exactly, else None."""
    if plan is None or content_type not in FAST_TYPES:
        return None
    doc, _ = decode(body)
    return None if doc is None else plan.parse(doc)


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
    from mlflow.pyfunc.scoring_server import CONTENT_TYPES, invocations

    if content_type is None:
        # MLflow's server fails on ``None.split`` here (500 and a traceback).
        message = (
            "This predictor only supports the following content types:"
            f" Types: {CONTENT_TYPES}. Got no Content-Type header."
        )
        return 415, message.encode(), TEXT
    try:
        result = invocations(body, content_type, predictor, input_schema)
    except MlflowException as exc:
        return exc.get_http_status_code(), exc.serialize_as_json().encode(), JSON
    except RecursionError:
        # nested within orjson's bound but too deep for MLflow's recursive code
        return error_json(400, "request body is not accepted: JSON nested too deeply")
    except Exception as exc:
        # MLflow turns every error of predict itself into an MlflowException
        # (BAD_REQUEST); what escapes comes from reading the body into the
        # model's input (a dict where a column name goes, say), so it is the
        # request's fault. mlflow models serve answers a bare 500 with a
        # traceback; ame answers 400 with the reason, in one log line.
        reason = f"{type(exc).__name__}: {exc}"
        log.info("bad request body: %s", reason)
        return error_json(400, f"request body could not be read as model input: {reason}")
    mimetype = result.mimetype.encode()
    if mimetype == b"text/plain":
        mimetype = TEXT
    return result.status, result.response.encode(), mimetype


def error_json(status: int, message: str, code: str = "BAD_REQUEST") -> Reply:
    """An error in MLflow's JSON shape, for cases MLflow's server has no answer for."""
    return status, orjson.dumps({"error_code": code, "message": message}), JSON
