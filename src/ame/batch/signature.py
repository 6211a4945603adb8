"""The model's signature, enforced on every chunk before it is predicted.

MLflow checks a signature inside ``pyfunc.predict`` too, but it rejects a whole
call with a message about a column: over a million rows a user needs the row.
So each chunk is checked here first, column by column, with pyarrow's
vectorised casts; only a column whose cast fails is walked value by value to
find the rows that are bad, and why. With ``--on-error skip`` those rows leave
the chunk (and go to the errors file); the rest are predicted.

Rules (the same for every input format):

- a column the signature requires and the input lacks: exit 2, always (every
  row would be bad; skipping them all would only hide the mistake);
- a value that does not convert to the column's type without loss
  (``"abc"`` for a double, ``1.5`` for a long): that row is bad;
- a missing value (empty CSV field, JSON null) is NaN in a float or double
  column and bad in any other required column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from ame.batch.errors import BatchError, SchemaMismatchError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


@dataclass(frozen=True)
class RowError:
    """One bad row: its global index, the column at fault and why."""

    row: int
    column: str
    reason: str


@dataclass
class Conformed:
    """A chunk ready for ``predict``: the model's input, the rows kept, the rows refused."""

    data: Any
    keep: Optional[np.ndarray]  # boolean mask over the chunk's rows; None keeps all
    errors: list[RowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.data)


def _arrow_type(mlflow_type: Any) -> Optional[pa.DataType]:
    """The pyarrow type of an MLflow ``DataType``; None for types checked by MLflow only."""
    import pyarrow as pa

    name = getattr(mlflow_type, "name", None)
    return {
        "boolean": pa.bool_(),
        "integer": pa.int32(),
        "long": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "string": pa.string(),
        "binary": pa.binary(),
        "datetime": pa.timestamp("ns"),
    }.get(name or "")


@dataclass(frozen=True)
class _Column:
    """One column the model reads: where it comes from in the input and what it must be."""

    source: Optional[str]  # the input column (None: taken by position)
    name: str  # the name the model sees
    type: Optional[pa.DataType]
    required: bool


class Conformer:
    """Checks and converts chunks for one model's input schema (None: no signature).

    ``id_columns`` are carried to the output, never given to the model (unless
    the signature names them). ``mode`` is ``table`` (a DataFrame of named
    columns), ``positional`` (unnamed columns: the first non-id columns of the
    input, in order) or ``tensor`` (one unnamed tensor: every non-id column
    stacked into a 2-D array of its dtype).
    """

    def __init__(self, schema: Any, id_columns: tuple[str, ...] = ()) -> None:
        self.schema = schema
        self.id_columns = id_columns
        self.mode = "table"
        self.columns: list[_Column] = []
        self.tensor_dtype: Any = None
        self.tensor_width: Optional[int] = None
        if schema is None:
            return
        if schema.is_tensor_spec():
            specs = schema.inputs
            if len(specs) != 1:
                raise BatchError(
                    "the model's signature has several tensor inputs; batch scoring reads a "
                    "table, so it scores models with named columns or one tensor"
                )
            self.mode = "tensor"
            self.tensor_dtype = specs[0].type
            shape = tuple(specs[0].shape or ())
            if len(shape) == 2 and shape[1] not in (-1, None):
                self.tensor_width = int(shape[1])
            return
        named = schema.has_input_names()
        self.mode = "table" if named else "positional"
        for i, spec in enumerate(schema.inputs):
            self.columns.append(
                _Column(
                    source=spec.name if named else None,
                    name=spec.name if named else str(i),
                    type=_arrow_type(spec.type),
                    required=bool(getattr(spec, "required", True)),
                )
            )

    def wanted_columns(self) -> Optional[list[str]]:
        """The input columns to read (named signature columns and ids); None: all of them."""
        if self.mode != "table" or not self.columns:
            return None  # no signature, unnamed columns or a tensor: every column counts
        names = [c.source for c in self.columns if c.source]
        return names + [c for c in self.id_columns if c not in names]

    def string_columns(self) -> frozenset[str]:
        """Input columns a CSV reader should leave as text for this check to convert."""
        return frozenset(c.source for c in self.columns if c.source and c.type is not None)

    def parse_types(self) -> dict[str, pa.DataType]:
        """The ``string_columns`` a CSV reader may parse straight to their numeric type.

        Only numbers: there the CSV parser and this check's cast agree on every
        value (the check trims whitespace, as the parser does), so a chunk
        scores the same whichever way it was read. Booleans, dates and text
        stay text for the check to convert.
        """
        import pyarrow as pa

        numeric = (pa.int32(), pa.int64(), pa.float32(), pa.float64())
        return {
            c.source: c.type
            for c in self.columns
            if c.source and c.type is not None and c.type in numeric
        }

    def conform(self, table: pa.Table, first_row: int) -> Conformed:
        """The model input for ``table`` (rows ``first_row`` onwards of the whole input)."""
        import numpy as np
        import pyarrow as pa

        arrays: dict[str, pa.Array] = {}
        bad = np.zeros(table.num_rows, dtype=bool)
        errors: dict[int, RowError] = {}
        for column, source in self._sources(table, first_row):
            if source is None:
                continue
            arr = table.column(source).combine_chunks()
            converted, problems = _convert(arr, column)
            for i, reason in problems:
                if not bad[i]:
                    bad[i] = True
                    errors[i] = RowError(first_row + i, source, reason)
            arrays[column.name] = converted
        if self.mode == "tensor":
            return self._tensor(table, first_row, bad, errors)
        ordered = [errors[i] for i in sorted(errors)]
        out = pa.table(arrays) if arrays else table.drop_columns(list(self._ids(table)))
        keep = None
        if ordered:
            keep = ~bad
            out = out.filter(pa.array(keep))
        return Conformed(data=_to_pandas(out), keep=keep, errors=ordered)

    def _ids(self, table: pa.Table) -> list[str]:
        return [c for c in self.id_columns if c in table.column_names]

    def _sources(self, table: pa.Table, first_row: int) -> list[tuple[_Column, Optional[str]]]:
        names = table.column_names
        if self.mode == "table":
            out: list[tuple[_Column, Optional[str]]] = []
            for column in self.columns:
                if column.source in names:
                    out.append((column, column.source))
                elif column.required:
                    raise SchemaMismatchError(
                        f"column '{column.source}' is missing from the input (first bad row: "
                        f"{first_row}); the model's signature requires it; input columns: "
                        f"{', '.join(names)}"
                    )
            return out
        free = [n for n in names if n not in self.id_columns]
        if self.mode == "positional":
            if len(free) < len(self.columns):
                raise SchemaMismatchError(
                    f"the model takes {len(self.columns)} unnamed column(s) but the input has "
                    f"{len(free)} besides the id column(s): {', '.join(free) or 'none'}"
                )
            if len(self.columns) == 1 and "prompt" in free:
                free = ["prompt"]  # a chat model's prompts, whatever else the file holds
            return [(c, free[i]) for i, c in enumerate(self.columns)]
        return []

    def _tensor(
        self, table: pa.Table, first_row: int, bad: np.ndarray, errors: dict[int, RowError]
    ) -> Conformed:
        import numpy as np
        import pyarrow as pa

        free = [n for n in table.column_names if n not in self.id_columns]
        if self.tensor_width is not None and len(free) != self.tensor_width:
            raise SchemaMismatchError(
                f"the model takes a tensor of {self.tensor_width} column(s) but the input has "
                f"{len(free)} besides the id column(s): {', '.join(free) or 'none'}"
            )
        target = pa.from_numpy_dtype(np.dtype(self.tensor_dtype))
        columns = []
        for name in free:
            column = _Column(source=name, name=name, type=target, required=True)
            converted, problems = _convert(table.column(name).combine_chunks(), column)
            for i, reason in problems:
                if not bad[i]:
                    bad[i] = True
                    errors[i] = RowError(first_row + i, name, reason)
            columns.append(converted.to_numpy(zero_copy_only=False))
        matrix = (
            np.column_stack(columns).astype(self.tensor_dtype, copy=False)
            if columns
            else np.empty((table.num_rows, 0), dtype=self.tensor_dtype)
        )
        ordered = [errors[i] for i in sorted(errors)]
        keep = None
        if ordered:
            keep = ~bad
            matrix = matrix[keep]
        return Conformed(data=matrix, keep=keep, errors=ordered)


