"""The open inference protocol (KServe v2): metadata, typed tensors in and out.

For a model with plain typed columns, inputs are named after the columns, each
a tensor of shape ``[N]`` or ``[N, 1]`` (data flat in row-major order, or
nested); for a tensor signature, after its tensors (``input`` when unnamed),
each of the signature's shape with N rows. Either way a request becomes the
same ``Parsed`` part the MLflow fast path produces for ``/invocations``, so
both protocols (and gRPC, ``ame.serving.grpc_v2``) share one batcher. An input
under a name the signature does not have is refused. Errors are
``{"error": msg}``, as the protocol specifies.
"""

from __future__ import annotations

from typing import Any, Optional

import orjson

from ame.boundedio import InputLimitError, loads_json
from ame.serving.codec import JSON, V2_OF_TYPE, ColumnPlan, Parsed, Plan, Reply
from ame.serving.plans import TensorPlan, _shape_ok

_FLOAT = {"FP16", "FP32", "FP64"}
_INT = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
DATATYPES = _FLOAT | _INT | {"BOOL", "BYTES"}
# Which request datatypes a column of each MLflow type takes.
_COMPATIBLE = {
    "double": _FLOAT | _INT,
    "float": _FLOAT | _INT,
    "long": _INT,
    "integer": _INT,
    "boolean": {"BOOL"},
    "string": {"BYTES"},
}


class V2Error(Exception):
    """A request the protocol rejects; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def error(status: int, message: str) -> Reply:
    return status, orjson.dumps({"error": message}), JSON


def _numpy_v2(dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind == "i":
        return f"INT{size * 8}"
    if kind == "u":
        return f"UINT{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def _tensor_meta(schema: Any, unnamed: str) -> list[dict[str, Any]]:
    if schema is None:
        return []
    out = []
    for i, spec in enumerate(schema.inputs):
        if schema.is_tensor_spec():
            datatype = _numpy_v2(spec.type)
            shape = [int(d) for d in spec.shape]
        else:
            datatype = V2_OF_TYPE.get(getattr(spec.type, "name", ""), "BYTES")
            shape = [-1]
        out.append(
            {
                "name": spec.name or (unnamed if len(schema.inputs) == 1 else f"{unnamed}-{i}"),
                "datatype": datatype,
                "shape": shape,
            }
        )
    return out


def model_metadata(name: str, version: str, metadata: Any) -> dict[str, Any]:
    """The v2 model metadata object of the model being served."""
    try:
        inputs = _tensor_meta(metadata.get_input_schema(), "input")
        outputs = _tensor_meta(metadata.get_output_schema(), "predict")
    except Exception:
        inputs, outputs = [], []
    return {
        "name": name,
        "versions": [version],
        "platform": "mlflow",
        "inputs": inputs,
        "outputs": outputs,
    }


def _flatten(data: Any) -> list[Any]:
    """Tensor data in row-major order, whether sent flat or nested (iterative: no recursion)."""
    if type(data) is not list:
        if type(data).__name__ == "ndarray":  # from gRPC: already flat and typed
            return list(data.tolist())
        raise V2Error("tensor 'data' must be a JSON array")
    if not any(type(v) is list for v in data):
        return data
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if type(v) is list:
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def parse_request(body: bytes) -> dict[str, Any]:
    """The request object, or a V2Error saying why it is not one."""
    try:
        doc = loads_json(body)
    except InputLimitError as exc:
        reason = str(exc)
        if reason.startswith("invalid JSON: "):
            raise V2Error(f"request body is not valid JSON: {reason[14:]}") from None
        raise V2Error(f"request body is not accepted: {reason}") from None
    return check_request(doc)


def check_request(doc: Any) -> dict[str, Any]:
    """``doc`` if it is a well-formed inference request object, else a V2Error saying why."""
    if type(doc) is not dict or type(doc.get("inputs")) is not list or not doc["inputs"]:
        raise V2Error("an inference request must be a JSON object with a non-empty 'inputs' array")
    for tensor in doc["inputs"]:
        if type(tensor) is not dict or not {"name", "shape", "datatype", "data"} <= tensor.keys():
            raise V2Error("each input must have 'name', 'shape', 'datatype' and 'data'")
        if type(tensor["name"]) is not str:
            raise V2Error("each input's 'name' must be a string")
        if type(tensor["datatype"]) is not str or tensor["datatype"] not in DATATYPES:
            raise V2Error(f"input '{tensor['name']}' has unknown datatype '{tensor['datatype']}'")
        shape = tensor["shape"]
        if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
            raise V2Error(f"input '{tensor['name']}' has an invalid shape {shape!r}")
    return doc


def _size(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _by_name(doc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The request's tensors by name; a V2Error for missing, unknown or repeated names."""
    by_name = {t["name"]: t for t in doc["inputs"]}
    missing = [n for n in names if n not in by_name]
    extra = [n for n in by_name if n not in names]
    problems = []
    if missing:
        problems.append(f"missing inputs {missing}")
    if extra:
        problems.append(f"unexpected inputs {extra}")
    if len(by_name) != len(doc["inputs"]):
        problems.append("an input name is given more than once")
    if problems:
        raise V2Error(f"{'; '.join(problems)}; the model expects inputs {names}")
    return by_name


