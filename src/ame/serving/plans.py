"""Fast-path plans beyond plain columns: tensor signatures and models without one.

A plan turns one decoded ``/invocations`` body into a ``Parsed`` part, and the
parts of many requests into one model input (see ``ame.serving.codec``). Each
plan builds its part with the very call MLflow's scoring server makes for the
same body, so a request alone gets MLflow's input exactly; the part's ``key``
keeps apart requests whose merged input would differ from their inputs one by
one (a tensor's trailing shape, a column's value types). Whatever a plan is not
sure of goes to MLflow's own code (``parse`` returns None).

- ``TensorPlan``: a tensor signature (``mlflow.sklearn.log_model`` with a NumPy
  input example gives one unnamed tensor). ``inputs`` and ``instances``, lists
  or dicts, become ``np.array(data, dtype=spec.type)`` as in MLflow's
  ``convert_data_type``, checked against the shape as ``_enforce_tensor_spec``
  checks it, and are merged by concatenating along the first axis.
- ``FreePlan``: no signature. ``dataframe_split``/``dataframe_records`` become
  the DataFrame MLflow builds (``pd.DataFrame(...)``, dtypes inferred), merged
  only among requests whose every column has the same set of value types, so
  pandas infers the same dtype for the merged frame; ``inputs``/``instances``
  lists become ``np.array(data)``, merged among equal dtypes and trailing shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ame.serving.codec import ColumnPlan, Parsed, Plan, index_of, merged_index

_INT64 = (-(2**63), 2**63 - 1)
# Value-type sets per column for which pandas' inference does not depend on the
# proportion of each type (so a merged column gets the dtype each part gets).
_STABLE = {
    frozenset({int}),
    frozenset({float}),
    frozenset({int, float}),
    frozenset({bool}),
    frozenset({str}),
}


def _shape_ok(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """MLflow's ``_enforce_tensor_spec`` shape rule: same rank, -1 matches any size."""
    if len(shape) != len(expected) or not shape or shape[0] < 1:
        return False
    return all(e == -1 or e == a for e, a in zip(expected, shape, strict=True))


@dataclass(frozen=True)
class TensorSpecPlan:
    """One tensor of the signature: its name (None when unnamed), dtype and shape."""

    name: Optional[str]
    dtype: Any  # numpy dtype
    shape: tuple[int, ...]

    def convert(self, data: Any) -> Optional[Any]:
        """``np.array(data, dtype)`` as MLflow converts it, if it has the signature's shape."""
        import numpy as np

        if type(data) is not list:
            return None
        try:
            arr = np.array(data, dtype=self.dtype)
        except Exception:  # MLflow's path reports the reason
            return None
        return arr if _shape_ok(arr.shape, self.shape) else None


@dataclass(frozen=True)
class TensorPlan:
    """A signature of one unnamed tensor, or of named tensors, each batchable on axis 0."""

    specs: tuple[TensorSpecPlan, ...]
    named: bool

    @classmethod
    def from_schema(cls, schema: Any) -> Optional[TensorPlan]:
        specs = []
        for spec in schema.inputs:
            dtype = spec.type
            shape = tuple(int(d) for d in spec.shape)
            # numbers and booleans only; the first axis must be the batch axis
            if getattr(dtype, "kind", "O") not in "biuf" or not shape or shape[0] != -1:
                return None
            specs.append(TensorSpecPlan(spec.name, dtype, shape))
        named = schema.has_input_names()
        if not specs or (not named and len(specs) != 1):
            return None
        if named and len({s.name for s in specs}) != len(specs):
            return None
        return cls(specs=tuple(specs), named=named)

    def parse(self, doc: Any) -> Optional[Parsed]:
        if type(doc) is not dict or len(doc) != 1:
            return None
        if "inputs" in doc:
            data = doc["inputs"]
        elif "instances" in doc:
            data = doc["instances"]
            if self.named and type(data) is list and data and type(data[0]) is dict:
                return self._records(data)
        else:
            return None
        if not self.named:
            arr = self.specs[0].convert(data)
            return None if arr is None else Parsed(key=arr.shape[1:], rows=arr.shape[0], part=arr)
        if type(data) is list and len(self.specs) == 1:
            if any(type(v) is dict for v in data):
                return None
            data = {self.specs[0].name: data}
        if type(data) is not dict:
            return None
        return self._tensors(data)

    def _tensors(self, data: dict[str, Any]) -> Optional[Parsed]:
        if len(data) != len(self.specs):
            return None
        out: dict[str, Any] = {}
        rows: Optional[int] = None
        for spec in self.specs:  # schema order, as MLflow's enforcement rebuilds the dict
            if spec.name not in data:
                return None
            arr = spec.convert(data[spec.name])
            if arr is None or (rows is not None and arr.shape[0] != rows):
                return None
            rows = arr.shape[0]
            out[str(spec.name)] = arr
        assert rows is not None
        return Parsed(key=tuple(a.shape[1:] for a in out.values()), rows=rows, part=out)

    def _records(self, items: list[Any]) -> Optional[Parsed]:
        """``instances`` as a list of dicts: one value per tensor per row."""
        names = [s.name for s in self.specs]
        wanted = set(names)
        columns: dict[str, list[Any]] = {str(n): [] for n in names}
        for item in items:
            if type(item) is not dict or item.keys() != wanted:
                return None
            for name in names:
                columns[str(name)].append(item[name])
        return self._tensors(dict(columns))

    def build(self, parts: list[Any]) -> Any:
        import numpy as np

        if len(parts) == 1:
            return parts[0]
        if not self.named:
            return np.concatenate(parts)
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def v2_inputs(self) -> list[tuple[str, Any, tuple[int, ...]]]:
        """``(v2 name, dtype, shape)`` of each tensor, named as the v2 metadata names them."""
        return [(s.name if s.name else "input", s.dtype, s.shape) for s in self.specs]


