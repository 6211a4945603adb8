"""Turning predictions into output rows, and parts into the one final output file.

Output rows carry the id column(s) given (else ``row``, the row's 0-based
index in the whole input), then the prediction column(s), in input order:

- a 1-D array or a Series: ``prediction``;
- a 2-D array: ``prediction_0 .. prediction_k`` (``prediction`` when k is 1);
- a DataFrame (a chat model's ``text``, ``model``, ``usage``...): its columns.

The final file is written from the parts into a temporary file in the output's
directory and renamed over the output, so it appears whole or not at all, and
is the same bytes whether the parts were made in one run or several.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ame.batch.errors import BatchError, PredictionFailedError

if TYPE_CHECKING:
    import pyarrow as pa

    from ame.batch.signature import Conformed

OUTPUT_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
OUTPUT_FORMATS = ("parquet", "csv", "jsonl")
ROW_COLUMN = "row"


def output_format(path: Path, given: str | None = None) -> str:
    """``given``, else the output's suffix, else Parquet."""
    if given is not None:
        if given not in OUTPUT_FORMATS:
            raise BatchError(f"unknown output format '{given}'; valid: {', '.join(OUTPUT_FORMATS)}")
        return given
    return OUTPUT_SUFFIXES.get(path.suffix.lower(), "parquet")


def errors_path(output: Path) -> Path:
    """Where ``--on-error skip`` writes the refused rows: ``<output>.errors.jsonl``."""
    return output.with_name(output.name + ".errors.jsonl")


def _prediction_columns(prediction: Any, rows: int) -> list[tuple[str, Any]]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(prediction, pd.DataFrame):
        table = pa.Table.from_pandas(prediction, preserve_index=False)
        return [(str(name), table.column(i)) for i, name in enumerate(table.column_names)]
    if isinstance(prediction, pd.Series):
        return [("prediction", pa.Array.from_pandas(prediction))]
    if isinstance(prediction, dict):
        return [(str(k), pa.array(np.asarray(v))) for k, v in prediction.items()]
    values = np.asarray(prediction)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 2 and values.shape[0] == rows:
        return [(f"prediction_{j}", pa.array(values[:, j])) for j in range(values.shape[1])]
    if values.ndim == 1:
        return [("prediction", pa.array(values))]
    if values.ndim == 0 and rows == 1:
        return [("prediction", pa.array([values.item()]))]
    raise PredictionFailedError(
        f"the model returned an array of shape {values.shape} for {rows} row(s); "
        "batch scoring needs one prediction per row"
    )


def output_table(
    chunk: pa.Table,
    conformed: Conformed,
    prediction: Any,
    first_row: int,
    id_columns: Sequence[str],
) -> pa.Table:
    """The output rows of one chunk: ids (or ``row``) then predictions, only the kept rows."""
    import numpy as np
    import pyarrow as pa

    keep = conformed.keep
    rows = conformed.rows
    columns = _prediction_columns(prediction, rows)
    for name, values in columns:
        if len(values) != rows:
            raise PredictionFailedError(
                f"the model returned {len(values)} value(s) in '{name}' for {rows} row(s)"
            )
    if id_columns:
        ids = chunk.select(list(id_columns))
        if keep is not None:
            ids = ids.filter(pa.array(keep))
        names = list(ids.column_names)
        arrays: list[Any] = [ids.column(n) for n in names]
    else:
        index = np.arange(first_row, first_row + chunk.num_rows, dtype=np.int64)
        names = [ROW_COLUMN]
        arrays = [pa.array(index if keep is None else index[keep])]
    for name, values in columns:
        while name in names:
            name = f"{name}_prediction"
        names.append(name)
        arrays.append(values)
    return pa.table(arrays, names=names)


def write_final(parts: Sequence[Path], output: Path, fmt: str, empty: pa.Schema) -> int:
    """Write the parts (Arrow IPC files, in order) as ``output``; returns the rows written.

    One part at a time is in memory. Parts whose types differ (a column that
    was all null in one chunk) are cast to the schema they unify to.
    """
    import pyarrow as pa

    schemas = [_part_schema(p) for p in parts]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else empty
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.tmp")
    rows = 0
    try:
        with _writer(tmp, fmt, schema) as write:
            for part in parts:
                with pa.memory_map(str(part)) as source:
                    table = pa.ipc.open_file(source).read_all()
                    write(table.cast(schema) if table.schema != schema else table)
                    rows += table.num_rows
                del table
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _part_schema(part: Path) -> pa.Schema:
    import pyarrow as pa

    with pa.memory_map(str(part)) as source:
        return pa.ipc.open_file(source).schema


class _writer:
    """A context manager yielding ``write(table)`` for one output format."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema) -> None:
        self.path, self.fmt, self.schema = path, fmt, schema
        self._closer: Any = None

    def __enter__(self) -> Any:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            writer = pq.ParquetWriter(str(self.path), self.schema)
            self._closer = writer.close
            return lambda table: writer.write_table(table, row_group_size=max(1, len(table)))
        if self.fmt == "csv":
            from pyarrow import csv

            csv_writer = csv.CSVWriter(str(self.path), self.schema)
            self._closer = csv_writer.close
            return csv_writer.write_table
        import orjson

        fh = self.path.open("wb")
        self._closer = fh.close

        def write_jsonl(table: pa.Table) -> None:
            option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
            for batch in table.to_batches(max_chunksize=8192):
                fh.write(b"".join(orjson.dumps(r, option=option) for r in batch.to_pylist()))

        return write_jsonl

    def __exit__(self, *exc: object) -> None:
        if self._closer is not None:
            self._closer()


def write_part(table: pa.Table, path: Path) -> None:
    """One chunk's output rows as an Arrow IPC file, renamed into place when whole."""
    import pyarrow as pa

    tmp = path.with_name(f".{path.name}.tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)