def prepare(plan: Optional[Plan], doc: dict[str, Any], schema: Any = None) -> Optional[Parsed]:
    """The request as the fast-path part of ``plan``; None for a model without one.

    Without a plan (optional columns, types the fast path leaves to MLflow) an
    input whose name the signature ``schema`` does not have is still refused.
    """
    if isinstance(plan, ColumnPlan):
        cols = columns_for(plan, doc)
        return Parsed(key=None, rows=len(cols[0]), part=(cols, None))
    if isinstance(plan, TensorPlan):
        return tensors_for(plan, doc)
    try:
        names = schema.input_names() if schema is not None and schema.has_input_names() else []
    except Exception:
        names = []
    extra = [t["name"] for t in doc["inputs"] if names and t["name"] not in names]
    if extra:
        raise V2Error(f"unexpected inputs {extra}; the model expects inputs {list(names)}")
    return None


_KIND_TYPES: dict[str, tuple[set[str], frozenset[type]]] = {
    "f": (_FLOAT | _INT, frozenset({float, int})),
    "i": (_INT, frozenset({int})),
    "u": (_INT, frozenset({int})),
    "b": ({"BOOL"}, frozenset({bool})),
}


def tensors_for(plan: TensorPlan, doc: dict[str, Any]) -> Parsed:
    """The request's tensors as the arrays a tensor signature takes, merged on axis 0."""
    import numpy as np

    specs = plan.v2_inputs()
    by_name = _by_name(doc, [name for name, _, _ in specs])
    out: dict[str, Any] = {}
    rows: Optional[int] = None
    for name, dtype, expected in specs:
        tensor = by_name[name]
        allowed, accepts = _KIND_TYPES[dtype.kind]
        datatype = tensor["datatype"]
        if datatype not in allowed:
            raise V2Error(
                f"input '{name}' has datatype {datatype} but the model expects {_numpy_v2(dtype)}"
            )
        shape = tensor["shape"]
        values = _flatten(tensor["data"])
        if len(values) != _size(shape):
            raise V2Error(f"input '{name}' has {len(values)} values but shape {shape}")
        if not set(map(type, values)) <= accepts:
            raise V2Error(f"input '{name}' has values that are not of datatype {datatype}")
        if not _shape_ok(tuple(shape), expected):
            raise V2Error(
                f"input '{name}' has shape {shape} but the model expects "
                f"{[int(d) for d in expected]} (-1: any size, at least one row)"
            )
        if rows is not None and shape[0] != rows:
            raise V2Error(f"input '{name}' has {shape[0]} rows, other inputs have {rows}")
        rows = shape[0]
        out[name] = np.asarray(values, dtype=dtype).reshape(shape)
    assert rows is not None
    if not plan.named:
        arr = out[specs[0][0]]
        return Parsed(key=arr.shape[1:], rows=rows, part=arr)
    return Parsed(key=tuple(a.shape[1:] for a in out.values()), rows=rows, part=out)