def _column_types(columns: list[list[Any]]) -> Optional[tuple[frozenset[type], ...]]:
    """Each column's set of value types, when every set is one pandas infers stably."""
    out = []
    for col in columns:
        types = frozenset(map(type, col))
        if types not in _STABLE:
            return None
        if int in types and not all(_INT64[0] <= v <= _INT64[1] for v in col if type(v) is int):
            return None
        out.append(types)
    return tuple(out)


class FreePlan:
    """A model without a signature: MLflow passes the parsed input on unchecked."""

    def parse(self, doc: Any) -> Optional[Parsed]:
        if type(doc) is not dict or len(doc) != 1:
            return None
        if "dataframe_split" in doc:
            return self._split(doc["dataframe_split"])
        if "dataframe_records" in doc:
            return self._records(doc["dataframe_records"])
        data = doc.get("inputs", doc.get("instances"))
        return self._array(data)

    def _split(self, obj: Any) -> Optional[Parsed]:
        if type(obj) is not dict or "data" not in obj or "columns" not in obj:
            return None
        if len(obj) != (3 if "index" in obj else 2):
            return None
        names, data = obj["columns"], obj["data"]
        if type(names) is not list or not names or type(data) is not list or not data:
            return None
        if not all(type(c) is str for c in names) or len(set(names)) != len(names):
            return None
        width = len(names)
        if not all(type(row) is list and len(row) == width for row in data):
            return None
        types = _column_types([[row[j] for row in data] for j in range(width)])
        ok, index = index_of(obj, len(data))
        if types is None or not ok:
            return None
        kind = None if index is None else ("int" if all(type(v) is int for v in index) else "str")
        key = ("split", tuple(names), types, kind)
        return Parsed(key=key, rows=len(data), part=(data, index, names))

    def _records(self, obj: Any) -> Optional[Parsed]:
        if type(obj) is not list or not obj or type(obj[0]) is not dict or not obj[0]:
            return None
        names = list(obj[0])
        if not all(type(rec) is dict and list(rec) == names for rec in obj):
            return None
        types = _column_types([[rec[n] for rec in obj] for n in names])
        if types is None:
            return None
        return Parsed(key=("records", tuple(names), types), rows=len(obj), part=obj)

    def _array(self, data: Any) -> Optional[Parsed]:
        import numpy as np

        if type(data) is not list or not data or any(type(v) is dict for v in data):
            return None
        try:
            arr = np.array(data)  # MLflow's convert_data_type(data, None)
        except Exception:
            return None
        if arr.dtype.kind not in "biufU" or arr.ndim < 1:
            return None
        return Parsed(key=("array", arr.dtype.str, arr.shape[1:]), rows=arr.shape[0], part=arr)

    def build(self, parts: list[Any]) -> Any:
        import numpy as np
        import pandas as pd

        if isinstance(parts[0], np.ndarray):
            return parts[0] if len(parts) == 1 else np.concatenate(parts)
        if isinstance(parts[0], list):  # records
            merged = parts[0] if len(parts) == 1 else [r for p in parts for r in p]
            return pd.DataFrame(data=merged)
        rows = parts[0][0] if len(parts) == 1 else [r for p in parts for r in p[0]]
        index = merged_index([(None, p[1]) for p in parts], [len(p[0]) for p in parts])
        return pd.DataFrame(index=index, columns=parts[0][2], data=rows)


def plan_for(metadata: Any) -> Optional[Plan]:
    """The fast-path plan for a model's signature, or None when only MLflow's path is safe."""
    try:
        schema = metadata.get_input_schema()
        from_hint = getattr(metadata, "_is_signature_from_type_hint", lambda: False)()
        from_example = getattr(metadata, "_is_type_hint_from_example", lambda: False)()
    except Exception:  # an object without MLflow metadata: serve it the slow way
        return None
    if from_hint or from_example:
        return None
    if schema is None:
        # a model that takes params without declaring them still gets None from
        # MLflow's server, as here; only the input is unchecked
        return FreePlan()
    if schema.is_tensor_spec():
        return TensorPlan.from_schema(schema)
    return ColumnPlan.from_metadata(metadata)