def _nullable(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_floating(arrow_type))


def _convert(arr: pa.Array, column: _Column) -> tuple[pa.Array, list[tuple[int, str]]]:
    """``arr`` as the column's type, and the (row, reason) of values that do not convert.

    Bad values are replaced by nulls in the returned array (their rows are
    dropped or the chunk refused, so the placeholder is never predicted).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    target = column.type
    if target is None:
        return arr, []
    problems: list[tuple[int, str]] = []
    if arr.type != target:
        shown = arr
        if _is_text(arr.type) and (pa.types.is_integer(target) or pa.types.is_floating(target)):
            arr = pc.utf8_trim_whitespace(arr)  # " 2.5" is 2.5, as pyarrow's CSV parser reads it
        try:
            arr = pc.cast(arr, target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arr, problems = _convert_slowly(arr, target, shown)
    if arr.null_count and column.required and not _nullable(target):
        nulls = pc.is_null(arr).to_numpy(zero_copy_only=False)
        seen = {i for i, _ in problems}
        for i in nulls.nonzero()[0].tolist():
            if i not in seen:
                problems.append((i, f"missing value (the column is {target}, required)"))
        problems.sort()
    if pa.types.is_floating(target) and arr.null_count:
        arr = pc.fill_null(arr, float("nan"))
    return arr, problems


def _is_text(arrow_type: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _convert_slowly(
    arr: pa.Array, target: pa.DataType, shown: pa.Array
) -> tuple[pa.Array, list[tuple[int, str]]]:
    """Value by value: only for a column whose vectorised cast failed, to find its bad rows.

    ``shown`` holds the values as the input had them, for the reasons.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    values = arr.to_pylist()
    originals = shown.to_pylist()
    out: list[Any] = []
    problems: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(pc.cast(pa.array([value], arr.type), target, safe=True)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            problems.append((i, f"{originals[i]!r} is not a valid {target}"))
    return pa.array(out, target), problems


def _to_pandas(table: pa.Table) -> Any:
    """A DataFrame with plain NumPy columns (what models were trained on), strings as objects."""
    return table.to_pandas(types_mapper=None, strings_to_categorical=False, self_destruct=False)


def input_schema(predictor: Any) -> Any:
    """The model's input schema, or None when it was logged without a signature."""
    metadata = getattr(predictor, "metadata", None)
    if metadata is None:
        return None
    try:
        return metadata.get_input_schema()
    except Exception:  # a metadata object without signature support: no check to make
        return None
