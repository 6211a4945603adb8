"""Turning logged request and response bodies into rows of named columns.

The server hands the payload log the bytes it read and the bytes it sent, and
nothing else: decoding them here, on the writer's thread, keeps the request
path to one queue append. Every protocol ends up in the same layout, so a drift
check does not care how traffic arrived:

* ``input.<feature>``: one value per input row (a tensor's columns are ``0``, ``1``...);
* ``output.<name>``: the predictions; a bare list of values is ``output.prediction``.

A body that cannot be read as rows (a bad request, an unusual shape) gives no
rows: it is not an error of the log, just nothing to compare.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Optional

import orjson

Columns = dict[str, list[Any]]

PREDICTION = "prediction"


def _records(items: list[Any]) -> Optional[Columns]:
    """A list of dicts (records), of lists (a 2-D tensor) or of scalars (one column)."""
    if not items:
        return None
    first = items[0]
    if isinstance(first, dict):
        names: dict[str, None] = {}
        for row in items:
            if not isinstance(row, dict):
                return None
            names.update(dict.fromkeys(row))
        return {str(k): [row.get(k) for row in items] for k in names}
    if isinstance(first, list):
        width = len(first)
        if any(not isinstance(row, list) or len(row) != width for row in items):
            return None
        return {str(j): [row[j] for row in items] for j in range(width)}
    return {"0": list(items)}


def _columnar(data: dict[str, Any]) -> Optional[Columns]:
    """``{"a": [..], "b": [..]}``: one list per column, all of one length."""
    out: Columns = {}
    length: Optional[int] = None
    for key, values in data.items():
        if not isinstance(values, list):
            values = [values]
        if length is not None and len(values) != length:
            return None
        length = len(values)
        out[str(key)] = values
    return out or None


def mlflow_inputs(body: bytes, content_type: Optional[str]) -> Optional[Columns]:
    """The rows of an MLflow scoring request (every format ``/invocations`` accepts)."""
    if content_type and content_type.split(";", 1)[0].strip().lower() == "text/csv":
        reader = csv.reader(io.StringIO(body.decode("utf-8", "replace")))
        rows = list(reader)
        if len(rows) < 2:
            return None
        header, data = rows[0], rows[1:]
        return {name: [_number(row[j]) if j < len(row) else None for row in data]
                for j, name in enumerate(header)}  # fmt: skip
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if "dataframe_split" in doc:
        split = doc["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            return None
        columns = split.get("columns")
        table = _records(split["data"])
        if table is None or not isinstance(columns, list) or len(columns) != len(table):
            return table
        return {str(name): values for name, values in zip(columns, table.values(), strict=False)}
    if "dataframe_records" in doc:
        records = doc["dataframe_records"]
        return _records(records) if isinstance(records, list) else None
    for key in ("inputs", "instances"):
        if key in doc:
            value = doc[key]
            if isinstance(value, list):
                return _records(value)
            if isinstance(value, dict):
                return _columnar(value)
            return None
    return None


def mlflow_outputs(body: bytes) -> Optional[Columns]:
    """The predictions of an MLflow scoring answer, ``{"predictions": ...}``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    preds = doc.get("predictions") if isinstance(doc, dict) else None
    if isinstance(preds, dict):
        return _columnar(preds)
    if not isinstance(preds, list):
        return None
    table = _records(preds)
    if table is not None and list(table) == ["0"]:
        return {PREDICTION: table["0"]}
    if table is not None and preds and isinstance(preds[0], list):
        return {f"{PREDICTION}.{k}": v for k, v in table.items()}
    return table


def _tensors(items: Any) -> Optional[Columns]:
    """v2 tensors ``[{name, shape, data}]`` as columns: ``[N]``/``[N,1]`` one, ``[N,k]`` k."""
    if not isinstance(items, list):
        return None
    out: Columns = {}
    for tensor in items:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            return None
        name, shape = tensor["name"], tensor.get("shape")
        data: Any = tensor.get("data")
        if hasattr(data, "tolist"):  # gRPC: the servicer decodes raw contents to ndarrays
            data = data.tolist()
        if not isinstance(data, list) or not isinstance(shape, list) or not shape:
            return None
        flat = _flatten(data)
        rows = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else len(flat)
        width = len(flat) // rows if rows else 0
        if width <= 1:
            out[name] = flat[:rows]
        else:
            for j in range(width):
                out[f"{name}.{j}"] = flat[j::width]
    return out or None


def _flatten(data: list[Any]) -> list[Any]:
    if not data or not isinstance(data[0], list):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def v2_inputs(body: bytes) -> Optional[Columns]:
    """The rows of a v2 ``infer`` request."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return _tensors(doc.get("inputs")) if isinstance(doc, dict) else None


def v2_outputs(body: bytes, default_name: str) -> Optional[Columns]:
    """The outputs of a v2 answer; the one unnamed-prediction tensor is ``prediction``.

    ``default_name`` is the name the server gives a model's bare predictions
    (``predict``, or the signature's output), so the same model logs the same
    column whichever protocol it was asked through.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    table = _tensors(doc.get("outputs")) if isinstance(doc, dict) else None
    if table is not None and list(table) == [default_name]:
        return {PREDICTION: table[default_name]}
    return table


def grpc_inputs(doc: Any) -> Optional[Columns]:
    """The rows of a v2 gRPC request, already decoded by the servicer into the JSON form."""
    return _tensors(doc.get("inputs")) if isinstance(doc, dict) else None


# v2 datatypes -> numpy dtypes of their raw (little-endian) contents.
_RAW_TYPES = {
    "BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}  # fmt: skip


def _raw_values(datatype: str, raw: bytes) -> Optional[list[Any]]:
    """A tensor's raw contents as values (BYTES: 4-byte length-prefixed strings)."""
    if datatype == "BYTES":
        values: list[Any] = []
        at = 0
        while at + 4 <= len(raw):
            size = int.from_bytes(raw[at : at + 4], "little")
            values.append(raw[at + 4 : at + 4 + size].decode("utf-8", "replace"))
            at += 4 + size
        return values
    dtype = _RAW_TYPES.get(datatype)
    if dtype is None:
        return None
    import numpy as np

    return list(np.frombuffer(raw, dtype=dtype).tolist())


def grpc_outputs(response: Any, default_name: str) -> Optional[Columns]:
    """The outputs of a ``ModelInferResponse`` (raw contents), named as ``v2_outputs`` does."""
    raw = list(getattr(response, "raw_output_contents", []))
    tensors = []
    for i, tensor in enumerate(getattr(response, "outputs", [])):
        if i >= len(raw):
            return None
        data = _raw_values(tensor.datatype, raw[i])
        if data is None:
            return None
        tensors.append({"name": tensor.name, "shape": [int(d) for d in tensor.shape], "data": data})
    table = _tensors(tensors)
    if table is not None and list(table) == [default_name]:
        return {PREDICTION: table[default_name]}
    return table


def _number(text: str) -> Any:
    """A CSV cell as a number when it reads as one (CSV carries no types)."""
    try:
        return float(text)
    except ValueError:
        return text if text != "" else None