def columns_for(plan: ColumnPlan, doc: dict[str, Any]) -> list[list[Any]]:
    """The request's tensors as the plan's columns, checked against the signature."""
    by_name = _by_name(doc, list(plan.names))
    cols: list[list[Any]] = []
    rows: Optional[int] = None
    for name, kind, accepts in zip(plan.names, plan.types, plan.accepts, strict=False):
        tensor = by_name[name]
        if tensor["datatype"] not in _COMPATIBLE[kind]:
            raise V2Error(
                f"input '{name}' has datatype {tensor['datatype']} but the model expects "
                f"{V2_OF_TYPE[kind]}"
            )
        shape = tensor["shape"]
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise V2Error(f"input '{name}' must have shape [N] or [N, 1], got {shape}")
        values = _flatten(tensor["data"])
        if len(values) != _size(shape):
            raise V2Error(f"input '{name}' has {len(values)} values but shape {shape}")
        if not set(map(type, values)) <= accepts:
            raise V2Error(f"input '{name}' has values that are not of datatype {V2_OF_TYPE[kind]}")
        if rows is not None and shape[0] != rows:
            raise V2Error(f"input '{name}' has {shape[0]} rows, other inputs have {rows}")
        rows = shape[0]
        cols.append(values)
    if not rows:
        raise V2Error("the request has no rows")
    return cols


def generic_input(doc: dict[str, Any]) -> Any:
    """Input for a model without a plain column signature: a DataFrame or one array."""
    import numpy as np
    import pandas as pd

    tensors = doc["inputs"]
    if len(tensors) == 1 and len(tensors[0]["shape"]) > 1:
        tensor = tensors[0]
        values = _flatten(tensor["data"])
        if len(values) != _size(tensor["shape"]):
            raise V2Error(
                f"input '{tensor['name']}' has {len(values)} values but shape {tensor['shape']}"
            )
        return np.asarray(values).reshape(tensor["shape"])
    data = {}
    for tensor in tensors:
        values = _flatten(tensor["data"])
        if len(values) != _size(tensor["shape"]):
            raise V2Error(
                f"input '{tensor['name']}' has {len(values)} values but shape {tensor['shape']}"
            )
        data[tensor["name"]] = values
    try:
        return pd.DataFrame(data)
    except ValueError as exc:
        raise V2Error(f"inputs do not form a table: {exc}") from exc


def _output(name: str, arr: Any) -> dict[str, Any]:
    if arr.dtype.kind in "OUS":
        datatype = "BYTES"
        data = [str(v) for v in arr.reshape(-1).tolist()]
    else:
        datatype = _numpy_v2(arr.dtype)
        data = arr.reshape(-1).tolist()
    return {"name": name, "datatype": datatype, "shape": list(arr.shape), "data": data}


def output_arrays(preds: Any, output_name: str) -> list[tuple[str, Any]]:
    """Predictions as named arrays: one per DataFrame column, else one ``output_name``."""
    import numpy as np
    import pandas as pd

    if isinstance(preds, pd.DataFrame):
        return [(str(col), np.asarray(preds[col].to_numpy())) for col in preds.columns]
    if isinstance(preds, pd.Series):
        name = str(preds.name) if preds.name is not None else output_name
        return [(name, np.asarray(preds.to_numpy()))]
    if isinstance(preds, dict):
        return [(str(k), np.asarray(v)) for k, v in preds.items()]
    return [(output_name, np.asarray(preds))]


def outputs_for(preds: Any, output_name: str) -> list[dict[str, Any]]:
    """Predictions as v2 output tensors: one per DataFrame column, else one ``output_name``."""
    return [_output(name, arr) for name, arr in output_arrays(preds, output_name)]


def infer_response(
    model_name: str, version: str, doc: dict[str, Any], preds: Any, output_name: str
) -> Reply:
    """The inference response object, filtered to the outputs the request asked for."""
    outputs = outputs_for(preds, output_name)
    wanted = doc.get("outputs")
    if type(wanted) is list and wanted:
        names = {o.get("name") for o in wanted if type(o) is dict}
        outputs = [o for o in outputs if o["name"] in names]
    resp: dict[str, Any] = {"model_name": model_name, "model_version": version, "outputs": outputs}
    if "id" in doc:
        resp["id"] = doc["id"]
    return 200, orjson.dumps(resp), JSON


def output_name(metadata: Any) -> str:
    """The name of the single output, from the signature when it has one."""
    try:
        schema = metadata.get_output_schema()
        if schema is not None and len(schema.inputs) == 1 and schema.inputs[0].name:
            return str(schema.inputs[0].name)
    except Exception:
        pass
    return "predict"
