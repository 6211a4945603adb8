"""A reference per version: a bounded sample of the training inputs, stored with the run.

KS needs raw values and an input example is a few rows, so training code logs
up to ``MAX_ROWS`` rows of what the model was trained on (and, optionally, its
predictions on them) as the run artifact ``ame/reference.parquet``. A version
registered from that run finds it through its ``run_id``. The file is plain
Parquet: training code in an environment without ame can write the same
artifact with pandas and ``mlflow.log_artifact``.

Columns are the features by name; ``output.<name>`` columns are predictions
(``output.prediction`` for a plain array), named like the payload log's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ame.monitoring.errors import MonitoringError, NoReferenceError

if TYPE_CHECKING:
    from ame.registry.records import VersionRecord
    from ame.registry.store import Store
    from ame.spec.model import Project

ARTIFACT_DIR = "ame"
ARTIFACT_NAME = "reference.parquet"
ARTIFACT_PATH = f"{ARTIFACT_DIR}/{ARTIFACT_NAME}"
MAX_ROWS = 10_000
OUTPUT_PREFIX = "output."


def _to_table(data: Any, prefix: str = "", plain_name: Optional[str] = None) -> Any:
    """A DataFrame, a numpy array, a dict of columns, a list or an Arrow table, as a table."""
    import numpy as np
    import pyarrow as pa

    if isinstance(data, pa.Table):
        table = data
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        table = pa.Table.from_pandas(data, preserve_index=False)
    elif hasattr(data, "to_numpy") and hasattr(data, "name"):  # a pandas Series
        table = pa.table({plain_name or str(data.name): data.to_numpy()})
    elif isinstance(data, dict):
        table = pa.table({str(k): np.asarray(v) for k, v in data.items()})
    else:
        array = np.asarray(data)
        if array.ndim == 1:
            table = pa.table({plain_name or "0": array})
        elif array.ndim == 2:
            base = f"{plain_name}." if plain_name else ""
            table = pa.table({f"{base}{j}": array[:, j] for j in range(array.shape[1])})
        else:
            raise MonitoringError(f"a reference must be 1- or 2-dimensional, not {array.ndim}")
    if prefix:
        table = table.rename_columns([prefix + name for name in table.column_names])
    return table


def reference_table(data: Any, predictions: Any = None, *, max_rows: int = MAX_ROWS,
                    seed: int = 0) -> Any:  # fmt: skip
    """The reference as an Arrow table: features, then ``output.*``, at most ``max_rows`` rows."""
    import numpy as np
    import pyarrow as pa

    table = _to_table(data)
    if predictions is not None:
        outputs = _to_table(predictions, OUTPUT_PREFIX, plain_name="prediction")
        if outputs.num_rows != table.num_rows:
            raise MonitoringError(
                f"{outputs.num_rows} predictions for {table.num_rows} rows of reference data"
            )
        for name in outputs.column_names:
            table = table.append_column(name, outputs.column(name))
    if table.num_rows > max_rows:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(table.num_rows, size=max_rows, replace=False))
        table = table.take(pa.array(keep))
    return table


def log_reference(data: Any, predictions: Any = None, *, max_rows: int = MAX_ROWS) -> str:
    """Store a sample of ``data`` (the training inputs) as the run's monitoring reference.

    One line in training code, beside ``log_model``: the version registered from
    this run is then compared with its own training data by ``ame monitor``.
    Logs into the active MLflow run (ame's ``MLFLOW_RUN_ID`` in a task).
    Returns the artifact's URI.
    """
    import mlflow
    import pyarrow.parquet as pq

    table = reference_table(data, predictions, max_rows=max_rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT_NAME
        pq.write_table(table, path)
        mlflow.log_artifact(str(path), artifact_path=ARTIFACT_DIR)
    run = mlflow.active_run()
    return f"runs:/{run.info.run_id}/{ARTIFACT_PATH}" if run else ARTIFACT_PATH


def read_table_file(path: Path, max_rows: int = MAX_ROWS) -> Any:
    """A Parquet, CSV or JSON-lines file (or a directory of them), sampled to ``max_rows``."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    if not path.exists():
        raise NoReferenceError(f"reference '{path}' does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    tables = []
    for file in files:
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            tables.append(ds.dataset(str(file), format="parquet").to_table())
        elif suffix in (".csv", ".tsv"):
            from pyarrow import csv

            options = csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            tables.append(csv.read_csv(str(file), parse_options=options))
        elif suffix in (".jsonl", ".json"):
            from pyarrow import json

            tables.append(json.read_json(str(file)))
    if not tables:
        raise NoReferenceError(f"reference '{path}' holds no .parquet, .csv, .tsv or .jsonl file")
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise MonitoringError(f"reference '{path}': files with different columns ({exc})") from exc
    return reference_table(table, max_rows=max_rows)


def _from_run(store: Store, run_id: str) -> Any:
    """The reference artifact of run ``run_id``, or None when it has none."""
    from ame.registry.runs import download_run_artifacts, run_artifacts

    try:
        listed = set(run_artifacts(store, run_id, ARTIFACT_DIR))
    except Exception:
        return None
    if ARTIFACT_PATH not in listed:
        return None
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        local = download_run_artifacts(store, run_id, ARTIFACT_PATH, Path(tmp))
        return pq.read_table(str(local))


def _data_set_path(project: Project, name: str) -> Optional[Path]:
    from ame.spec.loader import resolve_data_set

    try:
        owner, data_set = resolve_data_set(project, name)
    except Exception:
        return None
    if data_set.path is None:
        raise NoReferenceError(f"dataset '{name}' has no path to read a reference from")
    return (owner.root / data_set.path).resolve()


def load_reference(
    store: Store,
    version: VersionRecord,
    *,
    project: Optional[Project] = None,
    override: Optional[str] = None,
) -> tuple[Any, str]:
    """The reference to compare ``version``'s traffic with, and where it came from.

    In order: ``override`` (a dataset of the project, or a file), the version's
    run artifact ``ame/reference.parquet``, the project's ``monitoring.reference``.
    Raises ``NoReferenceError`` (exit 2) naming ``--reference`` when there is none.
    """
    if override:
        path = _data_set_path(project, override) if project is not None else None
        path = path or Path(os.path.expanduser(override)).resolve()
        return read_table_file(path), str(path)
    if version.run_id:
        table = _from_run(store, version.run_id)
        if table is not None:
            return table, f"runs:/{version.run_id}/{ARTIFACT_PATH}"
    if project is not None:
        try:
            monitoring = project.model(version.name).monitoring
        except KeyError:
            monitoring = None
        if monitoring is not None and monitoring.reference is not None:
            path = _data_set_path(project, str(monitoring.reference))
            if path is not None:
                return read_table_file(path), str(path)
    raise NoReferenceError(
        f"version {version.version} of '{version.name}' has no reference to compare with: "
        "pass --reference DATASET (a dataset of ame.yml or a file), set "
        "monitoring.reference in ame.yml, or call ame.monitoring.log_reference(df) in training"
    )
